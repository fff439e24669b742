import Foundation
import Logging
import Metrics
import Postgres

/// Writes what `stream setup --snapshot` copied at the slot's consistent point
/// (see StreamAdmin+Snapshot) into the sink before the stream starts from
/// that point: first the changes the histories kept (in temporal_id order),
/// then the rows of every table, as events with fixed `_id`s that sort before
/// every streamed event:
///
///   <slot>/<consistent point - 1>/h/<backfill>/<row>   a change a history kept
///   <slot>/<consistent point - 1>/s/<backfill>/<row>   a row of the snapshot
///
/// so that a consumer replaying the collection in `_id` order sees each key's
/// history, then its state at the consistent point, then the stream. Copies
/// are read in chunks in row order (memory stays bounded by a chunk); after a
/// chunk is durably written its position is checkpointed, so that a run
/// killed at any moment writes at most that chunk again (the sink skips what
/// it holds) and never starts over.
public final class Backfiller {
    public struct Progress: Sendable {
        public var table: String
        public var kind: String
        public var rowsDone: Int
        public var rowsTotal: Int
        public var rowsPerSecond: Double
    }

    private let conninfo: String
    private let slot: String
    var slotName: String { slot }
    private let sink: EventSink
    private let stop: StopRequest
    private let logger: Logger
    private let chunkSize: Int
    private let batchSize: Int
    private let onProgress: ((Progress) -> Void)?

    /// Whether any chunk was written (a later failure is then worth waiting out).
    public private(set) var started = false

    /// Whether the sink takes lines of Extended JSON: snapshot rows are then
    /// written straight from the bytes of a COPY, as the stream writes changes.
    private var writesLines: Bool {
        sink.makeEncoder(EncoderContext(slot: slot, decoder: ValueDecoder(types: TypeCatalog()))) is ExtendedJSONEncoder
    }

    public init(conninfo: String, slot: String, sink: EventSink, stop: StopRequest,
                logger: Logger = Logger(label: "temporal.stream"), chunkSize: Int = 20000, batchSize: Int = 1000,
                onProgress: ((Progress) -> Void)? = nil) {
        self.conninfo = conninfo
        self.slot = slot
        self.sink = sink
        self.stop = stop
        self.logger = logger
        self.chunkSize = chunkSize
        self.batchSize = max(1, batchSize)
        self.onProgress = onProgress
    }

    struct Pending {
        var id: Int
        var kind: String
        var schema: String
        var table: String
        var copy: String
        var keyColumns: [String]
        var columnNames: [String]
        var consistentLSN: String
        var snapshotMilliseconds: Int64
        var rowsDone: Int
        var rowsTotal: Int
    }

