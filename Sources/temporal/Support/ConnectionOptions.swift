import ArgumentParser
import Logging
import Postgres
import TemporalKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How to reach the database; shared by every command that connects.
struct ConnectionOptions: ParsableArguments {
    @Option(
        name: [.customLong("db"), .customShort("d")],
        help: ArgumentHelp(
            "A conninfo string ('host=db1 dbname=app') or URI ('postgresql://dba@db1/app'). What it leaves out comes from PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, ~/.pgpass and PGSERVICE, as for psql.",
            valueName: "conninfo"))
    var db: String = ""

    @Flag(
        name: .customLong("read-only"),
        help: "Run every statement in a read-only transaction and refuse commands that write (also TEMPORAL_READ_ONLY=1).")
    var readOnlyFlag = false

    @Flag(name: .shortAndLong, help: "Log more to stderr (-v, -vv).")
    var verbose: Int

    var readOnly: Bool {
        if readOnlyFlag { return true }
        guard let value = getenv("TEMPORAL_READ_ONLY").map({ String(cString: $0).lowercased() }) else { return false }
        return ["1", "true", "yes", "on"].contains(value)
    }

    /// Refuses a command that writes when read-only mode is on.
    func refuseWritesIfReadOnly(_ command: String) throws {
        if readOnly {
            throw ValidationError(
                "temporal \(command) changes the database and is refused in read-only mode (--read-only or TEMPORAL_READ_ONLY=1).")
        }
    }

    /// Opens the connection, with notices and warnings printed to stderr like psql does.
    func connect() throws -> Connection {
        LogSetup.bootstrap(verbosity: verbose)
        let logger = Logger(label: "temporal")
        let connection = try Connection(conninfo: db)
        connection.noticeHandler = { notice in printError(notice.psqlDescription) }
        logger.info("connected to \(connection.safeDescription)")
        if readOnly {
            try connection.restrictToReading()
            logger.info("read-only mode: every transaction is READ ONLY")
        }
        return connection
    }
}

/// A command that works on a database: connects, runs, and turns PostgreSQL's
/// errors into psql-style messages on stderr and a non-zero exit status.
protocol DatabaseCommand: ParsableCommand {
    var connection: ConnectionOptions { get }
    /// Whether the command needs this binary's SQL installed (all but install).
    static var needsInstall: Bool { get }
    func run(on database: Connection) throws
}

extension DatabaseCommand {
    static var needsInstall: Bool { true }

    func run() throws {
        do {
            let database = try connection.connect()
            if Self.needsInstall {
                try Installer.requireInstalled(on: database)
            }
            try run(on: database)
        } catch let error as PostgresError {
            printError(error.psqlDescription)
            // psql exits with 2 when it cannot connect, 1 on other errors.
            throw ExitCode(error.kind == .connection ? 2 : 1)
        }
    }
}

/// Writes a line to stderr (unbuffered, straight to the file descriptor).
func printError(_ text: String) {
    writeStandardError(text + "\n")
}

func writeStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 { return }
            offset += written
        }
    }
}

enum LogSetup {
    nonisolated(unsafe) private static var bootstrapped = false

    static func bootstrap(verbosity: Int) {
        guard !bootstrapped else { return }
        bootstrapped = true
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = verbosity >= 2 ? .debug : verbosity == 1 ? .info : .warning
            return handler
        }
    }
}
