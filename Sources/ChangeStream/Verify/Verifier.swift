import CBSON
import Foundation
import Postgres

/// What `temporal verify` found for one table in one shape.
public struct TableVerification: Codable, Sendable {
    public struct Mismatch: Codable, Sendable {
        /// The row's key, as relaxed Extended JSON.
        public var key: String
        /// The fields that differ (a field only one side has counts).
        public var fields: [String]
    }

    public struct OperationCount: Codable, Sendable {
        public var operation: String
        /// Changes of this kind in the table's history, in the stream's window.
        public var postgres: Int?
        /// Events (or history documents) of this kind in MongoDB.
        public var mongodb: Int
    }

    public var table: String
    public var shape: String
    public var collection: String
    /// current: rows in PostgreSQL, documents in MongoDB, and the differences.
    public var rows: Int?
    public var documents: Int?
    public var missing: Int?
    public var extra: Int?
    public var mismatched: Int?
    /// The first keys (at most `VerifyRequest.listed`) missing, extra, or mismatched.
    public var missingKeys: [String]?
    public var extraKeys: [String]?
    public var mismatches: [Mismatch]?
    /// events and history: changes per operation, over the transactions the stream wrote.
    public var operations: [OperationCount]?
    /// Why a comparison was not made (a table that is not versioned has no history to count).
    public var note: String?
    public var matches: Bool
}

/// What `temporal verify` compared, and where.
public struct VerifyReport: Codable, Sendable {
    public var slot: String
    public var database: String
    /// The slot's confirmed position when the comparison began.
    public var confirmedLSN: String
    /// WAL written after it (the stream's lag, in bytes) when the comparison began.
    public var lagBytes: Int64
    /// Whether a stream was reading the slot meanwhile (then keys written meanwhile may differ).
    public var streamActive: Bool
    public var tables: [TableVerification]
    public var matches: Bool { tables.allSatisfy(\.matches) }
}

public struct VerifyRequest: Sendable {
    public var slot: String
    /// `schema.table`; empty: every table of the stream's publication.
    public var tables: [String] = []
    /// Nil: every shape the stream writes.
    public var shape: Shape?
    /// Rows and documents read per round trip.
    public var chunk = 5000
    /// Keys listed per kind of difference.
    public var listed = 10

    public init(slot: String) { self.slot = slot }
}

/// Compares what PostgreSQL holds with what a stream wrote into MongoDB.
///
/// Current documents are compared row by row: both sides are read in key
/// order (PostgreSQL through a cursor in one REPEATABLE READ snapshot, with
/// text keys in byte order; MongoDB sorted by _id), in chunks, and merged, so
/// memory holds one chunk of each. Values compare by meaning: numbers by
/// value (numeric exactly), dates to the millisecond, json by content.
/// Events and history documents are counted per operation against the
/// history tables, over the transactions the stream wrote.
public final class Verifier {
    private let postgres: Connection
    private let mongo: MongoConnection

    public init(postgres: Connection, mongo: MongoConnection) {
        self.postgres = postgres
        self.mongo = mongo
    }

