import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing
@testable import ChangeStream

/// A database with published tables and a slot, and a way to stream it.
final class StreamFixture: @unchecked Sendable {
    let database: TestDatabase
    let db: Connection
    let slot: String
    let publication = "pub"
    let file: URL

    init(_ ddl: String, tables: [String] = ["items"], setup extra: String = "") throws {
        database = try TestDatabase()
        db = try database.connect()
        slot = "s_\(database.name)"
        file = FileManager.default.temporaryDirectory.appendingPathComponent("\(database.name).jsonl")
        try db.execute(ddl)
        if !extra.isEmpty { try db.execute(extra) }
        _ = try StreamAdmin(connection: db).setup(
            slot: slot, publication: publication, tables: tables.map { ("public", $0) }, replicaIdentityFull: true)
    }

    deinit {
        // The server lets go of a slot a moment after its stream disconnects.
        for _ in 0..<100 where (try? db.value("SELECT active FROM pg_replication_slots WHERE slot_name = $1", [slot])) == "t" {
            Thread.sleep(forTimeInterval: 0.05)
        }
        _ = try? db.query("SELECT pg_drop_replication_slot($1)", [slot])
        try? FileManager.default.removeItem(at: file)
    }

    var configuration: StreamConfiguration {
        var configuration = StreamConfiguration(conninfo: database.conninfo(), slot: slot, publication: publication)
        configuration.heartbeatIntervalSeconds = 0.2
        configuration.batchSize = 100
        return configuration
    }

    /// Streams everything written so far into `sink`; returns the confirmed position.
    @discardableResult
    /// `batchDelayMilliseconds`: how old a batch may grow (a test that counts
    /// batches sets it long, so that batches end at `batchSize` however slow the machine).
    func streamToNow(_ sink: EventSink, batchDelayMilliseconds: Int? = nil) throws -> LSN {
        var configuration = configuration
        if let batchDelayMilliseconds { configuration.batchDelayMilliseconds = batchDelayMilliseconds }
        configuration.endLSN = LSN(try db.value("SELECT pg_current_wal_lsn()::text")!)
        return try Streamer(configuration: configuration, sink: sink, stop: StopRequest()).run()
    }

    /// The file's events, parsed.
    func events() throws -> [[String: Any]] {
        try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    var confirmed: LSN {
        get throws { LSN(try db.value("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", [slot])!)! }
    }
}

/// A sink that writes two batches to a file and "crashes" right after the
/// second write, before the stream can confirm it.
final class CrashingSink: EventSink {
    let inner: JSONLinesSink
    var batches = 0
    init(path: String) throws { inner = try JSONLinesSink(path: path) }
    var description: String { "crashing \(inner.description)" }
    func write(_ events: [ChangeEvent]) throws -> Int {
        batches += 1
        let stored = try inner.write(events)
        if batches == 2 { throw SinkError("crash", retryable: false) }
        return stored
    }
}

@Suite("change streaming", .serialized)
struct StreamTests {
    private let items = "CREATE TABLE items (id int PRIMARY KEY, name text, qty numeric(10,2), at timestamptz);"

    @Test("every change once, in commit order, with its context, key, changes, before and after")
    func everyChangeOnce() throws {
        let fixture = try StreamFixture(items)
        let db = fixture.db
        _ = try Installer.install(on: db)
        try db.execute("""
            BEGIN; SELECT temporal_versioning.set_change_context('user-1', 'cs-1');
            INSERT INTO items VALUES (1, 'a', 1.50, '2026-01-15 10:30:00.123456+00'), (2, 'b', 2, NULL);
            COMMIT;
            UPDATE items SET name = 'A', qty = 1.5 WHERE id = 1;
            DELETE FROM items WHERE id = 2;
            UPDATE items SET id = 10 WHERE id = 1;
            """)
        try fixture.streamToNow(try JSONLinesSink(path: fixture.file.path))
        let events = try fixture.events()
        #expect(events.map { $0["operation"] as? String } == ["insert", "insert", "update", "delete", "update"])
        #expect(events.map { $0["entityId"] as? Int } == [1, 2, 1, 2, 10])
        #expect(events.map { $0["_id"] as! String } == events.map { $0["_id"] as! String }.sorted())
        #expect(Set(events.map { $0["_id"] as! String }).count == 5)
        #expect(events[0]["userId"] as? String == "user-1" && events[0]["changesetId"] as? String == "cs-1")
        #expect(events[1]["changesetId"] as? String == "cs-1")
        #expect(events[2]["userId"] is NSNull)
        #expect(events[2]["changesetId"] as? String == String(describing: events[2]["txId"]!))
        let changes = try #require(events[2]["changes"] as? [String: [String: Any]])
        #expect(Set(changes.keys) == ["name"], "qty 1.5 is stored as 1.50 in numeric(10,2): no change")
        #expect((changes["name"]?["from"] as? String) == "a" && (changes["name"]?["to"] as? String) == "A")
        #expect(((events[3]["before"] as? [String: Any])?["name"] as? String) == "b" && events[3]["after"] is NSNull)
        let metadata = try #require(events[0]["metadata"] as? [String: Any])
        #expect(metadata["slot"] as? String == fixture.slot && metadata["table"] as? String == "public.items")
        #expect((metadata["exact"] as? [String: String])?["after.at"] == "2026-01-15 10:30:00.123456+00")
        #expect(try fixture.confirmed >= LSN(events.last!["metadata"].map { ($0 as! [String: Any])["commitLsn"] as! String }!)!)
    }

