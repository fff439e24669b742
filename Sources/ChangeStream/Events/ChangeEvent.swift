import Postgres

/// One row change, as the document written to `changeEvents`:
///
///     {_id, entityType, entityId, changesetId, txId, timestamp, userId, operation,
///      changes: {field: {from, to}}, before, after,
///      metadata: {lsn, commitLsn, txId, slot, table, exact?}}
///
/// `_id` is `<slot>/<commit LSN, 16 hex digits>/<position, 8 digits>`: the same
/// change always gets the same _id, and _id order is commit order.
public struct ChangeEvent: Sendable {
    public var commitLSN: LSN
    public var position: Int
    /// The key the row had before an UPDATE that changed it (not written in the event).
    public var previousEntityId: EventValue?
    /// A delete of `previousEntityId` the shapes make from such an UPDATE.
    var removalOfPreviousKey = false
    /// `after` lacks a column: a TOAST value the UPDATE did not touch (the
    /// table's replica identity is not FULL). Its document keeps the old value.
    public var afterIsPartial = false
    /// The event as a document (empty when it was built as Extended JSON).
    public var document: EventDocument
    /// Where the event's JSON is, when it was built as Extended JSON for a
    /// JSON-lines sink (see `ExtendedJSONEncoder`): a range of the batch's
    /// buffer, followed there by a newline, so that a batch is written as it lies.
    let jsonChunk: JSONBuffer?
    let jsonRange: Range<Int>
    /// `<slot>/<commit LSN>/`, when the event was built as Extended JSON.
    let idPrefix: String?
    /// Whether the _id is only in the event's JSON (a backfill's, of its own
    /// form): read from there when asked, which is rare (a sink resuming).
    let idInJSON: Bool

    public init(commitLSN: LSN, position: Int, document: EventDocument) {
        self.commitLSN = commitLSN
        self.position = position
        self.document = document
        jsonChunk = nil
        jsonRange = 0..<0
        idPrefix = nil
        idInJSON = false
    }

    init(commitLSN: LSN, position: Int, idPrefix: String, chunk: JSONBuffer, range: Range<Int>) {
        self.commitLSN = commitLSN
        self.position = position
        document = EventDocument()
        jsonChunk = chunk
        jsonRange = range
        self.idPrefix = idPrefix
        idInJSON = false
    }

    /// An event whose JSON, in `chunk`, begins `{"_id": "<id>"` with an _id of plain characters.
    init(idInJSONOf chunk: JSONBuffer, range: Range<Int>) {
        commitLSN = .zero
        position = 0
        document = EventDocument()
        jsonChunk = chunk
        jsonRange = range
        idPrefix = nil
        idInJSON = true
    }

    /// The event as one line of relaxed Extended JSON, without its newline,
    /// when it was built that way: byte for byte what `ExtendedJSON` makes
    /// of the document the same change gives.
    public var extendedJSON: [UInt8]? {
        guard let chunk = jsonChunk else { return nil }
        return Array(UnsafeBufferPointer(rebasing: chunk.bytes[jsonRange]))
    }

    public var id: String {
        if idInJSON, let chunk = jsonChunk {
            let json = UnsafeBufferPointer(rebasing: chunk.bytes[jsonRange])
            let start = 9   // after {"_id": "
            guard json.count > start, let end = json[start...].firstIndex(of: UInt8(ascii: "\"")) else { return "" }
            return String(decoding: json[start..<end], as: UTF8.self)
        }
        if let idPrefix { return Self.id(prefix: idPrefix, position: position) }
        if case let .string(id)? = document["_id"] { return id }
        return ""
    }

    public static func id(slot: String, commitLSN: LSN, position: Int) -> String {
        id(prefix: idPrefix(slot: slot, commitLSN: commitLSN), position: position)
    }

    /// `<slot>/<commit LSN>/`, the part all events of a transaction share.
    static func idPrefix(slot: String, commitLSN: LSN) -> String {
        "\(slot)/\(commitLSN.sortable)/"
    }

    static func id(prefix: String, position: Int) -> String {
        var bytes = Array(prefix.utf8)
        appendPosition(position, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The position part of an _id: at least eight digits, zero-padded, so that text order is position order.
    static func appendPosition(_ position: Int, to output: inout some ByteOutput) {
        var digits = 1, limit = 10
        while position >= limit && digits < 18 { digits += 1; limit *= 10 }
        for _ in digits..<max(digits, 8) { output.append(UInt8(ascii: "0")) }
        ExtendedJSON.appendInteger(Int64(position), to: &output)
    }
}

/// The fields of a change event, named once: the event builders write them,
/// the MongoDB shapes and `verify` read them.
public enum EventField {
    public static let id = "_id"
    public static let entityType = "entityType"
    public static let entityId = "entityId"
    public static let changesetId = "changesetId"
    public static let txId = "txId"
    public static let timestamp = "timestamp"
    public static let userId = "userId"
    public static let operation = "operation"
    public static let changes = "changes"
    public static let before = "before"
    public static let after = "after"
    public static let metadata = "metadata"
}

extension ChangeEvent {
    /// The table, as `format('%I.%I')` names it.
    public var entityType: String? { document.string(EventField.entityType) }
    public var entityId: EventValue { document[EventField.entityId] ?? .null }
    /// insert, update, delete, truncate, snapshot or schema.
    public var operation: String? { document.string(EventField.operation) }
    public var before: EventDocument? { document.subdocument(EventField.before) }
    public var after: EventDocument? { document.subdocument(EventField.after) }
    public var changes: EventValue { document[EventField.changes] ?? .null }
    public var timestamp: EventValue { document[EventField.timestamp] ?? .null }
    public var userId: EventValue { document[EventField.userId] ?? .null }
    public var changesetId: EventValue { document[EventField.changesetId] ?? .null }
    public var txId: EventValue { document[EventField.txId] ?? .null }
}

extension ChangeEvent {
    /// The UPDATE that changed a row's key, as the delete of the old key it implies.
    func removal(of key: EventValue) -> ChangeEvent {
        var removal = ChangeEvent(commitLSN: commitLSN, position: position, document: EventDocument(document.fields.map { field in
            switch field.key {
            case EventField.entityId: (field.key, key)
            case EventField.operation: (field.key, .string("delete"))
            case EventField.after, EventField.changes: (field.key, .null)
            default: field
            }
        }))
        removal.removalOfPreviousKey = true
        return removal
    }
}

extension EventDocument {
    func string(_ key: String) -> String? {
        if case let .string(text)? = self[key] { return text }
        return nil
    }

    func subdocument(_ key: String) -> EventDocument? {
        if case let .document(document)? = self[key] { return document }
        return nil
    }
}
