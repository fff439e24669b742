import Foundation
import Postgres
@testable import TemporalKit
import TestSupport
import Testing

/// The temporal_versioning extension (extension/): its scripts, moving a
/// database between the plain SQL and the extension, pg_dump and pg_restore,
/// and its C capture path against the PL/pgSQL one. scripts/test installs the
/// extension into both servers first (scripts/extension-install).
@Suite("extension")
struct ExtensionTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("the extension's scripts are the SQL of sql/ and migrations/")
    func scriptsAreGenerated() throws {
        let result = try run(Self.root.appendingPathComponent("scripts/embed-sql").path, ["--check"])
        #expect(result.status == 0, "\(result.output)")
        // The install script carries every file, word for word.
        let script = try String(
            contentsOf: Self.root.appendingPathComponent("extension/sql/temporal_versioning--\(Installer.bundledVersion).sql"),
            encoding: .utf8)
        for file in EmbeddedSQL.migrations + EmbeddedSQL.functions {
            #expect(script.contains(file.text.trimmingCharacters(in: .newlines)), "\(file.name) is not in the extension's script")
        }
    }

    @Test("a new install takes the extension and C capture; temporal.capture = sql takes the plain SQL")
    func automaticChoosesTheExtension() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try requireExtension(connection)
        let report = try Installer.install(on: connection)
        #expect(report.form == .extension)
        #expect(report.capture == .c)
        #expect(try connection.value("SELECT extversion FROM pg_extension WHERE extname = 'temporal_versioning'") == Installer.bundledVersion)

        let other = try TestDatabase().connect()
        try other.execute("SET temporal.capture = sql")
        let plain = try Installer.install(on: other)
        #expect(plain.form == .plain)
        #expect(plain.capture == .plpgsql)
        #expect(plain.plainBecause?.contains("temporal.capture") == true)
        #expect(try other.count("SELECT count(*) FROM pg_extension WHERE extname = 'temporal_versioning'") == 0)
    }

    @Test("plain SQL to the extension and back keeps every history row, and capture goes on")
    func movesKeepHistory() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try requireExtension(connection)
        #expect(try Installer.install(on: connection, method: .plain).form == .plain)
        try connection.execute("CREATE TABLE customers (id int PRIMARY KEY, name text, score numeric)")
        try Versioning(connection: connection).enable(try TableResolver.resolve("public.customers", on: connection))
        try connection.execute("INSERT INTO customers SELECT g, 'c' || g, g FROM generate_series(1, 20) g")
        try connection.execute("UPDATE customers SET score = score * 2 WHERE id % 3 = 0")
        let before = try snapshot(connection)

        let moved = try Installer.install(on: connection, method: .extension)
        #expect(moved.previousForm == .plain && moved.form == .extension && moved.capture == .c)
        #expect(try snapshot(connection) == before)
        #expect(try triggerFunctions(connection) == ["_emit_change_context_c()", "_capture_c()", "_capture_c()", "_capture_c()", "customers_history_capture()"])
        // The history and its capture function are the database's, not the extension's.
        #expect(try connection.count("""
            SELECT count(*) FROM pg_depend
            WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
              AND objid IN ('temporal_versioning.customers_history'::regclass, 'temporal_versioning.customers_history_capture()'::regprocedure)
            """) == 0)
        try connection.execute("DELETE FROM customers WHERE id = 1")
        let inExtension = try snapshot(connection)
        #expect(inExtension.history.count == before.history.count + 1)

        let back = try Installer.install(on: connection, method: .plain)
        #expect(back.previousForm == .extension && back.form == .plain && back.capture == .plpgsql)
        #expect(try snapshot(connection) == inExtension)
        #expect(try connection.count("SELECT count(*) FROM pg_extension WHERE extname = 'temporal_versioning'") == 0)
        #expect(try connection.value("SELECT to_regprocedure('temporal_versioning._capture_c()') IS NULL") == "t")
        #expect(try triggerFunctions(connection).filter { $0 == "customers_history_capture()" }.count == 4)
        try connection.execute("UPDATE customers SET name = 'x' WHERE id = 2")
        #expect(try snapshot(connection).history.count == inExtension.history.count + 1)
        #expect(try connection.value("SELECT temporal_versioning.capture_state('customers'::regclass)") == "enabled")

        // And once more into the extension: nothing was left behind to trip on.
        #expect(try Installer.install(on: connection, method: .extension).form == .extension)
        #expect(try Installer.install(on: connection).appliedMigrations.isEmpty)
    }

    @Test("pg_dump and pg_restore round-trip history, catalog and triggers, in both forms", arguments: [InstallMethod.extension, .plain])
    func dumpAndRestore(method: InstallMethod) throws {
        let source = try TestDatabase()
        let connection = try source.connect()
        try requireExtension(connection)
        _ = try Installer.install(on: connection, method: method)
        try connection.execute("""
            CREATE TABLE customers (id int PRIMARY KEY, obsolete int, name text, score numeric);
            CREATE TABLE orders (id bigint PRIMARY KEY, customer int, total numeric(10,2));
            """)
        let versioning = Versioning(connection: connection)
        try versioning.enable(try TableResolver.resolve("public.customers", on: connection))
        try versioning.enable(try TableResolver.resolve("public.orders", on: connection))
        try connection.execute("""
            INSERT INTO customers SELECT g, g, 'c' || g, g FROM generate_series(1, 30) g;
            INSERT INTO orders SELECT g, g % 30 + 1, g * 1.5 FROM generate_series(1, 50) g;
            UPDATE customers SET score = score + 1 WHERE id <= 10;
            ALTER TABLE customers DROP COLUMN obsolete;
            ALTER TABLE customers ADD COLUMN note text;
            UPDATE customers SET note = 'n' || id WHERE id > 25;
            DELETE FROM orders WHERE id > 45;
            """)
        let before = try snapshot(connection)
        let journal = try connection.column("SELECT change FROM temporal_versioning.schema_changes ORDER BY id")

        let dump = FileManager.default.temporaryDirectory.appendingPathComponent("\(source.name).dump").path
        defer { try? FileManager.default.removeItem(atPath: dump) }
        let dumped = try run(pgBinary("pg_dump"), ["-Fc", "-f", dump, "-d", source.name])
        try #require(dumped.status == 0, "\(dumped.output)")
        let target = try TestDatabase()
        let restored = try run(pgBinary("pg_restore"), ["--exit-on-error", "-d", target.name, dump])
        try #require(restored.status == 0, "\(restored.output)")

        let copy = try target.connect()
        #expect(try snapshot(copy) == before)
        // Restoring journals nothing (it would restart the history) and the
        // capture triggers are all back, firing always.
        #expect(try copy.column("SELECT change FROM temporal_versioning.schema_changes ORDER BY id") == journal)
        #expect(try copy.column("SELECT temporal_versioning.capture_state(table_oid) FROM temporal_versioning.versioned_tables ORDER BY id")
                == ["enabled", "enabled"])
        // Time travel reads the restored table's columns by name.
        #expect(try copy.column("SELECT column_name || '=' || history_column FROM temporal_versioning.live_columns(1)")
                == ["id=id", "name=name", "score=score", "note=note"])
        #expect(try copy.count("SELECT count(*) FROM pg_extension WHERE extname = 'temporal_versioning'") == (method == .extension ? 1 : 0))
        try Installer.requireInstalled(on: copy)
        // Capture goes on, with the columns of the restored table (its
        // attnums shifted: the dropped column is gone).
        try copy.execute("UPDATE customers SET name = 'after', note = 'restored' WHERE id = 26")
        #expect(try copy.value("""
            SELECT name || '/' || note FROM temporal_versioning.customers_history
            WHERE id = 26 ORDER BY temporal_id DESC LIMIT 1
            """) == "c26/n26")
        try copy.execute("ALTER TABLE customers ADD COLUMN extra int")
        #expect(try copy.column("SELECT change FROM temporal_versioning.schema_changes ORDER BY id") == journal + ["add column"])
        // New catalog rows do not collide with restored ones (sequences came along).
        try copy.execute("CREATE TABLE more (id int PRIMARY KEY)")
        try Versioning(connection: copy).enable(try TableResolver.resolve("public.more", on: copy))
        #expect(try copy.count("SELECT count(*) FROM temporal_versioning.versioned_tables") == 3)
    }

    /// Also with a history partitioned by time (C finds the partition of the
    /// transaction's start, as the executor's routing does), its key index
    /// on closed partitions only for the C table.
    @Test("the C and PL/pgSQL capture paths write the same history, byte for byte", arguments: [nil, "daily"] as [String?])
    func bothPathsWriteTheSameHistory(partitionHistory: String?) throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try requireExtension(connection)
        _ = try Installer.install(on: connection, method: .extension)
        let columns = "id int PRIMARY KEY, name text, amount numeric, code char(6), tags text[], doc jsonb, at timestamptz, blob text"
        try connection.execute("CREATE TABLE with_c (\(columns)); CREATE TABLE with_sql (\(columns))")
        let versioning = Versioning(connection: connection)
        let withC = try TableResolver.resolve("public.with_c", on: connection)
        try versioning.enable(withC, partitionHistory: partitionHistory)
        if partitionHistory != nil {
            try versioning.setHistoryKeyIndex(withC, .closed)
            #expect(try Lifecycle(connection: connection).alignKeyIndex(withC).statements.count == 2)
        }
        try connection.execute("SET temporal.capture = sql")
        try versioning.enable(try TableResolver.resolve("public.with_sql", on: connection), partitionHistory: partitionHistory)
        try connection.execute("RESET temporal.capture")
        #expect(try connection.column("SELECT tgfoid::regprocedure::text FROM pg_trigger WHERE tgname = 'temporal_capture_update' ORDER BY tgrelid::regclass::text")
                == ["temporal_versioning._capture_c()", "temporal_versioning.with_sql_history_capture()"])

        // Every step is a transaction, a fifth of them rolled back; each
        // statement naming $T runs on both tables, in that transaction.
        var random = SplitMix64(seed: 20261202)
        var altered = 0
        for step in 0..<400 {
            try connection.execute("BEGIN")
            // Now and then statements of thousands of rows: the C path
            // writes those in batches (a flush every 1,000 rows or 64 kB,
            // through a bulk-insert state), TOASTed values among them.
            let bulk = step % 100 == 50 ? [
                """
                INSERT INTO $T (id, name, amount, tags, blob)
                SELECT g, CASE WHEN g % 2 = 0 THEN repeat('b', 200) ELSE 'bulk' END, g / 7.0, ARRAY['bulk'],
                       CASE WHEN g % 97 = 0 THEN (SELECT string_agg(md5((g * 1000 + h)::text), '') FROM generate_series(1, 200) h) END
                FROM generate_series(1000, 3499) g ON CONFLICT (id) DO NOTHING
                """,
                "UPDATE $T SET amount = amount + 1, blob = coalesce(blob, 'u') WHERE id >= 1000",
                "DELETE FROM $T WHERE id >= 1000 AND id % 3 <> 1",
            ] : []
            for statement in bulk + workloadStep(step, &random, altered: &altered) {
                for table in statement.contains("$T") ? ["with_c", "with_sql"] : [""] {
                    try connection.execute(statement.replacingOccurrences(of: "$T", with: table))
                }
            }
            try connection.execute(random.next() % 5 == 0 ? "ROLLBACK" : "COMMIT")
        }
        // Rows in the order of their transaction, key and version: a
        // statement's rows come in the order it met them, which is the
        // source's physical order, and the two tables' layouts may differ
        // (page pruning depends on what other sessions of the cluster hold
        // back). The order of their temporal_ids is compared apart.
        let order = "h.temporal_tx_id, h.id, h.temporal_id"
        let compare = { (history: String) -> [String] in
            try connection.column("""
                SELECT h.temporal_tx_id || '|' || h.temporal_operation::text
                       || '|' || (to_jsonb(h) - 'temporal_id' - 'temporal_tx_id' - 'temporal_operation')::text
                FROM temporal_versioning.\(history) h ORDER BY \(order)
                """).map { $0 ?? "" }
        }
        // The ids order the changes alike: the same transaction and
        // operation at each rank. (Not the same values: the sequence moves by
        // 32 a nextval; the C path gives a statement's rows a block's values
        // in turn, the PL/pgSQL path takes a nextval per row.)
        let ids = { (history: String) -> [String] in
            try connection.column("""
                SELECT h.temporal_tx_id || '|' || h.temporal_operation::text
                FROM temporal_versioning.\(history) h ORDER BY h.temporal_id
                """).map { $0 ?? "" }
        }
        // Within a transaction, the C path's ids are blocks of consecutive
        // values, each starting where a nextval put the sequence; the
        // PL/pgSQL path's are 32 apart (or a multiple, past the rows of a
        // savepoint rolled back).
        let steps = { (history: String) -> [String] in
            try connection.column("""
                SELECT DISTINCT (h.temporal_id - lag(h.temporal_id) OVER (PARTITION BY h.temporal_tx_id ORDER BY h.temporal_id))::text
                FROM temporal_versioning.\(history) h ORDER BY 1
                """).compactMap { $0 }
        }
        #expect(try steps("with_sql_history").allSatisfy { (Int($0) ?? 0) > 0 && (Int($0) ?? 0) % 32 == 0 })
        #expect(try steps("with_c_history").contains("1"))
        #expect(try steps("with_c_history").allSatisfy { (Int($0) ?? 0) >= 1 })
        // The C path did the work (a library that handed every statement to
        // PL/pgSQL would pass the comparisons below and prove nothing).
        let paths = try connection.column("SELECT in_c || ',' || handed_to_plpgsql FROM temporal_versioning._capture_c_statements()")
        let counts = (paths.first ?? nil)?.split(separator: ",").compactMap { Int($0) } ?? []
        try #require(counts.count == 2)
        #expect(counts[0] > 300 && counts[0] > 5 * counts[1], "statements captured in C, handed to PL/pgSQL: \(counts)")
        let c = try compare("with_c_history"), sql = try compare("with_sql_history")
        #expect(c.count > 200)
        #expect(c.count == sql.count, "history rows: C \(c.count), PL/pgSQL \(sql.count)")
        if let at = c.indices.first(where: { $0 < sql.count && c[$0] != sql[$0] }) {
            Issue.record("first difference at row \(at):\n  C:        \(c[at])\n  PL/pgSQL: \(sql[at])")
        }
        // And the stored bytes: every column's on-disk size (TOASTed and
        // compressed values included) and value, row by row.
        let sizes = { (history: String) -> [String] in
            let names = try connection.column("""
                SELECT format('%I', attname) FROM pg_attribute
                WHERE attrelid = 'temporal_versioning.\(history)'::regclass AND attnum > 0 AND NOT attisdropped
                  AND attname NOT IN ('temporal_id', 'temporal_tx_id') ORDER BY attname
                """).compactMap { $0 }
            let list = names.map { "coalesce(pg_column_size(\($0))::text || ':' || md5(\($0)::text), 'null')" }.joined(separator: " || ',' || ")
            return try connection.column("SELECT \(list) FROM temporal_versioning.\(history) h ORDER BY \(order)").map { $0 ?? "" }
        }
        #expect(try ids("with_c_history") == ids("with_sql_history"), "the histories took different temporal_ids")
        let cSizes = try sizes("with_c_history"), sqlSizes = try sizes("with_sql_history")
        if let at = cSizes.indices.first(where: { $0 < sqlSizes.count && cSizes[$0] != sqlSizes[$0] }) {
            Issue.record("stored sizes differ first at row \(at):\n  C:        \(cSizes[at])\n  PL/pgSQL: \(sqlSizes[at])")
        }
        #expect(try connection.count("""
            SELECT count(*) FROM temporal_versioning.with_c_history h
            WHERE NOT EXISTS (SELECT FROM temporal_versioning.transactions t WHERE t.tx_id = h.temporal_tx_id)
            """) == 0)
    }

    @Test("C capture under concurrent writers, and after another session alters the table")
    func concurrentWriters() throws {
        let database = try TestDatabase()
        let setup = try database.connect()
        try requireExtension(setup)
        _ = try Installer.install(on: setup, method: .extension)
        try setup.execute("CREATE TABLE counters (id int PRIMARY KEY, value int NOT NULL, writer text)")
        try setup.execute("INSERT INTO counters SELECT g, 0, 'setup' FROM generate_series(1, 200) g")
        try Versioning(connection: setup).enable(try TableResolver.resolve("public.counters", on: setup))
        let writers = 4, rounds = 150
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: writers) { writer in
            do {
                let connection = try database.connect(applicationName: "writer-\(writer)")
                for round in 0..<rounds {
                    try connection.execute("BEGIN")
                    try connection.execute("UPDATE counters SET value = value + 1, writer = 'w\(writer)' WHERE id = \((round * 7 + writer) % 40 + 1)")
                    if round % 10 == 0 {
                        try connection.execute("SAVEPOINT s")
                        try connection.execute("UPDATE counters SET value = value + 1000 WHERE id = \(writer + 1)")
                        try connection.execute("ROLLBACK TO s")
                    }
                    try connection.execute("COMMIT")
                    // Statements of many rows, which take their ids a block
                    // at a time, on keys the other writers update too (locked
                    // in key order first, and none of the keys a transaction
                    // above updates second: no deadlock).
                    if round % 3 == 1 {
                        try connection.execute("""
                            UPDATE counters SET value = value + 1, writer = 'w\(writer)'
                            WHERE id IN (SELECT id FROM counters WHERE id > 4 AND (id <= 12 OR id % 4 = \(writer))
                                         ORDER BY id FOR UPDATE)
                            """)
                    }
                }
            } catch {
                failures.add("\(error)")
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
        // One history row per update (each adds 1), each with its
        // transaction's row and application, and no temporal_id twice.
        let multiRow = writers * (0..<rounds).filter { $0 % 3 == 1 }.count
        let updates = try setup.count("SELECT count(*) FROM temporal_versioning.counters_history WHERE temporal_operation = 'U'")
        #expect(updates > writers * rounds + multiRow)
        #expect(try setup.count("SELECT sum(value) FROM counters") == updates)
        #expect(try setup.count("SELECT count(DISTINCT temporal_id) FROM temporal_versioning.counters_history") == updates)
        #expect(try setup.count("""
            SELECT count(DISTINCT t.tx_id) FROM temporal_versioning.counters_history h
            JOIN temporal_versioning.transactions t ON t.tx_id = h.temporal_tx_id WHERE t.application_name LIKE 'writer-%'
            """) == writers * rounds + multiRow)
        // The value before each update is the one the previous update left.
        #expect(try setup.count("""
            SELECT count(*) FROM (
                SELECT value, lead(value) OVER (PARTITION BY id ORDER BY temporal_id) AS next
                FROM temporal_versioning.counters_history WHERE temporal_operation = 'U') s
            WHERE next IS NOT NULL AND next <> value + 1
            """) == 0)

        // A session that cached the table's columns writes after another one
        // added and renamed columns: the history follows.
        let cached = try database.connect()
        try cached.execute("UPDATE counters SET value = value + 1 WHERE id = 1")
        try setup.execute("ALTER TABLE counters ADD COLUMN note text; ALTER TABLE counters RENAME COLUMN writer TO author")
        try cached.execute("UPDATE counters SET note = 'n1' WHERE id = 1")
        try cached.execute("UPDATE counters SET value = value + 1 WHERE id = 1")
        #expect(try cached.value("""
            SELECT note || '/' || (author IS NOT NULL) FROM temporal_versioning.counters_history
            WHERE id = 1 ORDER BY temporal_id DESC LIMIT 1
            """) == "n1/true")
    }

    @Test("a history's temporal_id sequence altered after the C path took a block of ids: later ids are still new and larger")
    func sequenceAlteredAfterABlock() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try requireExtension(connection)
        _ = try Installer.install(on: connection, method: .extension)
        try connection.execute("CREATE TABLE items (id int PRIMARY KEY, n int)")
        try Versioning(connection: connection).enable(try TableResolver.resolve("public.items", on: connection))
        let history = "temporal_versioning.items_history"
        let maxID = { try connection.count("SELECT max(temporal_id) FROM \(history)") }
        // One statement's ids are contiguous: a nextval per 32 rows.
        try connection.execute("INSERT INTO items SELECT g, 0 FROM generate_series(1, 100) g")
        #expect(try connection.count("SELECT max(temporal_id) - min(temporal_id) + 1 FROM \(history)") == 100)
        // Each statement uses 20 ids of its last block; then the sequence is
        // altered: to a lower increment, back, and restarted just past the
        // value its last nextval returned (as a DBA reading the sequence might).
        let sequence = try connection.value("SELECT pg_get_serial_sequence('\(history)', 'temporal_id')") ?? ""
        var n = 0
        for alteration in ["SET INCREMENT BY 1", "SET INCREMENT BY 32", "RESTART WITH"] {
            n += 1
            try connection.execute("UPDATE items SET n = \(n) WHERE id <= 20")
            let before = try maxID()
            let next = alteration.hasPrefix("RESTART") ? " \(try connection.count("SELECT last_value + 1 FROM \(sequence)"))" : ""
            try connection.execute("ALTER TABLE \(history) ALTER COLUMN temporal_id \(alteration)\(next)")
            try connection.execute("INSERT INTO items SELECT g, 0 FROM generate_series(\(100 + n * 100), \(100 + n * 100 + 39)) g")
            #expect(try connection.count("SELECT min(temporal_id) FROM \(history) WHERE id >= \(100 + n * 100)") > before, "after: \(alteration)")
        }
        // The same in one transaction: a block taken, the sequence restarted
        // just past the value its nextval returned, another statement.
        try connection.execute("BEGIN")
        try connection.execute("UPDATE items SET n = 10 WHERE id <= 20")
        let inTransaction = try maxID()
        try connection.execute("ALTER TABLE \(history) ALTER COLUMN temporal_id RESTART WITH \(try connection.count("SELECT last_value + 1 FROM \(sequence)"))")
        try connection.execute("INSERT INTO items SELECT g, 0 FROM generate_series(500, 539) g")
        try connection.execute("COMMIT")
        #expect(try connection.count("SELECT min(temporal_id) FROM \(history) WHERE id BETWEEN 500 AND 539") > inTransaction)
        // DDL on the history that leaves the sequence alone does not move it
        // (nothing would keep another session's nextval out meanwhile).
        let last = try connection.count("SELECT last_value FROM \(sequence)")
        try connection.execute("ALTER TABLE \(history) SET (fillfactor = 90)")
        #expect(try connection.count("SELECT last_value FROM \(sequence)") == last)
        // An increment above 32: blocks of 32 ids a nextval.
        try connection.execute("ALTER TABLE \(history) ALTER COLUMN temporal_id SET INCREMENT BY 100")
        try connection.execute("INSERT INTO items SELECT g, 0 FROM generate_series(1000, 1099) g")
        #expect(try connection.column("""
            SELECT count(*)::text FROM \(history) WHERE id >= 1000
            GROUP BY (temporal_id - (SELECT min(temporal_id) FROM \(history) WHERE id >= 1000)) / 100 ORDER BY count(*)
            """).compactMap { $0 } == ["4", "32", "32", "32"])
        // A cache: one id a nextval (the backend hands out values it drew before).
        try connection.execute("ALTER TABLE \(history) ALTER COLUMN temporal_id SET INCREMENT BY 32 SET CACHE 20")
        try connection.execute("INSERT INTO items SELECT g, 0 FROM generate_series(2000, 2009) g")
        #expect(try connection.column("""
            SELECT DISTINCT s.step::text FROM (SELECT temporal_id - lag(temporal_id) OVER (ORDER BY temporal_id) AS step
                                               FROM \(history) WHERE id >= 2000) s WHERE s.step IS NOT NULL
            """).compactMap { $0 } == ["32"])
        #expect(try connection.count("SELECT count(*) - count(DISTINCT temporal_id) FROM \(history)") == 0)
        // Each key's changes in the order they were made.
        #expect(try connection.count("""
            SELECT count(*) FROM (SELECT temporal_operation AS op, lag(temporal_operation) OVER (PARTITION BY id ORDER BY temporal_id) AS before
                                  FROM \(history)) s
            WHERE (op = 'I' AND before IS NOT NULL) OR (op = 'U' AND before IS NULL)
            """) == 0)
    }

    @Test("C capture while an index on the history is built concurrently: the index not yet ready is left alone, then holds every row")
    func indexBuiltConcurrently() throws {
        let database = try TestDatabase()
        let setup = try database.connect()
        try requireExtension(setup)
        _ = try Installer.install(on: setup, method: .extension)
        try setup.execute("CREATE TABLE items (id int PRIMARY KEY, n int, pad text)")
        try setup.execute("INSERT INTO items SELECT g, 0, repeat('x', 200) FROM generate_series(1, 100) g")
        try Versioning(connection: setup).enable(try TableResolver.resolve("public.items", on: setup))
        let history = "temporal_versioning.items_history"
        // The BRIN index enable made on temporal_tx_id goes, so that the one
        // built below is the index the planner reads.
        for index in try setup.column("""
            SELECT indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = '\(history)'::regclass AND am.amname = 'brin'
            """) {
            try setup.execute("DROP INDEX \(index ?? "")")
        }
        // A writer's open transaction holds its lock on the history, so
        // CREATE INDEX CONCURRENTLY waits with its index in the catalog but
        // not ready for inserts (indisready false) until it commits; another
        // session writes meanwhile.
        let failures = Failures()
        let writer = try database.connect()
        let whileBuilt = { (index: String, definition: String, writes: [String]) throws in
            let holder = try database.connect()
            try holder.execute("BEGIN; UPDATE items SET n = 1 WHERE id = 1")
            let built = DispatchGroup()
            built.enter()
            DispatchQueue.global().async {
                defer { built.leave() }
                do {
                    let builder = try database.connect(applicationName: "index-builder")
                    try builder.execute("CREATE INDEX CONCURRENTLY \(index) ON \(history) \(definition)")
                } catch {
                    failures.add("\(error)")
                }
            }
            var waiting = false
            let deadline = Date().addingTimeInterval(30)
            while !waiting, Date() < deadline {
                waiting = try setup.count("""
                    SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass('temporal_versioning.\(index)') AND NOT indisready
                    """) == 1
                    && (try setup.count("""
                        SELECT count(*) FROM pg_stat_activity WHERE application_name = 'index-builder' AND wait_event_type = 'Lock'
                        """) == 1)
                if !waiting { Thread.sleep(forTimeInterval: 0.02) }
            }
            if waiting {
                for statement in writes { try writer.execute(statement) }
            } else {
                Issue.record("CREATE INDEX CONCURRENTLY \(index) did not wait with its index not ready")
            }
            try holder.execute("COMMIT")
            built.wait()
        }
        // A minmax BRIN on temporal_tx_id (which the C path writes one row
        // per block range), then a btree (written for every row).
        try whileBuilt("items_tx_ranges", "USING brin (temporal_tx_id) WITH (pages_per_range = 2)", [
            "UPDATE items SET n = 2 WHERE id > 1",
            "INSERT INTO items SELECT g, 3, repeat('y', 200) FROM generate_series(101, 400) g",
        ])
        try whileBuilt("items_by_n", "(n)", [
            "DELETE FROM items WHERE id > 300",
            "UPDATE items SET n = 6 WHERE id BETWEEN 4 AND 200",
        ])
        // And with both ready, through the C path's own handling of each.
        try writer.execute("UPDATE items SET n = 7 WHERE id BETWEEN 50 AND 250")
        #expect(failures.all.isEmpty, "\(failures.all)")
        #expect(try setup.count("""
            SELECT count(*) FROM pg_index WHERE indrelid = '\(history)'::regclass AND indisvalid AND indisready
              AND indexrelid IN ('temporal_versioning.items_tx_ranges'::regclass, 'temporal_versioning.items_by_n'::regclass)
            """) == 2)
        // Each transaction's rows are found through each index as by a scan of the heap.
        let perTransaction = "SELECT temporal_tx_id::text || ':' || count(*) FROM \(history) GROUP BY temporal_tx_id ORDER BY temporal_tx_id"
        let perN = "SELECT coalesce(n, -1)::text || ':' || count(*) FROM \(history) GROUP BY coalesce(n, -1) ORDER BY coalesce(n, -1)"
        try setup.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")
        let byHeap = (try setup.column(perTransaction), try setup.column(perN))
        try setup.execute("RESET enable_indexscan; RESET enable_bitmapscan; SET enable_seqscan = off")
        var byIndex: ([String?], [String?]) = ([], [])
        for row in byHeap.0 {
            let tx = row?.split(separator: ":").first ?? ""
            byIndex.0.append(try setup.value("""
                SELECT temporal_tx_id::text || ':' || count(*) FROM \(history) WHERE temporal_tx_id = \(tx) GROUP BY temporal_tx_id
                """))
        }
        for row in byHeap.1 {
            let n = row?.split(separator: ":").first ?? ""
            byIndex.1.append(try setup.value(n == "-1"
                ? "SELECT '-1:' || count(*) FROM \(history) WHERE n IS NULL"
                : "SELECT n::text || ':' || count(*) FROM \(history) WHERE n = \(n) GROUP BY n"))
        }
        let plans = try setup.column("EXPLAIN SELECT count(*) FROM \(history) WHERE temporal_tx_id = 1")
            + (try setup.column("EXPLAIN SELECT count(*) FROM \(history) WHERE n = 1"))
        #expect(plans.contains { $0?.contains("items_tx_ranges") == true }, "\(plans)")
        #expect(plans.contains { $0?.contains("items_by_n") == true }, "\(plans)")
        #expect(byIndex.0 == byHeap.0)
        #expect(byIndex.1 == byHeap.1)
        #expect(byHeap.0.count >= 6)
    }

    // MARK: helpers

    /// Fails the test, saying what to run, when the server lacks the extension.
    private func requireExtension(_ connection: Connection) throws {
        let available = try connection.value(
            "SELECT count(*) FROM pg_available_extension_versions WHERE name = 'temporal_versioning' AND version = $1",
            [Installer.bundledVersion])
        try #require(available == "1", "the temporal_versioning extension is not installed on this server: run scripts/extension-install")
    }

    struct Snapshot: Equatable {
        var history: [String]
        var catalog: [String]
        var transactions: Int
    }

    /// Every history row, the catalog (relations by name) and the transactions.
    private func snapshot(_ connection: Connection) throws -> Snapshot {
        var history: [String] = []
        for table in try connection.column("SELECT history_table FROM temporal_versioning.versioned_tables ORDER BY id").compactMap({ $0 }) {
            history += try connection.column("SELECT '\(table)|' || h::text FROM temporal_versioning.\(table) h ORDER BY temporal_id").map { $0 ?? "" }
        }
        let catalog = try connection.column("""
            SELECT v.id || '|' || v.schema_name || '.' || v.table_name || '|' || coalesce(v.table_oid::text, '∅') || '|'
                   || v.key_columns::text || '|' || v.enabled || '|' || (
                SELECT string_agg(c.history_column || '=' || (c.source_attnum IS NOT NULL), ',' ORDER BY c.history_column)
                FROM temporal_versioning.versioned_columns c WHERE c.versioned_table_id = v.id)
            FROM temporal_versioning.versioned_tables v ORDER BY v.id
            """).map { $0 ?? "" }
        let transactions = try connection.count("SELECT count(*) FROM temporal_versioning.transactions")
        return Snapshot(history: history, catalog: catalog, transactions: transactions)
    }

    private func triggerFunctions(_ connection: Connection) throws -> [String] {
        try connection.column("""
            SELECT p.proname || '()' FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
            WHERE t.tgrelid = 'customers'::regclass AND t.tgname LIKE 'temporal_capture_%'
            ORDER BY array_position(temporal_versioning._capture_trigger_names(), t.tgname)
            """).map { $0 ?? "" }
    }

    private func pgBinary(_ name: String) -> String {
        if let bin = ProcessInfo.processInfo.environment["TEMPORAL_PG_BIN"] { return bin + "/" + name }
        return "/usr/bin/" + name
    }

    private func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try Program.run(path, arguments)
    }

    /// One step of the workload both capture paths run: every kind of
    /// statement the C path handles or hands to the PL/pgSQL function.
    private func workloadStep(_ step: Int, _ random: inout SplitMix64, altered: inout Int) -> [String] {
        let id = Int(random.next() % 60) + 1
        let word = "w\(random.next() % 1000)"
        switch random.next() % 16 {
        case 0, 1, 2:
            let big = random.next() % 6 == 0
                ? "(SELECT string_agg(md5(g::text || '\(word)'), '') FROM generate_series(1, 200) g)"   // compressible, TOASTed
                : "NULL"
            return ["""
                INSERT INTO $T (id, name, amount, code, tags, doc, at, blob)
                VALUES (\(id), '\(word)', \(random.next() % 10000) / 100.0, '\(word.prefix(3))', ARRAY['\(word)', 'x'],
                        '{"k": "\(word)", "n": \(random.next() % 100)}', '2026-01-01'::timestamptz + interval '\(random.next() % 1000) minutes', \(big))
                ON CONFLICT (id) DO NOTHING
                """]
        case 3, 4, 5:
            return ["UPDATE $T SET amount = amount + 1.50, doc = doc || '{\"u\": \(step)}' WHERE id = \(id)"]
        case 6:
            return ["UPDATE $T SET name = name, code = rtrim(code) WHERE id % 7 = \(id % 7)"]     // nothing a reader could see
        case 7:
            return ["UPDATE $T SET id = id + 100 WHERE id = \(id)"]                                // a key change
        case 8:
            return ["UPDATE $T SET tags = tags || '\(word)'::text, blob = coalesce(blob, '') || '\(word)' WHERE id BETWEEN \(id) AND \(id + 10)"]
        case 9, 10:
            return ["DELETE FROM $T WHERE id = \(id) OR id = \(id + 100)"]
        case 11:
            return ["SAVEPOINT s", "UPDATE $T SET name = 'rolled back' WHERE id <= \(id)", "ROLLBACK TO SAVEPOINT s",
                    "INSERT INTO $T (id, name) VALUES (\(id + 200), 'after rollback') ON CONFLICT (id) DO NOTHING", "RELEASE SAVEPOINT s"]
        case 12:
            return ["SET LOCAL session_replication_role = replica", "UPDATE $T SET amount = 0 WHERE id = \(id)",
                    "SET LOCAL session_replication_role = origin"]
        case 13:
            guard step % 5 == 0 else { return ["DELETE FROM $T WHERE id > 150"] }
            return ["TRUNCATE $T"]
        case 14:
            altered += 1
            switch altered % 4 {
            case 1: return ["ALTER TABLE $T ADD COLUMN extra\(altered) int DEFAULT \(altered)"]
            case 2: return ["ALTER TABLE $T ALTER COLUMN amount TYPE numeric(14,4)"]
            case 3: return ["ALTER TABLE $T RENAME COLUMN name TO name\(altered)", "ALTER TABLE $T RENAME COLUMN name\(altered) TO name"]
            default: return ["ALTER TABLE $T DROP COLUMN IF EXISTS extra\(altered - 3)"]
            }
        default:
            return ["UPDATE $T SET at = at + interval '1 second', code = '\(word.prefix(2))' WHERE id % 5 = \(id % 5)"]
        }
    }
}

/// Errors collected from concurrent writers.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ item: String) { lock.lock(); items.append(item); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
}
