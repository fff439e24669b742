import Foundation
import Postgres

/// Turns the pgoutput messages of one replication stream into change events.
///
/// Events are emitted as soon as their row arrives: a transaction's commit
/// LSN is known from its Begin, so each event's _id is final before the
/// commit. `committed` follows the last event of a transaction; only then may
/// its end LSN be confirmed to the server. Transactions streamed while still
/// in progress (protocol 2) are spooled to disk and replayed at their commit,
/// so memory stays bounded by one message, never one transaction.
public final class EventBuilder {
    public enum Output {
        /// A transaction begins; it will commit at `commitLSN`.
        case began(commitLSN: LSN)
        case event(ChangeEvent)
        /// Everything of the transaction has been emitted.
        case committed(commitLSN: LSN, endLSN: LSN)
        /// A non-transactional heartbeat: nothing before `lsn` is pending.
        case heartbeat(LSN)
        /// `temporal stream backfill` is adding tables to the stream of this
        /// slot: wait until it has copied them, then write their rows at their
        /// consistent point, which lies after this.
        case backfillAnnounced(slot: String)
    }

    /// The prefix of the transactional message that carries an application's
    /// context (see temporal_versioning.set_change_context).
    public static let contextPrefix = "temporal.context"
    public static let heartbeatPrefix = "temporal.heartbeat"
    public static let backfillPrefix = "temporal.backfill"

    /// A class, so that looking one up for every change copies a reference, not many arrays.
    final class RelationInfo {
        let relation: Relation
        /// The columns that identify a row (entityId), and their names.
        let keyColumns: [Int]
        let keyNames: [String]
        let qualifiedName: String
        let plans: [ValueDecoder.Plan]
        /// For Extended JSON: `"column": ` of each column, the table's name as a JSON string,
        /// and the keys of metadata.exact (`"before.column": `, `"after.column": `).
        let jsonKeys: [[UInt8]]
        let tableJSON: [UInt8]
        let exactBeforeKeys: [[UInt8]]
        let exactAfterKeys: [[UInt8]]

        init(relation: Relation, key: [Int], qualifiedName: String, plans: [ValueDecoder.Plan]) {
            self.relation = relation
            keyColumns = key
            keyNames = key.map { relation.columns[$0].name }
            self.qualifiedName = qualifiedName
            self.plans = plans
            jsonKeys = relation.columns.map { JSONBytes.key($0.name) }
            tableJSON = JSONBytes.string(qualifiedName)
            exactBeforeKeys = relation.columns.map { JSONBytes.key("before.\($0.name)") }
            exactAfterKeys = relation.columns.map { JSONBytes.key("after.\($0.name)") }
        }
    }

    /// A class, so that every event reads it without copying its strings.
    final class Transaction {
        var xid: UInt32
        var commitLSN: LSN
        var commitMilliseconds: Int64
        var position = 0
        var userID: String?
        var changesetID: String?
        /// What every event of the transaction shares, built once.
        var idPrefix: String
        var commitLSNText: String
        var xidText: String
        /// The parts of an event's Extended JSON the transaction's events share (built by the first).
        var contextJSON: [UInt8]?
        var metadataJSON: [UInt8]?

        init(slot: String, xid: UInt32, commitLSN: LSN, commitMilliseconds: Int64) {
            self.xid = xid
            self.commitLSN = commitLSN
            self.commitMilliseconds = commitMilliseconds
            idPrefix = ChangeEvent.idPrefix(slot: slot, commitLSN: commitLSN)
            commitLSNText = commitLSN.description
            xidText = String(xid)
        }
    }

    let slot: String
    private let types: TypeCatalog
    let decoder: ValueDecoder
    /// The sink's encoder: writes each row change in the sink's form.
    public let encoder: EventEncoder
    /// Schema events are documents, whatever the sink's form.
    private let documents: DocumentEncoder
    private var relations: [UInt32: RelationInfo] = [:]
    var transaction: Transaction?
    private let spool: StreamSpool

    /// The streamed transaction whose block is being read (protocol 2).
    private var inStreamBlock: UInt32?

    /// The events so far went to the sink as a batch (see EventEncoder.startBatch).
    public func startBatch() { encoder.startBatch() }