    /// Writes every backfill of the slot not yet done; returns the events
    /// written (without those the sink already held), or nil when stopped.
    ///
    /// Before streaming, `upToSlotPosition` writes only the backfills made
    /// at or before the slot's confirmed position (those of setup --snapshot);
    /// one added to a running stream (stream backfill) is written by the
    /// streamer when the stream reaches its consistent point (`only`).
    @discardableResult
    public func run(upToSlotPosition: Bool = true, only: Int? = nil) throws -> Int? {
        let connection = try Connection(conninfo: conninfo, applicationName: "temporal stream backfill")
        try connection.pinSearchPath()
        guard try connection.query("SELECT pg_catalog.to_regclass('temporal_versioning.stream_backfills') IS NOT NULL").scalar == "t" else {
            return 0
        }
        let pending = try connection.query("""
            SELECT b.id, b.kind, b.schema_name, b.table_name, b.copy_table, b.key_columns::text[], b.column_names::text[],
                   b.consistent_lsn::text, (extract(epoch FROM b.snapshot_at) * 1000)::int8, b.rows_done, b.rows_total
            FROM temporal_versioning.stream_backfills b
            WHERE b.slot_name = $1 AND b.state <> 'done'
              AND ($2::int4 IS NULL OR b.id = $2)
              AND (NOT $3 OR b.consistent_lsn <= (SELECT s.confirmed_flush_lsn FROM pg_catalog.pg_replication_slots s
                                                   WHERE s.slot_name = $1))
            ORDER BY b.kind, b.id
            """, [slot, only, upToSlotPosition]).rows.map { row in
            Pending(id: Int(row[0]!)!, kind: row[1]!, schema: row[2]!, table: row[3]!, copy: row[4]!,
                    keyColumns: Self.names(row[5]), columnNames: Self.names(row[6]),
                    consistentLSN: row[7]!, snapshotMilliseconds: Int64(row[8]!)!,
                    rowsDone: Int(row[9]!)!, rowsTotal: Int(row[10]!)!)
        }
        guard !pending.isEmpty else { return 0 }
        // One writer per slot: a second run would interleave lines and checkpoints.
        guard try connection.query("SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext($1))",
                                   ["temporal stream backfill " + slot]).scalar == "t" else {
            throw PostgresError(kind: .server, sqlState: SQLState.objectInUse,
                                message: "the backfill of slot \"\(slot)\" is being written by another stream",
                                hint: "Stop the other temporal stream run on this slot first.")
        }
        // Values are read as the replication session prints them (see Streamer).
        for setting in ["client_encoding = 'UTF8'", "TimeZone = 'UTC'", "DateStyle = 'ISO, YMD'", "bytea_output = 'hex'",
                        "extra_float_digits = 3", "IntervalStyle = 'postgres'"] {
            try connection.execute("SET \(setting)")
        }
        let types = try TypeCatalog(connection: connection)
        let decoder = ValueDecoder(types: types)
        var written = 0
        for backfill in pending {
            guard let count = try write(backfill, connection: connection, types: types, decoder: decoder) else { return nil }
            written += count
        }
        return written
    }

    /// The names of a text[] as the server prints it.
    private static func names(_ text: String?) -> [String] {
        guard let text, case let .array(items)? = ArrayLiteral.parse(text) else { return [] }
        return items.compactMap { if case let .text(name) = $0 { return name } else { return nil } }
    }

    /// Writes one backfill from where its checkpoint says; nil when stopped.
    private func write(_ backfill: Pending, connection: Connection, types: TypeCatalog, decoder: ValueDecoder) throws -> Int? {
        let table = types.qualifiedName(namespace: backfill.schema, name: backfill.table)
        let copy = "temporal_versioning.\(try connection.quoteIdentifier(backfill.copy))"
        logger.info("backfill of \(table) (\(backfill.kind)): \(backfill.rowsDone) of \(backfill.rowsTotal) rows written, going on")
        var done = backfill.rowsDone
        var written = 0
        var plans: [ValueDecoder.Plan]?
        let started = Date()
        let dimensions = [("table", table), ("kind", backfill.kind)]
        Gauge(label: "temporal_stream_backfill_rows_total", dimensions: dimensions).record(backfill.rowsTotal)
        while done < backfill.rowsTotal {
            if stop.isRequested {
                logger.info("stopped during the backfill of \(table) at row \(done) of \(backfill.rowsTotal); it goes on from there")
                return nil
            }
            let sql = "SELECT * FROM \(copy) WHERE temporal_backfill_row OPERATOR(pg_catalog.>) $1 ORDER BY temporal_backfill_row LIMIT $2"
            var events: [ChangeEvent] = []
            var last = done
            if backfill.kind == "snapshot" && writesLines {
                // Straight from the server's COPY bytes into the lines, as the stream does for a file.
                guard let count = try writeSnapshotLines(backfill, from: done, copy: copy, table: table,
                                                         connection: connection, decoder: decoder, dimensions: dimensions,
                                                         started: started) else { return nil }
                written += count
                done = backfill.rowsTotal
                break
            } else {
                let chunk = try connection.query(sql, [done, chunkSize])
                if plans == nil { plans = try chunk.columns.map { try decoder.plan(for: $0.typeOID) } }
                let shape = Shape(columns: chunk.columns.map(\.name), names: backfill.columnNames)
                events = chunk.rows.map { row in
                    backfill.kind == "history"
                        ? historyEvent(row, backfill, table: table, shape: shape, plans: plans!, decoder: decoder)
                        : snapshotEvent(row, backfill, table: table, shape: shape, plans: plans!, decoder: decoder)
                }
                if let row = chunk.rows.last { last = Int(row[shape.rowColumn] ?? "") ?? last }
            }
            guard !events.isEmpty else { break }
            written += try writeRetrying(events)
            done = last
            try checkpoint(backfill, rows: done, on: connection, table: table, dimensions: dimensions, started: started)
        }
        if done >= backfill.rowsTotal {
            // Marks it done (and drops its copy) even when it was empty.
            try connection.query("SELECT temporal_versioning._backfill_progress($1, $2)", [backfill.id, done])
        }
        logger.info("backfill of \(table) (\(backfill.kind)) written: \(backfill.rowsTotal) rows")
        return written
    }