    public func run(_ request: VerifyRequest) throws -> VerifyReport {
        guard let slot = try postgres.query("""
            SELECT confirmed_flush_lsn::text, active, (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint
              FROM pg_replication_slots WHERE slot_name = $1
            """, [request.slot]).rows.first else {
            throw PostgresError(kind: .server, sqlState: SQLState.undefinedObject,
                                message: "replication slot \"\(request.slot)\" does not exist",
                                hint: "List the slots with temporal stream status.")
        }
        var record: EventDocument?
        try mongo.find(MongoSink.streamsCollection, filter: EventDocument([(EventField.id, .string(request.slot))])) {
            record = BSONReader.document($0)
        }
        guard let record, let publication = record.string("publication") else {
            throw ShapeError("slot \(request.slot) has never streamed into the MongoDB database \(mongo.database) (it has no record in \(MongoSink.streamsCollection)): run temporal stream run --slot \(request.slot) --mongodb URI --database \(mongo.database) first")
        }
        var options = ShapeOptions()
        if case let .array(names)? = record["shapes"] {
            options.shapes = Set(names.compactMap { if case let .string(name) = $0 { Shape(rawValue: name) } else { nil } })
        }
        options.eventsCollection = record.string("eventsCollection") ?? options.eventsCollection
        if case let .document(map)? = record["collectionMap"] {
            for field in map.fields { if case let .string(name) = field.value { options.collectionMap[field.key] = name } }
        }
        options.softDelete = record["softDelete"] == .bool(true)

        let published = try StreamAdmin(connection: postgres).publishedTables(publication)
        var tables = published
        if !request.tables.isEmpty {
            tables = try request.tables.map { name in
                let bare = ShapeOptions.unquoted(name)
                let qualified = bare.schema + "." + bare.name
                guard published.contains(qualified) else {
                    throw ShapeError("\(qualified) is not in publication \(publication), which slot \(request.slot) streams (it holds \(published.joined(separator: ", ")))")
                }
                return qualified
            }
        }
        var shapes: [Shape] = []
        if options.keyed { shapes.append(.current) }
        if options.shapes.contains(.events) { shapes.append(.events) }
        if options.shapes.contains(.history) { shapes.append(.history) }
        if let wanted = request.shape {
            let shape = wanted == .embedded ? .current : wanted
            guard shapes.contains(shape) else {
                throw ShapeError("slot \(request.slot) does not write the \(wanted.rawValue) shape (it writes \(options.shapes.map(\.rawValue).sorted().joined(separator: ", ")))")
            }
            shapes = [shape]
        }
        var report = VerifyReport(slot: request.slot, database: mongo.database, confirmedLSN: slot[0] ?? "",
                                  lagBytes: Int64(slot[2] ?? "") ?? 0, streamActive: slot[1] == "t", tables: [])
        try session()
        for table in tables {
            for shape in shapes {
                switch shape {
                case .current: report.tables.append(try compareRows(table, options: options, publication: publication, request: request))
                case .events: report.tables.append(try countEvents(table, options: options))
                default: report.tables.append(try countHistory(table, options: options))
                }
            }
        }
        return report
    }

    /// Values printed as the stream reads them.
    private func session() throws {
        for setting in ValueDecoder.sessionSettings { try postgres.execute("SET \(setting)") }
    }

    // MARK: - Rows against current documents

    /// PostgreSQL's order of a key column as MongoDB sorts the BSON value the
    /// stream makes of it: numbers, booleans, dates and uuids (16-byte binaries)
    /// as they are; bytea as binaries (length first); everything else is a
    /// string there, so it is ordered by its text's bytes.
    static func orderExpression(_ column: String, typeOID: UInt32) -> String {
        switch typeOID {
        case 16, 20, 21, 23, 26, 700, 701, 1700, 2950, 1082, 1114, 1184: return column
        case 17: return "pg_catalog.length(\(column)), \(column)"
        default: return "\(column)::pg_catalog.text COLLATE \"C\""
        }
    }

    /// The publication's column list for the table, when it has one (PostgreSQL 15 and later).
    private var columnList: String {
        "(SELECT t.attnames FROM pg_publication_tables t WHERE t.pubname = $3 AND t.schemaname = $1 AND t.tablename = $2)"
    }

