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

extension Connection {
    /// Runs `COPY ... FROM STDIN` and sends what `produce` writes, in the
    /// COPY's format, in pieces of any size: memory stays one piece. If
    /// `produce` throws, the COPY is ended with that error (nothing copied).
    /// Returns the number of rows copied.
    @discardableResult
    public func copyIn(_ sql: String, produce: (_ send: (UnsafeBufferPointer<UInt8>) throws -> Void) throws -> Void) throws -> Int {
        guard let started = PQexec(handle, sql) else {
            throw PostgresError(kind: .connection, message: lastErrorMessage)
        }
        if PQresultStatus(started) != PGRES_COPY_IN {
            defer { PQclear(started) }
            throw failure(started)
        }
        PQclear(started)
        var produceFailure: Error?
        do {
            try produce { piece in
                guard let base = piece.baseAddress, piece.count > 0 else { return }
                let sent = base.withMemoryRebound(to: CChar.self, capacity: piece.count) {
                    PQputCopyData(handle, $0, Int32(piece.count))
                }
                guard sent == 1 else { throw PostgresError(kind: .connection, message: lastErrorMessage) }
            }
        } catch {
            produceFailure = error
        }
        let ended = produceFailure == nil ? PQputCopyEnd(handle, nil) : PQputCopyEnd(handle, "the client stopped the copy")
        guard ended == 1 else { throw PostgresError(kind: .connection, message: lastErrorMessage) }
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
        if let produceFailure { throw produceFailure }
        if let failure { throw failure }
        return rows
    }

    /// Runs `COPY ... TO STDOUT` and hands each row to `body` as it arrives,
    /// as COPY wrote it (with its newline); valid while the body runs.
    /// Returns the number of rows.
    @discardableResult
    public func copyOutLines(_ sql: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws -> Int {
        guard let started = PQexec(handle, sql) else {
            throw PostgresError(kind: .connection, message: lastErrorMessage)
        }
        if PQresultStatus(started) != PGRES_COPY_OUT {
            defer { PQclear(started) }
            throw failure(started)
        }
        PQclear(started)
        var rows = 0
        var bodyFailure: Error?
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(handle, &buffer, 0)
            if length < 0 { break }
            defer { PQfreemem(buffer) }
            guard let buffer, bodyFailure == nil else { continue }
            let line = buffer.withMemoryRebound(to: UInt8.self, capacity: Int(length)) {
                UnsafeBufferPointer(start: $0, count: Int(length))
            }
            do { try body(line) } catch {
                bodyFailure = error
                _ = makeCanceller()?.cancelRunningStatement()
            }
            rows += 1
        }
        var failure: PostgresError?
        while let result = PQgetResult(handle) {
            if PQresultStatus(result) != PGRES_COMMAND_OK, failure == nil { failure = self.failure(result) }
            PQclear(result)
        }
        if let bodyFailure { throw bodyFailure }
        if let failure { throw failure }
        return rows
    }
}

extension Connection {
    /// Runs `COPY ... TO STDOUT` (text format) and hands each row's fields to
    /// `body` as they arrive: the text of each value, unescaped, or nil for
    /// NULL; valid while the body runs. Memory stays one row, whatever the
    /// number of rows. Returns the number of rows.
    @discardableResult
    public func copyOut(_ sql: String, _ body: ([UnsafeBufferPointer<UInt8>?]) throws -> Void) throws -> Int {
        guard let started = PQexec(handle, sql) else {
            throw PostgresError(kind: .connection, message: lastErrorMessage)
        }
        if PQresultStatus(started) != PGRES_COPY_OUT {
            defer { PQclear(started) }
            throw failure(started)
        }
        PQclear(started)
        var rows = 0
        var fields = CopyTextRow()
        defer { fields.release() }
        var bodyFailure: Error?
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(handle, &buffer, 0)
            if length < 0 { break }   // -1: done; -2: failed (the result below says why)
            defer { PQfreemem(buffer) }
            guard let buffer, bodyFailure == nil else { continue }   // after a failure, drain the rest
            let line = buffer.withMemoryRebound(to: UInt8.self, capacity: Int(length)) {
                UnsafeBufferPointer(start: $0, count: Int(length))
            }
            fields.parse(line)
            do { try body(fields.fields) } catch {
                bodyFailure = error
                // Do not read the rest of a large table for nothing.
                _ = makeCanceller()?.cancelRunningStatement()
            }
            rows += 1
        }
        var failure: PostgresError?
        while let result = PQgetResult(handle) {
            if PQresultStatus(result) != PGRES_COMMAND_OK, failure == nil { failure = self.failure(result) }
            PQclear(result)
        }
        if let bodyFailure { throw bodyFailure }
        if let failure { throw failure }
        return rows
    }
}

