import CLibPQ

/// A result's values as the bytes libpq holds, without a String per value:
/// for code that turns many rows into bytes of its own (a backfill's events).
public struct RawResult {
    let result: OpaquePointer

    public var rowCount: Int { Int(PQntuples(result)) }
    public var columnCount: Int { Int(PQnfields(result)) }

    public func columnName(_ column: Int) -> String { String(cString: PQfname(result, Int32(column))) }
    public func columnType(_ column: Int) -> UInt32 { PQftype(result, Int32(column)) }

    /// The text of a value, or nil for NULL; valid while the body runs.
    public func value(_ row: Int, _ column: Int) -> UnsafeBufferPointer<UInt8>? {
        guard PQgetisnull(result, Int32(row), Int32(column)) == 0 else { return nil }
        let length = Int(PQgetlength(result, Int32(row), Int32(column)))
        return PQgetvalue(result, Int32(row), Int32(column)).withMemoryRebound(to: UInt8.self, capacity: length) {
            UnsafeBufferPointer(start: $0, count: length)
        }
    }
}

extension Connection {
    /// Runs one statement with parameters and lends its rows as raw bytes.
    public func withRawResult<T>(_ sql: String, _ parameters: [(any PostgresParameter)?] = [],
                                 _ body: (RawResult) throws -> T) throws -> T {
        let texts = parameters.map { $0?.postgresText }
        let result = withOptionalCStringArray(texts) { values in
            PQexecParams(handle, sql, Int32(texts.count), nil, values, nil, nil, 0)
        }
        guard let result else {
            throw PostgresError(kind: .connection, message: lastErrorMessage)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
            return try body(RawResult(result: result))
        default:
            throw failure(result)
        }
    }
}