    /// Records that `rows` rows are durably written (the backfill goes on
    /// from there), and says so in the metrics and to the progress line.
    private func checkpoint(_ backfill: Pending, rows: Int, on connection: Connection, table: String,
                            dimensions: [(String, String)], started: Date) throws {
        try connection.query("SELECT temporal_versioning._backfill_progress($1, $2)", [backfill.id, rows])
        self.started = true
        Gauge(label: "temporal_stream_backfill_rows_done", dimensions: dimensions).record(rows)
        let seconds = Date().timeIntervalSince(started)
        onProgress?(Progress(table: table, kind: backfill.kind, rowsDone: rows, rowsTotal: backfill.rowsTotal,
                             rowsPerSecond: seconds > 0 ? Double(rows - backfill.rowsDone) / seconds : 0))
    }

    /// Writes a chunk, waiting out a sink that is down (nothing is checkpointed
    /// meanwhile): to a sink of documents (MongoDB) in writes of `batchSize`
    /// events, as the stream writes them; to a file at once.
    private func writeRetrying(_ events: [ChangeEvent]) throws -> Int {
        guard !writesLines, events.count > batchSize else { return try writeBatchRetrying(events[...]) }
        var written = 0
        var start = 0
        while start < events.count {
            written += try writeBatchRetrying(events[start..<min(start + batchSize, events.count)])
            start += batchSize
        }
        return written
    }

    private func writeBatchRetrying(_ slice: ArraySlice<ChangeEvent>) throws -> Int {
        let events = Array(slice)
        var backoff = 0.1
        while true {
            do {
                return try sink.write(events)
            } catch let error as SinkError where error.retryable {
                logger.warning("\(error.message); retrying in \((backoff * 10).rounded() / 10) s, nothing checkpointed meanwhile")
                let deadline = Date().addingTimeInterval(backoff)
                while Date() < deadline {
                    if stop.isRequested { throw StreamError.stoppedBeforeWriting(events: events.count, sink: sink.description) }
                    Thread.sleep(forTimeInterval: 0.05)
                }
                backoff = min(backoff * 2, 30)
            }
        }
    }

    /// Where each part of a copy's row is.
    struct Shape {
        var rowColumn = 0
        var named: [String: Int] = [:]
        /// For a snapshot copy: the table's columns; for a history copy: b1.., a1.. in table order.
        var table: [Int] = []
        var before: [Int] = []
        var after: [Int] = []

        init(columns: [String], names: [String]) {
            for (index, column) in columns.enumerated() { named[column] = index }
            rowColumn = named["temporal_backfill_row"] ?? 0
            table = names.compactMap { named[$0] }
            before = names.indices.compactMap { named["b\($0 + 1)"] }
            after = names.indices.compactMap { named["a\($0 + 1)"] }
        }
    }

