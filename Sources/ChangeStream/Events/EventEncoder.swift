import Postgres

/// One row change, as the builder hands it to an encoder.
public struct RowChange {
    public enum Operation: String, Sendable {
        case insert, update, delete, truncate
    }

    public let operation: Operation
    let info: EventBuilder.RelationInfo
    /// Where the change is in the WAL.
    public let lsn: LSN
    /// The old row, or only its key (UPDATE, DELETE).
    let before: TupleData?
    /// The new row (INSERT, UPDATE).
    let after: TupleData?
    /// The whole old row of an UPDATE, when the table's replica identity is FULL:
    /// what `changes` compares and where untouched TOAST values come from.
    let old: TupleData?
    let transaction: EventBuilder.Transaction
    /// The change's place in its transaction (the last part of its _id).
    public let position: Int
}

/// What an encoder may use of the stream it encodes.
public struct EncoderContext {
    public let slot: String
    public let decoder: ValueDecoder
}

/// Writes change events in a sink's own form. The builder reads the
/// replication protocol, follows transactions, numbers the changes and makes
/// the schema events; an encoder writes each row change's fields (those of
/// `EventField`, in that order) in its form. Each sink brings its encoder
/// (`EventSink.makeEncoder`): a new sink, or a new form (Avro for Kafka, say),
/// is one new file, and the builder does not change.
public protocol EventEncoder: AnyObject {
    func encode(_ change: RowChange) -> ChangeEvent
    /// The events encoded so far went to the sink as a batch: anything the
    /// encoder reuses between events starts afresh from here.
    func startBatch()
}

extension EventEncoder {
    public func startBatch() {}
}

/// Events as `EventDocument`s, for a sink that converts them (MongoDB's BSON,
/// the shapes): every field decoded to its value.
public final class DocumentEncoder: EventEncoder {
    private let slot: String
    private let decoder: ValueDecoder

    public init(_ context: EncoderContext) {
        slot = context.slot
        decoder = context.decoder
    }

    /// A row as a document, with the exact text of values the document rounds.
    struct Row {
        var document: EventDocument
        var exact: [(String, String)]
        /// A TOAST value the change did not touch, and the old row did not carry, is left out.
        var partial = false
    }

    public func encode(_ change: RowChange) -> ChangeEvent {
        let info = change.info
        switch change.operation {
        case .insert:
            let after = change.after.map { row(info, $0, old: nil) }
            return event("insert", change, before: nil, after: after, changes: nil)
        case .update:
            let before = change.before.map { row(info, $0, old: nil) }
            let after = change.after.map { row(info, $0, old: change.old) }
            var changes: EventDocument?
            if let before, let after, let old = change.old, let new = change.after {
                var fields = EventDocument()
                EventBuilder.forEachChangedColumn(old: old, new: new, columns: info.relation.columns.count) { column in
                    let name = info.relation.columns[column].name
                    fields.append(name, .document(EventDocument([("from", before.document[name] ?? .null),
                                                                 ("to", after.document[name] ?? .null)])))
                }
                changes = fields
            }
            var event = event("update", change, before: before, after: after, changes: changes)
            if let before, !info.keyNames.isEmpty {
                let previous = Self.entityID(of: before.document, info)
                if previous != event.entityId { event.previousEntityId = previous }
            }
            return event
        case .delete:
            return event("delete", change, before: change.before.map { row(info, $0, old: nil) }, after: nil, changes: nil)
        case .truncate:
            return event("truncate", change, before: nil, after: nil, changes: nil)
        }
    }

    /// A row as a document; TOAST values the change did not touch come from the old row.
    private func row(_ info: EventBuilder.RelationInfo, _ tuple: TupleData, old: TupleData?) -> Row {
        var document = EventDocument()
        document.reserveCapacity(info.relation.columns.count)
        var exact: [(String, String)] = []
        var partial = false
        for (index, column) in info.relation.columns.enumerated() where index < tuple.values.count {
            var value = tuple.values[index]
            if value == .unchangedToast, let old, index < old.values.count { value = old.values[index] }
            switch value {
            case .null: document.append(column.name, .null)
            case .unchangedToast: partial = true
            case let .binary(bytes): document.append(column.name, .binary(subtype: BinarySubtype.generic, bytes: Array(bytes)))
            case let .text(bytes):
                let decoded = decoder.decode(String(decoding: bytes, as: UTF8.self), plan: info.plans[index])
                document.append(column.name, decoded.value)
                if let text = decoded.exactText { exact.append((column.name, text)) }
            }
        }
        return Row(document: document, exact: exact, partial: partial)
    }

    static func entityID(of row: EventDocument, _ info: EventBuilder.RelationInfo) -> EventValue {
        if info.keyNames.count == 1 { return row[info.keyNames[0]] ?? .null }
        return .document(EventDocument(info.keyNames.map { ($0, row[$0] ?? .null) }))
    }

    private func event(_ operation: String, _ change: RowChange, before: Row?, after: Row?, changes: EventDocument?) -> ChangeEvent {
        var event = event(operation, change.info, lsn: change.lsn, transaction: change.transaction, position: change.position,
                          before: before, after: after, changes: changes)
        event.afterIsPartial = after?.partial ?? false
        return event
    }

    /// An event as a document: the fields of `EventField`, in order. The builder makes its schema events here too.
    func event(_ operation: String, _ info: EventBuilder.RelationInfo, lsn: LSN, transaction current: EventBuilder.Transaction,
               position: Int, before: Row?, after: Row?, changes: EventDocument?) -> ChangeEvent {
        var entityID: EventValue = .null
        if let source = (after ?? before)?.document, !info.keyNames.isEmpty { entityID = Self.entityID(of: source, info) }
        var metadata = EventDocument([
            ("lsn", .string(lsn.description)),
            ("commitLsn", .string(current.commitLSNText)),
            ("txId", .int64(Int64(current.xid))),
            ("slot", .string(slot)),
            ("table", .string(info.qualifiedName)),
        ])
        let exact: [(key: String, value: EventValue)] = (before?.exact.map { ("before.\($0.0)", EventValue.string($0.1)) } ?? [])
            + (after?.exact.map { ("after.\($0.0)", EventValue.string($0.1)) } ?? [])
        if !exact.isEmpty { metadata.append("exact", .document(EventDocument(exact))) }

        let id = ChangeEvent.id(prefix: current.idPrefix, position: position)
        let document = EventDocument([
            (EventField.id, .string(id)),
            (EventField.entityType, .string(info.qualifiedName)),
            (EventField.entityId, entityID),
            (EventField.changesetId, .string(current.changesetID ?? current.xidText)),
            (EventField.txId, .int64(Int64(current.xid))),
            (EventField.timestamp, .date(current.commitMilliseconds)),
            (EventField.userId, current.userID.map(EventValue.string) ?? .null),
            (EventField.operation, .string(operation)),
            (EventField.changes, changes.map(EventValue.document) ?? .null),
            (EventField.before, before.map { .document($0.document) } ?? .null),
            (EventField.after, after.map { .document($0.document) } ?? .null),
            (EventField.metadata, .document(metadata)),
        ])
        return ChangeEvent(commitLSN: current.commitLSN, position: position, document: document)
    }
}
