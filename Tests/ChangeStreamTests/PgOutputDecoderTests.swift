import Foundation
import Postgres
import TestSupport
import Testing
@testable import ChangeStream

/// pgoutput messages decoded from bytes the server really sent, captured with
/// pg_logical_slot_peek_binary_changes: every field of every kind, and every
/// truncated or corrupted message an error, never a crash.
@Suite("pgoutput decoder")
struct PgOutputDecoderTests {
    /// A database with a published table of a custom type, a pgoutput slot, and the changes made after it.
    struct Capture {
        let database: TestDatabase
        let db: Connection
        let slot: String

        init() throws {
            database = try TestDatabase()
            db = try database.connect()
            slot = "s_\(database.name)"
            try db.execute("""
                CREATE TYPE mood AS ENUM ('ok', 'sad');
                CREATE TABLE items (id int PRIMARY KEY, name text, m mood, note text);
                ALTER TABLE items REPLICA IDENTITY FULL;
                CREATE PUBLICATION p FOR TABLE items;
                """)
            try db.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot])
        }

        /// Every message from the slot, without consuming them: (lsn, bytes).
        func peek(protocol version: Int = 1, streaming: Bool = false) throws -> [(LSN, [UInt8])] {
            var options = "'proto_version', '\(version)', 'publication_names', 'p', 'messages', 'true'"
            if streaming { options += ", 'streaming', 'on'" }
            return try db.query("""
                SELECT lsn::text, encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, \(options))
                """, [slot]).rows.map { row in
                (LSN(row[0]!)!, PgOutputFixture.hexBytes(row[1]!))
            }
        }

        /// The messages from the slot as a fixture, with what the catalog knows of `relations`.
        func fixture(_ name: String, protocol version: Int = 1, streaming: Bool = false,
                     facts: [String: String] = [:], relations: [String] = ["items"]) throws -> PgOutputFixture {
            let oids = try relations.map { UInt32(try db.value("SELECT $1::regclass::oid::int8", [$0])!)! }
            return PgOutputFixture(
                name: name, serverVersion: try db.value("SHOW server_version") ?? "", facts: facts,
                catalog: try TypeCatalog(connection: db).snapshot(relations: oids),
                messages: try peek(protocol: version, streaming: streaming))
        }

        func drop() {
            _ = try? db.query("SELECT pg_drop_replication_slot($1)", [slot])
        }
    }

    @Test("Begin, Relation, Type, Insert, Update, Delete, Truncate, Message, Origin and Commit, field by field, protocols 1 and 2")
    func everyKind() throws {
        for version in [1, 2] {
            let fixture = try Self.recordEveryKind(protocol: version)
            try fixture.saveIfRecording()
            try Self.checkEveryKind(fixture, live: true)
        }
    }

    /// Every kind of message, from a server.
    static func recordEveryKind(protocol version: Int) throws -> PgOutputFixture {
        let capture = try Capture()
        defer { capture.drop() }
        let db = capture.db
        try db.execute("INSERT INTO items VALUES (1, 'a', 'ok', NULL)")
        let txid = try db.query("SELECT xmin::text::bigint FROM items WHERE id = 1").scalar!
        try db.execute("UPDATE items SET name = 'b' WHERE id = 1")
        try db.execute("DELETE FROM items WHERE id = 1")
        try db.execute("TRUNCATE items")
        try db.execute("BEGIN; SELECT pg_logical_emit_message(true, 'pfx', 'hello'); INSERT INTO items VALUES (2, NULL, 'sad', 'x'); COMMIT;")
        try db.execute("SELECT pg_logical_emit_message(false, 'beat', '')")
        let origin = "o_\(capture.database.name)"
        try db.query("SELECT pg_replication_origin_create($1)", [origin])
        defer { _ = try? db.query("SELECT pg_replication_origin_drop($1)", [origin]) }
        try db.query("SELECT pg_replication_origin_session_setup($1)", [origin])
        try db.execute("BEGIN; SELECT pg_replication_origin_xact_setup('0/ABCDEF', now()); INSERT INTO items VALUES (3, 'c', 'ok', NULL); COMMIT;")
        try db.execute("SELECT pg_replication_origin_session_reset()")
        return try capture.fixture("every-kind-v\(version)", protocol: version, facts: [
            "items": try db.value("SELECT 'items'::regclass::oid::text")!,
            "mood": try db.value("SELECT 'mood'::regtype::oid::text")!,
            "txid": txid, "origin": origin,
        ])
    }

    /// What every message of recordEveryKind must decode to. `live`: the
    /// bytes are fresh, so commit times are now.
    static func checkEveryKind(_ fixture: PgOutputFixture, live: Bool) throws {
        let itemsOID = UInt32(fixture.facts["items"]!)!
        let moodOID = UInt32(fixture.facts["mood"]!)!
        let txid = UInt32(fixture.facts["txid"]!)!
        let messages = try fixture.messages.map { try PgOutputMessage.decode($0.1[...]) }
        var begins: [Begin] = [], commits: [Commit] = []
        var sawType = false, sawRelation = false, sawInsert = false, sawUpdate = false, sawDelete = false
        var sawTruncate = false, sawMessage = false, sawHeartbeat = false, sawOrigin = false
        for message in messages {
            switch message {
            case let .begin(begin): begins.append(begin)
            case let .commit(commit): commits.append(commit)
            case let .type(type):
                #expect(type.oid == moodOID && type.namespace == "public" && type.name == "mood" && type.xid == nil)
                sawType = true
            case let .relation(relation):
                #expect(relation.oid == itemsOID && relation.namespace == "public" && relation.name == "items")
                #expect(relation.replicaIdentity == UInt8(ascii: "f"))
                #expect(relation.columns == [
                    .init(isKey: true, name: "id", typeOID: 23), .init(isKey: true, name: "name", typeOID: 25),
                    .init(isKey: true, name: "m", typeOID: moodOID), .init(isKey: true, name: "note", typeOID: 25),
                ])
                sawRelation = true
            case let .insert(insert) where !sawInsert:
                #expect(insert.relationOID == itemsOID)
                #expect(insert.new.values.map(\.text) == ["1", "a", "ok", nil])
                #expect(insert.new.values[3] == .null)
                sawInsert = true
            case let .update(update):
                #expect(update.old?.values.map(\.text) == ["1", "a", "ok", nil])
                #expect(update.oldKey == nil)
                #expect(update.new.values.map(\.text) == ["1", "b", "ok", nil])
                sawUpdate = true
            case let .delete(delete):
                #expect(delete.old?.values.map(\.text) == ["1", "b", "ok", nil])
                sawDelete = true
            case let .truncate(truncate):
                #expect(truncate.relationOIDs == [itemsOID] && !truncate.cascade && !truncate.restartIdentity)
                sawTruncate = true
            case let .message(message) where message.prefix == "pfx":
                #expect(message.transactional && Array(message.content) == Array("hello".utf8) && message.lsn > .zero)
                sawMessage = true
            case let .message(message) where message.prefix == "beat":
                #expect(!message.transactional && message.content.isEmpty)
                sawHeartbeat = true
            case let .origin(origin):
                #expect(origin.name == fixture.facts["origin"] && origin.lsn == LSN("0/ABCDEF"))
                sawOrigin = true
            default: break
            }
        }
        #expect(sawType && sawRelation && sawInsert && sawUpdate && sawDelete && sawTruncate && sawMessage && sawHeartbeat && sawOrigin)
        #expect(begins.count == 6 && commits.count == 6)
        #expect(begins.first?.xid == txid)
        for (begin, commit) in zip(begins, commits) {
            #expect(commit.commitLSN == begin.finalLSN)
            #expect(commit.endLSN > commit.commitLSN)
            #expect(commit.commitTime == begin.commitTime)
            if live {
                let age = Date().timeIntervalSince1970 * 1000 - Double(PostgresClock.toUnixMilliseconds(begin.commitTime))
                #expect(age >= 0 && age < 600_000, "commit time is now")
            }
        }
    }


    @Test("protocol 2 streams a large transaction in blocks; aborted subtransactions and transactions are dropped")
    func streamedTransactions() throws {
        let fixture = try Self.recordStreamedTransactions()
        try fixture.saveIfRecording()
        try Self.checkStreamedTransactions(fixture)
    }

    static func recordStreamedTransactions() throws -> PgOutputFixture {
        let capture = try Capture()
        defer { capture.drop() }
        let db = capture.db
        try db.execute("""
            BEGIN;
            INSERT INTO items SELECT g, repeat('x', 100), 'ok', NULL FROM generate_series(1, 1000) g;
            SAVEPOINT s;
            INSERT INTO items SELECT g, repeat('r', 100), 'sad', NULL FROM generate_series(1001, 2000) g;
            ROLLBACK TO SAVEPOINT s;
            INSERT INTO items SELECT g, 'kept', 'ok', NULL FROM generate_series(2001, 2010) g;
            COMMIT;
            BEGIN;
            INSERT INTO items SELECT g, repeat('y', 100), 'ok', NULL FROM generate_series(3001, 4000) g;
            ROLLBACK;
            """)
        try db.execute("SET logical_decoding_work_mem = '64kB'")
        return try capture.fixture("streamed-transactions-v2", protocol: 2, streaming: true)
    }

    static func checkStreamedTransactions(_ fixture: PgOutputFixture) throws {
        let raw = fixture.messages
        // Decode with the streaming state the builder keeps: xids inside blocks.
        var inBlock = false
        var starts: [StreamStart] = [], commits: [StreamCommit] = [], aborts: [StreamAbort] = []
        var streamedInserts = 0
        for (_, bytes) in raw {
            let message = try PgOutputMessage.decode(bytes[...], streaming: inBlock)
            switch message {
            case let .streamStart(start): inBlock = true; starts.append(start)
            case .streamStop: inBlock = false
            case let .streamCommit(commit): commits.append(commit)
            case let .streamAbort(abort): aborts.append(abort)
            case let .insert(insert): if insert.xid != nil { streamedInserts += 1 }
            default: break
            }
        }
        #expect(starts.count >= 2, "the transactions were streamed in blocks")
        #expect(starts.first?.firstSegment == true)
        #expect(commits.count == 1)
        #expect(commits[0].endLSN > commits[0].commitLSN)
        #expect(aborts.contains { $0.xid == commits[0].xid && $0.subtransactionXid != $0.xid }, "the rolled back savepoint")
        #expect(streamedInserts >= 1000)

        // The builder turns it into exactly the committed rows, in order.
        let builder = try EventBuilder(slot: "s", types: fixture.types)
        var ids: [Int32] = []
        var committed = 0
        for (lsn, bytes) in raw {
            try builder.consume(bytes[...], lsn: lsn) { output in
                switch output {
                case let .event(event):
                    if case let .int32(id)? = event.document["entityId"] { ids.append(id) }
                    #expect(event.position == ids.count)
                case .committed: committed += 1
                default: break
                }
            }
        }
        #expect(committed == 1)
        // Not the rolled back savepoint (1001-2000), not the rolled back transaction (3001-4000).
        #expect(ids == Array(1...1000) + Array(2001...2010))
    }

    @Test("events built as Extended JSON straight from the bytes equal the documents' Extended JSON, byte for byte")
    func extendedJSONFastPath() throws {
        let fixture = try Self.recordFastPath()
        try fixture.saveIfRecording()
        try Self.checkFastPath(fixture)
    }

    /// Every type the fast path writes itself, TOAST, composite keys, context and truncate.
    static func recordFastPath() throws -> PgOutputFixture {
        let database = try TestDatabase()
        let db = try database.connect()
        let slot = "j_\(database.name)"
        try db.execute("""
            CREATE TABLE wide (id int8 PRIMARY KEY, i2 int2, i4 int4, n numeric, f float8, t text, b bool, ts timestamptz,
                               d date, j jsonb, raw bytea, u uuid, a int4[], big text, "we""ird" varchar);
            ALTER TABLE wide REPLICA IDENTITY FULL;
            ALTER TABLE wide ALTER COLUMN big SET STORAGE EXTERNAL;
            CREATE TABLE keyed (a int, b text, v text, PRIMARY KEY (a, b));
            CREATE PUBLICATION pj FOR TABLE wide, keyed;
            """)
        try db.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot])
        defer { _ = try? db.query("SELECT pg_drop_replication_slot($1)", [slot]) }
        try db.execute("""
            INSERT INTO wide VALUES
              (1, -32768, 2147483647, 12.50, 1.5, e'quote " backslash \\\\ newline \\n tab \\t \\x01 é ✓', true,
               '2026-01-15 10:30:00.123456+00', '2026-01-15', '{"k": [1, "é"]}', '\\xdeadbeef',
               'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{1,2},{3,NULL}}', repeat('x', 5000), 'w'),
              (2, NULL, NULL, 'NaN', 'NaN', '', false, 'infinity', NULL, 'null', NULL, NULL, NULL, NULL, NULL),
              (-9223372036854775808, 0, -1, 1234567890123456789012345678901234.5, '-Infinity', 'ascii', NULL,
               '1960-03-01 00:00:00.5-08', '0044-03-15 BC', '[]', '\\x', NULL, '{}', 'small', NULL);
            UPDATE wide SET ts = ts + interval '1 microsecond', f = f WHERE id = 1;
            UPDATE wide SET n = n + 1, t = 'changed', f = f WHERE id IN (2, -9223372036854775808);
            BEGIN;
            SELECT pg_logical_emit_message(true, 'temporal.context', '{"user_id": "u\\"1", "changeset_id": "cs-é"}');
            UPDATE wide SET i4 = i4 - 1 WHERE id = 1;
            DELETE FROM wide WHERE id = 2;
            COMMIT;
            INSERT INTO keyed VALUES (1, 'x', 'v'), (2, 'y', NULL);
            UPDATE keyed SET v = 'w' WHERE a = 1;
            UPDATE keyed SET b = 'z' WHERE a = 2;
            DELETE FROM keyed WHERE a = 1;
            TRUNCATE wide, keyed;
            """)
        for setting in ["TimeZone = 'UTC'", "DateStyle = 'ISO, YMD'", "bytea_output = 'hex'", "extra_float_digits = 3"] {
            try db.execute("SET \(setting)")
        }
        let raw = try db.query("""
            SELECT lsn::text, encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL,
              'proto_version', '1', 'publication_names', 'pj', 'messages', 'true')
            """, [slot]).rows.map { (LSN($0[0]!)!, PgOutputFixture.hexBytes($0[1]!)) }
        let relations = try ["wide", "keyed"].map { UInt32(try db.value("SELECT $1::regclass::oid::int8", [$0])!)! }
        return PgOutputFixture(name: "fast-path-v1", serverVersion: try db.value("SHOW server_version") ?? "", facts: [:],
                               catalog: try TypeCatalog(connection: db).snapshot(relations: relations), messages: raw)
    }

    static func checkFastPath(_ fixture: PgOutputFixture) throws {
        let raw = fixture.messages

        func events(_ makeEncoder: @escaping (EncoderContext) -> EventEncoder) throws -> [ChangeEvent] {
            let builder = try EventBuilder(slot: "s", types: fixture.types, makeEncoder: makeEncoder)
            var events: [ChangeEvent] = []
            for (lsn, bytes) in raw {
                try builder.consume(bytes[...], lsn: lsn) { if case let .event(event) = $0 { events.append(event) } }
            }
            return events
        }
        let documents = try events { DocumentEncoder($0) }
        let encoded = try events { ExtendedJSONEncoder($0) }
        #expect(documents.count == 15 && encoded.count == documents.count)
        for (document, fast) in zip(documents, encoded) {
            let expected = ExtendedJSON.encode(document.document)
            let json = String(decoding: try #require(fast.extendedJSON), as: UTF8.self)
            #expect(json == expected)
            #expect(fast.id == document.id && fast.commitLSN == document.commitLSN && fast.position == document.position)
            #expect(try JSONSerialization.jsonObject(with: Data(json.utf8)) is [String: Any], "\(json)")
        }
        // Changed fields are compared as the server printed them: a microsecond
        // is a change (a millisecond date alone would hide it); NaN kept is not.
        func changes(_ index: Int) throws -> Set<String> {
            let object = try JSONSerialization.jsonObject(with: Data(encoded[index].extendedJSON!)) as? [String: Any]
            return Set((object?["changes"] as? [String: Any] ?? [:]).keys)
        }
        #expect(try changes(3) == ["ts"])
        #expect(try changes(4) == ["t"])
        #expect(try changes(5) == ["n", "t"])
    }

    @Test("a truncated, corrupted or unknown message is an error, never a crash")
    func malformed() throws {
        let capture = try Capture()
        defer { capture.drop() }
        try capture.db.execute("""
            INSERT INTO items VALUES (1, 'a', 'ok', NULL); UPDATE items SET name = 'b'; DELETE FROM items; TRUNCATE items;
            SELECT pg_logical_emit_message(false, 'beat', 'x');
            """)
        let captured = try capture.peek()
        #expect(captured.count >= 10)
        try Self.checkMalformed(captured)
    }

    /// Every message cut short at every length, or with a byte too many, is
    /// refused; an unknown tag is refused; random bytes after each known tag
    /// are decoded or refused, never a crash. Messages inside streamed blocks
    /// are read as the builder reads them (with their xid).
    static func checkMalformed(_ messages: [(LSN, [UInt8])]) throws {
        var inBlock = false
        for (_, bytes) in messages {
            let streaming = inBlock
            if bytes.first == UInt8(ascii: "S") { inBlock = true }
            if bytes.first == UInt8(ascii: "E") { inBlock = false }
            for length in 0..<bytes.count {
                #expect(throws: ProtocolError.self, "\(bytes.count)-byte message cut to \(length)") {
                    try PgOutputMessage.decode(bytes[0..<length], streaming: streaming)
                }
            }
            #expect(throws: ProtocolError.self) { try PgOutputMessage.decode((bytes + [0])[...], streaming: streaming) }
        }
        #expect(throws: ProtocolError.unknownMessage(UInt8(ascii: "Z"))) { try PgOutputMessage.decode([UInt8(ascii: "Z")][...]) }
        var random = SystemRandomNumberGenerator()
        for tag in "BCORYIUDTMSEcA".utf8 {
            for _ in 0..<200 {
                let bytes = [tag] + (0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                _ = try? PgOutputMessage.decode(bytes[...])
            }
        }
    }

    @Test("XLogData, keepalives and standby status updates, from and to bytes")
    func replicationMessages() throws {
        var writer = ByteWriter()
        writer.uint8(UInt8(ascii: "w"))
        writer.uint64(0x0000_0001_0000_0010)
        writer.uint64(0x0000_0001_0000_0020)
        writer.int64(123_456)
        let xlog = try ReplicationMessage.decode((writer.bytes + [1, 2, 3])[...])
        #expect(xlog == .xlogData(XLogData(walStart: LSN(0x1_0000_0010), walEnd: LSN(0x1_0000_0020), sendTime: 123_456, data: [1, 2, 3][...])))

        let keepalive = try ReplicationMessage.decode(([UInt8(ascii: "k")] + [0, 0, 0, 2, 0, 0, 0, 5] + [0, 0, 0, 0, 0, 0, 0, 9] + [1])[...])
        #expect(keepalive == .keepalive(PrimaryKeepalive(walEnd: LSN("2/5")!, sendTime: 9, replyRequested: true)))
        #expect(throws: ProtocolError.self) { try ReplicationMessage.decode([UInt8(ascii: "k"), 0, 0][...]) }
        #expect(throws: ProtocolError.unknownMessage(UInt8(ascii: "x"))) { try ReplicationMessage.decode([UInt8(ascii: "x")][...]) }

        let status = StandbyStatusUpdate(written: LSN(1), flushed: LSN(2), applied: LSN(3), clock: 4, replyRequested: true)
        #expect(status.encoded == [UInt8(ascii: "r")] + [0, 0, 0, 0, 0, 0, 0, 1] + [0, 0, 0, 0, 0, 0, 0, 2]
                    + [0, 0, 0, 0, 0, 0, 0, 3] + [0, 0, 0, 0, 0, 0, 0, 4] + [1])
        #expect(LSN("16/B374D848")?.description == "16/B374D848")
        #expect(LSN("16/B374D848")?.sortable == "00000016B374D848")
        #expect(LSN("nope") == nil && LSN("1/") == nil)
    }
}