    /// `<slot>/<the consistent point less one>/<part>/<backfill>/<row>`: after
    /// everything an earlier slot of that name wrote, before everything this
    /// slot streams (commits come after its consistent point).
    func id(_ backfill: Pending, part: String, row: String) -> String {
        let point = LSN(backfill.consistentLSN).map { LSN($0.value > 0 ? $0.value - 1 : 0) } ?? .zero
        var id = "\(slot)/\(point.sortable)/\(part)/"
        let number = String(backfill.id)
        id += String(repeating: "0", count: max(0, 10 - number.count)) + number + "/"
        id += String(repeating: "0", count: max(0, 20 - row.count)) + row
        return id
    }

    /// A row's columns as a document, with the exact text of values the document rounds.
    private func document(_ row: [String?], _ indices: [Int], names: [String], plans: [ValueDecoder.Plan],
                          decoder: ValueDecoder, exactPrefix: String, exact: inout [(key: String, value: EventValue)]) -> EventDocument {
        var document = EventDocument()
        for (position, index) in indices.enumerated() {
            guard let text = row[index] else {
                document.append(names[position], .null)
                continue
            }
            let decoded = decoder.decode(text, plan: plans[index])
            document.append(names[position], decoded.value)
            if let exactText = decoded.exactText { exact.append(("\(exactPrefix).\(names[position])", .string(exactText))) }
        }
        return document
    }

    private func entityID(_ source: EventDocument, keys: [String]) -> EventValue {
        if keys.count == 1 { return source[keys[0]] ?? .null }
        return .document(EventDocument(keys.map { ($0, source[$0] ?? .null) }))
    }

    func snapshotEvent(_ row: [String?], _ backfill: Pending, table: String, shape: Shape,
                               plans: [ValueDecoder.Plan], decoder: ValueDecoder) -> ChangeEvent {
        var exact: [(key: String, value: EventValue)] = []
        let after = document(row, shape.table, names: backfill.columnNames, plans: plans, decoder: decoder,
                             exactPrefix: "after", exact: &exact)
        var metadata = EventDocument([
            ("lsn", .string(backfill.consistentLSN)), ("commitLsn", .string(backfill.consistentLSN)),
            ("slot", .string(slot)), ("table", .string(table)), ("snapshot", .bool(true)),
        ])
        if !exact.isEmpty { metadata.append("exact", .document(EventDocument(exact))) }
        return ChangeEvent(commitLSN: .zero, position: 0, document: EventDocument([
            ("_id", .string(id(backfill, part: "s", row: row[shape.rowColumn] ?? ""))),
            ("entityType", .string(table)),
            ("entityId", entityID(after, keys: backfill.keyColumns)),
            ("changesetId", .null),
            ("txId", .null),
            ("timestamp", .date(backfill.snapshotMilliseconds)),
            ("userId", .null),
            ("operation", .string("snapshot")),
            ("changes", .null),
            ("before", .null),
            ("after", .document(after)),
            ("metadata", .document(metadata)),
        ]))
    }

