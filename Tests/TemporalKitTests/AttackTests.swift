import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing

/// Attacks by an unprivileged role that owns a versioned table (the normal
/// case: the application owns its tables; the DBA installs pg-temporal as a
/// superuser and runs time travel and reverts). Each attack plants code that
/// makes its owner a superuser if it ever runs with a superuser's rights; each
/// test asserts that it never did and that the answer stayed right.
@Suite("security")
struct AttackTests {
    /// A database whose schema `app` (and, with ownsDatabase, the database and
    /// its public schema) belongs to the unprivileged role `app`, with
    /// pg-temporal installed by the superuser the tests connect as.
    struct Stage {
        let database: TestDatabase
        let dba: Connection
        let app: Connection
        let role: String

        init(ownsDatabase: Bool = false) throws {
            database = try TestDatabase()
            role = try database.createRole("app")
            dba = try database.connect()
            if ownsDatabase {
                try dba.execute("ALTER DATABASE \(database.name) OWNER TO \(role)")
            }
            try dba.execute("CREATE SCHEMA app AUTHORIZATION \(role)")
            _ = try Installer.install(on: dba)
            app = try database.connect("user=\(role)")
        }

        /// Whether the application role has become a superuser.
        func escalated() throws -> Bool {
            try dba.value("SELECT rolsuper FROM pg_roles WHERE rolname = $1", [role]) == "t"
        }

        /// SQL for a function body's first statement: make `app` a superuser
        /// if whoever runs it is one.
        var payload: String {
            """
            IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
                EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', '\(role)');
            END IF;
            """
        }

        func enable(_ table: String) throws {
            try Versioning(connection: dba).enable(TableResolver.resolve(table, on: dba))
        }

        /// The database's time now, from a transaction of its own.
        func now() throws -> String {
            try dba.value("SELECT now()::text") ?? ""
        }
    }

