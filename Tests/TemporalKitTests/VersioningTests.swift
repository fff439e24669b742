import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing

@Suite("enable, disable, list, status")
struct VersioningTests {
    @Test("enable creates a nullable history table, its indexes and always-firing triggers")
    func enableCreates() throws {
        let (_, connection) = try installedDatabase()
        try connection.execute("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)")
        let table = try TableResolver.resolve("customers", on: connection)
        #expect(try Versioning(connection: connection).enable(table) == "temporal_versioning.customers_history")
        let columns = try connection.column("""
            SELECT attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END
            FROM pg_attribute WHERE attrelid = 'temporal_versioning.customers_history'::regclass
              AND attnum > 0 AND NOT attisdropped ORDER BY attnum
            """)
        #expect(columns == [
            "temporal_id bigint not null", "temporal_tx_id bigint not null", #"temporal_operation "char" not null"#,
            "id integer", "name text",
        ])
        #expect(try connection.column("""
            SELECT regexp_replace(pg_get_indexdef(indexrelid), '^.* USING ', '')
            FROM pg_index WHERE indrelid = 'temporal_versioning.customers_history'::regclass ORDER BY 1
            """) == ["brin (temporal_tx_id) WITH (autosummarize='on')", "btree (id, temporal_id)"])
        #expect(try connection.column("""
            SELECT tgname || ' ' || tgenabled::text FROM pg_trigger WHERE tgrelid = 'customers'::regclass ORDER BY 1
            """) == [
                "temporal_capture_context A", "temporal_capture_delete A", "temporal_capture_insert A",
                "temporal_capture_truncate A", "temporal_capture_update A",
            ])
    }

    @Test("names resolve like psql: search_path, schema-qualified, quoted")
    func nameResolution() throws {
        let (_, connection) = try installedDatabase()
        try connection.execute("""
            CREATE SCHEMA "Sales Data";
            CREATE TABLE "Sales Data"."Order Lines" (id int PRIMARY KEY);
            CREATE SCHEMA app; CREATE TABLE app.items (id int PRIMARY KEY);
            SET search_path = app, public;
            """)
        let quoted = try TableResolver.resolve(#""Sales Data"."Order Lines""#, on: connection)
        #expect(quoted.schema == "Sales Data" && quoted.name == "Order Lines")
        #expect(quoted.qualified == #""Sales Data"."Order Lines""#)
        #expect(try TableResolver.resolve("items", on: connection).qualified == "app.items")
        #expect(try TableResolver.resolve("APP.ITEMS", on: connection).qualified == "app.items")
        try Versioning(connection: connection).enable(quoted)
        try connection.execute(#"INSERT INTO "Sales Data"."Order Lines" VALUES (1)"#)
        #expect(try connection.count(#"SELECT count(*) FROM temporal_versioning."Order Lines_history""#) == 1)
    }

    @Test("bad input is refused with PostgreSQL's words and changes nothing")
    func badInput() throws {
        let (_, connection) = try installedDatabase()
        try connection.execute("""
            CREATE TABLE nokey (a int, b int);
            CREATE TABLE nullable (a int, b int); CREATE UNIQUE INDEX ON nullable (a);
            CREATE TABLE notunique (a int NOT NULL);
            CREATE TABLE parent (id int PRIMARY KEY) PARTITION BY RANGE (id);
            CREATE TABLE parent_1 PARTITION OF parent FOR VALUES FROM (0) TO (10);
            CREATE VIEW v AS SELECT 1 AS id;
            CREATE TABLE y (id int PRIMARY KEY);
            """)
        let versioning = Versioning(connection: connection)
        func enableError(_ name: String, key: [String]? = nil) -> PostgresError? {
            #expect(throws: PostgresError.self) {
                let table = try TableResolver.resolve(name, on: connection)
                try versioning.enable(table, keyColumns: key)
            }
        }
        #expect(enableError("missing")?.sqlState == SQLState.undefinedTable)
        #expect(enableError("missing")?.message == #"relation "missing" does not exist"#)
        let noKey = enableError("nokey")
        #expect(noKey?.message == #"table "public.nokey" has no primary key"#)
        #expect(noKey?.hint?.contains("--key") == true)
        #expect(enableError("nokey", key: ["zz"])?.sqlState == SQLState.undefinedColumn)
        #expect(enableError("nullable", key: ["a"])?.message.contains("allows NULL") == true)
        #expect(enableError("notunique", key: ["a"])?.hint?.contains("CREATE UNIQUE INDEX") == true)
        // A partition: its partitioned table is versioned, as one table.
        #expect(enableError("parent_1")?.sqlState == SQLState.featureNotSupported)
        #expect(enableError("parent_1")?.hint?.contains("temporal enable public.parent") == true)
        #expect(enableError("v")?.message == #""public.v" is not a table"#)
        let long = String(repeating: "l", count: 50)
        try connection.execute("CREATE TABLE \(long) (id int PRIMARY KEY)")
        let tooLong = enableError(long)
        #expect(tooLong?.sqlState == "42622")
        #expect(tooLong?.message == "history table name \"\(long)_history\" is too long", "the name it would have had, not a cut one")
        // Injection attempts are names, never SQL.
        for hostile in [#"x"; drop table y; --"#, "y; DROP TABLE y", #""y""; DROP TABLE y; --""#] {
            #expect(enableError(hostile) != nil)
        }
        #expect(try connection.value("SELECT to_regclass('public.y') IS NOT NULL") == "t")
        #expect(try connection.count("SELECT count(*) FROM temporal_versioning.versioned_tables") == 0)
        #expect(try connection.count("SELECT count(*) FROM pg_tables WHERE schemaname = 'temporal_versioning' AND tablename LIKE '%history'") == 0)
    }

    @Test("a hostile but valid table name is quoted everywhere")
    func hostileValidName() throws {
        let (_, connection) = try installedDatabase()
        try connection.execute(#"CREATE TABLE "x""; drop table y; --" (id int PRIMARY KEY, "we""ird" text); CREATE TABLE y (id int)"#)
        let table = try TableResolver.resolve(#""x""; drop table y; --""#, on: connection)
        try Versioning(connection: connection).enable(table)
        try connection.execute(#"INSERT INTO "x""; drop table y; --" VALUES (1, 'a'); UPDATE "x""; drop table y; --" SET "we""ird" = 'b'; TRUNCATE "x""; drop table y; --""#)
        #expect(try connection.count(#"SELECT count(*) FROM temporal_versioning."x""; drop table y; --_history""#) == 3)
        #expect(try connection.value("SELECT to_regclass('public.y') IS NOT NULL") == "t")
    }

    @Test("enabling twice is refused; so is a history name already taken")
    func duplicates() throws {
        let (_, connection) = try versionedTable("CREATE TABLE customers (id int PRIMARY KEY); CREATE SCHEMA other; CREATE TABLE other.customers (id int PRIMARY KEY);")
        let versioning = Versioning(connection: connection)
        let again = #expect(throws: PostgresError.self) {
            try versioning.enable(TableResolver.resolve("customers", on: connection))
        }
        #expect(again?.sqlState == SQLState.duplicateObject)
        let other = try TableResolver.resolve("other.customers", on: connection)
        let clash = #expect(throws: PostgresError.self) { try versioning.enable(other) }
        #expect(clash?.sqlState == SQLState.duplicateTable)
        #expect(clash?.hint?.contains("--suffix") == true)
        #expect(try versioning.enable(other, suffix: "_other_history") == "temporal_versioning.customers_other_history")
    }

    @Test("disable keeps the history; enable resumes into it and restarts the unbroken stretch")
    func disableAndResume() throws {
        let (_, connection) = try versionedTable("CREATE TABLE customers (id int PRIMARY KEY, name text); INSERT INTO customers VALUES (1, 'a')")
        let versioning = Versioning(connection: connection)
        let table = try TableResolver.resolve("customers", on: connection)
        try connection.execute("UPDATE customers SET name = 'b'")
        let since = try connection.value("SELECT versioning_since FROM temporal_versioning.versioned_tables")
        #expect(try versioning.disable(table).contains("kept in temporal_versioning.customers_history"))
        try connection.execute("UPDATE customers SET name = 'not captured'")
        let twice = #expect(throws: PostgresError.self) { try versioning.disable(table) }
        #expect(twice?.message.contains("already off") == true)
        #expect(try versioning.list().first?["capture"] == "off")

        try connection.execute("ALTER TABLE customers ADD COLUMN added_while_off int")
        try versioning.enable(table)
        try connection.execute("UPDATE customers SET name = 'c', added_while_off = 1")
        #expect(try historyLines(connection, columns: ["name", "added_while_off"]) == ["U:a,∅", "U:not captured,∅"])
        #expect(try connection.value("SELECT versioning_since > $1::timestamptz FROM temporal_versioning.versioned_tables", [since]) == "t")
    }

    @Test("disable --drop-history removes history, triggers and function")
    func dropHistory() throws {
        let (_, connection) = try versionedTable("CREATE TABLE customers (id int PRIMARY KEY)")
        let table = try TableResolver.resolve("customers", on: connection)
        try Versioning(connection: connection).disable(table, dropHistory: true)
        #expect(try connection.value("SELECT to_regclass('temporal_versioning.customers_history') IS NULL") == "t")
        #expect(try connection.count("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'customers'::regclass") == 0)
        #expect(try connection.count("SELECT count(*) FROM temporal_versioning.versioned_tables") == 0)
        let status = #expect(throws: PostgresError.self) { try Versioning(connection: connection).status(table) }
        #expect(status?.message == #"table "public.customers" is not versioned"#)
    }

    @Test("status counts exactly; list lists everything, on or off")
    func statusAndList() throws {
        let (_, connection) = try versionedTable("CREATE TABLE customers (id int PRIMARY KEY, v int); INSERT INTO customers VALUES (1, 1)")
        try connection.execute("""
            INSERT INTO customers VALUES (2, 2), (3, 3);
            UPDATE customers SET v = v + 1;
            DELETE FROM customers WHERE id = 3;
            TRUNCATE customers;
            CREATE TABLE orders (id int PRIMARY KEY);
            SELECT temporal_versioning.enable_temporal_versioning('public', 'orders');
            SELECT temporal_versioning.disable_temporal_versioning('public', 'orders');
            """)
        let status = try Versioning(connection: connection).status(TableResolver.resolve("customers", on: connection)).first!
        #expect(status["inserts"] == "2")
        #expect(status["updates"] == "3")
        #expect(status["deletes"] == "1")
        #expect(status["truncates"] == "1")
        #expect(status["total_changes"] == "8")
        #expect(status["capture"] == "enabled")
        #expect(status["first_change"] != nil && status["last_change"] != nil)
        let list = try Versioning(connection: connection).list()
        #expect(list.rows.map { [$0[1], $0[3]] } == [["customers", "t"], ["orders", "f"]])
    }
}
