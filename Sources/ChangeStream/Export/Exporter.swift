import Foundation
import Postgres
import TemporalKit

/// What an export writes of each row.
public enum ExportFormat: String, Sendable, CaseIterable, Codable {
    /// One Extended JSON object per line, typed as the change events are.
    case jsonl
    /// One JSON array of the same objects.
    case json
    /// PostgreSQL's CSV (COPY ... WITH (FORMAT csv, HEADER)): exact text.
    case csv
}

/// `export-summary.json`: written last, after every file is fsynced; a
/// directory without it is an unfinished export.
public struct ExportSummary: Codable, Sendable, Equatable {
    public struct Table: Codable, Sendable, Equatable {
        public var table: String
        public var schema: String
        public var name: String
        public var filename: String
        public var count: Int64
        public var size: Int64
        public var sha256: String
        /// The key columns (primary key, or the versioning key), for compare.
        public var key: [String]
        /// "snapshot": read in the export's snapshot; "as-of": rebuilt as it
        /// was at `at`; "current": not versioned, read as of now (--allow-current).
        public var readAs: String
    }

    public var tool: String
    public var format: ExportFormat
    /// When the export ran (UTC, Z).
    public var exportedAt: String
    /// The instant the data is of (UTC, Z): --at, or the snapshot's time.
    public var at: String
    public var database: String
    public var host: String
    public var port: String
    /// The exported snapshot every table was read in, and the WAL position then.
    public var snapshot: String
    public var lsn: String
    public var tables: [Table]

    public static let filename = "export-summary.json"
}

/// Writes a consistent export of tables into DIR/YYYYMMDD-HHMMSS/: every
/// table read in one exported snapshot (shared by `jobs` connections), or as
/// of an instant through time travel; rows streamed by COPY, never held.
public final class Exporter: @unchecked Sendable {
    public struct Request: Sendable {
        public var directory: String
        /// The instant to export as of (any timestamptz input); nil: now.
        public var at: String?
        public var tables: [TableName]
        public var format: ExportFormat
        public var jobs: Int
        /// With `at`, export tables that are not versioned as they are now.
        public var allowCurrent: Bool

        public init(directory: String, at: String?, tables: [TableName], format: ExportFormat, jobs: Int, allowCurrent: Bool) {
            self.directory = directory
            self.at = at
            self.tables = tables
            self.format = format
            self.jobs = jobs
            self.allowCurrent = allowCurrent
        }
    }

    public struct Result: Sendable {
        public var path: String
        public var summary: ExportSummary
    }

    let conninfo: String
    let request: Request
    /// Told of each table's progress (rows so far) and of its end.
    public var progress: (@Sendable (_ table: String, _ rows: Int64, _ done: Bool) -> Void)?

    public init(conninfo: String, request: Request) {
        self.conninfo = conninfo
        self.request = request
    }

    static let sessionSettings = ValueDecoder.sessionSettings

    struct Plan: Sendable {
        var table: TableName
        var query: String
        var key: [String]
        var readAs: String
        var filename: String
    }