    @Test("SET LOCAL context of a versioned table reaches the stream as it reaches the history, once per transaction")
    func setLocalContext() throws {
        let fixture = try StreamFixture(items)
        let db = fixture.db
        _ = try Installer.install(on: db)
        try Versioning(connection: db).enable(TableResolver.resolve("items", on: db))
        try db.execute("""
            BEGIN; SET LOCAL temporal.user_id = 'user123'; SET LOCAL temporal.changeset_id = 'cs-42';
            INSERT INTO items VALUES (1, 'a', 1, NULL); UPDATE items SET name = 'b' WHERE id = 1;
            COMMIT;
            BEGIN; SET LOCAL temporal.user_id = 'user456';
            SAVEPOINT s; UPDATE items SET name = 'c' WHERE id = 1; ROLLBACK TO SAVEPOINT s;
            UPDATE items SET name = 'd' WHERE id = 1;
            COMMIT;
            """)
        try db.execute("UPDATE items SET name = 'e' WHERE id = 1")
        try db.execute("BEGIN; SELECT temporal_versioning.set_change_context('user789', 'cs-7'); UPDATE items SET name = 'f' WHERE id = 1; COMMIT;")
        // One context message per transaction that set one, not one per statement
        // (the one written in the rolled-back savepoint is gone with it).
        let messages = try db.value("""
            SELECT count(*) FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1',
                'publication_names', 'pub', 'messages', 'true') WHERE get_byte(data, 0) = 77
            """, [fixture.slot])
        #expect(messages == "3")
        try fixture.streamToNow(try JSONLinesSink(path: fixture.file.path))
        let events = try fixture.events()
        let stream = events.map { "\($0["userId"] as? String ?? "-")/\($0["changesetId"] as? String ?? "-")" }
        let history = try db.column("""
            SELECT coalesce(t.user_id, '-') || '/' || coalesce(t.changeset_id, t.tx_id::text)
            FROM temporal_versioning.items_history h JOIN temporal_versioning.transactions t ON t.tx_id = h.temporal_tx_id
            ORDER BY h.temporal_id
            """)
        #expect(stream.count == 5)
        #expect(stream == history.map { $0 ?? "" })
        #expect(Array(stream.prefix(2)) == ["user123/cs-42", "user123/cs-42"])
        #expect(stream[2].hasPrefix("user456/"), "the context outlives a rolled-back savepoint that first wrote it")
        #expect(stream[3].hasPrefix("-/"))
        #expect(stream[4] == "user789/cs-7")
    }

    @Test("written but not confirmed: a replay adds nothing to the file, and a line cut short is removed")
    func fileReplay() throws {
        let fixture = try StreamFixture(items)
        for n in 1...300 { try fixture.db.execute("INSERT INTO items VALUES (\(n), 'row \(n)', \(n), now())") }
        let end = LSN(try fixture.db.value("SELECT pg_current_wal_lsn()::text")!)!
        #expect(throws: StreamError.self) {
            try fixture.streamToNow(try CrashingSink(path: fixture.file.path), batchDelayMilliseconds: 60_000)
        }
        // The first batch was confirmed; the second is in the file but was not.
        let written = try fixture.events()
        try #require(written.count == 200, "batches of 100")
        let confirmed = try fixture.confirmed
        #expect(confirmed < end)
        let firstUnconfirmed = written[100]["metadata"] as! [String: Any]
        #expect(confirmed <= LSN(firstUnconfirmed["commitLsn"] as! String)!)
        // A crash in the middle of a write leaves half a line.
        let handle = try FileHandle(forWritingTo: fixture.file)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"_id": "s/000"#.utf8))
        try handle.close()