    /// Whether a transaction has begun and not yet committed.
    public var inTransaction: Bool { transaction != nil }

    /// Records a table's shape from a Relation message at a WAL position and
    /// returns the changes of a schema event when it differs from the one
    /// before: `[(column, from type, to type)]`. Nil: no schema events.
    public var shapeStore: ((_ relation: Relation, _ qualifiedName: String, _ commitLSN: LSN, _ position: Int) throws -> [(String, String?, String?)]?)?

    /// Tables (as `format('%I.%I')` names them) whose changes are not written
    /// as events: a history backfill of `stream backfill` carries them. Each
    /// still takes its position, so the _ids of the others do not move.
    public var skipping: Set<String> = []

    /// Whether the change of `info` is skipped (its position taken).
    private func skipped(_ info: RelationInfo, takingPosition: Bool = true) -> Bool {
        guard !skipping.isEmpty, skipping.contains(info.qualifiedName), let current = transaction else { return false }
        if takingPosition { current.position += 1 }
        return true
    }

    /// `spoolDirectory`: where transactions still in progress wait for their
    /// commit (in a directory named after the slot).
    /// `makeEncoder`: the sink's (EventSink.makeEncoder); documents by default.
    public init(slot: String, types: TypeCatalog, makeEncoder: (EncoderContext) -> EventEncoder = { DocumentEncoder($0) },
                spoolDirectory: URL = FileManager.default.temporaryDirectory) throws {
        self.slot = slot
        self.types = types
        decoder = ValueDecoder(types: types)
        let context = EncoderContext(slot: slot, decoder: decoder)
        encoder = makeEncoder(context)
        documents = DocumentEncoder(context)
        spool = try StreamSpool(base: spoolDirectory, slot: slot)
    }

    /// Feeds the bytes of one XLogData message, whose WAL position is `lsn`.
    public func consume(_ bytes: ArraySlice<UInt8>, lsn: LSN, emit: (Output) throws -> Void) throws {
        let message = try PgOutputMessage.decode(bytes, streaming: inStreamBlock != nil)
        if let xid = inStreamBlock {
            switch message {
            case .streamStop: inStreamBlock = nil
            default: try spool.append(xid: xid, lsn: lsn, bytes: bytes)
            }
            return
        }
        switch message {
        case let .streamStart(start):
            inStreamBlock = start.xid
        case let .streamAbort(abort):
            try spool.abort(xid: abort.xid, subtransaction: abort.subtransactionXid)
        case let .streamCommit(commit):
            try handle(.begin(Begin(finalLSN: commit.commitLSN, commitTime: commit.commitTime, xid: commit.xid)), lsn: lsn, emit: emit)
            try spool.replay(xid: commit.xid) { spooled, spooledLSN in
                try handle(try PgOutputMessage.decode(spooled, streaming: true), lsn: spooledLSN, emit: emit)
            }
            try handle(.commit(Commit(commitLSN: commit.commitLSN, endLSN: commit.endLSN, commitTime: commit.commitTime)), lsn: lsn, emit: emit)
        default:
            try handle(message, lsn: lsn, emit: emit)
        }
    }