    public func run() throws -> Result {
        guard !request.tables.isEmpty else {
            throw PostgresError(kind: .server, sqlState: "22023", message: "nothing to export: no table was given or found",
                                hint: "Name tables, or use --schema NAME or --versioned.")
        }
        let coordinator = try Connection(conninfo: conninfo, applicationName: "temporal export")
        for setting in Self.sessionSettings { try coordinator.execute("SET \(setting)") }
        // The tables (and, for --at, their histories) are locked against
        // TRUNCATE, rewrites, DROP and partition drops, which are not MVCC-safe,
        // before the snapshot is taken (as pg_dump does).
        var locked = request.tables.map(\.qualified)
        if request.at != nil {
            locked += try coordinator.query("""
                SELECT pg_catalog.format('temporal_versioning.%I', v.history_table)
                FROM temporal_versioning.versioned_tables v
                WHERE v.enabled AND v.table_oid OPERATOR(pg_catalog.=) ANY (
                    SELECT pg_catalog.to_regclass(t)::pg_catalog.oid FROM pg_catalog.unnest($1::pg_catalog.text[]) t)
                """, [request.tables.map(\.qualified)]).rows.compactMap { $0[0] }
        }
        try coordinator.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try coordinator.execute("LOCK TABLE \(locked.joined(separator: ", ")) IN ACCESS SHARE MODE")
        let head = try coordinator.query("""
            SELECT pg_catalog.pg_export_snapshot(),
                   CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn() ELSE pg_catalog.pg_current_wal_lsn() END::pg_catalog.text,
                   pg_catalog.to_char(pg_catalog.timezone('UTC', w.now), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   pg_catalog.to_char(pg_catalog.timezone('UTC', w.at), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   pg_catalog.to_char(pg_catalog.timezone('UTC', w.at), 'YYYYMMDD-HH24MISS'),
                   w.at::pg_catalog.text
            FROM (SELECT c.now, coalesce($1::pg_catalog.timestamptz, c.now) AS at
                  FROM (SELECT pg_catalog.clock_timestamp() AS now) c) w
            """, [request.at]).rows[0]
        if let at = request.at, try coordinator.query("SELECT $1::pg_catalog.timestamptz > pg_catalog.clock_timestamp()", [at]).scalar == "t" {
            throw PostgresError(kind: .server, sqlState: "22023", message: "instant \(at) is in the future",
                                hint: "Export as of an instant that has passed, or leave --at out to export now.")
        }
        let snapshot = head[0] ?? "", lsn = head[1] ?? "", exportedAt = head[2] ?? "", at = head[3] ?? "", name = head[4] ?? ""
        let instant = head[5] ?? ""
        // Every table is checked (and its query made) before anything is written.
        var plans: [Plan] = []
        var filenames: Set<String> = []
        for table in request.tables {
            var plan = try self.plan(table, instant: request.at == nil ? nil : instant, on: coordinator)
            var filename = plan.filename
            if filenames.contains(filename) { filename = "\(table.schema).\(table.name).\(request.format.rawValue)" }
            filenames.insert(filename)
            plan.filename = filename
            plans.append(plan)
        }
        let path = Lifecycle.absolutePath(request.directory) + "/" + name
        try Self.makeExportDirectory(path, at: request.at != nil)

        let queue = WorkQueue(plans.sorted { $0.table.qualified < $1.table.qualified })
        let results = Locked<[String: ExportSummary.Table]>([:])
        let failure = Locked<Error?>(nil)
        let group = DispatchGroup()
        for _ in 0..<max(1, min(request.jobs, plans.count)) {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                do {
                    let worker = try Connection(conninfo: conninfo, applicationName: "temporal export")
                    for setting in Self.sessionSettings { try worker.execute("SET \(setting)") }
                    try worker.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    try worker.query("SET TRANSACTION SNAPSHOT \(try worker.quoteLiteral(snapshot))")
                    let types = try TypeCatalog(connection: worker)
                    let decoder = ValueDecoder(types: types)
                    while failure.value == nil, let plan = queue.next() {
                        let table = try write(plan, into: path, on: worker, decoder: decoder)
                        results.update { $0[plan.table.qualified] = table }
                    }
                    try worker.execute("COMMIT")
                } catch {
                    failure.update { if $0 == nil { $0 = error } }
                }
            }
            thread.stackSize = 1 << 22
            thread.start()
        }
        group.wait()
        try coordinator.execute("COMMIT")
        if let error = failure.value {
            throw Self.unfinished(path, error)
        }
        let info = try coordinator.query("""
            SELECT pg_catalog.current_database(), coalesce(pg_catalog.inet_server_addr()::pg_catalog.text, 'local socket'),
                   coalesce(pg_catalog.inet_server_port()::pg_catalog.text, pg_catalog.current_setting('port'))
            """).rows[0]
        let summary = ExportSummary(
            tool: "temporal \(Installer.bundledVersion)", format: request.format, exportedAt: exportedAt, at: at,
            database: info[0] ?? "", host: info[1] ?? "", port: info[2] ?? "", snapshot: snapshot, lsn: lsn,
            tables: plans.compactMap { results.value[$0.table.qualified] })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            try ArchiveFile.writeDurably(path + "/" + ExportSummary.filename, String(decoding: try encoder.encode(summary), as: UTF8.self) + "\n")
        } catch {
            throw Self.unfinished(path, error)
        }
        return Result(path: path, summary: summary)
    }

    static func unfinished(_ path: String, _ error: Error) -> Error {
        guard var failure = error as? PostgresError else { return error }
        let note = "The export in \(path) is unfinished: it has no \(ExportSummary.filename). Remove the directory and export again."
        failure.detail = failure.detail.map { $0 + "\n" + note } ?? note
        return failure
    }

    /// The query that reads `table`: as it is in the snapshot, or as of `instant`.
    private func plan(_ table: TableName, instant: String?, on connection: Connection) throws -> Plan {
        let relation = try connection.query("""
            SELECT c.relkind::pg_catalog.text,
                   (SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY k.n)
                    FROM pg_catalog.pg_index i, pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, n), pg_catalog.pg_attribute a
                    WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary
                      AND a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.=) k.attnum)::pg_catalog.text,
                   (SELECT v.key_columns::pg_catalog.text FROM temporal_versioning.versioned_tables v
                    WHERE v.table_oid OPERATOR(pg_catalog.=) c.oid AND v.enabled)
            FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)
            """, [table.qualified]).rows.first
        guard let relation else {
            throw PostgresError(kind: .server, sqlState: "42P01", message: "relation \"\(table.qualified)\" does not exist")
        }
        let versionedKey = relation[2].flatMap { ArrayLiteral.parse($0) }.map(Self.texts)
        let key = versionedKey ?? relation[1].flatMap { ArrayLiteral.parse($0) }.map(Self.texts) ?? []
        let filename = "\(table.name).\(request.format.rawValue)"
        // A partitioned table with its partitions; any other without inheritance children.
        let source = (relation[0] == "p" ? "" : "ONLY ") + table.qualified
        guard let instant else {
            return Plan(table: table, query: "SELECT * FROM \(source)", key: key, readAs: "snapshot", filename: filename)
        }
        guard versionedKey != nil else {
            guard request.allowCurrent else {
                throw PostgresError(
                    kind: .server, sqlState: "55000", message: "\(table.qualified) is not versioned: it cannot be exported as of an instant",
                    hint: "Version it (temporal enable), leave it out, or add --allow-current to export it as it is now (the summary says so).")
            }
            return Plan(table: table, query: "SELECT * FROM \(source)", key: key, readAs: "current", filename: filename)
        }
        // prepare_as_of checks the instant (future, before versioning, below
        // the floor) and returns the query with the instant as $1.
        let prepared = try connection.query(
            "SELECT temporal_versioning.prepare_as_of($1, $2, $3::pg_catalog.timestamptz, false)",
            [table.schema, table.name, instant]).scalar ?? ""
        let literal = try connection.quoteLiteral(instant) + "::pg_catalog.timestamptz"
        let query = prepared.replacingOccurrences(of: #"(?<![A-Za-z0-9_$"])\$1(?![0-9])"#, with: literal, options: .regularExpression)
        return Plan(table: table, query: query, key: key, readAs: "as-of", filename: filename)
    }

    private static func texts(_ node: ArrayLiteral.Node) -> [String] {
        guard case let .array(elements) = node else { return [] }
        return elements.compactMap { if case let .text(text) = $0 { return text } else { return nil } }
    }

    static func makeExportDirectory(_ path: String, at: Bool) throws {
        let parent = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw PostgresError(kind: .server, sqlState: "58030", message: "could not create directory \"\(parent)\": \(error.localizedDescription)")
        }
        if mkdir(path, 0o750) != 0 {
            let reason = String(cString: strerror(errno))
            if errno == EEXIST {
                throw PostgresError(
                    kind: .server, sqlState: "58030", message: "export directory \"\(path)\" exists already",
                    detail: "An export never overwrites another; directories are named by the instant exported, to the second.",
                    hint: at ? "Move the earlier export of that instant away, or export into another --dir."
                             : "Wait a second, or export into another --dir.")
            }
            throw PostgresError(kind: .server, sqlState: "58030", message: "could not create export directory \"\(path)\": \(reason)")
        }
    }

    /// Streams one table into its file; returns its summary entry.
    private func write(_ plan: Plan, into directory: String, on connection: Connection, decoder: ValueDecoder) throws -> ExportSummary.Table {
        let path = directory + "/" + plan.filename
        let file = try ExportFile(path)
        var rows: Int64 = 0
        let report = progress
        let name = plan.table.qualified
        do {
            switch request.format {
            case .csv:
                var first = true
                try connection.copyOutLines("COPY (\(plan.query)) TO STDOUT WITH (FORMAT csv, HEADER true)") { line in
                    try file.write(line)
                    if first { first = false } else { rows += 1 }
                    if rows % 100_000 == 0 { report?(name, rows, false) }
                }
            case .jsonl, .json:
                let columns = try connection.withRawResult("SELECT * FROM (\(plan.query)) q LIMIT 0") { raw in
                    (0..<raw.columnCount).map { (raw.columnName($0), raw.columnType($0)) }
                }
                let encoder = ExportRowEncoder(columns: columns.map(\.0), plans: try columns.map { try decoder.plan(for: $0.1) },
                                               decoder: decoder, array: request.format == .json)
                try file.write(encoder.opening)
                try connection.copyOut("COPY (\(plan.query)) TO STDOUT") { fields in
                    encoder.encode(fields, first: rows == 0)
                    rows += 1
                    if encoder.output.count >= 1 << 20 {
                        try file.write(encoder.output.bytes)
                        encoder.output.removeAll()
                    }
                    if rows % 100_000 == 0 { report?(name, rows, false) }
                }
                try file.write(encoder.output.bytes)
                try file.write(encoder.closing(empty: rows == 0))
            }
            let (size, sha) = try file.finish()
            report?(name, rows, true)
            return ExportSummary.Table(table: name, schema: plan.table.schema, name: plan.table.name, filename: plan.filename,
                                       count: rows, size: size, sha256: sha, key: plan.key, readAs: plan.readAs)
        } catch {
            file.abandon()
            throw error
        }
    }
}

