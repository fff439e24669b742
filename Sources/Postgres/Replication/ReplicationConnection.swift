import CLibPQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A logical replication connection (`replication=database`) and its
/// CopyBoth stream: START_REPLICATION, the server's messages, and standby
/// status updates. Every libpq call holds a lock, so one thread may report
/// positions (`send`) while another reads.
public final class ReplicationConnection: @unchecked Sendable {
    private let connection: Connection
    private let lock = Mutex()

    public init(conninfo: String, applicationName: String = "temporal stream") throws {
        connection = try Connection(conninfo: conninfo, applicationName: applicationName, replication: true)
    }

    /// Runs a command the walsender accepts (IDENTIFY_SYSTEM, or plain SQL
    /// such as SET, since this is a database replication connection).
    @discardableResult
    public func command(_ sql: String) throws -> QueryResult {
        try lock.withLock { try connection.simpleQuery(sql) }
    }

    public var safeDescription: String { connection.safeDescription }

    /// `"name"` quoted by libpq for this connection.
    public func quoteIdentifier(_ identifier: String) throws -> String {
        try lock.withLock { try connection.quoteIdentifier(identifier) }
    }

    /// `'value'` quoted by libpq for this connection.
    public func quoteLiteral(_ literal: String) throws -> String {
        try lock.withLock { try connection.quoteLiteral(literal) }
    }

    /// Creates a logical slot with pgoutput and exports the snapshot of its
    /// consistent point: another connection reads exactly what existed there
    /// with `SET TRANSACTION SNAPSHOT`, as long as this connection stays open
    /// and runs no other command.
    /// A `temporary` slot goes with the connection: only its snapshot is wanted.
    public func createLogicalSlotExportingSnapshot(_ slot: String, temporary: Bool = false) throws -> (consistentPoint: LSN, snapshot: String) {
        let row = try command("CREATE_REPLICATION_SLOT \(try quoteIdentifier(slot))\(temporary ? " TEMPORARY" : "") LOGICAL pgoutput (SNAPSHOT 'export')").rows.first
        guard let row, row.count >= 3, let point = row[1].flatMap(LSN.init), let snapshot = row[2] else {
            throw PostgresError(kind: .server, message: "CREATE_REPLICATION_SLOT returned no consistent point or snapshot")
        }
        return (point, snapshot)
    }

    /// Starts streaming changes from a logical slot, from `start` (0/0: where
    /// the slot's confirmed position is). Options are the output plugin's.
    public func startLogicalReplication(slot: String, start: LSN, options: [(String, String)]) throws {
        let list = try options.map { "\($0.0) \(try quoteLiteral($0.1))" }.joined(separator: ", ")
        let command = "START_REPLICATION SLOT \(try quoteIdentifier(slot)) LOGICAL \(start) (\(list))"
        try lock.withLock {
            guard let result = PQexec(connection.handle, command) else {
                throw PostgresError(kind: .connection, message: connection.lastErrorMessage)
            }
            defer { PQclear(result) }
            guard PQresultStatus(result) == PGRES_COPY_BOTH else {
                throw connection.failure(result)
            }
        }
    }

    /// The next message from the server, or nil when none arrives within
    /// `timeoutMilliseconds`. Throws when the stream ends or fails.
    public func receive(timeoutMilliseconds: Int32) throws -> ReplicationMessage? {
        var waited = false
        while true {
            let (length, bytes) = try lock.withLock { () throws -> (Int32, [UInt8]) in
                var buffer: UnsafeMutablePointer<CChar>?
                let length = PQgetCopyData(connection.handle, &buffer, 1)
                guard length > 0, let buffer else { return (length, []) }
                defer { PQfreemem(buffer) }
                return (length, buffer.withMemoryRebound(to: UInt8.self, capacity: Int(length)) {
                    Array(UnsafeBufferPointer(start: $0, count: Int(length)))
                })
            }
            if length > 0 {
                return try ReplicationMessage.decode(bytes[...])
            }
            if length == -1 {
                throw lock.withLock { streamEnded() }
            }
            if length == -2 {
                throw PostgresError(kind: .connection, message: lock.withLock { connection.lastErrorMessage })
            }
            if waited { return nil }
            // Nothing buffered: wait for the socket, then read what arrived.
            var descriptor = pollfd(fd: PQsocket(connection.handle), events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, timeoutMilliseconds)
            if ready < 0 && errno != EINTR {
                throw PostgresError(kind: .connection, message: "poll failed: \(String(cString: strerror(errno)))")
            }
            waited = ready <= 0
            try lock.withLock {
                if PQconsumeInput(connection.handle) == 0 {
                    throw PostgresError(kind: .connection, message: connection.lastErrorMessage)
                }
            }
        }
    }

    /// Reports the client's position to the server.
    public func send(_ status: StandbyStatusUpdate) throws {
        try lock.withLock {
            let bytes = status.encoded
            let sent = bytes.withUnsafeBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                    PQputCopyData(connection.handle, $0, Int32(buffer.count))
                }
            }
            guard sent == 1, PQflush(connection.handle) == 0 else {
                throw PostgresError(kind: .connection, message: connection.lastErrorMessage)
            }
        }
    }

    /// Closes the connection (outside a stream: after commands only).
    public func close() {
        lock.withLock { connection.close() }
    }

    /// Ends the CopyBoth stream politely (CopyDone), as pg_recvlogical does,
    /// and closes the connection, so that the slot is free again at once.
    public func finish() {
        lock.withLock {
            _ = PQputCopyEnd(connection.handle, nil)
            _ = PQflush(connection.handle)
            connection.close()
        }
    }

    private func streamEnded() -> PostgresError {
        var failure: PostgresError?
        while let result = PQgetResult(connection.handle) {
            if PQresultStatus(result) == PGRES_FATAL_ERROR, failure == nil {
                failure = connection.failure(result)
            }
            PQclear(result)
        }
        return failure ?? PostgresError(kind: .connection, message: "the server ended the replication stream")
    }
}

/// A pthread mutex, for the few places where a lock guards C state.
public final class Mutex: @unchecked Sendable {
    private var mutex = pthread_mutex_t()

    public init() { pthread_mutex_init(&mutex, nil) }

    deinit { pthread_mutex_destroy(&mutex) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}
