import ChangeStream
import Foundation
import Logging
import MCP
import Postgres
import TemporalKit

/// The versioning API of seed 003 as Model Context Protocol tools, over the
/// same TemporalKit calls the CLI makes (`temporal mcp`).
///
/// RESTRICTED (the default): the tools that write (enable, disable, a revert
/// that is not a dry run) are not offered and refuse when called; every
/// statement runs in a READ ONLY transaction under a statement timeout. No
/// tool takes SQL: names and values go to the SQL functions as parameters.
public final class TemporalMCPServer: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        case restricted, unrestricted
    }

    public struct Options: Sendable {
        public var conninfo: String
        public var mode: Mode = .restricted
        /// Restricted mode: how long one statement may run.
        public var statementTimeout = "30s"
        /// The most rows a tool returns (its `limit` is capped here).
        public var maximumRows = 1000

        public init(conninfo: String) { self.conninfo = conninfo }
    }

    let options: Options
    let session: DatabaseSession
    private let logger = Logger(label: "temporal.mcp")

    public init(options: Options) {
        self.options = options
        session = DatabaseSession(options: options)
    }

    /// The tools this mode offers.
    public var tools: [Tool] {
        ToolCatalog.all.filter { options.mode == .unrestricted || !$0.writesOnly }.map(\.tool)
    }

    /// Serves MCP over stdin and stdout until the client closes stdin.
    public func runStdio() async throws {
        let server = Server(name: "pg-temporal", version: TemporalMCPServer.version,
                            capabilities: .init(tools: .init(listChanged: false)))
        let tools = self.tools
        await server.withMethodHandler(ListTools.self) { _ in .init(tools: tools) }
        await server.withMethodHandler(CallTool.self) { [self] params in
            await self.call(params.name, arguments: params.arguments ?? [:])
        }
        try await server.start(transport: DrainingTransport())
        await server.waitUntilCompleted()
        await session.close()
    }

    public static let version = "0.1.0"

    /// Calls a tool: its result, or a tool error in PostgreSQL's words.
    public func call(_ name: String, arguments: [String: Value]) async -> CallTool.Result {
        guard let spec = ToolCatalog.all.first(where: { $0.tool.name == name }) else {
            return Self.failure("unknown tool \(name); the tools are \(tools.map(\.name).joined(separator: ", "))")
        }
        do {
            let call = try ToolArguments(arguments, spec: spec)
            let json = try await ToolHandlers.run(spec.tool.name, call, server: self)
            let structured = try JSONDecoder().decode(Value.self, from: Data(json.utf8))
            return CallTool.Result(content: [.text(text: json, annotations: nil, _meta: nil)], structuredContent: Optional.some(structured), isError: false)
        } catch let error as PostgresError {
            return Self.failure(error.psqlDescription)
        } catch let error as ToolError {
            return Self.failure(error.message)
        } catch {
            return Self.failure("\(error)")
        }
    }

    static func failure(_ message: String) -> CallTool.Result {
        .init(content: [.text(text: message, annotations: nil, _meta: nil)], isError: true)
    }
}

/// A tool call that cannot go on, in words a model can act on.
struct ToolError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// One database connection for every call, opened on first use and again
/// after it was lost; in restricted mode READ ONLY, with a statement timeout.
actor DatabaseSession {
    private let options: TemporalMCPServer.Options
    private var connection: Connection?

    init(options: TemporalMCPServer.Options) { self.options = options }

    /// Runs `body` on the connection. A connection lost meanwhile is dropped,
    /// and the call tried once more on a new one when it only reads.
    func run<T: Sendable>(readOnly: Bool, _ body: (Connection) throws -> T) throws -> T {
        do {
            return try guarded(try connect(), body)
        } catch let error as PostgresError where error.kind == .connection {
            connection = nil
            guard readOnly else { throw error }
            return try guarded(try connect(), body)
        }
    }

    /// In restricted mode every call is one READ ONLY transaction with the
    /// statement timeout: a function that resets the session's defaults
    /// (set_config) cannot make the call's own transaction writable.
    private func guarded<T>(_ connection: Connection, _ body: (Connection) throws -> T) throws -> T {
        guard options.mode == .restricted else { return try body(connection) }
        return try connection.transaction(readOnly: true) {
            try connection.query("SELECT pg_catalog.set_config('statement_timeout', $1, true)", [options.statementTimeout])
            return try body(connection)
        }
    }

    func close() { connection = nil }

    private func connect() throws -> Connection {
        if let connection { return connection }
        let made = try Connection(conninfo: options.conninfo)
        try made.pinSearchPath()
        try made.execute("SET application_name = 'temporal mcp'")
        // Times in results are UTC, so that an instant read back is unambiguous.
        try TimeTravel(connection: made).printTimesInUTC()
        if options.mode == .restricted {
            try made.restrictToReading(statementTimeout: options.statementTimeout)
        }
        try Installer.requireInstalled(on: made)
        connection = made
        return made
    }
}