    private func handle(_ message: PgOutputMessage, lsn: LSN, emit: (Output) throws -> Void) throws {
        switch message {
        case let .begin(begin):
            transaction = Transaction(
                slot: slot, xid: begin.xid, commitLSN: begin.finalLSN,
                commitMilliseconds: PostgresClock.toUnixMilliseconds(begin.commitTime))
            try emit(.began(commitLSN: begin.finalLSN))
        case let .commit(commit):
            guard let current = transaction else { throw ProtocolError.invalid("commit outside a transaction") }
            transaction = nil
            try emit(.committed(commitLSN: current.commitLSN, endLSN: commit.endLSN))
        case let .relation(relation):
            types.forgetKey(relation.oid)
            let info = RelationInfo(
                relation: relation, key: try keyColumns(of: relation),
                qualifiedName: types.qualifiedName(namespace: relation.namespace, name: relation.name),
                plans: try relation.columns.map { try decoder.plan(for: $0.typeOID) })
            relations[relation.oid] = info
            // A new shape: one schema event, before the first change that has it.
            // (Relation messages carry no WAL position of their own: the point
            // is the transaction's commit LSN and the events before it there.)
            if let current = transaction, !skipped(info, takingPosition: false), let store = shapeStore,
               let changes = try store(relation, info.qualifiedName, current.commitLSN, current.position), !changes.isEmpty {
                var document = EventDocument()
                for (column, from, to) in changes {
                    document.append(column, .document(EventDocument([("from", from.map(EventValue.string) ?? .null),
                                                                     ("to", to.map(EventValue.string) ?? .null)])))
                }
                let position = nextPosition(lsn: lsn)
                try emit(.event(documents.event("schema", info, lsn: lsn, transaction: position.transaction, position: position.number,
                                                before: nil, after: nil, changes: document)))
            }
        case .type, .origin, .streamStop, .streamStart, .streamCommit, .streamAbort:
            break
        case let .message(logical):
            if logical.transactional, logical.prefix == Self.contextPrefix, transaction != nil {
                applyContext(logical.content)
            } else if !logical.transactional, logical.prefix == Self.heartbeatPrefix, transaction == nil {
                try emit(.heartbeat(logical.lsn))
            } else if !logical.transactional, logical.prefix == Self.backfillPrefix {
                try emit(.backfillAnnounced(slot: String(decoding: logical.content, as: UTF8.self)))
            }
        case let .insert(insert):
            let info = try relation(insert.relationOID)
            if skipped(info) { return }
            try emit(.event(change(.insert, info, lsn: lsn, before: nil, after: insert.new, old: nil)))
        case let .update(update):
            let info = try relation(update.relationOID)
            if skipped(info) { return }
            try emit(.event(change(.update, info, lsn: lsn, before: update.old ?? update.oldKey, after: update.new, old: update.old)))
        case let .delete(delete):
            let info = try relation(delete.relationOID)
            if skipped(info) { return }
            try emit(.event(change(.delete, info, lsn: lsn, before: delete.old ?? delete.oldKey, after: nil, old: nil)))
        case let .truncate(truncate):
            for oid in truncate.relationOIDs {
                let info = try relation(oid)
                if skipped(info) { continue }
                try emit(.event(change(.truncate, info, lsn: lsn, before: nil, after: nil, old: nil)))
            }
        }
    }

    /// The next position in the transaction (outside one, a transaction of its own at `lsn`).
    private func nextPosition(lsn: LSN) -> (transaction: Transaction, number: Int) {
        let current = transaction ?? Transaction(slot: slot, xid: 0, commitLSN: lsn, commitMilliseconds: 0)
        current.position += 1
        return (current, current.position)
    }

    /// A row change, numbered, through the sink's encoder.
    private func change(_ operation: RowChange.Operation, _ info: RelationInfo, lsn: LSN, before: TupleData?, after: TupleData?,
                        old: TupleData?) -> ChangeEvent {
        let position = nextPosition(lsn: lsn)
        return encoder.encode(RowChange(operation: operation, info: info, lsn: lsn, before: before, after: after, old: old,
                                        transaction: position.transaction, position: position.number))
    }

    /// The columns an update changed, in order: those the new row has (a
    /// TOAST value it did not touch counts as the old one) whose value differs
    /// from the old row's, or that the old row lacks. Values are compared as
    /// the server printed them, so a change of a microsecond or from -0 to 0
    /// is a change even where the event's types cannot show it.
    static func forEachChangedColumn(old: TupleData, new: TupleData, columns: Int, _ body: (Int) -> Void) {
        for index in 0..<min(columns, new.values.count) {
            let oldValue: TupleValue = index < old.values.count ? old.values[index] : .unchangedToast
            var newValue = new.values[index]
            if newValue == .unchangedToast { newValue = oldValue }
            if newValue == .unchangedToast { continue }
            if oldValue == .unchangedToast || oldValue != newValue { body(index) }
        }
    }

    private func relation(_ oid: UInt32) throws -> RelationInfo {
        guard let info = relations[oid] else {
            throw ProtocolError.invalid("change for relation \(oid) before its Relation message")
        }
        return info
    }

