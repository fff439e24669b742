import ArgumentParser
import Foundation
import TemporalMCP

struct MCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve the versioning API as tools for AI assistants (Model Context Protocol, over stdio).",
        discussion: """
            Tools, with the names and parameters of the versioning API: enable_temporal_versioning, \
            disable_temporal_versioning, list_temporal_tables, get_temporal_status, \
            query_temporal_data, get_change_history, get_row_history, compare_temporal_data, \
            revert_table_data, revert_changeset, get_stream_status.

            --mode restricted (the default): the tools that write are not offered and refuse; \
            every statement runs READ ONLY, with a statement timeout. --mode unrestricted \
            offers them; a revert still needs the plan_id of its preview (dry_run=true first) \
            and refuses when the table changed since.

            The protocol uses stdout; logs go to stderr. A client's configuration:
              {"mcpServers": {"pg-temporal": {"command": "temporal",
                 "args": ["mcp", "--db", "postgresql://app@db1/app", "--mode", "restricted"]}}}
            """)

    @Option(help: ArgumentHelp("The database: a connection string or URI (default: the PG* environment, as psql).", valueName: "conninfo"))
    var db: String = ""

    @Option(help: "restricted (read-only, the default) or unrestricted.")
    var mode: String = "restricted"

    @Option(help: ArgumentHelp("Restricted mode: the longest a statement may run.", valueName: "interval"))
    var statementTimeout: String = "30s"

    func validate() throws {
        guard TemporalMCPServer.Mode(rawValue: mode) != nil else {
            throw ValidationError("--mode is restricted or unrestricted, not \(mode).")
        }
    }

    func run() throws {
        LogSetup.bootstrap(verbosity: 0)
        var options = TemporalMCPServer.Options(conninfo: db)
        options.mode = TemporalMCPServer.Mode(rawValue: mode)!
        options.statementTimeout = statementTimeout
        let server = TemporalMCPServer(options: options)
        // The commands are synchronous; the MCP SDK is not: wait here for it.
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await server.runStdio() } catch { outcome.set(error) }
            done.signal()
        }
        done.wait()
        if let error = outcome.error {
            printError("ERROR:  \(error)")
            throw ExitCode(1)
        }
    }

    /// The server's failure, handed from its task to the waiting thread.
    final class Outcome: @unchecked Sendable {
        private let lock = NSLock()
        private var failure: Error?
        func set(_ error: Error) { lock.withLock { failure = error } }
        var error: Error? { lock.withLock { failure } }
    }
}
