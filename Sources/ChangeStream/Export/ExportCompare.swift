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

    /// One row: its key and its values by column, as canonical JSON text.
    struct Record {
        var key: String
        var values: [String: String]
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
        let columnsBefore = try spread(before.0 + "/" + before.2.filename, format: before.1, key: key, into: scratch + "/a")
        let columnsAfter = try spread(after.0 + "/" + after.2.filename, format: after.1, key: key, into: scratch + "/b")
        let shared = Set(columnsBefore).intersection(columnsAfter)
        var table = Table(table: name, state: "compared", rowsBefore: before.2.count, rowsAfter: after.2.count,
                          added: 0, deleted: 0, modified: 0, addedKeys: [], deletedKeys: [], modifiedKeys: [],
                          columnsAdded: columnsAfter.filter { !columnsBefore.contains($0) },
                          columnsRemoved: columnsBefore.filter { !columnsAfter.contains($0) })
        for bucket in 0..<buckets {
            var old: [String: String] = [:]
            try readBucket(scratch + "/a.\(bucket)") { key, values in old[key] = project(values, shared) }
            try readBucket(scratch + "/b.\(bucket)") { key, values in
                guard let previous = old.removeValue(forKey: key) else {
                    table.added += 1
                    if table.addedKeys.count < sampleSize { table.addedKeys.append(key) }
                    return
                }
                if previous != project(values, shared) {
                    table.modified += 1
                    if table.modifiedKeys.count < sampleSize { table.modifiedKeys.append(key) }
                }
            }
            table.deleted += Int64(old.count)
            for key in old.keys.sorted() where table.deletedKeys.count < sampleSize { table.deletedKeys.append(key) }
        }
        table.addedKeys.sort()
        table.modifiedKeys.sort()
        return table
    }

    /// The values of `columns` only, as one canonical text.
    private static func project(_ values: [String: String], _ columns: Set<String>) -> String {
        values.filter { columns.contains($0.key) }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{1}")
    }

    /// Reads an export file row by row and writes each row, by its key's
    /// hash, to one of `buckets` files `<prefix>.<n>`. Returns the columns.
    private static func spread(_ path: String, format: ExportFormat, key: [String], into prefix: String) throws -> [String] {
        var outputs: [FileHandle] = []
        for bucket in 0..<buckets {
            _ = FileManager.default.createFile(atPath: "\(prefix).\(bucket)", contents: nil)
            outputs.append(try FileHandle(forWritingTo: URL(fileURLWithPath: "\(prefix).\(bucket)")))
        }
        var pending = [Data](repeating: Data(), count: buckets)
        defer { for output in outputs { try? output.close() } }
        var columns: [String]?
        func emit(_ record: Record) throws {
            let line = try JSONSerialization.data(withJSONObject: [record.key, record.values], options: [.sortedKeys])
            let bucket = Int(stableHash(record.key) % UInt64(buckets))
            pending[bucket].append(line)
            pending[bucket].append(0x0A)
            if pending[bucket].count >= 1 << 16 {
                try outputs[bucket].write(contentsOf: pending[bucket])
                pending[bucket].removeAll(keepingCapacity: true)
            }
        }
        switch format {
        case .jsonl, .json:
            try forEachLine(path) { line in
                var text = Substring(line)
                if text.hasPrefix("[") { text = text.dropFirst() }
                if text.hasSuffix(",") { text = text.dropLast() }
                if text.hasSuffix("]") { text = text.dropLast() }
                guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { return }
                guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                    throw PostgresError(kind: .server, sqlState: "22P02", message: "\(path): a row is not a JSON object")
                }
                var values: [String: String] = [:]
                for (column, value) in object where column != "_exact" {
                    values[column] = canonical(value)
                }
                // The exact text of a value its JSON type rounds (a timestamp's microseconds).
                if let exact = object["_exact"] as? [String: Any] {
                    for (column, value) in exact { values[column] = canonical(value) }
                }
                if columns == nil { columns = object.keys.filter { $0 != "_exact" }.sorted() }
                try emit(Record(key: try keyText(values, key, path), values: values))
            }
        case .csv:
            var header: [String]?
            try forEachCSVRecord(path) { fields in
                guard let names = header else {
                    header = fields.map { $0 ?? "" }
                    columns = header
                    return
                }
                var values: [String: String] = [:]
                for (index, column) in names.enumerated() where index < fields.count {
                    values[column] = fields[index].map { canonical($0) } ?? "null"
                }
                try emit(Record(key: try keyText(values, key, path), values: values))
            }
        }
        for bucket in 0..<buckets where !pending[bucket].isEmpty {
            try outputs[bucket].write(contentsOf: pending[bucket])
        }
        return columns ?? []
    }

    private static func keyText(_ values: [String: String], _ key: [String], _ path: String) throws -> String {
        var parts: [String] = []
        for column in key {
            guard let value = values[column] else {
                throw PostgresError(kind: .server, sqlState: "42703", message: "\(path): key column \"\(column)\" is missing from a row")
            }
            parts.append("\(JSON.string(column)): \(value)")
        }
        return "{" + parts.joined(separator: ", ") + "}"
    }

    private static func canonical(_ value: Any) -> String {
        if value is NSNull { return "null" }
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) {
            return String(decoding: data, as: UTF8.self)
        }
        return "\(value)"
    }

    private static func readBucket(_ path: String, _ body: (String, [String: String]) throws -> Void) throws {
        try forEachLine(path) { line in
            guard let pair = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Any],
                  pair.count == 2, let key = pair[0] as? String, let values = pair[1] as? [String: String] else { return }
            try body(key, values)
        }
    }

    /// FNV-1a of the key's UTF-8: the same in every run (Swift's Hasher is seeded per process).
    private static func stableHash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }

    /// Calls `body` with each line of a file (without its newline), reading in pieces.
    static func forEachLine(_ path: String, _ body: (String) throws -> Void) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw PostgresError(kind: .server, sqlState: "58P01", message: "could not open \"\(path)\"")
        }
        defer { try? handle.close() }
        var buffer = Data()
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            buffer.append(chunk)
            var start = buffer.startIndex
            while let newline = buffer[start...].firstIndex(of: 0x0A) {
                try body(String(decoding: buffer[start..<newline], as: UTF8.self))
                start = buffer.index(after: newline)
            }
            buffer = Data(buffer[start...])
        }
        if !buffer.isEmpty { try body(String(decoding: buffer, as: UTF8.self)) }
    }

    /// Calls `body` with each record of a PostgreSQL CSV file: its fields,
    /// nil for an unquoted empty field (NULL), quoted fields unescaped (they
    /// may hold newlines).
    static func forEachCSVRecord(_ path: String, _ body: ([String?]) throws -> Void) throws {
        var fields: [String?] = []
        var field: [UInt8] = []
        var quoted = false, inQuotes = false, pendingQuote = false, any = false
        func endField() {
            fields.append(field.isEmpty && !quoted ? nil : String(decoding: field, as: UTF8.self))
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
                    try body(fields)
                    fields.removeAll(keepingCapacity: true)
                    any = false
                default: field.append(byte)
                }
            }
        }
        if pendingQuote { inQuotes = false }
        if any || !fields.isEmpty || !field.isEmpty {
            endField()
            try body(fields)
        }
    }
}