/// A file written once, with its sha256 computed on the way, fsynced at the end.
final class ExportFile {
    let path: String
    private let fd: Int32
    private var hash = SHA256()
    private var size: Int64 = 0

    init(_ path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw PostgresError(kind: .server, sqlState: "58030", message: "could not create \"\(path)\": \(String(cString: strerror(errno)))")
        }
    }

    func write(_ bytes: UnsafeBufferPointer<UInt8>) throws {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        hash.update(bytes)
        var offset = 0
        while offset < bytes.count {
            let written = Foundation.write(fd, base + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw PostgresError(kind: .server, sqlState: errno == ENOSPC ? "53100" : "58030",
                                    message: "could not write \"\(path)\": \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        size += Int64(bytes.count)
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBufferPointer { try write($0) }
    }

    func finish() throws -> (Int64, String) {
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw PostgresError(kind: .server, sqlState: "58030", message: "could not fsync \"\(path)\": \(String(cString: strerror(errno)))")
        }
        return (size, hash.finish())
    }

    func abandon() { close(fd) }
}

/// One row as a JSON object of its columns, each value typed as the change
/// events type it (Extended JSON); a value the type loses precision on (a
/// timestamp's microseconds) is also given exactly in `_exact`.
final class ExportRowEncoder {
    let output = JSONBuffer(capacity: 1 << 21)
    private let keys: [[UInt8]]
    private let plans: [ValueDecoder.Plan]
    private let decoder: ValueDecoder
    private let array: Bool

    init(columns: [String], plans: [ValueDecoder.Plan], decoder: ValueDecoder, array: Bool) {
        keys = columns.map(JSONBytes.key)
        self.plans = plans
        self.decoder = decoder
        self.array = array
    }

    var opening: [UInt8] { array ? Array("[".utf8) : [] }

    func closing(empty: Bool) -> [UInt8] { array ? Array((empty ? "]\n" : "\n]\n").utf8) : [] }

    func encode(_ fields: [UnsafeBufferPointer<UInt8>?], first: Bool) {
        if array { output.append(static: first ? "\n" : ",\n") }
        var lossy: [Int] = []
        output.append(UInt8(ascii: "{"))
        for (column, key) in keys.enumerated() {
            if column > 0 { output.append(static: ", ") }
            output.append(bytes: key)
            if column < fields.count, let text = fields[column] {
                var out = output
                if ExtendedJSONEncoder.appendJSON(text, plan: plans[column], decoder: decoder, to: &out) { lossy.append(column) }
            } else {
                output.append(static: "null")
            }
        }
        if !lossy.isEmpty {
            output.append(static: #", "_exact": {"#)
            for (index, column) in lossy.enumerated() {
                if index > 0 { output.append(static: ", ") }
                output.append(bytes: keys[column])
                var out = output
                ExtendedJSON.appendString(String(decoding: fields[column]!, as: UTF8.self), to: &out)
            }
            output.append(UInt8(ascii: "}"))
        }
        output.append(UInt8(ascii: "}"))
        if !array { output.append(UInt8(ascii: "\n")) }
    }
}

/// Tables handed out to the export's workers, one at a time.
final class WorkQueue: @unchecked Sendable {
    private var items: [Exporter.Plan]
    private let lock = NSLock()

    init(_ items: [Exporter.Plan]) { self.items = items.reversed() }

    func next() -> Exporter.Plan? {
        lock.lock()
        defer { lock.unlock() }
        return items.popLast()
    }
}

final class Locked<Value>: @unchecked Sendable {
    private var stored: Value
    private let lock = NSLock()

    init(_ value: Value) { stored = value }

    var value: Value {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }

    func update(_ body: (inout Value) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        body(&stored)
    }
}