    private func compareRows(_ table: String, options: ShapeOptions, publication: String, request: VerifyRequest) throws -> TableVerification {
        let collection = options.collection(for: table)
        let bare = ShapeOptions.unquoted(table)
        // The columns the stream writes: not generated ones, and only those of the publication's column list.
        let columns = try postgres.query("""
            SELECT a.attname, a.atttypid::int8,
                   coalesce((SELECT k.n FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n) WHERE k.attnum = a.attnum), 0)
              FROM pg_attribute a
              JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
               AND (\(columnList) IS NULL OR a.attname = ANY ((\(columnList))::name[]))
             ORDER BY a.attnum
            """, [bare.schema, bare.name, publication])
            .rows
        // Columns the stream may or may not carry (generated ones: a snapshot has them, pgoutput of
        // PostgreSQL 15 does not; those outside a column list): not compared when a document has them.
        let ignored = Set(try postgres.query("""
            SELECT a.attname FROM pg_attribute a
              JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
               AND (a.attgenerated <> '' OR NOT (\(columnList) IS NULL OR a.attname = ANY ((\(columnList))::name[])))
            """, [bare.schema, bare.name, publication]).rows.compactMap { $0[0] })
        let keyed = columns.filter { ($0[2].flatMap { Int($0) } ?? 0) > 0 }
            .sorted { Int($0[2]!)! < Int($1[2]!)! }
        guard !keyed.isEmpty else {
            throw ShapeError("\(table) has no primary key: its rows cannot be matched to documents by key")
        }
        let keyNames = keyed.map { $0[0]! }
        let order = keyed.map { Self.orderExpression(quoteIdentifier($0[0]!), typeOID: UInt32($0[1] ?? "") ?? 0) }.joined(separator: ", ")
        let names = columns.map { $0[0]! }

        let types = try TypeCatalog(connection: postgres)
        let decoder = ValueDecoder(types: types)
        var result = TableVerification(table: table, shape: "current", collection: collection, rows: 0, documents: 0,
                                       missing: 0, extra: 0, mismatched: 0, missingKeys: [], extraKeys: [], mismatches: [],
                                       matches: true)
        try postgres.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        defer { try? postgres.execute("ROLLBACK") }
        try postgres.execute("DECLARE temporal_verify NO SCROLL CURSOR FOR SELECT \(names.map(quoteIdentifier).joined(separator: ", ")) FROM \(quoteIdentifier(bare.schema)).\(quoteIdentifier(bare.name)) ORDER BY \(order)")

        // PostgreSQL's side, a chunk at a time, fetched ahead on a thread of its own while MongoDB's is read.
        let fetched = try postgres.query("FETCH \(request.chunk) FROM temporal_verify")
        let plans = try fetched.columns.map { try decoder.plan(for: $0.typeOID) }
        let ahead = ChunkQueue(depth: 2)
        if fetched.rows.count == request.chunk {
            let connection = SendableBox(postgres), size = request.chunk
            Thread {
                while true {
                    do {
                        let rows = try connection.value.query("FETCH \(size) FROM temporal_verify").rows
                        guard ahead.put(.success(rows)), rows.count == size else { break }
                    } catch {
                        _ = ahead.put(.failure(error))
                        break
                    }
                }
                ahead.finish()
            }.start()
        } else {
            ahead.finish()
        }
        defer { ahead.cancel() }
        var buffer = fetched.rows, index = 0
        func nextRow() throws -> (key: EventValue, row: EventDocument)? {
            while index == buffer.count {
                guard let next = ahead.take() else { return nil }
                buffer = try next.get()
                index = 0
            }
            let values = buffer[index]
            index += 1
            var row = EventDocument()
            for (position, name) in names.enumerated() {
                guard let text = values[position] else { row.append(name, .null); continue }
                row.append(name, decoder.decode(text, plan: plans[position]).value)
            }
            let key: EventValue = keyNames.count == 1 ? (row[keyNames[0]] ?? .null)
                : .document(EventDocument(keyNames.map { ($0, row[$0] ?? .null) }))
            return (key, row)
        }
        var previous: EventValue?
        func advance() throws -> (key: EventValue, row: EventDocument)? {
            guard let next = try nextRow() else { return nil }
            result.rows! += 1
            if let previous, VerifyValues.order(previous, next.key) >= 0 {
                throw ShapeError("\(table): PostgreSQL orders its keys unlike MongoDB (\(VerifyValues.text(previous)) before \(VerifyValues.text(next.key))); it cannot be compared in key order")
            }
            previous = next.key
            return next
        }
        func missing(_ key: EventValue) {
            result.missing! += 1
            if result.missingKeys!.count < request.listed { result.missingKeys!.append(VerifyValues.text(key)) }
        }

        var current = try advance()
        var filter = EventDocument()
        if options.softDelete { filter.append("deletedAt", .document(EventDocument([("$exists", .bool(false))]))) }
        try mongo.find(collection, filter: filter, options: EventDocument([
            ("sort", .document(EventDocument([(EventField.id, .int32(1))]))), ("batchSize", .int32(Int32(request.chunk))),
        ])) { bson in
            let document = BSONReader.document(bson)
            result.documents! += 1
            let key = document[EventField.id] ?? .null
            while let row = current, VerifyValues.order(row.key, key) < 0 {
                missing(row.key)
                current = try advance()
            }
            guard let row = current, VerifyValues.order(row.key, key) == 0 else {
                result.extra! += 1
                if result.extraKeys!.count < request.listed { result.extraKeys!.append(VerifyValues.text(key)) }
                return
            }
            let differing = VerifyValues.differingFields(row: row.row, document: document, ignoring: ignored)
            if !differing.isEmpty {
                result.mismatched! += 1
                if result.mismatches!.count < request.listed {
                    result.mismatches!.append(.init(key: VerifyValues.text(key), fields: differing))
                }
            }
            current = try advance()
        }
        while let row = current {
            missing(row.key)
            current = try advance()
        }
        result.matches = result.missing == 0 && result.extra == 0 && result.mismatched == 0
        return result
    }

