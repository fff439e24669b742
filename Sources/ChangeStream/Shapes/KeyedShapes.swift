/// The shapes kept per row key: `current` (one document per row),
/// `history` (one document per version) and `embedded` (the current document
/// carries its last versions). They share one state per key: its version and
/// the _id of the last event applied to it.
///
/// Exactly once, order-safe: every write carries the event's _id (commit
/// order) and is conditioned on it: a current document is written only where
/// its `lastPosition` (the event's _id without the slot: commit LSN and
/// position) is older; history documents have the event's _id as theirs. An
/// event at or before a key's `lastPosition` was applied before (a
/// replay after a crash) and is skipped, so versions stay dense. A deleted
/// row's state stays in `temporalTombstones`, so that a replayed insert does
/// not bring it back and a new insert continues its versions.
///
/// Within a batch the writes go history first, then tombstones, then
/// removals, then the current documents: a crash between them leaves states
/// that the replay of the same events completes to the same result.
final class KeyedShapes {
    struct KeyState {
        var version: Int64 = 0
        /// The commit position of the last event applied: its _id without the
        /// slot's name, so that a new slot on the same collections goes on in order.
        var lastPosition = ""
        /// A current document holds the row (not deleted, not soft-deleted).
        var exists = false
        /// A current document is there (holding the row, or soft-deleted).
        var present = false
    }

    static let tombstones = "temporalTombstones"
    /// Keys whose state is kept in memory; beyond it the states are read from MongoDB again.
    static let cacheLimit = 200_000

    private let options: ShapeOptions
    private let mongo: MongoConnection
    private var cache: [String: [String: KeyState]] = [:]
    private var cached = 0
    /// Collections whose every key's state is in `cache` (they were empty when first seen).
    private var complete: Set<String> = []
    private var prepared: Set<String> = []

    init(options: ShapeOptions, mongo: MongoConnection) {
        self.options = options
        self.mongo = mongo
    }

    /// Forgets what it knows of MongoDB's state: read again when next needed.
    func reset() {
        cache = [:]
        cached = 0
        complete = []
    }

    /// Applies the events; returns how many were new (not applied before).
    func write(_ events: [ChangeEvent]) throws -> Int {
        var applied = 0
        var segment: [ChangeEvent] = []
        for event in events {
            switch event.operation {
            case "truncate", "schema":
                applied += try writeRows(segment)
                segment = []
                applied += try writeTableEvent(event)
            default:
                segment.append(event)
            }
        }
        return applied + (try writeRows(segment))
    }

    // MARK: - Row changes

    /// What a batch does to one key's documents.
    private struct Pending {
        var key: EventValue
        var state: KeyState
        /// The row's fields to set (the last change's after image, merged).
        var fields = EventDocument()
        /// A hard delete in the batch: remove the document (and leave a tombstone) before anything else.
        var removeBefore: (eventId: String, position: String, version: Int64, at: EventValue)?
        var softDeletedAt: EventValue?
        var embedded: [EventValue] = []
        /// The commit time of the last change, and the _id of its event.
        var updatedAt: EventValue = .null
        var lastEventId = ""
        /// `fields` is the whole row (not merged into what the document holds).
        var whole = false
        /// No document is there when the batch's writes begin: it is inserted,
        /// which cannot overwrite anything (a replay's insert is a duplicate _id).
        var absent = false
    }