/// One line of COPY's text format, split into its fields and unescaped
/// (`\N` is NULL; `\t`, `\n`, `\\` and the other escapes are their bytes).
/// A field without escapes is lent as it lies in libpq's buffer; only one
/// with escapes is copied.
struct CopyTextRow {
    private var unescaped: UnsafeMutablePointer<UInt8> = .allocate(capacity: 0)
    private var unescapedCapacity = 0
    private(set) var fields: [UnsafeBufferPointer<UInt8>?] = []

    mutating func parse(_ line: UnsafeBufferPointer<UInt8>) {
        fields.removeAll(keepingCapacity: true)
        guard let base = line.baseAddress else { return }
        var end = line.count
        if end > 0 && line[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        if unescapedCapacity < end {
            unescaped.deallocate()
            unescapedCapacity = max(end, 2 * unescapedCapacity)
            unescaped = .allocate(capacity: unescapedCapacity)
        }
        var used = 0
        var start = 0
        var index = 0
        while index <= end {
            if index < end && line[index] != UInt8(ascii: "\t") { index += 1; continue }
            fields.append(field(base + start, count: index - start, into: &used))
            index += 1
            start = index
        }
    }

    private func field(_ text: UnsafePointer<UInt8>, count: Int, into used: inout Int) -> UnsafeBufferPointer<UInt8>? {
        if count == 2 && text[0] == UInt8(ascii: "\\") && text[1] == UInt8(ascii: "N") { return nil }
        var escaped = false
        for i in 0..<count where text[i] == UInt8(ascii: "\\") { escaped = true; break }
        guard escaped else { return UnsafeBufferPointer(start: text, count: count) }
        let start = used
        var index = 0
        while index < count {
            let byte = text[index]
            guard byte == UInt8(ascii: "\\"), index + 1 < count else {
                unescaped[used] = byte; used += 1; index += 1
                continue
            }
            let escape = text[index + 1]
            index += 2
            var out: UInt8
            switch escape {
            case UInt8(ascii: "b"): out = 0x08
            case UInt8(ascii: "f"): out = 0x0C
            case UInt8(ascii: "n"): out = 0x0A
            case UInt8(ascii: "r"): out = 0x0D
            case UInt8(ascii: "t"): out = 0x09
            case UInt8(ascii: "v"): out = 0x0B
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = Int(escape - UInt8(ascii: "0"))
                for _ in 0..<2 where index < count && (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(text[index]) {
                    value = value * 8 + Int(text[index] - UInt8(ascii: "0"))
                    index += 1
                }
                out = UInt8(truncatingIfNeeded: value)
            case UInt8(ascii: "x"):
                var value = 0
                for _ in 0..<2 where index < count {
                    let c = text[index]
                    let digit: Int
                    switch c {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(c - UInt8(ascii: "0"))
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = Int(c - UInt8(ascii: "a")) + 10
                    case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = Int(c - UInt8(ascii: "A")) + 10
                    default: digit = -1
                    }
                    if digit < 0 { break }
                    value = value * 16 + digit
                    index += 1
                }
                out = UInt8(truncatingIfNeeded: value)
            default: out = escape   // \\ and any other character: itself
            }
            unescaped[used] = out
            used += 1
        }
        return UnsafeBufferPointer(start: unescaped + start, count: used - start)
    }

    func release() { unescaped.deallocate() }
}