    // MARK: - Events and history against the history tables

    /// The history table of a versioned table, or nil.
    private func historyTable(_ table: String) throws -> String? {
        let bare = ShapeOptions.unquoted(table)
        return try postgres.query("""
            SELECT format('temporal_versioning.%I', history_table) FROM temporal_versioning.versioned_tables
             WHERE schema_name = $1 AND table_name = $2
            """, [bare.schema, bare.name]).rows.first?[0] ?? nil
    }

    /// An UPDATE that changed no value is an event, but not a change the history keeps.
    private static let notNoOp: (key: String, value: EventValue) = (EventField.changes, .document(EventDocument([("$ne", .document(EventDocument()))])))

    private static let operationCodes = ["insert": "I", "update": "U", "delete": "D"]

    /// Per operation: count, and the window of transactions, of what `collection` holds for the table.
    private func mongoCounts(_ collection: String, match: EventDocument) throws -> (counts: [String: Int], low: Int64?, high: Int64?) {
        var counts: [String: Int] = [:]
        var low: Int64?, high: Int64?
        try mongo.aggregate(collection, pipeline: [
            EventDocument([("$match", .document(match))]),
            EventDocument([("$group", .document(EventDocument([
                (EventField.id, .string("$operation")), ("n", .document(EventDocument([("$sum", .int32(1))]))),
                ("low", .document(EventDocument([("$min", .string("$txId"))]))),
                ("high", .document(EventDocument([("$max", .string("$txId"))]))),
            ])))]),
        ]) { bson in
            let document = BSONReader.document(bson)
            guard case let .string(operation)? = document[EventField.id] else { return }
            counts[operation] = Int(document["n"]?.integer ?? 0)
            if let value = document["low"]?.integer { low = min(low ?? value, value) }
            if let value = document["high"]?.integer { high = max(high ?? value, value) }
        }
        return (counts, low, high)
    }

    private func postgresCounts(_ history: String, low: Int64, high: Int64) throws -> [String: Int] {
        // Events carry the 32-bit xid; the history keeps txid_current() (epoch and xid).
        var counts: [String: Int] = [:]
        for row in try postgres.query("""
            SELECT temporal_operation::text, count(*) FROM \(history)
             WHERE temporal_tx_id % 4294967296 BETWEEN $1 AND $2 GROUP BY 1
            """, [String(low), String(high)]).rows {
            counts[row[0] ?? ""] = Int(row[1] ?? "") ?? 0
        }
        return counts
    }