    private func writeRows(_ changes: [ChangeEvent]) throws -> Int {
        guard !changes.isEmpty else { return 0 }
        // An UPDATE that changes the key ends the old key's row: a delete of it comes first.
        var events: [ChangeEvent] = []
        events.reserveCapacity(changes.count)
        for event in changes {
            if let previous = event.previousEntityId { events.append(event.removal(of: previous)) }
            events.append(event)
        }
        // The targets, and the states of keys not in memory.
        var missing: [String: [(String, EventValue)]] = [:]
        var seen: Set<String> = []
        for event in events {
            guard let table = event.entityType else { continue }
            let collection = options.collection(for: table)
            try prepare(collection)
            if complete.contains(collection) { continue }
            let key = event.entityId, text = key.keyText
            if cache[collection]?[text] == nil, seen.insert(collection + "\u{0}" + text).inserted {
                missing[collection, default: []].append((text, key))
            }
        }
        var looked: [String: [String: KeyState]] = [:]
        for (collection, keys) in missing { looked[collection] = try lookUp(keys, in: collection) }

        var pending: [String: [String: Pending]] = [:]
        var order: [String: [String]] = [:]
        var history: [String: [MongoWrite]] = [:]
        var applied = 0
        for event in events {
            guard let table = event.entityType, let operation = event.operation else { continue }
            let collection = options.collection(for: table)
            let key = event.entityId, text = key.keyText
            var entry = pending[collection]?[text]
                ?? Pending(key: key, state: cache[collection]?[text] ?? looked[collection]?[text] ?? KeyState())
            if pending[collection]?[text] == nil { entry.absent = !entry.state.present }
            if pending[collection]?[text] == nil { order[collection, default: []].append(text) }
            let id = event.id + (event.previousEntityId == nil && event.removalOfPreviousKey ? "/previous" : "")
            let position = Self.position(of: id)
            guard position > entry.state.lastPosition else {
                pending[collection, default: [:]][text] = entry
                continue   // applied before: a replay
            }
            applied += 1
            let newVersion = !(operation == "snapshot" && entry.state.exists)
            if newVersion { entry.state.version += 1 }
            entry.state.lastPosition = position
            entry.lastEventId = id
            entry.updatedAt = event.timestamp
            let after = event.after
            if newVersion && options.shapes.contains(.history) {
                history[options.historyCollection(for: table), default: []].append(.insert(historyDocument(
                    id: id, event: event, operation: operation, version: entry.state.version,
                    snapshot: operation == "delete" ? .null : (after.map(EventValue.document) ?? .null))))
            }
            switch operation {
            case "delete":
                entry.state.exists = false
                if options.softDelete {
                    entry.softDeletedAt = event.timestamp
                    entry.state.present = true
                } else {
                    entry.removeBefore = (id, position, entry.state.version, event.timestamp)
                    entry.fields = EventDocument()
                    entry.embedded = []
                    entry.whole = false
                    entry.absent = true
                    entry.state.present = false
                }
            default:
                if operation == "insert" || operation == "snapshot" || !entry.state.exists || !event.afterIsPartial {
                    entry.fields = EventDocument()
                    entry.whole = after != nil && !event.afterIsPartial
                }
                entry.state.exists = true
                entry.state.present = true
                entry.softDeletedAt = nil
                for field in (after ?? event.before ?? EventDocument()).fields where field.key != EventField.id {
                    entry.fields.set(field.key, field.value)
                }
            }
            // A removed document takes its embedded versions with it.
            if newVersion && options.shapes.contains(.embedded) && (operation != "delete" || options.softDelete) {
                entry.embedded.append(.document(EventDocument([
                    ("version", .int64(entry.state.version)), ("changedAt", event.timestamp), ("changedBy", event.userId),
                    ("changesetId", event.changesetId), ("operation", .string(operation)), ("changes", event.changes),
                ])))
            }
            pending[collection, default: [:]][text] = entry
        }

        for (name, writes) in history { try mongo.bulkWrite(writes, into: name) }
        var removals: [String: [MongoWrite]] = [:], upserts: [String: [MongoWrite]] = [:], tombstones: [MongoWrite] = []
        for (collection, keys) in order {
            for text in keys {
                guard let entry = pending[collection]?[text], !entry.state.lastPosition.isEmpty else { continue }
                if let removed = entry.removeBefore {
                    removals[collection, default: []].append(.deleteOne(filter: EventDocument([
                        (EventField.id, entry.key), ("lastPosition", .document(EventDocument([("$lt", .string(removed.position))]))),
                    ])))
                    tombstones.append(tombstone(collection: collection, key: entry.key, version: removed.version,
                                                eventId: removed.eventId, position: removed.position, at: removed.at))
                }
                if entry.state.exists || entry.softDeletedAt != nil {
                    upserts[collection, default: []].append(upsert(entry))
                }
            }
        }
        // A tombstone before its removal: a crash between them must not lose the key's versions.
        try mongo.bulkWrite(tombstones, into: Self.tombstones)
        for (name, writes) in removals { try mongo.bulkWrite(writes, into: name) }
        for (name, writes) in upserts { try mongo.bulkWrite(writes, into: name) }

        // Written: what is known of each key is now MongoDB's state.
        for (collection, entries) in pending {
            for (text, entry) in entries where !entry.state.lastPosition.isEmpty { remember(collection, text, entry.state) }
        }
        return applied
    }

    private func historyDocument(id: String, event: ChangeEvent, operation: String, version: Int64, snapshot: EventValue) -> EventDocument {
        EventDocument([
            (EventField.id, .string(id)),
            ("entityId", event.entityId),
            ("version", .int64(version)),
            ("changedAt", event.timestamp),
            ("changedBy", event.userId),
            ("changesetId", event.changesetId),
            ("txId", event.txId),
            ("operation", .string(operation)),
            ("changes", event.changes),
            ("snapshot", snapshot),
        ])
    }

