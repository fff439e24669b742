import CMongoC
import Foundation

/// Reads what a test's MongoDB (SecantusDB, started by scripts/mongo-start)
/// holds, through the same C driver the product writes with.
public struct MongoReader {
    public let uri: String

    /// The server scripts/test started ($TEMPORAL_TEST_MONGODB).
    public static func testServer() throws -> MongoReader {
        guard let uri = ProcessInfo.processInfo.environment["TEMPORAL_TEST_MONGODB"] else {
            throw TestSetupError("TEMPORAL_TEST_MONGODB is not set: run the tests through scripts/test, which starts SecantusDB")
        }
        return MongoReader(uri: uri)
    }

    public init(uri: String) { self.uri = uri }

    /// Every document of a collection as relaxed Extended JSON, in _id order.
    public func documents(database: String, collection: String) throws -> [String] {
        mongoc_init()
        var error = bson_error_t()
        guard let client = mongoc_client_new(uri) else { throw TestSetupError("bad MongoDB URI \(uri)") }
        defer { mongoc_client_destroy(client) }
        let target = mongoc_client_get_collection(client, database, collection)
        defer { mongoc_collection_destroy(target) }
        let filter = bson_new()!
        defer { bson_destroy(filter) }
        let options = bson_new_from_json(#"{"sort": {"_id": 1}}"#, -1, &error)!
        defer { bson_destroy(options) }
        let cursor = mongoc_collection_find_with_opts(target, filter, options, nil)
        defer { mongoc_cursor_destroy(cursor) }
        var documents: [String] = []
        var document: OpaquePointer?
        while mongoc_cursor_next(cursor, &document) {
            let json = bson_as_relaxed_extended_json(document, nil)!
            documents.append(String(cString: json))
            bson_free(json)
        }
        if mongoc_cursor_error(cursor, &error) {
            throw TestSetupError("reading \(database).\(collection): \(withUnsafeBytes(of: &error.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })")
        }
        return documents
    }
}

/// A SecantusDB of a test's own, on a free port, that the test may stop and
/// start again (its data on disk survives), to play a MongoDB outage.
public final class OwnMongoServer: @unchecked Sendable {
    public let port: Int
    public let storage: URL
    private var process: Process?

    public init() throws {
        port = Int.random(in: 28000...29000)
        storage = FileManager.default.temporaryDirectory.appendingPathComponent("secantus-\(UUID().uuidString)")
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: storage)
    }

    public var uri: String { "mongodb://127.0.0.1:\(port)/" }

    public func start() throws {
        guard let binary = ProcessInfo.processInfo.environment["TEMPORAL_SECANTUS_BIN"] else {
            throw TestSetupError("TEMPORAL_SECANTUS_BIN is not set: run the tests through scripts/test")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--host", "127.0.0.1", "--port", String(port), "--storage-path", storage.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        for _ in 0..<100 {
            if (try? MongoReader(uri: uri + "?serverSelectionTimeoutMS=200").documents(database: "ping", collection: "ping")) != nil { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw TestSetupError("SecantusDB on port \(port) did not start")
    }

    public func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        for _ in 0..<100 where process.isRunning { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        self.process = nil
    }
}
