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
///   <slot>/0000000000000000/h/<backfill>/<row>   a change a history kept
///   <slot>/0000000000000000/s/<backfill>/<row>   a row of the snapshot
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
    private let sink: EventSink
    private let stop: StopRequest
    private let logger: Logger
    private let chunkSize: Int
    private let onProgress: ((Progress) -> Void)?

    /// Whether any chunk was written (a later failure is then worth waiting out).
    public private(set) var started = false

    public init(conninfo: String, slot: String, sink: EventSink, stop: StopRequest,
                logger: Logger = Logger(label: "temporal.stream"), chunkSize: Int = 5000,
                onProgress: ((Progress) -> Void)? = nil) {
        self.conninfo = conninfo
        self.slot = slot
        self.sink = sink
        self.stop = stop
        self.logger = logger
        self.chunkSize = chunkSize
        self.onProgress = onProgress
    }

    private struct Pending {
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
    @discardableResult
    public func run() throws -> Int? {
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
            ORDER BY b.kind, b.id
            """, [slot]).rows.map { row in
            Pending(id: Int(row[0]!)!, kind: row[1]!, schema: row[2]!, table: row[3]!, copy: row[4]!,
                    keyColumns: Self.names(row[5]), columnNames: Self.names(row[6]),
                    consistentLSN: row[7]!, snapshotMilliseconds: Int64(row[8]!)!,
                    rowsDone: Int(row[9]!)!, rowsTotal: Int(row[10]!)!)
        }
        guard !pending.isEmpty else { return 0 }
        // Values are read as the replication session prints them (see Streamer).
        for setting in ["TimeZone = 'UTC'", "DateStyle = 'ISO, YMD'", "bytea_output = 'hex'",
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
            let chunk = try connection.query(
                "SELECT * FROM \(copy) WHERE temporal_backfill_row OPERATOR(pg_catalog.>) $1 ORDER BY temporal_backfill_row LIMIT $2",
                [done, chunkSize])
            guard !chunk.rows.isEmpty else { break }
            if plans == nil { plans = try chunk.columns.map { try decoder.plan(for: $0.typeOID) } }
            let shape = Shape(columns: chunk.columns.map(\.name), names: backfill.columnNames)
            let events = chunk.rows.map { row in
                backfill.kind == "history"
                    ? historyEvent(row, backfill, table: table, shape: shape, plans: plans!, decoder: decoder)
                    : snapshotEvent(row, backfill, table: table, shape: shape, plans: plans!, decoder: decoder)
            }
            written += try writeRetrying(events)
            done = Int(chunk.rows.last![shape.rowColumn] ?? "") ?? done + chunk.rows.count
            try connection.query("SELECT temporal_versioning._backfill_progress($1, $2)", [backfill.id, done])
            self.started = true
            Gauge(label: "temporal_stream_backfill_rows_done", dimensions: dimensions).record(done)
            let seconds = Date().timeIntervalSince(started)
            onProgress?(Progress(table: table, kind: backfill.kind, rowsDone: done, rowsTotal: backfill.rowsTotal,
                                 rowsPerSecond: seconds > 0 ? Double(done - backfill.rowsDone) / seconds : 0))
        }
        if done >= backfill.rowsTotal {
            // Marks it done (and drops its copy) even when it was empty.
            try connection.query("SELECT temporal_versioning._backfill_progress($1, $2)", [backfill.id, done])
        }
        logger.info("backfill of \(table) (\(backfill.kind)) written: \(backfill.rowsTotal) rows")
        return written
    }

    /// Writes a chunk, waiting out a sink that is down (nothing is checkpointed meanwhile).
    private func writeRetrying(_ events: [ChangeEvent]) throws -> Int {
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
    private struct Shape {
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

    private func id(_ backfill: Pending, part: String, row: String) -> String {
        var id = "\(slot)/0000000000000000/\(part)/"
        let number = String(backfill.id)
        id += String(repeating: "0", count: max(0, 8 - number.count)) + number + "/"
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

    private func snapshotEvent(_ row: [String?], _ backfill: Pending, table: String, shape: Shape,
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