    private func upsert(_ entry: Pending) -> MongoWrite {
        let filter = EventDocument([
            (EventField.id, entry.key), ("lastPosition", .document(EventDocument([("$lt", .string(entry.state.lastPosition))]))),
        ])
        func whole() -> EventDocument {
            var document = EventDocument([(EventField.id, entry.key)])
            for field in entry.fields.fields { document.append(field.key, field.value) }
            document.append("currentVersion", .int64(entry.state.version))
            document.append("updatedAt", entry.updatedAt)
            document.append("lastEventId", .string(entry.lastEventId))
            document.append("lastPosition", .string(entry.state.lastPosition))
            if let deletedAt = entry.softDeletedAt { document.append("deletedAt", deletedAt) }
            return document
        }
        // No document there: an insert (the cheapest write, and one that cannot overwrite).
        if entry.absent && (entry.whole || entry.softDeletedAt != nil) {
            var document = whole()
            if !entry.embedded.isEmpty { document.append("_history", .array(Array(entry.embedded.suffix(options.embedLast)))) }
            return .insert(document)
        }
        // The whole row, nothing kept from before: a replacement.
        if entry.whole && entry.softDeletedAt == nil && !options.shapes.contains(.embedded) {
            return .replaceOne(filter: filter, replacement: whole(), upsert: true)
        }
        var set = entry.fields
        set.set("currentVersion", .int64(entry.state.version))
        set.set("updatedAt", entry.updatedAt)
        set.set("lastEventId", .string(entry.lastEventId))
        set.set("lastPosition", .string(entry.state.lastPosition))
        if let deletedAt = entry.softDeletedAt { set.set("deletedAt", deletedAt) }
        var update = EventDocument()
        update.append("$set", .document(set))
        if entry.softDeletedAt == nil {
            if options.softDelete { update.append("$unset", .document(EventDocument([("deletedAt", .string(""))]))) }
        }
        if !entry.embedded.isEmpty {
            update.append("$push", .document(EventDocument([("_history", .document(EventDocument([
                ("$each", .array(entry.embedded)), ("$slice", .int32(Int32(-options.embedLast))),
            ])))])))
        }
        return .updateOne(filter: filter, update: update, upsert: true)
    }

    /// A tombstone's _id: the collection and the key's text (a string: MongoDB
    /// stand-ins find document-valued _ids slowly).
    private static func tombstoneID(_ collection: String, _ key: EventValue) -> EventValue {
        .string(collection + "\u{0}" + key.keyText)
    }

    private func tombstone(collection: String, key: EventValue, version: Int64, eventId: String, position: String,
                           at: EventValue) -> MongoWrite {
        .updateOne(filter: EventDocument([
            (EventField.id, Self.tombstoneID(collection, key)),
            ("lastPosition", .document(EventDocument([("$lt", .string(position))]))),
        ]), update: EventDocument([("$set", .document(EventDocument([
            ("collection", .string(collection)), ("key", key),
            ("version", .int64(version)), ("lastEventId", .string(eventId)), ("lastPosition", .string(position)), ("deletedAt", at),
        ])))]), upsert: true)
    }

    // MARK: - Key states

    /// An event's _id without the slot's name (`<commit LSN>/<position>`), which sorts in commit order.
    static func position(of id: String) -> String {
        guard let slash = id.firstIndex(of: "/") else { return id }
        return String(id[id.index(after: slash)...])
    }

    private func remember(_ collection: String, _ text: String, _ state: KeyState) {
        if cache[collection]?[text] == nil {
            if cached >= Self.cacheLimit { reset() }
            cached += 1
        }
        cache[collection, default: [:]][text] = state
    }

    /// The states of keys, from their current documents, else their tombstones.
    private func lookUp(_ keys: [(String, EventValue)], in collection: String) throws -> [String: KeyState] {
        var states: [String: KeyState] = [:]
        for chunk in stride(from: 0, to: keys.count, by: 1000).map({ keys[$0..<min($0 + 1000, keys.count)] }) {
            try mongo.find(collection, filter: EventDocument([(EventField.id, .document(EventDocument([("$in", .array(chunk.map(\.1)))])))]),
                           options: EventDocument([("projection", .document(EventDocument([
                               ("currentVersion", .int32(1)), ("lastPosition", .int32(1)), ("deletedAt", .int32(1))])))])) { bson in
                let document = BSONReader.document(bson)
                states[(document[EventField.id] ?? .null).keyText] = KeyState(
                    version: document["currentVersion"]?.integer ?? 0,
                    lastPosition: document.string("lastPosition") ?? "",
                    exists: document["deletedAt"] == nil, present: true)
            }
            let gone = chunk.filter { states[$0.0] == nil }
            guard !gone.isEmpty else { continue }
            let ids = gone.map { Self.tombstoneID(collection, $0.1) }
            try mongo.find(Self.tombstones, filter: EventDocument([(EventField.id, .document(EventDocument([("$in", .array(ids))])))])) { bson in
                let document = BSONReader.document(bson)
                guard let key = document["key"] else { return }
                states[key.keyText] = KeyState(version: document["version"]?.integer ?? 0,
                                               lastPosition: document.string("lastPosition") ?? "", exists: false, present: false)
            }
        }
        return states
    }