    @Test("capture never runs a table owner's cast to text, for a column added later or there before enable")
    func captureCast() throws {
        let stage = try Stage()
        defer { stage.database.dropRoles([stage.role]) }
        try stage.app.execute("""
            CREATE TYPE app.evil AS (x int);
            CREATE TYPE app.mood AS ENUM ('sad', 'happy');
            CREATE TABLE app.t (id int PRIMARY KEY, v int, m app.mood);
            INSERT INTO app.t VALUES (1, 1, 'sad');
            """)
        try stage.enable("app.t")
        try stage.app.execute("""
            CREATE FUNCTION app.evil_text(app.evil) RETURNS text LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN ($1).x::text; END $$;
            CREATE CAST (app.evil AS text) WITH FUNCTION app.evil_text(app.evil);
            CREATE FUNCTION app.mood_text(app.mood) RETURNS text LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN 'x'; END $$;
            CREATE CAST (app.mood AS text) WITH FUNCTION app.mood_text(app.mood);
            ALTER TABLE app.t ADD COLUMN e app.evil;
            UPDATE app.t SET e = ROW(1)::app.evil;
            UPDATE app.t SET m = 'happy';
            UPDATE app.t SET m = 'happy';
            """)
        #expect(try stage.escalated() == false)
        // Both real changes were recorded, the update that changed nothing was not.
        // (Printed through the types' output functions: the owner's casts would lie.)
        #expect(try stage.dba.column("""
            SELECT format('%s:%s,%s,%s', temporal_operation, id, m, e) FROM temporal_versioning.t_history ORDER BY temporal_id
            """) == ["U:1,sad,", "U:1,sad,(1)"])
    }

    @Test("following ALTER COLUMN TYPE never converts history with a table owner's cast")
    func schemaChangeCast() throws {
        let stage = try Stage()
        defer { stage.database.dropRoles([stage.role]) }
        try stage.app.execute("CREATE TABLE app.t (id int PRIMARY KEY, v int); INSERT INTO app.t VALUES (1, 1)")
        try stage.enable("app.t")
        try stage.app.execute("""
            UPDATE app.t SET v = 2;
            CREATE TYPE app.evil2 AS (x int);
            CREATE FUNCTION app.int_evil2(int) RETURNS app.evil2 LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN ROW($1)::app.evil2; END $$;
            CREATE CAST (int AS app.evil2) WITH FUNCTION app.int_evil2(int) AS ASSIGNMENT;
            """)
        // The ALTER itself runs the owner's cast with the owner's own rights:
        // that is the owner's business. The history must not.
        try stage.app.execute("ALTER TABLE app.t ALTER COLUMN v TYPE app.evil2")
        #expect(try stage.escalated() == false)
        // The old values are kept as they were, in a column of their own.
        #expect(try historyLines(stage.dba, "t_history", columns: ["id", "v_old1"]) == ["U:1,1"])
        let change = try stage.dba.value("""
            SELECT details->>'history_converted' FROM temporal_versioning.schema_changes WHERE change = 'alter column type'
            """)
        #expect(change == "false")
    }

    @Test("revert and reads never run a function or operator planted on the DBA's search_path")
    func plantedOnSearchPath() throws {
        let stage = try Stage(ownsDatabase: true)
        defer { stage.database.dropRoles([stage.role]) }
        try stage.app.execute("""
            CREATE TABLE public.acct (id int PRIMARY KEY, v int);
            INSERT INTO public.acct SELECT g, g FROM generate_series(1, 5) g;
            """)
        try stage.enable("public.acct")
        let before = try stage.now()
        try stage.app.execute("UPDATE public.acct SET v = v * 10")
        // Planted in public, which the application owns: same names as the
        // built-ins revert and the reads use, some with exactly their argument
        // types (they win where public comes before pg_catalog on the path).
        try stage.app.execute("""
            CREATE FUNCTION public.cardinality(anyarray) RETURNS integer LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN pg_catalog.cardinality($1); END $$;
            CREATE FUNCTION public.set_config(text, text, boolean) RETURNS text LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN pg_catalog.set_config($1, $2, $3); END $$;
            CREATE FUNCTION public.current_setting(text, boolean) RETURNS text LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN pg_catalog.current_setting($1, $2); END $$;
            CREATE FUNCTION public.to_regprocedure(text) RETURNS regprocedure LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN pg_catalog.to_regprocedure($1); END $$;
            CREATE FUNCTION public.to_regclass(text) RETURNS regclass LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN pg_catalog.to_regclass($1); END $$;
            CREATE FUNCTION public.evil_eq(integer, integer) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
            CREATE OPERATOR public.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.evil_eq);
            CREATE FUNCTION public.evil_eq_text(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
            CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.evil_eq_text);
            CREATE FUNCTION public.evil_check(anyelement) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN true; END $$;
            CREATE DOMAIN public.text AS pg_catalog.text CHECK (public.evil_check(VALUE));
            CREATE DOMAIN public."char" AS pg_catalog."char" CHECK (public.evil_check(VALUE));
            CREATE DOMAIN public.jsonb AS pg_catalog.jsonb CHECK (public.evil_check(VALUE));
            CREATE DOMAIN public.int4 AS pg_catalog.int4 CHECK (public.evil_check(VALUE));
            """)
        // The worst case: a DBA whose path puts public before pg_catalog.
        for path in ["\"$user\", public", "public, pg_catalog"] {
            let dba = try stage.database.connect()
            try dba.execute("SET search_path = \(path)")
            try Installer.requireInstalled(on: dba)
            let table = try TableResolver.resolve("acct", on: dba)
            let timeTravel = TimeTravel(connection: dba)
            let instant = try timeTravel.resolveInstants([before])[0]
            _ = try timeTravel.log(table, .init(), summary: true)
            _ = try timeTravel.rowHistory(table, key: [("id", "1")], expandColumns: true)
            _ = try timeTravel.diff(table, from: instant, to: stage.now())
            for json in [false, true] {
                let query = try timeTravel.asOfQuery(table, at: instant, limit: nil, json: json)
                #expect(try dba.query(query.sql, query.parameters).rows.count == 5)
            }
            _ = try timeTravel.revert(.instant(table, instant), dryRun: true)
            #expect(try stage.escalated() == false, "\(path)")
        }
        let dba = try stage.database.connect()
        try dba.execute("SET search_path = public, pg_catalog")
        let table = try TableResolver.resolve("acct", on: dba)
        let timeTravel = TimeTravel(connection: dba)
        let instant = try timeTravel.resolveInstants([before])[0]
        let done = try timeTravel.revert(.instant(table, instant), dryRun: false)
        #expect(done.rows.count == 5)
        #expect(try stage.escalated() == false)
        #expect(try stage.dba.column("SELECT v::text FROM public.acct ORDER BY id") == ["1", "2", "3", "4", "5"])
        // Undo the revert through its changeset, still on the hostile path.
        let label = try stage.dba.value("""
            SELECT changeset_id FROM temporal_versioning.transactions WHERE changeset_id LIKE 'revert:%'
            """) ?? ""
        _ = try timeTravel.revert(.changeset(label, nil), dryRun: false)
        #expect(try stage.escalated() == false)
        #expect(try stage.dba.column("SELECT v::text FROM public.acct ORDER BY id") == ["10", "20", "30", "40", "50"])
    }

    @Test("the DBA's reads never run a table owner's cast to json; such values read as their text")
    func readsCastToJSON() throws {
        let stage = try Stage()
        defer { stage.database.dropRoles([stage.role]) }
        try stage.app.execute("""
            CREATE TYPE app.mood AS ENUM ('sad', 'happy');
            CREATE TYPE app.pair AS (a int, b text);
            CREATE TABLE app.t (id int PRIMARY KEY, m app.mood, p app.pair);
            INSERT INTO app.t VALUES (1, 'sad', ROW(1, 'x')), (2, 'sad', NULL);
            """)
        try stage.enable("app.t")
        let before = try stage.now()
        try stage.app.execute("""
            CREATE FUNCTION app.mood_json(app.mood) RETURNS json LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN to_json('lie'::text); END $$;
            CREATE CAST (app.mood AS json) WITH FUNCTION app.mood_json(app.mood);
            CREATE FUNCTION app.pair_json(app.pair) RETURNS json LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN to_json('lie'::text); END $$;
            CREATE CAST (app.pair AS json) WITH FUNCTION app.pair_json(app.pair);
            UPDATE app.t SET m = 'happy' WHERE id = 1;
            """)
        let table = try TableResolver.resolve("app.t", on: stage.dba)
        let timeTravel = TimeTravel(connection: stage.dba)
        let instant = try timeTravel.resolveInstants([before])[0]
        let log = try timeTravel.log(table, .init(), summary: false)
        #expect(log.first?["before"] == #"{"m": "sad", "p": "(1,x)", "id": 1}"#)
        #expect(log.first?["after"] == #"{"m": "happy", "p": "(1,x)", "id": 1}"#)
        _ = try timeTravel.rowHistory(table, key: [("id", "1")], expandColumns: true)
        let diff = try timeTravel.diff(table, from: instant, to: stage.now())
        #expect(diff.first?["changed_columns"] == "{m}")
        let query = try timeTravel.asOfQuery(table, at: instant, limit: nil, json: true)
        #expect(try stage.dba.column(query.sql, query.parameters) == [
            #"{"m": "sad", "p": null, "id": 2}"#, #"{"m": "sad", "p": "(1,x)", "id": 1}"#,
        ])
        _ = try timeTravel.revert(.instant(table, instant), dryRun: true)
        #expect(try stage.dba.value("SELECT count(*) FROM temporal_versioning.query_temporal_data('app', 't', $1)", [instant]) == "2")
        #expect(try stage.escalated() == false)
    }

    @Test("capture paused behind the DBA's back: time travel refuses what it cannot know")
    func pausedCapture() throws {
        let stage = try Stage()
        defer { stage.database.dropRoles([stage.role]) }
        try stage.app.execute("CREATE TABLE app.g (id int PRIMARY KEY, v int); INSERT INTO app.g SELECT x, 0 FROM generate_series(1, 5) x")
        try stage.enable("app.g")
        let t0 = try stage.now()
        let table = try TableResolver.resolve("app.g", on: stage.dba)
        let timeTravel = TimeTravel(connection: stage.dba)
        try stage.app.execute("ALTER TABLE app.g DISABLE TRIGGER temporal_capture_update; UPDATE app.g SET v = 99 WHERE id <= 3")
        // While capture is off, nothing that reads the past through the table answers.
        let paused = #expect(throws: PostgresError.self) { _ = try timeTravel.asOfQuery(table, at: t0, limit: nil) }
        #expect(paused?.message.contains("capture of \"app.g\" is disabled") == true)
        try stage.app.execute("ALTER TABLE app.g ENABLE ALWAYS TRIGGER temporal_capture_update")
        #expect(try Versioning(connection: stage.dba).status(table).first?["capture"] == "enabled")
        // Back on: the history restarted, and the instant before the gap is refused.
        for attempt in [
            { _ = try timeTravel.asOfQuery(table, at: t0, limit: nil) },
            { _ = try timeTravel.revert(.instant(table, t0), dryRun: true) },
            { _ = try timeTravel.diff(table, from: t0, to: stage.now()) },
        ] {
            let refused = #expect(throws: PostgresError.self) { try attempt() }
            #expect(refused?.sqlState == SQLState.invalidParameterValue)
            #expect(refused?.message.contains("is before the history of \"app.g\" begins") == true)
        }
        #expect(try stage.dba.value("""
            SELECT details->>'was' FROM temporal_versioning.schema_changes
            WHERE change = 'capture triggers changed' ORDER BY id DESC LIMIT 1
            """) == "disabled")
        // From the restart on, answers are right again.
        try stage.app.execute("UPDATE app.g SET v = 7 WHERE id = 1")
        let restart = try stage.dba.value("SELECT versioning_since::text FROM temporal_versioning.versioned_tables") ?? ""
        let query = try timeTravel.asOfQuery(table, at: restart, limit: nil)
        #expect(try stage.dba.column(query.sql + " ORDER BY 1", query.parameters).count == 5)
        #expect(try stage.dba.value("SELECT v::text FROM (\(query.sql)) r WHERE id = 1", query.parameters) == "99")
    }

    @Test("unlogged tables are refused, and a versioned table cannot be made unlogged")
    func unloggedTables() throws {
        let stage = try Stage()
        defer { stage.database.dropRoles([stage.role]) }
        try stage.app.execute("CREATE UNLOGGED TABLE app.u (id int PRIMARY KEY); CREATE TABLE app.l (id int PRIMARY KEY)")
        let refused = #expect(throws: PostgresError.self) { try stage.enable("app.u") }
        #expect(refused?.sqlState == SQLState.wrongObjectType)
        #expect(refused?.hint?.contains("SET LOGGED") == true)
        try stage.enable("app.l")
        let altered = #expect(throws: PostgresError.self) { try stage.app.execute("ALTER TABLE app.l SET UNLOGGED") }
        #expect(altered?.message.contains("cannot make versioned table \"app.l\" unlogged") == true)
        #expect(try stage.dba.value("SELECT relpersistence::text FROM pg_class WHERE oid = 'app.l'::regclass") == "p")
    }

    @Test("passwords never appear in connection errors, even where libpq's own message quotes them")
    func passwordsMasked() throws {
        for (conninfo, secret) in [
            ("postgresql://app:Pw%zz-8812@127.0.0.1:5432/db", "Pw%zz-8812"),
            ("postgresql://app:App-Pw-7731x@[::1/db", "App-Pw-7731x"),
            ("host=127.0.0.1 password='Se cret-1 port=1", "Se cret-1"),
            ("host=127.0.0.1 password=Secret-2 port=notaport", "Secret-2"),
        ] {
            let error = #expect(throws: PostgresError.self) { _ = try Connection(conninfo: conninfo) }
            #expect(error != nil)
            #expect(error?.message.contains(secret) == false, "\(error?.message ?? "")")
            #expect(error?.psqlDescription.contains(secret) == false)
        }
    }

    @Test("history never casts a key through the owner's cast from text, nor reads rows into the owner's domains")
    func historyKeysAndDomains() throws {
        let stage = try Stage()
        defer { stage.database.dropRoles([stage.role]) }
        try stage.app.execute("""
            CREATE TYPE app.mood AS ENUM ('sad', 'happy');
            CREATE FUNCTION app.ok(int) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN true; END $$;
            CREATE DOMAIN app.checked AS int CHECK (app.ok(VALUE));
            CREATE TABLE app.t (m app.mood PRIMARY KEY, v app.checked);
            INSERT INTO app.t VALUES ('sad', 1);
            """)
        try stage.enable("app.t")
        try stage.app.execute("""
            UPDATE app.t SET v = 2;
            CREATE FUNCTION app.text_mood(text) RETURNS app.mood LANGUAGE plpgsql AS $$
            BEGIN \(stage.payload) RETURN 'sad'; END $$;
            CREATE CAST (text AS app.mood) WITH FUNCTION app.text_mood(text);
            """)
        let table = try TableResolver.resolve("app.t", on: stage.dba)
        let timeTravel = TimeTravel(connection: stage.dba)
        for expand in [false, true] {
            let history = try timeTravel.rowHistory(table, key: [("m", "sad")], expandColumns: expand)
            #expect(history.rows.count == 2, "the row as it was, and its update")
        }
        // A domain column is the same value in the table and in the history: no spurious change.
        let log = try timeTravel.log(table, .init(), summary: false)
        #expect(log.first?["changed_columns"] == "{v}")
        #expect(try stage.escalated() == false)
    }

    @Test("capture cannot be swapped, renamed away or bypassed through inheritance behind the DBA's back")
    func captureTriggersGuarded() throws {
        let stage = try Stage()
        defer { stage.database.dropRoles([stage.role]) }
        try stage.app.execute("""
            CREATE FUNCTION app.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
            CREATE TABLE app.pre (id int PRIMARY KEY);
            CREATE TRIGGER temporal_capture_update AFTER UPDATE ON app.pre FOR EACH STATEMENT EXECUTE FUNCTION app.noop();
            CREATE TABLE app.t (id int PRIMARY KEY, v int); INSERT INTO app.t VALUES (1, 1);
            CREATE TABLE app.parent (id int, v int);
            CREATE TABLE app.parted (id int, v int) PARTITION BY RANGE (id);
            """)
        // A trigger planted under a capture trigger's name before enable.
        let planted = #expect(throws: PostgresError.self) { try stage.enable("app.pre") }
        #expect(planted?.message == #"trigger "temporal_capture_update" on app.pre is not pg-temporal's"#)
        try stage.enable("app.t")
        for statement in [
            "CREATE OR REPLACE TRIGGER temporal_capture_update AFTER UPDATE ON app.t FOR EACH STATEMENT EXECUTE FUNCTION app.noop()",
            "ALTER TRIGGER temporal_capture_update ON app.t RENAME TO spare",
            "ALTER TABLE app.t INHERIT app.parent",
            "ALTER TABLE app.parted ATTACH PARTITION app.t FOR VALUES FROM (0) TO (100)",
            "CREATE TABLE app.child () INHERITS (app.t)",
        ] {
            let refused = #expect(throws: PostgresError.self, "\(statement)") { try stage.app.execute(statement) }
            #expect(refused != nil, "\(statement)")
        }
        try stage.app.execute("UPDATE app.t SET v = 2")
        #expect(try stage.dba.value("SELECT count(*) FROM temporal_versioning.t_history") == "1", "still captured")
        #expect(try Versioning(connection: stage.dba).status(TableResolver.resolve("app.t", on: stage.dba)).first?["capture"] == "enabled")
        // Undoing a transaction while capture is paused is refused: it could not be undone in turn.
        let tx = try stage.dba.value("SELECT max(temporal_tx_id) FROM temporal_versioning.t_history")!
        try stage.app.execute("ALTER TABLE app.t DISABLE TRIGGER temporal_capture_update")
        let paused = #expect(throws: PostgresError.self) {
            _ = try TimeTravel(connection: stage.dba).revert(.transaction(Int64(tx)!, nil), dryRun: false)
        }
        #expect(paused?.message == #"capture of "app.t" is disabled"#)
    }

}