        try fixture.streamToNow(try JSONLinesSink(path: fixture.file.path))
        let events = try fixture.events()
        #expect(events.count == 300)
        #expect(events.map { $0["entityId"] as! Int } == Array(1...300))
    }

    @Test("ALTER TABLE mid-stream is followed without a restart; unchanged TOAST values come from the old row")
    func relationChangesAndToast() throws {
        let fixture = try StreamFixture(items)
        try fixture.db.execute("""
            INSERT INTO items VALUES (1, 'a', 1, now());
            ALTER TABLE items ADD COLUMN big text;
            UPDATE items SET big = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 2000) g) WHERE id = 1;
            UPDATE items SET qty = 2 WHERE id = 1;
            ALTER TABLE items DROP COLUMN name;
            UPDATE items SET qty = 3 WHERE id = 1;
            """)
        let stored = try fixture.db.value("SELECT big FROM items")!
        #expect(try fixture.db.value("SELECT pg_relation_size(reltoastrelid) > 0 FROM pg_class WHERE relname = 'items'") == "t",
                "big is stored out of line")
        try fixture.streamToNow(try JSONLinesSink(path: fixture.file.path))
        let events = try fixture.events()
        #expect(events.count == 4)
        let toastUpdate = try #require(events[2]["after"] as? [String: Any])
        #expect(toastUpdate["big"] as? String == stored)
        #expect(Set((events[2]["changes"] as! [String: Any]).keys) == ["qty"])
        #expect((events[3]["after"] as? [String: Any])?.keys.contains("name") == false)
    }

    @Test("a transaction larger than logical_decoding_work_mem streams in blocks, exactly once")
    func largeStreamedTransaction() throws {
        let fixture = try StreamFixture(items, setup: "SELECT 1")
        try fixture.db.execute("ALTER DATABASE \(fixture.database.name) SET logical_decoding_work_mem = '64kB'")
        try fixture.db.execute("""
            BEGIN;
            INSERT INTO items SELECT g, 'row', g, now() FROM generate_series(1, 20000) g;
            SAVEPOINT s; DELETE FROM items; ROLLBACK TO SAVEPOINT s;
            UPDATE items SET qty = qty + 1 WHERE id <= 10;
            COMMIT;
            """)
        try fixture.streamToNow(try JSONLinesSink(path: fixture.file.path))
        let events = try fixture.events()
        #expect(events.count == 20010)
        #expect(Set(events.map { $0["_id"] as! String }).count == 20010)
        #expect(events.filter { $0["operation"] as? String == "delete" }.isEmpty)
    }

    @Test("heartbeats move the slot while the published tables are idle and others are busy; stop confirms and returns")
    func heartbeat() throws {
        let fixture = try StreamFixture(items + "CREATE TABLE busy (n int);")
        let stop = StopRequest()
        let path = fixture.file.path
        let configuration = fixture.configuration
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        Thread {
            result.set(Result { try Streamer(configuration: configuration, sink: try JSONLinesSink(path: path), stop: stop).run() })
            done.signal()
        }.start()
        try fixture.db.execute("INSERT INTO busy SELECT generate_series(1, 50000)")
        let afterBusy = LSN(try fixture.db.value("SELECT pg_current_wal_lsn()::text")!)!
        var advanced = false
        for _ in 0..<100 where !advanced {
            Thread.sleep(forTimeInterval: 0.1)
            advanced = try fixture.confirmed >= afterBusy
        }
        #expect(advanced, "the slot's confirmed position passed the unpublished writes")
        stop.request()
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(try result.get() >= afterBusy)
    }

    @Test("MongoDB: typed BSON, and a batch written twice is stored once")
    func mongo() throws {
        let fixture = try StreamFixture("""
            CREATE TABLE items (id bigint PRIMARY KEY, qty numeric, at timestamptz, doc jsonb, tags int[], raw bytea, u uuid, f float8);
            """)
        try fixture.db.execute("""
            INSERT INTO items VALUES (9007199254740993, 12.50, '2026-01-15 10:30:00.123456+00', '{"k": [1, {"x": null}]}',
                                      '{1,2}', '\\x0102', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'Infinity');
            UPDATE items SET qty = 13;
            """)
        let reader = try MongoReader.testServer()
        let database = fixture.database.name
        let sink = try MongoSink(uri: reader.uri, database: database, collection: "changeEvents")
        try sink.ping()
        try fixture.streamToNow(sink)
        let documents = try reader.documents(database: database, collection: "changeEvents")
        #expect(documents.count == 2)
        let insert = documents[0]
        #expect(insert.contains(#""entityId" : 9007199254740993"#))
        #expect(insert.contains(#""qty" : { "$numberDecimal" : "12.50" }"#))
        #expect(insert.contains(#""at" : { "$date" : "2026-01-15T10:30:00.123Z" }"#))
        #expect(insert.contains(#""doc" : { "k" : [ 1, { "x" : null } ] }"#))
        #expect(insert.contains(#""tags" : [ 1, 2 ]"#))
        #expect(insert.contains(#""subType" : "04""#))
        #expect(insert.contains(#""f" : { "$numberDouble" : "Infinity" }"#))
        #expect(insert.contains(#""after.at" : "2026-01-15 10:30:00.123456+00""#))

        // The same events again (a replay after a crash) are recognised and skipped.
        let events = try documents.map { json -> ChangeEvent in
            let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
            return ChangeEvent(commitLSN: .zero, position: 0, document: EventDocument([("_id", .string(object["_id"] as! String))]))
        }
        try sink.write(events)
        #expect(try reader.documents(database: database, collection: "changeEvents").count == 2)
    }

    @Test("MongoDB: json and jsonb keep their value, read back with pymongo: $-keys stay keys, no number wraps, zeroes or turns into a string")
    func mongoJSONValues() throws {
        let fixture = try StreamFixture("CREATE TABLE items (id int PRIMARY KEY, doc jsonb);")
        try fixture.db.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", ["f_\(fixture.database.name)"])
        try fixture.db.execute(#"""
            INSERT INTO items VALUES
             (1, '{"$date": "2020-01-01T00:00:00Z"}'),
             (2, '{"$numberLong": "5"}'),
             (3, '{"w": {"$oid": "5f1d7a3c2b9e4a0012345678"}}'),
             (4, '{"n": 12345678901234567890123}'),
             (5, '{"n": 9223372036854775808}'),
             (6, '1e400'),
             (7, '[1, {"$regex": "a"}]'),
             (8, '{"$numberDecimal": "x"}'),
             (9, '{"a.b": 1, "s": "\u00e9\n\ud83d\ude00", "f": 0.1, "m": -0.5e-3, "t": [true, false, null]}'),
             (10, '123456789012345678901234567890123456789'),
             (11, '1e-400');
            """#)
        let reader = try MongoReader.testServer()
        let database = fixture.database.name
        let sink = try MongoSink(uri: reader.uri, database: database, collection: "changeEvents")
        try fixture.streamToNow(sink)
        let rows = try fixture.db.query("SELECT id::text, doc::text FROM items ORDER BY id").rows
        var object: [String: String] = [:]
        for row in rows { object[row[0]!] = row[1]! }
        let rowsFile = fixture.file.deletingPathExtension().appendingPathExtension("rows.json")
        try JSONSerialization.data(withJSONObject: object).write(to: rowsFile)
        defer { try? FileManager.default.removeItem(at: rowsFile) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts/compare_json_values.py")
        let result = try PythonScript.run(script.path, ["mongodb", reader.uri, database, rowsFile.path])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("11 values compared, 0 mismatches"), "\(result.output)")
        // The same changes as Extended JSON lines, from a second slot made before them, read back
        // with bson.json_util (as mongoimport would).
        var second = fixture.configuration
        second.slot = "f_\(fixture.database.name)"
        second.endLSN = LSN(try fixture.db.value("SELECT pg_current_wal_lsn()::text")!)
        defer { _ = try? fixture.db.query("SELECT pg_drop_replication_slot($1)", [second.slot]) }
        try Streamer(configuration: second, sink: try JSONLinesSink(path: fixture.file.path), stop: StopRequest()).run()
        let lines = try PythonScript.run(script.path, ["file", fixture.file.path, rowsFile.path])
        #expect(lines.status == 0, "\(lines.output)")
        #expect(lines.output.contains("11 values compared, 0 mismatches"), "\(lines.output)")
    }

    @Test("MongoDB unreachable: MongoDB's words, no credentials")
    func mongoUnreachable() throws {
        let sink = try MongoSink(uri: "mongodb://auditor:s3cr3t-pw@127.0.0.1:1/?serverSelectionTimeoutMS=300", database: "a", collection: "c")
        let error = #expect(throws: SinkError.self) { try sink.ping() }
        #expect(error?.message.contains("does not answer") == true)
        #expect(error?.message.contains("s3cr3t-pw") == false)
        #expect(sink.description == "mongodb://***@127.0.0.1:1/?serverSelectionTimeoutMS=300 a.c")
        #expect(throws: SinkError.self) { try MongoSink(uri: "not a uri", database: "a", collection: "c") }
    }

    @Test("entityType and metadata.table name a table as format('%I.%I') does: odd names and key words quoted")
    func quotedNames() throws {
        let fixture = try StreamFixture(#"""
            CREATE TABLE "Odd Table" (id int PRIMARY KEY); CREATE TABLE "order" (id int PRIMARY KEY);
            CREATE TABLE "a.b" (id int PRIMARY KEY); CREATE TABLE plain_name (id int PRIMARY KEY);
            """#, tables: ["Odd Table", "order", "a.b", "plain_name"])
        try fixture.db.execute(#"INSERT INTO "Odd Table" VALUES (1); INSERT INTO "order" VALUES (2); INSERT INTO "a.b" VALUES (3); INSERT INTO plain_name VALUES (4)"#)
        let sink = try JSONLinesSink(path: fixture.file.path)
        try fixture.streamToNow(sink)
        let events = try fixture.events()
        let expected = try fixture.db.column(#"""
            SELECT format('%I.%I', 'public', t) FROM unnest(ARRAY['Odd Table', 'order', 'a.b', 'plain_name']) t
            """#)
        #expect(events.map { $0["entityType"] as? String } == expected)
        #expect(events.map { ($0["metadata"] as? [String: Any])?["table"] as? String } == expected)
        #expect(expected == [#"public."Odd Table""#, #"public."order""#, #"public."a.b""#, "public.plain_name"])
        // The same events again: the sink skips them and says it stored none.
        let replay = events.map { ChangeEvent(commitLSN: .zero, position: 0, document: EventDocument([("_id", .string($0["_id"] as! String))])) }
        try sink.resume()
        #expect(try sink.write(replay) == 0)
    }

    @Test("bad input: slot or publication missing, wrong plugin, a table without replica identity")
    func badInput() throws {
        let fixture = try StreamFixture(items + "CREATE TABLE nokey (v int);")
        let admin = StreamAdmin(connection: fixture.db)
        let missingSlot = #expect(throws: PostgresError.self) { try admin.checkReady(slot: "nope", publication: "pub") }
        #expect(missingSlot?.message == #"replication slot "nope" does not exist"#)
        #expect(missingSlot?.hint?.contains("temporal stream setup") == true)
        let missingPublication = #expect(throws: PostgresError.self) { try admin.checkReady(slot: fixture.slot, publication: "nopub") }
        #expect(missingPublication?.message == #"publication "nopub" does not exist"#)
        let other = "t_\(fixture.database.name)"
        try fixture.db.query("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", [other])
        defer { _ = try? fixture.db.query("SELECT pg_drop_replication_slot($1)", [other]) }
        #expect(throws: PostgresError.self) { try admin.checkReady(slot: other, publication: "pub") }
        // Another tool's slot: not listed unless asked, not dropped without --force.
        let listed = try admin.status(slot: nil).rows.compactMap { $0[0] }
        #expect(listed.contains(fixture.slot) && !listed.contains(other))
        #expect(try admin.status(slot: nil, allPlugins: true).rows.compactMap { $0[0] }.contains(other))
        let notOurs = #expect(throws: PostgresError.self) { try admin.drop(slot: other, publication: nil) }
        #expect(notOurs?.message == "replication slot \"\(other)\" is not a stream's: it uses the test_decoding plugin")
        #expect(try fixture.db.count("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", [other]) == 1)
        let noIdentity = #expect(throws: PostgresError.self) {
            try admin.setup(slot: "x_\(fixture.database.name)", publication: "p2", tables: [("public", "nokey")], replicaIdentityFull: false)
        }
        #expect(noIdentity?.message == "table public.nokey has no replica identity")
        #expect(try fixture.db.count("SELECT count(*) FROM pg_publication WHERE pubname = 'p2'") == 0)
        let duplicate = #expect(throws: PostgresError.self) {
            try admin.setup(slot: fixture.slot, publication: "p3", tables: [("public", "items")], replicaIdentityFull: false)
        }
        #expect(duplicate?.message.contains("already exists") == true)
    }
}

/// Carries a thread's result back to the test.
final class ResultBox: @unchecked Sendable {
    private let mutex = Mutex()
    private var result: Result<LSN, Error>?
    func set(_ value: Result<LSN, Error>) { mutex.withLock { result = value } }
    func get() throws -> LSN { try mutex.withLock { result }!.get() }
}

/// Events kept as documents, as a MongoDB sink would get them.
final class DocumentSink: EventSink {
    var events: [ChangeEvent] = []
    var description: String { "documents" }
    func write(_ events: [ChangeEvent]) throws -> Int {
        self.events += events
        return events.count
    }
}

@Suite("stream backfill")
struct BackfillTests {
    @Test("snapshot lines made straight from COPY's bytes equal the documents' Extended JSON, byte for byte")
    func snapshotFastPath() throws {
        let database = try TestDatabase()
        let db = try database.connect()
        _ = try Installer.install(on: db)
        try db.execute(#"""
            CREATE TABLE wide (a int, b text, i8 int8, n numeric, f float8, t text, ok bool, ts timestamptz, d date,
                               j jsonb, raw bytea, u uuid, arr int4[], tags text[], "we""ird" varchar, PRIMARY KEY (a, b));
            INSERT INTO wide VALUES
              (1, 'x', 9007199254740993, 12.50, 1.5, e'quote " backslash \\ newline \n tab \t \x01 é ✓', true,
               '2026-01-15 10:30:00.123456+00', '2026-01-15', '{"$date": "x", "k": [1, "é"]}', '\xdeadbeef',
               'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{1,2},{3,NULL}}', '{"a b","c,d",NULL}', 'w'),
              (2, 'y', NULL, 'NaN', 'NaN', '', false, 'infinity', NULL, 'null', NULL, NULL, NULL, '{}', NULL),
              (3, 'z', -9223372036854775808, 1234567890123456789012345678901234.5, '-Infinity', 'ascii', NULL,
               '1960-03-01 00:00:00.5-08', '0044-03-15 BC', '[]', '\x', NULL, '{}', NULL, '');
            CREATE PUBLICATION pub FOR TABLE wide;
            """#)
        let admin = StreamAdmin(connection: db)
        var lines: [[String]] = []
        for (index, slot) in ["f_\(database.name)", "d_\(database.name)"].enumerated() {
            // Each slot its own snapshot of the same rows.
            let plan = try admin.planSnapshot(.init(conninfo: database.conninfo()), tables: [("public", "wide")])
            _ = try admin.createSlotWithSnapshot(slot: slot, request: .init(conninfo: database.conninfo()), plan: plan)
            defer { _ = try? db.query("SELECT pg_drop_replication_slot($1)", [slot]) }
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(slot).jsonl")
            defer { try? FileManager.default.removeItem(at: file) }
            let sink: EventSink = index == 0 ? try JSONLinesSink(path: file.path) : DocumentSink()
            try Backfiller(conninfo: database.conninfo(), slot: slot, sink: sink, stop: StopRequest(), chunkSize: 2).run()
            let text = index == 0
                ? try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map(String.init)
                : (sink as! DocumentSink).events.map { ExtendedJSON.encode($0.document) }
            for line in text {
                #expect(try JSONSerialization.jsonObject(with: Data(line.utf8)) is [String: Any], "\(line)")
            }
            // The same but for what names the slot and the instant.
            lines.append(text.map { line in
                line.replacingOccurrences(of: slot, with: "SLOT")
                    .replacingOccurrences(of: #"SLOT/[0-9A-F]{16}/"#, with: "SLOT/L/", options: .regularExpression)
                    .replacingOccurrences(of: #"/s/\d+/"#, with: "/s/N/", options: .regularExpression)
                    .replacingOccurrences(of: #""timestamp": \{[^}]*\}"#, with: "", options: .regularExpression)
                    .replacingOccurrences(of: #""(lsn|commitLsn)": "[^"]*""#, with: "", options: .regularExpression)
            })
        }
        #expect(lines[0].count == 3)
        #expect(lines[0] == lines[1])
    }
}
