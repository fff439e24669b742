import Foundation
import Postgres
import TemporalKit

/// Compares two exports table by table: the rows added, deleted and modified
/// between them (by key), and the columns that appeared or disappeared. Rows
/// are never all held: each export's rows are first spread by their key's
/// hash over bucket files, then compared one bucket at a time.
public struct ExportComparison: Sendable, Codable, Equatable {
    public struct Table: Sendable, Codable, Equatable {
        public var table: String
        /// "compared", "added" (only in the second export) or "removed" (only in the first).
        public var state: String
        public var rowsBefore: Int64
        public var rowsAfter: Int64
        public var added: Int64
        public var deleted: Int64
        public var modified: Int64
        /// The first keys of each kind (as JSON text), up to `sampleSize`.
        public var addedKeys: [String]
        public var deletedKeys: [String]
        public var modifiedKeys: [String]
        public var columnsAdded: [String]
        public var columnsRemoved: [String]
    }

    public var before: String
    public var after: String
    public var tables: [Table]

    public static let sampleSize = 5
    static let buckets = 64

    /// Compares the exports in directories `before` and `after`.
    public static func compare(_ before: String, _ after: String) throws -> ExportComparison {
        let first = try summary(before), second = try summary(after)
        guard first.format == second.format else {
            throw PostgresError(kind: .server, sqlState: "22023",
                                message: "the exports are in different formats (\(first.format.rawValue) and \(second.format.rawValue))",
                                hint: "Compare exports made with the same --format.")
        }
        var tables: [Table] = []
        let names = Set(first.tables.map(\.table)).union(second.tables.map(\.table)).sorted()
        for name in names {
            let a = first.tables.first { $0.table == name }, b = second.tables.first { $0.table == name }
            guard let a, let b else {
                tables.append(Table(table: name, state: a == nil ? "added" : "removed", rowsBefore: a?.count ?? 0,
                                    rowsAfter: b?.count ?? 0, added: b?.count ?? 0, deleted: a?.count ?? 0, modified: 0,
                                    addedKeys: [], deletedKeys: [], modifiedKeys: [], columnsAdded: [], columnsRemoved: []))
                continue
            }
            tables.append(try compareTable(name, before: (before, first.format, a), after: (after, second.format, b)))
        }
        return ExportComparison(before: before, after: after, tables: tables)
    }

