import CBSON

/// One write of a bulk: what the shapes and the events ask MongoDB to do.
public enum MongoWrite {
    case insert(EventDocument)
    /// An update with operators ($set, $unset, $push); an upsert inserts when nothing matches.
    case updateOne(filter: EventDocument, update: EventDocument, upsert: Bool)
    /// The whole document replaced (its _id kept); an upsert inserts when nothing matches.
    case replaceOne(filter: EventDocument, replacement: EventDocument, upsert: Bool)
    case updateMany(filter: EventDocument, update: EventDocument)
    case deleteOne(filter: EventDocument)
    case deleteMany(filter: EventDocument)
}

/// A MongoDB deployment through the official C driver (libmongoc): one
/// client, one write concern for every collection, bulk writes and reads.
/// Credentials in the URI never reach logs or errors.
public final class MongoConnection {
    let driver: MongoDriver
    private let client: OpaquePointer
    private let writeConcern: OpaquePointer
    public let database: String
    /// The URI without credentials, for logs and errors.
    public let shownURI: String
    private var collections: [String: OpaquePointer] = [:]

    /// - Parameters:
    ///   - writeConcern: `majority` (the default), or a number of nodes; always journaled.
    ///   - socketTimeoutMilliseconds: how long one reply may take, unless the URI says
    ///     (a stream retries soon; a long sorted read's first batch can take minutes).
    public init(uri: String, database: String, writeConcern concern: String = "majority",
                socketTimeoutMilliseconds: Int32 = 30000) throws {
        let driver: MongoDriver
        switch MongoDriver.shared {
        case let .success(loaded): driver = loaded
        case let .failure(error): throw error
        }
        self.driver = driver
        self.database = database
        let shown = MongoConnection.redact(uri)
        shownURI = shown
        var error = bson_error_t()
        guard let parsed = driver.uriNewWithError(uri, &error) else {
            throw SinkError("invalid MongoDB URI \(shown): \(BSON.message(error))", retryable: false)
        }
        defer { driver.uriDestroy(parsed) }
        // Bound every attempt well inside wal_sender_timeout; the stream retries.
        if !uri.contains("serverSelectionTimeoutMS") { _ = driver.uriSetOptionAsInt32(parsed, MongoDriver.serverSelectionTimeoutOption, 5000) }
        if !uri.contains("socketTimeoutMS") {
            _ = driver.uriSetOptionAsInt32(parsed, MongoDriver.socketTimeoutOption, socketTimeoutMilliseconds)
        }
        _ = driver.uriSetAppname(parsed, "temporal")
        guard let client = driver.clientNewFromURIWithError(parsed, &error) else {
            throw SinkError("cannot use MongoDB at \(shown): \(BSON.message(error))", retryable: false)
        }
        _ = driver.clientSetErrorAPI(client, 2)
        self.client = client
        writeConcern = driver.writeConcernNew()!
        if concern == "majority" {
            driver.writeConcernSetW(writeConcern, MongoDriver.majority)
        } else if let nodes = Int32(concern), nodes >= 1 {
            driver.writeConcernSetW(writeConcern, nodes)
        } else {
            driver.writeConcernDestroy(writeConcern)
            driver.clientDestroy(client)
            throw SinkError("write concern must be majority or a number of nodes, not \(concern)", retryable: false)
        }
        driver.writeConcernSetJournal(writeConcern, true)
    }

    deinit {
        for collection in collections.values { driver.collectionDestroy(collection) }
        driver.writeConcernDestroy(writeConcern)
        driver.clientDestroy(client)
    }

    func collection(_ name: String) -> OpaquePointer {
        if let known = collections[name] { return known }
        let made = driver.clientGetCollection(client, database, name)!
        collections[name] = made
        return made
    }

    /// Checks that MongoDB answers, in MongoDB's words when it does not.
    public func ping() throws {
        try command(EventDocument([("ping", .int32(1))]), database: "admin",
                    failure: "MongoDB at \(shownURI) does not answer")
    }

    /// Runs a command; `failure` starts the error's message.
    public func command(_ command: EventDocument, database: String? = nil, failure: String) throws {
        let bson = BSON.make(command)
        defer { bson_destroy(bson) }
        var error = bson_error_t()
        try BSON.withReply { reply in
            if !driver.clientCommandSimple(client, database ?? self.database, bson, nil, reply, &error) {
                throw SinkError("\(failure): \(BSON.message(error))")
            }
        }
    }