    /// Writes a snapshot's rows from `done` on as Extended JSON lines made
    /// straight from one `COPY ... TO STDOUT` of the copy (no value becomes a
    /// String), in chunks, each checkpointed on a second connection while the
    /// first streams. Returns the events written, or nil when stopped.
    private func writeSnapshotLines(_ backfill: Pending, from done: Int, copy: String, table: String,
                                    connection: Connection, decoder: ValueDecoder,
                                    dimensions: [(String, String)], started: Date) throws -> Int? {
        let checkpoints = try Connection(conninfo: conninfo, applicationName: "temporal stream backfill")
        try checkpoints.pinSearchPath()
        let columns = try connection.withRawResult("SELECT * FROM \(copy) LIMIT 0") { raw in
            (0..<raw.columnCount).map { (raw.columnName($0), raw.columnType($0)) }
        }
        let encoder = SnapshotLineEncoder(
            backfiller: self, backfill: backfill, table: table, decoder: decoder,
            shape: Shape(columns: columns.map(\.0), names: backfill.columnNames),
            plans: try columns.map { try decoder.plan(for: $0.1) })
        var written = 0
        var rows = done
        var stopped = false
        func flush() throws {
            let events = encoder.take()
            guard !events.isEmpty else { return }
            written += try writeRetrying(events)
            try checkpoint(backfill, rows: rows, on: checkpoints, table: table, dimensions: dimensions, started: started)
        }
        let canceller = connection.makeCanceller()
        do {
            // An integer, printed by us: no value is spliced in.
            try connection.copyOut("COPY (SELECT * FROM \(copy) WHERE temporal_backfill_row > \(done) ORDER BY temporal_backfill_row) TO STDOUT") { fields in
                guard !stopped else { return }
                encoder.encode(fields)
                rows += 1
                if encoder.count >= chunkSize {
                    try flush()
                    if stop.isRequested {
                        stopped = true
                        _ = canceller?.cancelRunningStatement()
                    }
                }
            }
        } catch let error as PostgresError where stopped && error.sqlState == "57014" {
            // The COPY cancelled on request: everything written is checkpointed.
        }
        if stopped {
            logger.info("stopped during the backfill of \(table) at row \(rows) of \(backfill.rowsTotal); it goes on from there")
            return nil
        }
        try flush()
        return written
    }

    static func appendValue(_ text: UnsafeBufferPointer<UInt8>, plan: ValueDecoder.Plan, decoder: ValueDecoder,
                            to output: inout JSONBuffer) -> Bool {
        ExtendedJSONEncoder.appendJSON(text, plan: plan, decoder: decoder, to: &output)
    }

    private static let operations = ["I": "insert", "U": "update", "D": "delete", "T": "truncate"]

    private func historyEvent(_ row: [String?], _ backfill: Pending, table: String, shape: Shape,
                              plans: [ValueDecoder.Plan], decoder: ValueDecoder) -> ChangeEvent {
        func field(_ name: String) -> String? { shape.named[name].flatMap { row[$0] } }
        let operation = field("temporal_operation") ?? "U"
        var exact: [(key: String, value: EventValue)] = []
        let before = operation == "I" ? nil
            : document(row, shape.before, names: backfill.columnNames, plans: plans, decoder: decoder, exactPrefix: "before", exact: &exact)
        let after = field("temporal_after_present") != "t" ? nil
            : document(row, shape.after, names: backfill.columnNames, plans: plans, decoder: decoder, exactPrefix: "after", exact: &exact)
        // As the stream does: a field changed when its value as PostgreSQL printed it differs.
        var changes: EventDocument?
        if operation == "U", let before, let after {
            var fields = EventDocument()
            for (position, name) in backfill.columnNames.enumerated()
            where position < shape.before.count && position < shape.after.count
                && row[shape.before[position]] != row[shape.after[position]] {
                fields.append(name, .document(EventDocument([("from", before[name] ?? .null), ("to", after[name] ?? .null)])))
            }
            changes = fields
        }
        let txID = field("temporal_tx_id") ?? ""
        let validFrom = field("temporal_valid_from").map { decoder.decode($0, plan: .scalar(TypeOID.timestamptz)).value } ?? .null
        var metadata = EventDocument([
            ("slot", .string(slot)), ("table", .string(table)), ("backfill", .bool(true)),
            ("temporalId", .int64(Int64(field("temporal_id") ?? "") ?? 0)),
        ])
        if !exact.isEmpty { metadata.append("exact", .document(EventDocument(exact))) }
        return ChangeEvent(commitLSN: .zero, position: 0, document: EventDocument([
            ("_id", .string(id(backfill, part: "h", row: row[shape.rowColumn] ?? ""))),
            ("entityType", .string(table)),
            ("entityId", entityID(after ?? before ?? EventDocument(), keys: backfill.keyColumns)),
            ("changesetId", .string(field("temporal_changeset_id") ?? txID)),
            ("txId", .int64(Int64(txID) ?? 0)),
            ("timestamp", validFrom),
            ("userId", field("temporal_user_id").map(EventValue.string) ?? .null),
            ("operation", .string(Self.operations[operation] ?? operation)),
            ("changes", changes.map(EventValue.document) ?? .null),
            ("before", before.map(EventValue.document) ?? .null),
            ("after", after.map(EventValue.document) ?? .null),
            ("metadata", .document(metadata)),
        ]))
    }
}

