import Foundation
import Postgres
import TestSupport
import Testing
@testable import TemporalMCP

/// `temporal mcp`, driven by the official MCP Python SDK (mcp on PyPI) as an
/// assistant's client would: Tests/ChangeStreamTests/Scripts/mcp_client.py
/// lists the tools and calls every one, tries injection through every kind of
/// argument, the preview-first rule, a lost connection and pipelined requests.
@Suite("temporal mcp", .serialized)
struct MCPCLITests {
    static let client = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../ChangeStreamTests/Scripts/mcp_client.py").standardized.path

    /// public.items, versioned: (1 a, 2 b) at the instant returned, then 1 z, 2 deleted, 3 c.
    static func database() throws -> (TestDatabase, String) {
        let database = try TestDatabase()
        let db = try database.connect()
        let environment = ["PGDATABASE": database.name]
        #expect(try TemporalCommand.run(["install"], environment: environment).status == 0)
        try db.execute("CREATE TABLE items (id int PRIMARY KEY, v text)")
        #expect(try TemporalCommand.run(["enable", "items"], environment: environment).status == 0)
        try db.execute("INSERT INTO items VALUES (1, 'a'), (2, 'b')")
        Thread.sleep(forTimeInterval: 0.05)
        let instant = try db.value("SELECT now()::text")!
        Thread.sleep(forTimeInterval: 0.05)
        try db.execute("UPDATE items SET v = 'z' WHERE id = 1; DELETE FROM items WHERE id = 2; INSERT INTO items VALUES (3, 'c');")
        return (database, instant)
    }

    @Test("with the official Python client, in both modes: every tool, injection, preview first, reconnect, pipelined requests",
          arguments: ["restricted", "unrestricted"])
    func pythonClient(mode: String) throws {
        let (database, instant) = try Self.database()
        let result = try PythonScript.run(Self.client, [TemporalCommand.binary.path, database.conninfo(), mode, instant])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains(", 0 failed"), "\(result.output)")
    }

    @Test("restricted: every statement in a READ ONLY transaction, under a statement timeout")
    func restrictedSession() async throws {
        let (database, _) = try Self.database()
        var options = TemporalMCPServer.Options(conninfo: database.conninfo())
        options.statementTimeout = "1500ms"
        let server = TemporalMCPServer(options: options)
        let settings = try await server.session.run(readOnly: true) { connection in
            try connection.query("SELECT current_setting('transaction_read_only'), current_setting('statement_timeout')").rows[0]
        }
        #expect(settings == ["on", "1500ms"])
        let write = await #expect(throws: PostgresError.self) {
            try await server.session.run(readOnly: true) { try $0.execute("DELETE FROM public.items") }
        }
        #expect(write?.message.contains("read-only transaction") == true)
        let slow = await #expect(throws: PostgresError.self) {
            try await server.session.run(readOnly: true) { try $0.execute("SELECT pg_sleep(5)") }
        }
        #expect(slow?.message.contains("statement timeout") == true)
        // Code that runs during a call (a table owner's function, say) may reset the session's
        // defaults; each call is still a READ ONLY transaction of its own.
        let reset = await #expect(throws: PostgresError.self) {
            try await server.session.run(readOnly: true) { connection in
                try connection.query("SELECT set_config('default_transaction_read_only', 'off', false), set_config('statement_timeout', '0', false)")
                try connection.execute("DELETE FROM public.items")
            }
        }
        #expect(reset?.message.contains("read-only transaction") == true)
        let next = await #expect(throws: PostgresError.self) {
            try await server.session.run(readOnly: true) { try $0.execute("DELETE FROM public.items") }
        }
        #expect(next?.message.contains("read-only transaction") == true)
        #expect(try database.connect().value("SELECT count(*) FROM items") == "2")
        // A tool call refused in this mode says which mode would take it.
        let refused = await server.call("revert_table_data", arguments: ["schema_name": "public", "table_name": "items",
                                                                         "timestamp": "now", "dry_run": false, "plan_id": "x"])
        #expect(refused.isError == true)
    }
}
