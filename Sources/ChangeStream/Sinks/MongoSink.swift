import CBSON
import Foundation

/// Events into a MongoDB collection through the official C driver
/// (libmongoc). Each batch is one unordered bulk insert with the chosen write
/// concern; a duplicate-key error means the event is already there (its _id
/// is fixed by the change), so replays after a crash duplicate nothing.
public final class MongoSink: EventSink {
    private let client: OpaquePointer
    private let collection: OpaquePointer
    private let writeConcern: OpaquePointer
    public let description: String

    /// - Parameters:
    ///   - uri: a MongoDB URI; credentials in it never reach logs or errors.
    ///   - writeConcern: `majority` (the default), or a number of nodes; always journaled.
    public init(uri: String, database: String, collection name: String, writeConcern concern: String = "majority") throws {
        let driver = try MongoSink.driver()
        self.driver = driver
        let shown = MongoSink.redact(uri)
        var error = bson_error_t()
        guard let parsed = driver.uriNewWithError(uri, &error) else {
            throw SinkError("invalid MongoDB URI \(shown): \(BSON.message(error))", retryable: false)
        }
        defer { driver.uriDestroy(parsed) }
        // Bound every attempt well inside wal_sender_timeout; the stream retries.
        if !uri.contains("serverSelectionTimeoutMS") { _ = driver.uriSetOptionAsInt32(parsed, MongoDriver.serverSelectionTimeoutOption, 5000) }
        if !uri.contains("socketTimeoutMS") { _ = driver.uriSetOptionAsInt32(parsed, MongoDriver.socketTimeoutOption, 30000) }
        _ = driver.uriSetAppname(parsed, "temporal")
        guard let client = driver.clientNewFromURIWithError(parsed, &error) else {
            throw SinkError("cannot use MongoDB at \(shown): \(BSON.message(error))", retryable: false)
        }
        _ = driver.clientSetErrorAPI(client, 2)
        self.client = client
        collection = driver.clientGetCollection(client, database, name)!
        writeConcern = driver.writeConcernNew()!
        if concern == "majority" {
            driver.writeConcernSetW(writeConcern, MongoDriver.majority)
        } else if let nodes = Int32(concern), nodes >= 1 {
            driver.writeConcernSetW(writeConcern, nodes)
        } else {
            throw SinkError("write concern must be majority or a number of nodes, not \(concern)", retryable: false)
        }
        driver.writeConcernSetJournal(writeConcern, true)
        description = "\(shown) \(database).\(name)"
    }

    deinit {
        driver.writeConcernDestroy(writeConcern)
        driver.collectionDestroy(collection)
        driver.clientDestroy(client)
    }

    private let driver: MongoDriver

    /// libmongoc, loaded on first use (see MongoDriver).
    private static func driver() throws -> MongoDriver {
        switch MongoDriver.shared {
        case let .success(driver): return driver
        case let .failure(error): throw error
        }
    }

    /// Checks that MongoDB answers, in MongoDB's words when it does not.
    public func ping() throws {
        let command = BSON.make(EventDocument([("ping", .int32(1))]))
        defer { bson_destroy(command) }
        var error = bson_error_t()
        try BSON.withReply { reply in
            if !driver.clientCommandSimple(client, "admin", command, nil, reply, &error) {
                throw SinkError("MongoDB at \(description) does not answer: \(BSON.message(error))")
            }
        }
    }

    @discardableResult
    public func write(_ events: [ChangeEvent]) throws -> Int {
        guard !events.isEmpty else { return 0 }
        // A document without its _id would get one from MongoDB, and be stored again on a replay.
        guard events.allSatisfy({ $0.jsonChunk == nil }) else {
            throw SinkError("events built as Extended JSON lines cannot go to MongoDB; build them as documents", retryable: false)
        }
        let options = BSON.make(EventDocument([("ordered", .bool(false))]))
        defer { bson_destroy(options) }
        _ = driver.writeConcernAppend(writeConcern, options)
        let bulk = driver.collectionCreateBulkOperationWithOpts(collection, options)
        defer { driver.bulkOperationDestroy(bulk) }
        // json and jsonb keep their keys as the row has them ("$date", "a.b"):
        // the client's own check of such keys is off, the server decides.
        let insertOptions = BSON.make(EventDocument([("validate", .bool(false))]))
        defer { bson_destroy(insertOptions) }
        var error = bson_error_t()
        for event in events {
            let document = BSON.make(event.document)
            defer { bson_destroy(document) }
            guard driver.bulkOperationInsertWithOpts(bulk, document, insertOptions, &error) else {
                throw SinkError("MongoDB refused an event before sending it: \(BSON.message(error))", retryable: false)
            }
        }
        return try BSON.withReply { reply in
            if driver.bulkOperationExecute(bulk, reply, &error) == 0 {
                try MongoSink.check(reply: reply, error: error)
            }
            // Duplicates (events stored before a crash or a reconnection) are not counted.
            var inserted: Int32 = 0
            let iterator = AlignedStorage()
            if bson_iter_init_find(iterator.pointer, reply, "nInserted") { inserted = Int32(clamping: bson_iter_as_int64(iterator.pointer)) }
            return Int(inserted)
        }
    }

    /// A bulk write whose only errors are duplicate keys succeeded: those
    /// events were written before. Anything else is an error to retry.
    static func check(reply: OpaquePointer, error: bson_error_t) throws {
        var codes: [Int32] = []
        var messages: [String] = []
        forEachItem(of: "writeErrors", in: reply) { item in
            var code: Int32 = 0
            while bson_iter_next(item) {
                switch String(cString: bson_iter_key(item)) {
                case "code": code = bson_iter_int32(item)
                case "errmsg": messages.append(String(cString: bson_iter_utf8(item, nil)))
                default: break
                }
            }
            codes.append(code)
        }
        var concernFailed = false
        forEachItem(of: "writeConcernErrors", in: reply) { _ in concernFailed = true }
        let duplicateKey: Int32 = 11000
        if !codes.isEmpty && codes.allSatisfy({ $0 == duplicateKey }) && !concernFailed {
            return
        }
        let refused = codes.contains { $0 != duplicateKey }
        let detail = messages.first { !$0.hasPrefix("E11000") } ?? BSON.message(error)
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