/// Extended JSON lines of a snapshot's rows, byte for byte what the document
/// path (Backfiller.snapshotEvent, then ExtendedJSON) writes: a test holds
/// them to it. Rows are written into one buffer per chunk, as the stream does.
final class SnapshotLineEncoder {
    private let backfiller: Backfiller
    private let backfill: Backfiller.Pending
    private let decoder: ValueDecoder
    private let shape: Backfiller.Shape
    private let plans: [ValueDecoder.Plan]
    private let tableJSON: [UInt8]
    private let keys: [[UInt8]]
    /// `"after.column": ` of each column, for metadata.exact.
    private let exactKeys: [[UInt8]]
    /// `<slot>/0000000000000000/s/<backfill>/`, escaped (slot names need no escaping).
    private let idPrefix: [UInt8]
    private let keyPositions: [Int]
    /// changesetId to after's opening: the same for every row.
    private let middle: [UInt8]
    /// metadata without exact: the same for every row.
    private let metadata: [UInt8]
    private var output = JSONBuffer(capacity: 1 << 20)
    private let values = JSONBuffer(capacity: 1024)
    private var ranges: [Range<Int>]
    private var events: [ChangeEvent] = []

    init(backfiller: Backfiller, backfill: Backfiller.Pending, table: String, decoder: ValueDecoder,
         shape: Backfiller.Shape, plans: [ValueDecoder.Plan]) {
        self.backfiller = backfiller
        self.backfill = backfill
        self.decoder = decoder
        self.shape = shape
        self.plans = plans
        tableJSON = JSONBytes.string(table)
        keys = backfill.columnNames.map(JSONBytes.key)
        exactKeys = backfill.columnNames.map { JSONBytes.key("after.\($0)") }
        let sample = backfiller.id(backfill, part: "s", row: "")
        idPrefix = Array(sample.utf8.dropLast(20))
        keyPositions = backfill.keyColumns.compactMap { backfill.columnNames.firstIndex(of: $0) }
        var middle: [UInt8] = []
        middle.append(static: #", "changesetId": null, "txId": null, "timestamp": "#)
        ExtendedJSON.append(.date(backfill.snapshotMilliseconds), to: &middle)
        middle.append(static: #", "userId": null, "operation": "snapshot", "changes": null, "before": null, "after": "#)
        self.middle = middle
        var metadata: [UInt8] = []
        metadata.append(static: #", "metadata": {"lsn": "#)
        ExtendedJSON.appendString(backfill.consistentLSN, to: &metadata)
        metadata.append(static: #", "commitLsn": "#)
        ExtendedJSON.appendString(backfill.consistentLSN, to: &metadata)
        metadata.append(static: #", "slot": "#)
        ExtendedJSON.appendString(backfiller.slotName, to: &metadata)
        metadata.append(static: #", "table": "#)
        metadata.append(bytes: tableJSON)
        metadata.append(static: #", "snapshot": true"#)
        self.metadata = metadata
        ranges = [Range<Int>](repeating: 0..<0, count: shape.table.count)
    }

    var count: Int { events.count }

    /// The events encoded since the last take; the next ones go into a new buffer.
    func take() -> [ChangeEvent] {
        let taken = events
        events = []
        output = JSONBuffer(capacity: max(1 << 20, output.count + output.count / 8))
        return taken
    }

    /// One row of the copy (its fields in the copy's column order).
    func encode(_ fields: [UnsafeBufferPointer<UInt8>?]) {
        values.removeAll()
        var lossy: [(Int, UnsafeBufferPointer<UInt8>)] = []
        var valuesOutput = values
        for (position, column) in shape.table.enumerated() {
            let start = valuesOutput.count
            if column < fields.count, let text = fields[column] {
                if Backfiller.appendValue(text, plan: plans[column], decoder: decoder, to: &valuesOutput) { lossy.append((position, text)) }
            } else {
                valuesOutput.append(static: "null")
            }
            ranges[position] = start..<valuesOutput.count
        }
        let start = output.count
        output.append(static: #"{"_id": ""#)
        // The _id as Backfiller.id makes it: a prefix, and the row number zero-padded to 20 digits.
        output.append(bytes: idPrefix)
        let row = shape.rowColumn < fields.count ? fields[shape.rowColumn] : nil
        for _ in (row?.count ?? 0)..<20 { output.append(UInt8(ascii: "0")) }
        if let row { output.append(contentsOf: row) }
        output.append(UInt8(ascii: "\""))
        output.append(static: #", "entityType": "#)
        output.append(bytes: tableJSON)
        output.append(static: #", "entityId": "#)
        if keyPositions.count == 1 {
            output.append(from: values, ranges[keyPositions[0]])
        } else if keyPositions.isEmpty {
            output.append(static: "null")
        } else {
            output.append(UInt8(ascii: "{"))
            for (index, position) in keyPositions.enumerated() {
                if index > 0 { output.append(static: ", ") }
                output.append(bytes: keys[position])
                output.append(from: values, ranges[position])
            }
            output.append(UInt8(ascii: "}"))
        }
        output.append(bytes: middle)
        output.append(UInt8(ascii: "{"))
        for position in shape.table.indices {
            if position > 0 { output.append(static: ", ") }
            output.append(bytes: keys[position])
            output.append(from: values, ranges[position])
        }
        output.append(UInt8(ascii: "}"))
        output.append(bytes: metadata)
        if !lossy.isEmpty {
            output.append(static: #", "exact": {"#)
            for (index, (position, text)) in lossy.enumerated() {
                if index > 0 { output.append(static: ", ") }
                output.append(bytes: exactKeys[position])
                if ExtendedJSONEncoder.isASCII(text) {
                    ExtendedJSON.appendString(bytes: text, to: &output)
                } else {
                    ExtendedJSON.appendString(String(decoding: text, as: UTF8.self), to: &output)
                }
            }
            output.append(UInt8(ascii: "}"))
        }
        output.append(static: "}}")
        let end = output.count
        output.append(UInt8(ascii: "\n"))
        events.append(ChangeEvent(idInJSONOf: output, range: start..<end))
    }
}

extension Backfiller {
    /// A backfill not yet written: its consistent point, and whether it
    /// carries a table's history (`table` as `format('%I.%I')` names it).
    struct Waiting {
        var id: Int
        var lsn: LSN
        var table: String
        var history: Bool
    }

    /// The backfills of a slot not yet written, with their consistent points:
    /// for a running stream, the ones `stream backfill` added.
    static func pending(slot: String, on connection: Connection) throws -> [Waiting] {
        guard try connection.query("SELECT pg_catalog.to_regclass('temporal_versioning.stream_backfills') IS NOT NULL").scalar == "t" else {
            return []
        }
        return try connection.query("""
            SELECT b.id, b.consistent_lsn::pg_catalog.text, pg_catalog.format('%I.%I', b.schema_name, b.table_name),
                   b.kind OPERATOR(pg_catalog.=) 'history'
            FROM temporal_versioning.stream_backfills b
            WHERE b.slot_name OPERATOR(pg_catalog.=) $1 AND b.state OPERATOR(pg_catalog.<>) 'done'
            ORDER BY b.consistent_lsn, b.kind, b.id
            """, [slot]).rows.compactMap { row in
            guard let id = row[0].flatMap({ Int($0) }), let lsn = row[1].flatMap(LSN.init) else { return nil }
            return Waiting(id: id, lsn: lsn, table: row[2] ?? "", history: row[3] == "t")
        }
    }
}