    /// Creates an index unless it exists (MongoDB's createIndexes is idempotent).
    public func ensureIndex(collection name: String, keys: EventDocument, name indexName: String, unique: Bool = false) throws {
        var index = EventDocument([("key", .document(keys)), ("name", .string(indexName))])
        if unique { index.append("unique", .bool(true)) }
        try command(EventDocument([("createIndexes", .string(name)), ("indexes", .array([.document(index)]))]),
                    failure: "MongoDB refused an index on \(database).\(name)")
    }

    /// What a bulk write did: `inserted`, and the writes found already done
    /// (a duplicate key: the document was stored by an earlier attempt, or an
    /// upsert's condition found a newer one).
    public struct BulkResult {
        public var inserted = 0
        public var upserted = 0
        public var matched = 0
        public var removed = 0
    }

    /// One unordered bulk write into a collection with the write concern.
    /// Duplicate keys are not errors (see BulkResult); anything else is.
    @discardableResult
    public func bulkWrite(_ writes: [MongoWrite], into name: String) throws -> BulkResult {
        guard !writes.isEmpty else { return BulkResult() }
        let options = BSON.make(EventDocument([("ordered", .bool(false))]))
        defer { bson_destroy(options) }
        _ = driver.writeConcernAppend(writeConcern, options)
        let bulk = driver.collectionCreateBulkOperationWithOpts(collection(name), options)
        defer { driver.bulkOperationDestroy(bulk) }
        // json and jsonb keep their keys as the row has them ("$date", "a.b"):
        // the client's own check of such keys is off, the server decides.
        let plain = BSON.make(EventDocument([("validate", .bool(false))]))
        defer { bson_destroy(plain) }
        let upsert = BSON.make(EventDocument([("upsert", .bool(true)), ("validate", .bool(false))]))
        defer { bson_destroy(upsert) }
        var error = bson_error_t()
        for write in writes {
            let accepted: Bool
            switch write {
            case let .insert(document):
                let bson = BSON.make(document)
                defer { bson_destroy(bson) }
                accepted = driver.bulkOperationInsertWithOpts(bulk, bson, plain, &error)
            case let .updateOne(filter, update, isUpsert):
                let selector = BSON.make(filter), change = BSON.make(update)
                defer { bson_destroy(selector); bson_destroy(change) }
                accepted = driver.bulkOperationUpdateOneWithOpts(bulk, selector, change, isUpsert ? upsert : plain, &error)
            case let .replaceOne(filter, replacement, isUpsert):
                let selector = BSON.make(filter), document = BSON.make(replacement)
                defer { bson_destroy(selector); bson_destroy(document) }
                accepted = driver.bulkOperationReplaceOneWithOpts(bulk, selector, document, isUpsert ? upsert : plain, &error)
            case let .updateMany(filter, update):
                let selector = BSON.make(filter), change = BSON.make(update)
                defer { bson_destroy(selector); bson_destroy(change) }
                accepted = driver.bulkOperationUpdateManyWithOpts(bulk, selector, change, plain, &error)
            case let .deleteOne(filter):
                let selector = BSON.make(filter)
                defer { bson_destroy(selector) }
                accepted = driver.bulkOperationRemoveOneWithOpts(bulk, selector, nil, &error)
            case let .deleteMany(filter):
                let selector = BSON.make(filter)
                defer { bson_destroy(selector) }
                accepted = driver.bulkOperationRemoveManyWithOpts(bulk, selector, nil, &error)
            }
            guard accepted else {
                throw SinkError("MongoDB refused a write to \(name) before sending it: \(BSON.message(error))", retryable: false)
            }
        }
        return try BSON.withReply { reply in
            if driver.bulkOperationExecute(bulk, reply, &error) == 0 {
                try MongoConnection.check(reply: reply, error: error)
            }
            var result = BulkResult()
            let iterator = AlignedStorage()
            func count(_ key: String) -> Int {
                bson_iter_init_find(iterator.pointer, reply, key) ? Int(bson_iter_as_int64(iterator.pointer)) : 0
            }
            result.inserted = count("nInserted")
            result.upserted = count("nUpserted")
            result.matched = count("nMatched")
            result.removed = count("nRemoved")
            return result
        }
    }

