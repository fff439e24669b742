#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CLibPQ

/// A connection to PostgreSQL through libpq.
///
/// Connection settings follow libpq's own rules, so everything a psql user
/// relies on works: a conninfo string or `postgresql://` URI, the PG*
/// environment variables, `~/.pgpass`, service files and TLS settings.
/// A connection is used from one thread at a time.
public final class Connection {
    let handle: OpaquePointer

    /// Called for every NOTICE or WARNING the server sends.
    public var noticeHandler: ((PostgresError) -> Void)?

    /// Opens a connection.
    /// - Parameters:
    ///   - conninfo: a conninfo string (`host=... dbname=...`) or a URI; empty
    ///     means libpq's defaults (PG* variables, then built-in defaults).
    ///   - applicationName: used unless the conninfo or PGAPPNAME sets one.
    ///   - replication: open a logical replication connection (`replication=database`).
    public init(conninfo: String = "", applicationName: String = "temporal", replication: Bool = false) throws {
        var keywords = ["fallback_application_name"]
        var values = [applicationName]
        if !conninfo.isEmpty {
            keywords.append("dbname")
            values.append(conninfo)
        }
        if replication {
            keywords.append("replication")
            values.append("database")
        }
        let connection = withCStringArray(keywords) { keywordPointers in
            withCStringArray(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let connection else {
            throw PostgresError(kind: .connection, message: "out of memory while connecting")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = ConnInfoSecrets.redact(
                String(cString: PQerrorMessage(connection)).trimmingTrailingNewlines(), conninfo: conninfo)
            PQfinish(connection)
            // libpq gives no SQLSTATE for a failed connection; a refused login
            // is told apart, since no retry can cure it.
            let refused = message.contains("authentication failed") || message.contains("no pg_hba.conf entry")
            throw PostgresError(kind: .connection,
                                sqlState: refused ? SQLState.invalidAuthorizationSpecification : SQLState.connectionFailure,
                                message: message)
        }
        handle = connection
        PQsetNoticeReceiver(handle, { context, result in
            guard let context, let result else { return }
            let connection = Unmanaged<Connection>.fromOpaque(context).takeUnretainedValue()
            connection.noticeHandler?(PostgresError(result: result))
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    private var closed = false

    deinit {
        close()
    }

    /// Closes the connection now (the server ends its backend); idempotent.
    /// The connection must not be used afterwards.
    public func close() {
        guard !closed else { return }
        closed = true
        PQfinish(handle)
    }

    /// Sets the session's search_path to pg_catalog (and pg_temp last), so
    /// that no function, operator or type a role with CREATE on a schema of
    /// the user's path planted can stand in for a built-in in the SQL this
    /// connection runs from now on. Names typed by a user are resolved before.
    /// Makes every later transaction of the session READ ONLY (a function a
    /// table owner wrote cannot write either), and with `statementTimeout`
    /// bounds each statement: the read-only mode of the CLI and of the MCP server.
    public func restrictToReading(statementTimeout: String? = nil) throws {
        try execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        if let statementTimeout {
            try query("SELECT pg_catalog.set_config('statement_timeout', $1, false)", [statementTimeout])
        }
    }

    public func pinSearchPath() throws {
        try query("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)")
    }

    /// Runs one statement with its values as parameters (`$1`, `$2`, ...).
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresParameter)?] = []) throws -> QueryResult {
        let texts = parameters.map { $0?.postgresText }
        let result = withOptionalCStringArray(texts) { values in
            PQexecParams(handle, sql, Int32(texts.count), nil, values, nil, nil, 0)
        }
        return try check(result)
    }

    /// Runs a script of one or more statements without parameters (the
    /// simple query protocol), such as an installed SQL file.
    public func execute(_ script: String) throws {
        _ = try simpleQuery(script)
    }

    /// Runs SQL with the simple query protocol and returns the last result:
    /// for scripts, and for replication connections, which accept no other.
    @discardableResult
    public func simpleQuery(_ sql: String) throws -> QueryResult {
        try check(PQexec(handle, sql))
    }

    /// `"name"` quoted by libpq (PQescapeIdentifier), for commands that take
    /// no parameters, such as CREATE PUBLICATION or START_REPLICATION.
    public func quoteIdentifier(_ identifier: String) throws -> String {
        try escape(identifier, with: PQescapeIdentifier)
    }

    /// `'value'` quoted by libpq (PQescapeLiteral).
    public func quoteLiteral(_ literal: String) throws -> String {
        try escape(literal, with: PQescapeLiteral)
    }

    private func escape(_ text: String, with function: (OpaquePointer?, UnsafePointer<CChar>?, Int) -> UnsafeMutablePointer<CChar>?) throws -> String {
        guard let escaped = function(handle, text, text.utf8.count) else {
            throw PostgresError(kind: .protocolViolation, message: lastErrorMessage)
        }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back
    /// when it throws. `repeatableRead`: every statement sees one snapshot.
    public func transaction<T>(readOnly: Bool = false, repeatableRead: Bool = false, _ body: () throws -> T) throws -> T {
        try execute("BEGIN" + (repeatableRead ? " ISOLATION LEVEL REPEATABLE READ" : "") + (readOnly ? " READ ONLY" : ""))
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            if PQtransactionStatus(handle) != PQTRANS_IDLE {
                _ = try? execute("ROLLBACK")
            }
            throw error
        }
    }

    /// The server's version as a number, such as 150018.
    public var serverVersion: Int { Int(PQserverVersion(handle)) }

    /// The connection without secrets: `user@host:port/dbname`, for messages and logs.
    public var safeDescription: String {
        func text(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
            pointer.map { String(cString: $0) } ?? ""
        }
        return "\(text(PQuser(handle)))@\(text(PQhost(handle))):\(text(PQport(handle)))/\(text(PQdb(handle)))"
    }

    public var databaseName: String { PQdb(handle).map { String(cString: $0) } ?? "" }

    /// Asks the server to cancel the running statement; safe to call from another thread.
    public func makeCanceller() -> Canceller? {
        PQgetCancel(handle).map(Canceller.init)
    }

    private func check(_ result: OpaquePointer?) throws -> QueryResult {
        guard let result else {
            throw PostgresError(kind: .connection, message: lastErrorMessage)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return QueryResult(result: result)
        default:
            throw failure(result)
        }
    }

    /// The error a failed result reports. When the connection itself is gone
    /// (libpq's own "server closed the connection unexpectedly" carries no
    /// SQLSTATE), it is a connection error, which a caller may wait out.
    func failure(_ result: OpaquePointer) -> PostgresError {
        PostgresError(result: result, kind: PQstatus(handle) == CONNECTION_OK ? .server : .connection)
    }

    var lastErrorMessage: String {
        String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines()
    }
}

/// Sends a cancel request for whatever a connection is running (PQcancel).
public final class Canceller: @unchecked Sendable {
    // PGcancel is documented as safe to use from a signal handler or another thread.
    private let cancel: OpaquePointer

    init(_ cancel: OpaquePointer) { self.cancel = cancel }

    deinit { PQfreeCancel(cancel) }

    @discardableResult
    public func cancelRunningStatement() -> Bool {
        var buffer = [CChar](repeating: 0, count: 256)
        return PQcancel(cancel, &buffer, Int32(buffer.count)) == 1
    }
}

func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    withOptionalCStringArray(strings.map { Optional($0) }) { pointers in
        body(pointers)
    }
}

/// Passes `strings` as a NULL-terminated `const char *const *`, NULL for nil elements.
func withOptionalCStringArray<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { string in
        string.map { strdup($0) }
    }
    defer { copies.forEach { free($0) } }
    var pointers = copies.map { UnsafePointer($0) }
    pointers.append(nil)
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

extension Connection {
    /// Runs one statement and hands its rows to `body` one at a time as they
    /// arrive (libpq's single-row mode), so a large result is never held
    /// whole. Returns the columns; `body` sees them with every row.
    @discardableResult
    public func stream(
        _ sql: String, _ parameters: [(any PostgresParameter)?] = [],
        _ body: ([QueryResult.Column], [String?]) throws -> Void
    ) throws -> [QueryResult.Column] {
        let texts = parameters.map { $0?.postgresText }
        let sent = withOptionalCStringArray(texts) { values in
            PQsendQueryParams(handle, sql, Int32(texts.count), nil, values, nil, nil, 0)
        }
        guard sent == 1, PQsetSingleRowMode(handle) == 1 else {
            throw PostgresError(kind: .connection, message: lastErrorMessage)
        }
        var columns: [QueryResult.Column] = []
        var failure: Error?
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            guard failure == nil else { continue }   // drain the rest after an error
            switch PQresultStatus(result) {
            case PGRES_SINGLE_TUPLE:
                let single = QueryResult(result: result)
                columns = single.columns
                do { try body(columns, single.rows[0]) } catch { failure = error }
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
                if columns.isEmpty { columns = QueryResult(result: result).columns }
            default:
                failure = self.failure(result)
            }
        }
        if let failure { throw failure }
        return columns
    }
}
