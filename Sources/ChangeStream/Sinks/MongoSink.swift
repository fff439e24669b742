/// Change events into MongoDB, in the shapes the options name (seed 000):
/// the events collection, and the keyed shapes (current, history, embedded).
/// Every shape of a batch is written, with the write concern, before `write`
/// returns, so nothing is confirmed to PostgreSQL before all of them hold it.
/// Events are inserted with their fixed _id (a replay is a duplicate key,
/// skipped); the keyed shapes condition each write on the event's _id.
public final class MongoSink: EventSink {
    public let connection: MongoConnection
    public let options: ShapeOptions
    public let description: String
    private let keyed: KeyedShapes?

    public init(uri: String, database: String, options: ShapeOptions, writeConcern: String = "majority") throws {
        connection = try MongoConnection(uri: uri, database: database, writeConcern: writeConcern)
        self.options = options
        keyed = options.keyed ? KeyedShapes(options: options, mongo: connection) : nil
        let shapes = Shape.allCases.filter { options.shapes.contains($0) }.map(\.rawValue).joined(separator: ", ")
        description = options.shapes == [.events]
            ? "\(connection.shownURI) \(database).\(options.eventsCollection)"
            : "\(connection.shownURI) \(database) (\(shapes))"
    }

    /// Events only, into one collection.
    public convenience init(uri: String, database: String, collection: String, writeConcern: String = "majority") throws {
        var options = ShapeOptions()
        options.eventsCollection = collection
        try self.init(uri: uri, database: database, options: options, writeConcern: writeConcern)
    }

    /// Checks that MongoDB answers, in MongoDB's words when it does not.
    public func ping() throws { try connection.ping() }

    /// The collection where each stream records what it writes (read by `temporal verify`).
    public static let streamsCollection = "temporalStreams"

    /// Records, under the slot's name, which shapes and collections this
    /// stream writes, so that `temporal verify` knows where to look.
    public func register(slot: String, publication: String) throws {
        var map = EventDocument()
        for (table, collection) in options.collectionMap.sorted(by: { $0.key < $1.key }) { map.append(table, .string(collection)) }
        let record = EventDocument([
            ("publication", .string(publication)),
            ("shapes", .array(Shape.allCases.filter { options.shapes.contains($0) }.map { .string($0.rawValue) })),
            ("eventsCollection", .string(options.eventsCollection)),
            ("collectionMap", .document(map)),
            ("softDelete", .bool(options.softDelete)),
            ("embedLast", .int32(Int32(options.embedLast))),
        ])
        try connection.bulkWrite([.updateOne(filter: EventDocument([(EventField.id, .string(slot))]),
                                             update: EventDocument([("$set", .document(record))]), upsert: true)],
                                 into: Self.streamsCollection)
    }

    @discardableResult
    public func write(_ events: [ChangeEvent]) throws -> Int {
        guard !events.isEmpty else { return 0 }
        // A document without its _id would get one from MongoDB, and be stored again on a replay.
        guard events.allSatisfy({ $0.jsonChunk == nil }) else {
            throw SinkError("events built as Extended JSON lines cannot go to MongoDB; build them as documents", retryable: false)
        }
        var stored = 0
        if options.shapes.contains(.events) {
            // Duplicates (events stored before a crash or a reconnection) are not counted.
            stored = try connection.bulkWrite(events.map { .insert($0.document) }, into: options.eventsCollection).inserted
        }
        if let keyed {
            let applied = try keyed.write(events)
            if !options.shapes.contains(.events) { stored = applied }
        }
        return stored
    }

    /// What the shapes know of MongoDB's state is read again.
    public func resume() throws { keyed?.reset() }

    /// The URI without user name and password.
    public static func redact(_ uri: String) -> String { MongoConnection.redact(uri) }
}
