import Foundation
import Postgres
@testable import TemporalKit
import TestSupport
import Testing

@Suite("install")
struct InstallTests {
    @Test("a fresh install creates the schema and reports its version")
    func freshInstall() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        #expect(try Installer.installedVersion(on: connection) == nil)
        let report = try Installer.install(on: connection)
        #expect(report.previousVersion == nil)
        #expect(report.version == Installer.bundledVersion)
        #expect(report.appliedMigrations == EmbeddedSQL.migrations.map(\.name))
        #expect(report.followsSchemaChanges)
        #expect(try Installer.installedVersion(on: connection) == Installer.bundledVersion)
        for table in ["versioned_tables", "versioned_columns", "transactions", "schema_changes", "installed_migrations"] {
            #expect(try connection.value("SELECT to_regclass($1) IS NOT NULL", ["temporal_versioning.\(table)"]) == "t")
        }
        #expect(try connection.count("SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'temporal_versioning_%'") == 2)
    }

    @Test("installing again changes nothing and says it is up to date")
    func idempotent() throws {
        let (_, connection) = try versionedTable("CREATE TABLE customers (id int PRIMARY KEY, name text)")
        try connection.execute("INSERT INTO customers VALUES (1, 'a')")
        let again = try Installer.install(on: connection)
        #expect(again.previousVersion == Installer.bundledVersion)
        #expect(again.appliedMigrations.isEmpty)
        // Capture functions were regenerated and still capture.
        try connection.execute("UPDATE customers SET name = 'b'")
        #expect(try historyLines(connection, columns: ["id", "name"]) == ["I:1,∅", "U:1,a"])
        #expect(try connection.count("SELECT count(*) FROM temporal_versioning.installed_migrations") == EmbeddedSQL.migrations.count)
    }

    @Test("migration 0006: the temporal_id sequences of histories made before move by 32, but one a DBA changed or gave a cache")
    func historySequencesMoveBy32() throws {
        // (The plain SQL, which runs the migrations not installed yet.)
        let database = try TestDatabase()
        let connection = try database.connect()
        _ = try Installer.install(on: connection, method: .plain)
        try connection.execute("""
            CREATE TABLE customers (id int PRIMARY KEY, name text); CREATE TABLE orders (id int PRIMARY KEY, total int);
            CREATE TABLE notes (id int PRIMARY KEY, body text); CREATE TABLE tags (id int PRIMARY KEY, label text)
            """)
        let versioning = Versioning(connection: connection)
        try versioning.enable(try TableResolver.resolve("public.customers", on: connection))
        try versioning.enable(try TableResolver.resolve("public.orders", on: connection), partitionHistory: "daily")
        try versioning.enable(try TableResolver.resolve("public.notes", on: connection))
        try versioning.enable(try TableResolver.resolve("public.tags", on: connection))
        let increment = { (history: String) -> String? in
            try connection.value("""
                SELECT s.seqincrement::text FROM pg_sequence s
                WHERE s.seqrelid = pg_get_serial_sequence('temporal_versioning.\(history)', 'temporal_id')::regclass
                """)
        }
        let histories = ["customers_history", "orders_history", "notes_history", "tags_history"]
        #expect(try histories.map(increment) == ["32", "32", "32", "32"])
        // (The plain SQL has no C path: altering a sequence does not move it.)
        let ordersLast = { try connection.count("SELECT last_value FROM temporal_versioning.orders_history_seq") }
        let lastBeforeAlter = try ordersLast()
        // As an install from before 0006 left them (an identity, a sequence
        // of a partitioned history), one a DBA set to 5, one with a cache.
        try connection.execute("""
            ALTER TABLE temporal_versioning.customers_history ALTER COLUMN temporal_id SET INCREMENT BY 1;
            ALTER SEQUENCE temporal_versioning.orders_history_seq INCREMENT BY 1;
            ALTER TABLE temporal_versioning.notes_history ALTER COLUMN temporal_id SET INCREMENT BY 5;
            ALTER TABLE temporal_versioning.tags_history ALTER COLUMN temporal_id SET INCREMENT BY 1 SET CACHE 20;
            DELETE FROM temporal_versioning.installed_migrations WHERE version = 6;
            """)
        #expect(try ordersLast() == lastBeforeAlter)
        try connection.execute("INSERT INTO customers VALUES (1, 'a'); INSERT INTO orders VALUES (1, 10)")
        let before = try connection.count("SELECT max(temporal_id) FROM temporal_versioning.customers_history")
        let report = try Installer.install(on: connection, method: .plain)
        #expect(report.appliedMigrations == ["0006_history_id_blocks.sql"])
        #expect(try histories.map(increment) == ["32", "32", "5", "1"])
        // New ids keep growing past the old ones.
        let ordersBefore = try connection.count("SELECT max(temporal_id) FROM temporal_versioning.orders_history")
        try connection.execute("UPDATE customers SET name = 'b'; UPDATE orders SET total = 11")
        #expect(try connection.count("SELECT max(temporal_id) FROM temporal_versioning.customers_history") > before)
        #expect(try connection.count("SELECT max(temporal_id) FROM temporal_versioning.orders_history") > ordersBefore)
        #expect(try historyLines(connection, columns: ["id", "name"]) == ["I:1,∅", "U:1,a"])
        #expect(try historyLines(connection, "orders_history", columns: ["id", "total"]) == ["I:1,∅", "U:1,10"])
        // Moved to the extension, the C path takes a migrated sequence's ids a
        // block at a time: one statement's are contiguous. (Not when the
        // suite runs again with every capture in PL/pgSQL.)
        #expect(try Installer.install(on: connection, method: .extension).appliedMigrations.isEmpty)
        guard try connection.value("SELECT coalesce(current_setting('temporal.capture', true), '')") != "sql" else { return }
        try connection.execute("INSERT INTO customers SELECT g, 'n' FROM generate_series(10, 109) g")
        #expect(try connection.count("SELECT max(temporal_id) - min(temporal_id) + 1 FROM temporal_versioning.customers_history WHERE id >= 10") == 100)
        #expect(try connection.count("SELECT in_c FROM temporal_versioning._capture_c_statements()") >= 1)
    }

    @Test("a failed install changes nothing")
    func atomic() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        // A read-only transaction makes the install fail halfway: nothing may stay.
        try connection.execute("SET default_transaction_read_only = on")
        #expect(throws: PostgresError.self) { try Installer.install(on: connection) }
        try connection.execute("SET default_transaction_read_only = off")
        #expect(try connection.value("SELECT to_regnamespace('temporal_versioning') IS NULL") == "t")
    }

    @Test("commands refuse a database without pg-temporal, and say what to run")
    func notInstalled() throws {
        let connection = try TestDatabase().connect()
        let error = #expect(throws: PostgresError.self) { try Installer.requireInstalled(on: connection) }
        #expect(error?.message.contains("not installed") == true)
        #expect(error?.hint == "Install it with: temporal install")
    }

    @Test("a database with another version of the SQL is told to upgrade")
    func versionMismatch() throws {
        let (_, connection) = try installedDatabase()
        try connection.execute("CREATE OR REPLACE FUNCTION temporal_versioning.version() RETURNS text LANGUAGE sql AS $$ SELECT '0.0.1' $$")
        let error = #expect(throws: PostgresError.self) { try Installer.requireInstalled(on: connection) }
        #expect(error?.message.contains("0.0.1") == true)
        #expect(error?.hint?.contains("temporal install") == true)
        #expect(try Installer.install(on: connection).previousVersion == "0.0.1")
        try Installer.requireInstalled(on: connection)
    }

    @Test("the SQL compiled into the binary is the SQL in migrations/ and sql/")
    func embeddedSQLIsInSync() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for (folder, embedded) in [("migrations", EmbeddedSQL.migrations), ("sql", EmbeddedSQL.functions)] {
            let directory = root.appendingPathComponent(folder)
            let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
                .filter { $0.hasSuffix(".sql") }.sorted()
            #expect(names == embedded.map(\.name), "run scripts/embed-sql")
            for file in embedded {
                let text = try String(contentsOf: directory.appendingPathComponent(file.name), encoding: .utf8)
                #expect(text == file.text + "\n", "\(folder)/\(file.name) changed: run scripts/embed-sql")
            }
        }
    }
}