    /// Calls `body` with each document `filter` finds, in the order `options` gives
    /// (`sort`, `projection`, `batchSize`, ...), as it arrives: memory holds one batch.
    public func find(_ name: String, filter: EventDocument, options: EventDocument = EventDocument(),
                     _ body: (OpaquePointer) throws -> Void) throws {
        let query = BSON.make(filter), opts = BSON.make(options)
        defer { bson_destroy(query); bson_destroy(opts) }
        let cursor = driver.collectionFindWithOpts(collection(name), query, opts, nil)
        defer { driver.cursorDestroy(cursor) }
        try drain(cursor, reading: name, body)
    }

    /// Runs an aggregation pipeline and calls `body` with each result document.
    public func aggregate(_ name: String, pipeline: [EventDocument], _ body: (OpaquePointer) throws -> Void) throws {
        let stages = BSON.make(EventDocument(pipeline.enumerated().map { (String($0.offset), EventValue.document($0.element)) }))
        defer { bson_destroy(stages) }
        let cursor = driver.collectionAggregate(collection(name), 0, stages, nil, nil)
        defer { driver.cursorDestroy(cursor) }
        try drain(cursor, reading: name, body)
    }

    private func drain(_ cursor: OpaquePointer?, reading name: String, _ body: (OpaquePointer) throws -> Void) throws {
        var document: OpaquePointer?
        while driver.cursorNext(cursor, &document) {
            if let document { try body(document) }
        }
        var error = bson_error_t()
        if driver.cursorError(cursor, &error) {
            throw SinkError("MongoDB: reading \(database).\(name): \(BSON.message(error))")
        }
    }

    /// A bulk write whose only errors are duplicate keys succeeded: those
    /// writes were done before. Anything else is an error to retry.
    static func check(reply: OpaquePointer, error: bson_error_t) throws {
        var codes: [Int32] = []
        var messages: [String] = []
        let duplicateKey: Int32 = 11000
        forEachItem(of: "writeErrors", in: reply) { item in
            var code: Int32 = 0
            var message = ""
            while bson_iter_next(item) {
                switch String(cString: bson_iter_key(item)) {
                case "code": code = bson_iter_int32(item)
                case "errmsg": message = String(cString: bson_iter_utf8(item, nil))
                default: break
                }
            }
            // Only a duplicate _id is a write done before; a duplicate in another
            // unique index (a history's entityId and version) is an error.
            if code == duplicateKey && !message.isEmpty && !message.contains("_id_") { code = -1 }
            codes.append(code)
            messages.append(message)
        }
        var concernFailed = false
        forEachItem(of: "writeConcernErrors", in: reply) { _ in concernFailed = true }
        if !codes.isEmpty && codes.allSatisfy({ $0 == duplicateKey }) && !concernFailed {
            return
        }
        let refused = codes.contains { $0 != duplicateKey }
        let detail = zip(codes, messages).first { $0.0 != duplicateKey && !$0.1.isEmpty }?.1 ?? BSON.message(error)
        throw SinkError("MongoDB: \(detail)", retryable: !refused || concernFailed)
    }

    /// Calls `body` with an iterator into each document of the array `key` of `reply`.
    private static func forEachItem(of key: String, in reply: OpaquePointer, _ body: (OpaquePointer) -> Void) {
        let array = AlignedStorage(), items = AlignedStorage(), item = AlignedStorage()
        guard bson_iter_init_find(array.pointer, reply, key), bson_iter_type(array.pointer) == BSON_TYPE_ARRAY,
              bson_iter_recurse(array.pointer, items.pointer) else { return }
        while bson_iter_next(items.pointer) {
            if bson_iter_recurse(items.pointer, item.pointer) { body(item.pointer) }
        }
    }

    /// The URI without user name and password.
    public static func redact(_ uri: String) -> String {
        guard let scheme = uri.range(of: "://") else { return uri }
        let rest = uri[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return uri }
        return String(uri[..<scheme.upperBound]) + "***@" + String(rest[rest.index(after: at)...])
    }
}