    private func compareCounts(_ table: String, shape: Shape, collection: String, match: EventDocument) throws -> TableVerification {
        var found = try mongoCounts(collection, match: match)
        var result = TableVerification(table: table, shape: shape.rawValue, collection: collection, operations: [], matches: true)
        func listOnly(_ note: String) -> TableVerification {
            result.note = note
            result.operations = found.counts.sorted { $0.key < $1.key }.map { .init(operation: $0.key, postgres: nil, mongodb: $0.value) }
            return result
        }
        guard var low = found.low, let high = found.high else { return listOnly("no change of this table has been streamed yet") }
        guard let history = try historyTable(table) else { return listOnly("not versioned: no history table to count changes against") }
        // The window is the transactions both sides saw: the stream's, from the first the history kept
        // (versioning may have begun after the stream, or a prune removed the oldest).
        let kept = try postgres.query("SELECT min(temporal_tx_id % 4294967296) FROM \(history)").scalar.flatMap { Int64($0) }
        guard let kept, kept <= high else { return listOnly("the history holds none of the transactions the stream wrote") }
        if kept > low {
            low = kept
            var narrowed = match
            narrowed.set(EventField.txId, .document(EventDocument([("$gte", .int64(low)), ("$lte", .int64(high))])))
            found = try mongoCounts(collection, match: narrowed)
        }
        let counted = try postgresCounts(history, low: low, high: high)
        for operation in ["insert", "update", "delete"] {
            let expected = counted[Self.operationCodes[operation]!] ?? 0
            let written = found.counts[operation] ?? 0
            result.operations!.append(.init(operation: operation, postgres: expected, mongodb: written))
            if expected != written { result.matches = false }
        }
        result.note = "transactions \(low)...\(high) (32-bit xids)"
        return result
    }

    private func countEvents(_ table: String, options: ShapeOptions) throws -> TableVerification {
        let bare = ShapeOptions.unquoted(table)
        let entityType = try postgres.query("SELECT format('%I.%I', $1::text, $2::text)", [bare.schema, bare.name]).scalar ?? table
        return try compareCounts(table, shape: .events, collection: options.eventsCollection, match: EventDocument([
            (EventField.entityType, .string(entityType)),
            (EventField.operation, .document(EventDocument([("$in", .array(["insert", "update", "delete"].map(EventValue.string)))]))),
            ("metadata.snapshot", .document(EventDocument([("$exists", .bool(false))]))),
            ("metadata.backfill", .document(EventDocument([("$exists", .bool(false))]))),
            Self.notNoOp,
        ]))
    }

    private func countHistory(_ table: String, options: ShapeOptions) throws -> TableVerification {
        try compareCounts(table, shape: .history, collection: options.historyCollection(for: table), match: EventDocument([
            (EventField.operation, .document(EventDocument([("$in", .array(["insert", "update", "delete"].map(EventValue.string)))]))),
            (EventField.txId, .document(EventDocument([("$type", .string("number"))]))),
            Self.notNoOp,
        ]))
    }

    private func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// Chunks of rows handed from the thread that fetches them to the one that
/// compares them, at most `depth` waiting: memory stays bounded.
final class ChunkQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var chunks: [Result<[[String?]], Error>] = []
    private var finished = false
    private var cancelled = false
    private let depth: Int

    init(depth: Int) { self.depth = depth }

    /// Waits for room; false once the reader has gone.
    func put(_ chunk: Result<[[String?]], Error>) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while chunks.count >= depth && !cancelled { condition.wait() }
        guard !cancelled else { return false }
        chunks.append(chunk)
        condition.broadcast()
        return true
    }

    func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next chunk, or nil when there are no more.
    func take() -> Result<[[String?]], Error>? {
        condition.lock()
        defer { condition.unlock() }
        while chunks.isEmpty && !finished { condition.wait() }
        guard !chunks.isEmpty else { return nil }
        condition.broadcast()
        return chunks.removeFirst()
    }

    /// The reader stops: the fetching thread ends, and is waited for.
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }
}

/// A value handed to one other thread that alone uses it meanwhile.
final class SendableBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
