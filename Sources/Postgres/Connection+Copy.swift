import CLibPQ

extension Connection {
    /// Runs `COPY ... FROM STDIN` and sends `data` (in the COPY's format) as its input.
    /// Returns the number of rows copied.
    @discardableResult
    public func copyIn(_ sql: String, data: String) throws -> Int {
        guard let started = PQexec(handle, sql) else {
            throw PostgresError(kind: .connection, message: lastErrorMessage)
        }
        let status = PQresultStatus(started)
        if status != PGRES_COPY_IN {
            defer { PQclear(started) }
            throw failure(started)
        }
        PQclear(started)

        var bytes = Array(data.utf8)
        let sent = bytes.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                PQputCopyData(handle, $0, Int32(buffer.count))
            }
        }
        guard sent == 1, PQputCopyEnd(handle, nil) == 1 else {
            throw PostgresError(kind: .connection, message: lastErrorMessage)
        }
        var rows = 0
        var failure: PostgresError?
        while let result = PQgetResult(handle) {
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                rows = Int(String(cString: PQcmdTuples(result))) ?? 0
            } else if failure == nil {
                failure = self.failure(result)
            }
            PQclear(result)
        }
        if let failure { throw failure }
        return rows
    }
}