    /// The columns that identify a row: the table's primary key, else the
    /// replica identity's columns (all of them only without a narrower key).
    private func keyColumns(of relation: Relation) throws -> [Int] {
        if let primaryKey = try types.primaryKey(relation.oid) {
            let positions = primaryKey.compactMap { name in relation.columns.firstIndex { $0.name == name } }
            if positions.count == primaryKey.count { return positions }
        }
        return relation.columns.indices.filter { relation.columns[$0].isKey }
    }

    private func applyContext(_ content: ArraySlice<UInt8>) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(content)) as? [String: Any] else { return }
        transaction?.userID = object["user_id"] as? String
        transaction?.changesetID = object["changeset_id"] as? String
        transaction?.contextJSON = nil
    }
}

/// Streamed blocks of transactions still in progress, kept on disk until
/// their commit (replayed) or abort (dropped, or a subtransaction skipped).
///
/// Spools live in `<base>/temporal-spool-<slot>/<pid>-<n>/`: a stream that
/// was killed cannot remove its own, so each new one removes those of the
/// slot whose process is gone. Repeated kills leave at most one run's spool.
final class StreamSpool {
    private let directory: URL
    private var files: [UInt32: FileHandle] = [:]
    private var abortedSubtransactions: [UInt32: Set<UInt32>] = [:]

    init(base: URL, slot: String) throws {
        let root = base.appendingPathComponent("temporal-spool-\(slot)")
        Self.removeAbandoned(in: root)
        directory = root.appendingPathComponent("\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    }

    /// Removes the spools of processes that no longer run.
    static func removeAbandoned(in root: URL) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: root.path) else { return }
        for entry in entries {
            guard let pid = entry.split(separator: "-").first.flatMap({ Int32($0) }) else { continue }
            if kill(pid, 0) == 0 || errno == EPERM { continue }   // still running
            try? FileManager.default.removeItem(at: root.appendingPathComponent(entry))
        }
    }

    deinit {
        for file in files.values { try? file.close() }
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ xid: UInt32) -> URL { directory.appendingPathComponent("\(xid).spool") }

    func append(xid: UInt32, lsn: LSN, bytes: ArraySlice<UInt8>) throws {
        if files[xid] == nil {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: path(xid).path, contents: nil)
            files[xid] = try FileHandle(forUpdating: path(xid))
        }
        var writer = ByteWriter()
        writer.uint64(lsn.value)
        writer.uint64(UInt64(bytes.count))
        try files[xid]!.write(contentsOf: writer.bytes + bytes)
    }

    func abort(xid: UInt32, subtransaction: UInt32) throws {
        if subtransaction == xid {
            try files.removeValue(forKey: xid)?.close()
            try? FileManager.default.removeItem(at: path(xid))
            abortedSubtransactions[xid] = nil
        } else {
            abortedSubtransactions[xid, default: []].insert(subtransaction)
        }
    }

    /// Feeds every spooled message of `xid` back, skipping aborted subtransactions.
    func replay(xid: UInt32, _ body: (ArraySlice<UInt8>, LSN) throws -> Void) throws {
        guard let file = files.removeValue(forKey: xid) else { return }
        defer {
            try? file.close()
            try? FileManager.default.removeItem(at: path(xid))
            abortedSubtransactions[xid] = nil
        }
        let aborted = abortedSubtransactions[xid] ?? []
        try file.seek(toOffset: 0)
        while let header = try file.read(upToCount: 16), header.count == 16 {
            var reader = ByteReader(Array(header))
            let lsn = LSN(try reader.uint64())
            let length = Int(try reader.uint64())
            guard let data = try file.read(upToCount: length), data.count == length else {
                throw ProtocolError.invalid("spool of transaction \(xid) is cut short")
            }
            let bytes = Array(data)[...]
            // Data messages of a streamed block carry their (sub)transaction's xid after the tag.
            if !aborted.isEmpty, bytes.count >= 5 {
                var xidReader = ByteReader(bytes.dropFirst())
                if let messageXid = try? xidReader.uint32(), aborted.contains(messageXid) { continue }
            }
            try body(bytes, lsn)
        }
    }
}
