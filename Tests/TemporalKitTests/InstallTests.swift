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
