import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing

@Suite("privileges")
struct SecurityTests {
    @Test("an application role writes its table, is captured, and cannot touch history")
    func applicationRole() throws {
        let (database, connection) = try versionedTable("CREATE TABLE customers (id int PRIMARY KEY, name text); INSERT INTO customers VALUES (1, 'a')")
        let app = try database.createRole("app")
        defer { database.dropRoles([app]) }
        try connection.execute("GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON customers TO \(app)")
        let appConnection = try database.connect("user=\(app)")
        try appConnection.execute("INSERT INTO customers VALUES (2, 'b'); UPDATE customers SET name = 'c'; DELETE FROM customers WHERE id = 2; TRUNCATE customers")
        #expect(try connection.count("SELECT count(*) FROM temporal_versioning.customers_history") == 5)

        for statement in [
            "SELECT * FROM temporal_versioning.customers_history",
            "INSERT INTO temporal_versioning.customers_history (temporal_tx_id, temporal_operation) VALUES (1, 'I')",
            "UPDATE temporal_versioning.customers_history SET id = 9",
            "DELETE FROM temporal_versioning.customers_history",
            "DELETE FROM temporal_versioning.transactions",
            "SELECT temporal_versioning.enable_temporal_versioning('public', 'customers')",
            "SELECT temporal_versioning.disable_temporal_versioning('public', 'customers', true)",
        ] {
            let error = #expect(throws: PostgresError.self, "\(statement)") { try appConnection.execute(statement) }
            #expect(error?.sqlState == SQLState.insufficientPrivilege, "\(statement)")
        }
        // Calling the capture function directly is refused too: as a trigger
        // function (0A000) even before its EXECUTE privilege is checked.
        let direct = #expect(throws: PostgresError.self) {
            try appConnection.execute("SELECT temporal_versioning.customers_history_capture()")
        }
        #expect([SQLState.insufficientPrivilege, SQLState.featureNotSupported].contains(direct?.sqlState ?? ""))
        #expect(try connection.value("SELECT has_function_privilege($1, 'temporal_versioning.customers_history_capture()', 'EXECUTE')", [app]) == "f")
        #expect(try connection.count("SELECT count(*) FROM temporal_versioning.customers_history") == 5)
    }

    @Test("the table's owner can change its schema; history follows with pg-temporal's rights")
    func ownerAltersTable() throws {
        let (database, connection) = try installedDatabase()
        let owner = try database.createRole("owner")
        defer { database.dropRoles([owner]) }
        try connection.execute("GRANT CREATE ON SCHEMA public TO \(owner)")
        let ownerConnection = try database.connect("user=\(owner)")
        try ownerConnection.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
        try Versioning(connection: connection).enable(TableResolver.resolve("customers", on: connection))
        try ownerConnection.execute("ALTER TABLE customers ADD COLUMN email text; UPDATE customers SET email = 'x'; INSERT INTO customers VALUES (1, 'a', 'b')")
        #expect(try historyLines(connection, columns: ["id"]) == ["I:1"])
        #expect(try connection.value("SELECT bool_or(attname = 'email') FROM pg_attribute WHERE attrelid = 'temporal_versioning.customers_history'::regclass") == "t")
    }

    @Test("functions that run with raised rights pin search_path")
    func pinnedSearchPath() throws {
        let (_, connection) = try versionedTable("CREATE TABLE customers (id int PRIMARY KEY)")
        let unpinned = try connection.column("""
            SELECT p.proname FROM pg_proc p
            WHERE p.pronamespace = 'temporal_versioning'::regnamespace AND p.prosecdef
              AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)
            """)
        #expect(unpinned.isEmpty)
        #expect(try connection.count("SELECT count(*) FROM pg_proc WHERE pronamespace = 'temporal_versioning'::regnamespace AND prosecdef") >= 3)
        let withoutComment = try connection.column("""
            SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'temporal_versioning'::regnamespace
              AND obj_description(p.oid, 'pg_proc') IS NULL
            """)
        #expect(withoutComment.isEmpty)
    }
}