    static func summary(_ directory: String) throws -> ExportSummary {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw PostgresError(kind: .server, sqlState: "58P01", message: "export directory \"\(directory)\" does not exist")
        }
        let path = directory + "/" + ExportSummary.filename
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PostgresError(kind: .server, sqlState: "58P01",
                                message: "\(directory) is not a finished export: it has no \(ExportSummary.filename)",
                                hint: "An export without its summary did not finish; export again.")
        }
        do {
            return try JSONDecoder().decode(ExportSummary.self, from: data)
        } catch {
            throw PostgresError(kind: .server, sqlState: "22P02", message: "\(path) is not an export summary")
        }
    }

    private static func compareTable(_ name: String, before: (String, ExportFormat, ExportSummary.Table),
                                     after: (String, ExportFormat, ExportSummary.Table)) throws -> Table {
        let key = after.2.key.isEmpty ? before.2.key : after.2.key
        guard !key.isEmpty else {
            throw PostgresError(kind: .server, sqlState: "42P10", message: "\(name) has no key in the exports: rows cannot be matched",
                                hint: "Compare tables with a primary key (or versioned with --key).")
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("temporal-compare-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let beforePath = before.0 + "/" + before.2.filename, afterPath = after.0 + "/" + after.2.filename
        let columnsBefore = try columns(of: beforePath, format: before.1)
        let columnsAfter = try columns(of: afterPath, format: after.1)
        let shared = Set(columnsBefore).intersection(columnsAfter)
        try spread(beforePath, format: before.1, key: key, shared: shared, into: scratch + "/a")
        try spread(afterPath, format: after.1, key: key, shared: shared, into: scratch + "/b")
        var table = Table(table: name, state: "compared", rowsBefore: before.2.count, rowsAfter: after.2.count,
                          added: 0, deleted: 0, modified: 0, addedKeys: [], deletedKeys: [], modifiedKeys: [],
                          columnsAdded: columnsAfter.filter { !columnsBefore.contains($0) },
                          columnsRemoved: columnsBefore.filter { !columnsAfter.contains($0) })
        func keyText(_ bytes: [UInt8]) -> String {
            // The key's values as the export wrote them, one per key column.
            let values = String(decoding: bytes, as: UTF8.self).split(separator: "\u{0}", omittingEmptySubsequences: false)
            return "{" + zip(key, values).map { "\(JSON.string($0)): \($1)" }.joined(separator: ", ") + "}"
        }
        for bucket in 0..<buckets {
            var old: [[UInt8]: RowHash] = [:]
            try readBucket(scratch + "/a.\(bucket)") { key, hash in old[key] = hash }
            try readBucket(scratch + "/b.\(bucket)") { key, hash in
                guard let previous = old.removeValue(forKey: key) else {
                    table.added += 1
                    if table.addedKeys.count < sampleSize * 4 { table.addedKeys.append(keyText(key)) }
                    return
                }
                if previous != hash {
                    table.modified += 1
                    if table.modifiedKeys.count < sampleSize * 4 { table.modifiedKeys.append(keyText(key)) }
                }
            }
            table.deleted += Int64(old.count)
            for key in old.keys.prefix(sampleSize * 4) { table.deletedKeys.append(keyText(key)) }
        }
        table.addedKeys = Array(table.addedKeys.sorted().prefix(sampleSize))
        table.deletedKeys = Array(table.deletedKeys.sorted().prefix(sampleSize))
        table.modifiedKeys = Array(table.modifiedKeys.sorted().prefix(sampleSize))
        return table
    }

    /// Two 64-bit hashes of a row's values on the shared columns.
    struct RowHash: Equatable {
        var first: UInt64
        var second: UInt64
    }

    /// The columns of an export file, from its first row (or header).
    private static func columns(of path: String, format: ExportFormat) throws -> [String] {
        var names: [String] = []
        switch format {
        case .jsonl, .json:
            try forEachRow(path) { row in
                if names.isEmpty {
                    JSONRowScanner.fields(row) { name, _ in
                        let text = String(decoding: name, as: UTF8.self)
                        if text != "_exact" { names.append(text) }
                    }
                }
                return false
            }
        case .csv:
            try forEachCSVRecord(path) { fields in names = fields.map { $0.map { String(decoding: $0, as: UTF8.self) } ?? "" }; return false }
        }
        return names
    }

    /// Reads an export file row by row and writes each row's key and hash,
    /// by the key's hash, to one of `buckets` files `<prefix>.<n>`.
    private static func spread(_ path: String, format: ExportFormat, key: [String], shared: Set<String>, into prefix: String) throws {
        var outputs: [FileHandle] = []
        for bucket in 0..<buckets {
            _ = FileManager.default.createFile(atPath: "\(prefix).\(bucket)", contents: nil)
            outputs.append(try FileHandle(forWritingTo: URL(fileURLWithPath: "\(prefix).\(bucket)")))
        }
        defer { for output in outputs { try? output.close() } }
        var pending = [[UInt8]](repeating: [], count: buckets)
        let keyNames = key.map { Array($0.utf8) }
        let sharedNames = Set(shared.map { Array($0.utf8) })
        let exactName = Array("_exact".utf8)
        var keyBytes: [[UInt8]?] = []
        var exactKeys = [[UInt8]?](repeating: nil, count: keyNames.count)
        func emit(_ hash: RowHash) throws {
            var keyText: [UInt8] = []
            for (index, part) in keyBytes.enumerated() {
                guard let part else {
                    throw PostgresError(kind: .server, sqlState: "42703", message: "\(path): key column \"\(key[index])\" is missing from a row")
                }
                if index > 0 { keyText.append(0) }
                keyText += part
            }
            let bucket = Int(stableHash(keyText, seed: 0xcbf2_9ce4_8422_2325) % UInt64(buckets))
            var length = UInt32(keyText.count).littleEndian
            withUnsafeBytes(of: &length) { pending[bucket] += $0 }
            pending[bucket] += keyText
            var first = hash.first.littleEndian, second = hash.second.littleEndian
            withUnsafeBytes(of: &first) { pending[bucket] += $0 }
            withUnsafeBytes(of: &second) { pending[bucket] += $0 }
            if pending[bucket].count >= 1 << 16 {
                try outputs[bucket].write(contentsOf: pending[bucket])
                pending[bucket].removeAll(keepingCapacity: true)
            }
        }
        switch format {
        case .jsonl, .json:
            try forEachRow(path) { row in
                keyBytes = [[UInt8]?](repeating: nil, count: keyNames.count)
                var parts: [([UInt8], [UInt8])] = []
                JSONRowScanner.fields(row) { name, value in
                    let nameBytes = Array(name)
                    if nameBytes == exactName {
                        // The exact text of rounded values: it counts for the shared
                        // columns, and a key is matched on it.
                        JSONRowScanner.fields(value) { column, text in
                            let columnBytes = Array(column)
                            if sharedNames.contains(columnBytes) { parts.append(([0] + columnBytes, Array(text))) }
                            if let index = keyNames.firstIndex(of: columnBytes) { exactKeys[index] = Array(text) }
                        }
                        return
                    }
                    if let index = keyNames.firstIndex(of: nameBytes) { keyBytes[index] = Array(value) }
                    if sharedNames.contains(nameBytes) { parts.append((nameBytes, Array(value))) }
                }
                for (index, exact) in exactKeys.enumerated() where exact != nil {
                    keyBytes[index] = exact
                    exactKeys[index] = nil
                }
                try emit(rowHash(parts))
                return true
            }
        case .csv:
            var header: [[UInt8]]?
            try forEachCSVRecord(path) { fields in
                guard let names = header else {
                    header = fields.map { $0 ?? [] }
                    return true
                }
                keyBytes = [[UInt8]?](repeating: nil, count: keyNames.count)
                var parts: [([UInt8], [UInt8])] = []
                for (index, name) in names.enumerated() where index < fields.count {
                    // NULL and the empty string differ: a NULL is marked apart.
                    let value = fields[index].map { [UInt8(ascii: "v")] + $0 } ?? [UInt8(ascii: "n")]
                    if let position = keyNames.firstIndex(of: name) {
                        keyBytes[position] = fields[index].map { Array(JSON.string(String(decoding: $0, as: UTF8.self)).utf8) } ?? Array("null".utf8)
                    }
                    if sharedNames.contains(name) { parts.append((name, value)) }
                }
                try emit(rowHash(parts))
                return true
            }
        }
        for bucket in 0..<buckets where !pending[bucket].isEmpty {
            try outputs[bucket].write(contentsOf: pending[bucket])
        }
    }

    /// Hashes (name, value) pairs in name order, twice with different seeds.
    private static func rowHash(_ parts: [([UInt8], [UInt8])]) -> RowHash {
        var first: UInt64 = 0xcbf2_9ce4_8422_2325, second: UInt64 = 0x84222325_cbf29ce4
        for (name, value) in parts.sorted(by: { $0.0.lexicographicallyPrecedes($1.0) }) {
            for piece in [name, [0], value, [1]] {
                for byte in piece {
                    first = (first ^ UInt64(byte)) &* 0x100_0000_01b3
                    second = (second ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 &+ 0x9e37_79b9
                }
            }
        }
        return RowHash(first: first, second: second)
    }

    private static func readBucket(_ path: String, _ body: ([UInt8], RowHash) throws -> Void) throws {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset + 4 <= raw.count {
                let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                offset += 4
                let key = Array(raw[offset..<offset + length])
                offset += length
                let first = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                let second = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
                offset += 16
                try body(key, RowHash(first: first, second: second))
            }
        }
    }

    /// FNV-1a: the same in every run (Swift's Hasher is seeded per process).
    private static func stableHash(_ bytes: [UInt8], seed: UInt64) -> UInt64 {
        var hash = seed
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    /// Calls `body` with each row (line) of a JSON-lines or JSON export, the
    /// array's brackets and commas taken off; `body` returns false to stop.
    static func forEachRow(_ path: String, _ body: (ArraySlice<UInt8>) throws -> Bool) throws {
        try forEachLine(path) { line in
            var row = line
            while let first = row.first, first == UInt8(ascii: "[") || first == UInt8(ascii: " ") { row = row.dropFirst() }
            while let last = row.last, last == UInt8(ascii: ",") || last == UInt8(ascii: "]") || last == UInt8(ascii: " ") || last == 13 {
                row = row.dropLast()
            }
            guard !row.isEmpty else { return true }
            return try body(row)
        }
    }

    /// Calls `body` with each line of a file (without its newline), read in
    /// pieces; `body` returns false to stop.
    static func forEachLine(_ path: String, _ body: (ArraySlice<UInt8>) throws -> Bool) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw PostgresError(kind: .server, sqlState: "58P01", message: "could not open \"\(path)\"")
        }
        defer { try? handle.close() }
        var carry: [UInt8] = []
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            var bytes = carry
            bytes.append(contentsOf: chunk)
            var start = 0
            while let newline = bytes[start...].firstIndex(of: 0x0A) {
                guard try body(bytes[start..<newline]) else { return }
                start = newline + 1
            }
            carry = Array(bytes[start...])
        }
        if !carry.isEmpty { _ = try body(carry[...]) }
    }

    /// Calls `body` with each record of a PostgreSQL CSV file: its fields,
    /// nil for an unquoted empty field (NULL), quoted fields unescaped (they
    /// may hold newlines); `body` returns false to stop.
    static func forEachCSVRecord(_ path: String, _ body: ([[UInt8]?]) throws -> Bool) throws {
        var fields: [[UInt8]?] = []
        var field: [UInt8] = []
        var quoted = false, inQuotes = false, pendingQuote = false, any = false
        func endField() {
            fields.append(field.isEmpty && !quoted ? nil : field)
            field.removeAll(keepingCapacity: true)
            quoted = false
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw PostgresError(kind: .server, sqlState: "58P01", message: "could not open \"\(path)\"")
        }
        defer { try? handle.close() }
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            for byte in chunk {
                if pendingQuote {
                    pendingQuote = false
                    if byte == UInt8(ascii: "\"") { field.append(byte); continue }
                    inQuotes = false
                }
                if inQuotes {
                    if byte == UInt8(ascii: "\"") { pendingQuote = true } else { field.append(byte) }
                    continue
                }
                any = true
                switch byte {
                case UInt8(ascii: "\""): inQuotes = true; quoted = true
                case UInt8(ascii: ","): endField()
                case UInt8(ascii: "\n"):
                    endField()
                    guard try body(fields) else { return }
                    fields.removeAll(keepingCapacity: true)
                    any = false
                default: field.append(byte)
                }
            }
        }
        if pendingQuote { inQuotes = false }
        if any || !fields.isEmpty || !field.isEmpty {
            endField()
            _ = try body(fields)
        }
    }
}