    /// Indexes a collection's history, and notes whether the collection is
    /// new (then every key's state is known from here on).
    private func prepare(_ collection: String) throws {
        guard prepared.insert(collection).inserted else { return }
        do {
            if options.shapes.contains(.history) {
                try mongo.ensureIndex(collection: collection + "History", keys: EventDocument([("entityId", .int32(1)), ("version", .int32(1))]),
                                      name: "entityId_version")
            }
            var any = false
            try mongo.find(collection, filter: EventDocument(), options: EventDocument([("limit", .int32(1))])) { _ in any = true }
            if !any {
                try mongo.find(Self.tombstones, filter: EventDocument([("collection", .string(collection))]),
                               options: EventDocument([("limit", .int32(1))])) { _ in any = true }
            }
            if !any { complete.insert(collection) }
        } catch {
            prepared.remove(collection)
            throw error
        }
    }

    // MARK: - TRUNCATE and schema changes

    private func writeTableEvent(_ event: ChangeEvent) throws -> Int {
        guard let table = event.entityType else { return 0 }
        let collection = options.collection(for: table)
        try prepare(collection)
        let id = event.id
        let position = Self.position(of: id)
        let older = EventDocument([("lastPosition", .document(EventDocument([("$lt", .string(position))])))])
        if event.operation == "schema" {
            // A dropped column leaves the documents; they keep only what the table has.
            guard case let .document(changes) = event.changes else { return 0 }
            var unset = EventDocument()
            for field in changes.fields {
                if case let .document(change) = field.value, change["to"] == .null { unset.append(field.key, .string("")) }
            }
            if !unset.isEmpty {
                try mongo.bulkWrite([.updateMany(filter: older, update: EventDocument([("$unset", .document(unset))]))], into: collection)
            }
            return 1
        }
        // TRUNCATE: every row it empties gets its version (and tombstone), then the documents go.
        var live = older
        if options.softDelete { live.append("deletedAt", .document(EventDocument([("$exists", .bool(false))]))) }
        var rows: [(EventValue, KeyState)] = []
        func flush() throws {
            var history: [MongoWrite] = [], tombstones: [MongoWrite] = [], softDeletes: [MongoWrite] = []
            for (key, state) in rows {
                if options.shapes.contains(.history) {
                    var document = historyDocument(id: id + "/" + key.keyText, event: event, operation: "truncate",
                                                   version: state.version, snapshot: .null)
                    document.set("entityId", key)
                    history.append(.insert(document))
                }
                if options.softDelete {
                    softDeletes.append(.updateOne(filter: EventDocument([(EventField.id, key)] + older.fields), update: EventDocument([
                        ("$set", .document(EventDocument([("currentVersion", .int64(state.version)), ("lastEventId", .string(id)), ("lastPosition", .string(position)),
                                                          ("updatedAt", event.timestamp), ("deletedAt", event.timestamp)])))]), upsert: false))
                } else {
                    tombstones.append(tombstone(collection: collection, key: key, version: state.version, eventId: id,
                                                position: position, at: event.timestamp))
                }
                remember(collection, key.keyText, state)
            }
            try mongo.bulkWrite(history, into: options.historyCollection(for: table))
            try mongo.bulkWrite(tombstones, into: Self.tombstones)
            try mongo.bulkWrite(softDeletes, into: collection)
            rows = []
        }
        var batch: [(EventValue, KeyState)] = []
        try mongo.find(collection, filter: live, options: EventDocument([
            ("projection", .document(EventDocument([("currentVersion", .int32(1))]))), ("sort", .document(EventDocument([(EventField.id, .int32(1))]))),
        ])) { bson in
            let document = BSONReader.document(bson)
            let key = document[EventField.id] ?? .null
            batch.append((key, KeyState(version: (document["currentVersion"]?.integer ?? 0) + 1, lastPosition: position, exists: false,
                                        present: options.softDelete)))
        }
        // (Read first, then written: a cursor and writes on one client do not interleave.)
        for start in stride(from: 0, to: batch.count, by: 1000) {
            rows = Array(batch[start..<min(start + 1000, batch.count)])
            try flush()
        }
        if !options.softDelete { try mongo.bulkWrite([.deleteMany(filter: older)], into: collection) }
        return 1
    }
}

extension EventValue {
    /// The value as an integer, when it is a BSON number.
    var integer: Int64? {
        switch self {
        case let .int32(number): Int64(number)
        case let .int64(number): number
        case let .double(number): Int64(exactly: number)
        default: nil
        }
    }
}