/// Splits one JSON object, as the export writes it on one line, into its
/// top-level members without building any value: each member's name (its
/// string's bytes, unescaped only as far as the export escapes names) and
/// its value's exact bytes.
enum JSONRowScanner {
    static func fields(_ row: ArraySlice<UInt8>, _ body: (ArraySlice<UInt8>, ArraySlice<UInt8>) -> Void) {
        var index = row.startIndex
        let end = row.endIndex
        func skipSpace() { while index < end, row[index] == 32 || row[index] == 9 || row[index] == 13 || row[index] == 10 { index += 1 } }
        /// Skips a string starting at its opening quote; returns the range of its content.
        func skipString() -> Range<Int> {
            let start = index + 1
            index += 1
            while index < end {
                if row[index] == UInt8(ascii: "\\") { index += 2; continue }
                if row[index] == UInt8(ascii: "\"") { index += 1; return start..<(index - 1) }
                index += 1
            }
            return start..<end
        }
        func skipValue() {
            guard index < end else { return }
            switch row[index] {
            case UInt8(ascii: "\""): _ = skipString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while index < end {
                    let byte = row[index]
                    if byte == UInt8(ascii: "\"") { _ = skipString(); continue }
                    if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") { depth += 1 }
                    if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                        depth -= 1
                        if depth == 0 { index += 1; return }
                    }
                    index += 1
                }
            default:
                while index < end, row[index] != UInt8(ascii: ","), row[index] != UInt8(ascii: "}") { index += 1 }
            }
        }
        skipSpace()
        guard index < end, row[index] == UInt8(ascii: "{") else { return }
        index += 1
        while index < end {
            skipSpace()
            guard index < end, row[index] == UInt8(ascii: "\"") else { return }
            let name = skipString()
            skipSpace()
            guard index < end, row[index] == UInt8(ascii: ":") else { return }
            index += 1
            skipSpace()
            let valueStart = index
            skipValue()
            var valueEnd = index
            while valueEnd > valueStart, row[valueEnd - 1] == 32 { valueEnd -= 1 }
            body(row[name], row[valueStart..<valueEnd])
            skipSpace()
            guard index < end, row[index] == UInt8(ascii: ",") else { return }
            index += 1
        }
    }
}
