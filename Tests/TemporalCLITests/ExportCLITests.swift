import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing

/// temporal export and export list, run as a user runs them, checked
/// against the tables: reloaded, counted, and in one snapshot.
@Suite("temporal export", .serialized)
struct ExportCLITests {
    final class Setup: @unchecked Sendable {
        let database: TestDatabase
        let db: Connection
        let directory: String

        init() throws {
            database = try TestDatabase()
            db = try database.connect()
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(database.name)").path
            _ = try Installer.install(on: db)
            try db.execute("""
                CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(12, 3), tags text[], doc jsonb, raw bytea,
                                    seen timestamptz, day date, ok boolean, ratio float8, big numeric);
                INSERT INTO items SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE E'it''s "q" \\\\ ,\\n' || g END, g / 3.0,
                                         ARRAY['a', NULL, 'b,"c"'], jsonb_build_object('g', g, 'n', NULL), '\\x00ff'::bytea,
                                         '2026-01-01 00:00:00.123456+00'::timestamptz + g * interval '1 s', DATE '2026-02-03',
                                         g % 2 = 0, g / 7.0, 12345678901234567890123456789012345678.5
                FROM generate_series(1, 2500) g;
                CREATE TABLE plain (id int PRIMARY KEY, v text);
                INSERT INTO plain VALUES (1, 'a'), (2, 'b');
                CREATE TABLE parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
                CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (5);
                CREATE TABLE parted_high PARTITION OF parted FOR VALUES FROM (5) TO (100);
                INSERT INTO parted SELECT g, 'p' || g FROM generate_series(1, 10) g;
                """)
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }

        func run(_ arguments: [String]) throws -> TemporalCommand.Output {
            try TemporalCommand.run(arguments, environment: ["PGDATABASE": database.name])
        }

        func summary(_ path: String) throws -> [String: Any] {
            try parseJSON(String(contentsOfFile: path + "/export-summary.json", encoding: .utf8)) as? [String: Any] ?? [:]
        }

        func tables(_ summary: [String: Any]) -> [String: [String: Any]] {
            Dictionary(uniqueKeysWithValues: (summary["tables"] as? [[String: Any]] ?? []).map { ($0["table"] as! String, $0) })
        }

        /// Loads a CSV export into a new table shaped like `like` and returns the rows that differ from `query`'s.
        func differences(csv path: String, like table: String, against query: String) throws -> Int {
            let copy = "loaded_\(UInt32.random(in: 0...UInt32.max))"
            try db.execute("CREATE TABLE \(copy) (LIKE \(table))")
            let text = try String(contentsOfFile: path, encoding: .utf8)
            try db.copyIn("COPY \(copy) FROM STDIN WITH (FORMAT csv, HEADER true)", data: text)
            return try db.count("""
                SELECT count(*) FROM ((SELECT * FROM \(copy) EXCEPT ALL \(query)) UNION ALL (\(query) EXCEPT ALL SELECT * FROM \(copy))) d
                """)
        }
    }

    @Test("an export is exact: CSV reloads to the table row by row, JSON lines carry every row typed, the summary counts and hashes them")
    func exact() throws {
        let setup = try Setup()
        let csv = try setup.run(["export", "--dir", setup.directory, "items", "plain", "--format", "csv"])
        #expect(csv.status == 0, "\(csv)")
        let path = csv.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(path.hasPrefix(setup.directory + "/") && path.range(of: #"/\d{8}-\d{6}$"#, options: .regularExpression) != nil, "\(csv)")
        let summary = try setup.summary(path)
        let tables = setup.tables(summary)
        #expect(tables["public.items"]?["count"] as? Int == 2500)
        #expect(tables["public.items"]?["key"] as? [String] == ["id"])
        #expect(tables["public.plain"]?["count"] as? Int == 2)
        #expect((summary["exportedAt"] as? String)?.hasSuffix("Z") == true)
        #expect(summary["snapshot"] as? String != nil && summary["lsn"] as? String != nil)
        #expect(try setup.differences(csv: path + "/items.csv", like: "items", against: "SELECT * FROM items") == 0)
        let data = try Data(contentsOf: URL(fileURLWithPath: path + "/items.csv"))
        #expect(tables["public.items"]?["size"] as? Int == data.count)
        #expect(tables["public.items"]?["sha256"] as? String == SHA256.hex(of: data))

        Thread.sleep(forTimeInterval: 1.05)
        let jsonl = try setup.run(["export", "--dir", setup.directory, "items", "--jobs", "2"])
        #expect(jsonl.status == 0, "\(jsonl)")
        let jsonPath = jsonl.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let lines = try String(contentsOfFile: jsonPath + "/items.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2500)
        let rows = try lines.map { try parseJSON(String($0)) as! [String: Any] }
        let byID = Dictionary(uniqueKeysWithValues: rows.map { (($0["id"] as? [String: Any])?["$numberLong"] as? String ?? "\($0["id"]!)", $0) })
        #expect(byID.count == 2500)
        let row = byID["7"] ?? [:]
        #expect(row["name"] is NSNull, "NULL is null: \(row)")
        #expect((row["price"] as? [String: Any])?["$numberDecimal"] as? String == "2.333", "\(row)")
        #expect(row["tags"] as? [Any?] != nil)
        #expect(((row["doc"] as? [String: Any])?["g"] as? Int) == 7, "\(row)")
        #expect((row["seen"] as? [String: Any])?["$date"] != nil, "\(row)")
        #expect((row["_exact"] as? [String: Any])?["seen"] as? String == "2026-01-01 00:00:07.123456+00", "\(row)")
        #expect(row["ok"] as? Bool == false)
        let expectedNames = try setup.db.column("SELECT coalesce(name, '<null>') FROM items ORDER BY id").map { $0! }
        #expect((1...2500).map { (byID["\($0)"]?["name"] as? String) ?? "<null>" } == expectedNames, "text exact, escapes and all")
    }

    @Test("--at T exports versioned tables exactly as temporal as-of T; other tables only with --allow-current")
    func asOf() throws {
        let setup = try Setup()
        try setup.db.execute("SELECT temporal_versioning.enable_temporal_versioning('public', 'items')")
        try setup.db.execute("UPDATE items SET price = price + 1 WHERE id % 3 = 0")
        let at = try setup.db.value("SELECT clock_timestamp()::text")!
        try setup.db.execute("""
            UPDATE items SET name = 'changed' WHERE id % 5 = 0;
            DELETE FROM items WHERE id % 11 = 0;
            INSERT INTO items (id, name) SELECT g, 'new' FROM generate_series(3000, 3100) g;
            """)
        let refused = try setup.run(["export", "--dir", setup.directory, "items", "plain", "--at", at, "--format", "csv"])
        #expect(refused.status != 0 && refused.stderr.contains("plain is not versioned"), "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: setup.directory), "nothing written: \(refused)")

        let done = try setup.run(["export", "--dir", setup.directory, "items", "plain", "--at", at, "--format", "csv", "--allow-current"])
        #expect(done.status == 0, "\(done)")
        let path = done.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let tables = setup.tables(try setup.summary(path))
        #expect(tables["public.items"]?["readAs"] as? String == "as-of")
        #expect(tables["public.plain"]?["readAs"] as? String == "current")
        let asOf = "SELECT * FROM temporal_versioning.as_of(NULL::items, '\(at)'::timestamptz)"
        #expect(tables["public.items"]?["count"] as? Int == (try setup.db.count("SELECT count(*) FROM (\(asOf)) a")))
        #expect(try setup.differences(csv: path + "/items.csv", like: "items", against: asOf) == 0)
        #expect(try setup.db.count("SELECT count(*) FROM (\(asOf)) a") != (try setup.db.count("SELECT count(*) FROM items")), "the past differs from now")

        // The same instant again: the directory exists, and is not overwritten.
        let again = try setup.run(["export", "--dir", setup.directory, "items", "--at", at, "--format", "csv"])
        #expect(again.status != 0 && again.stderr.contains("exists already"), "\(again)")
        #expect(try setup.differences(csv: path + "/items.csv", like: "items", against: asOf) == 0)
    }

    @Test("--jobs 2 reads every table in one snapshot while writers move money between them", .timeLimit(.minutes(2)))
    func oneSnapshot() throws {
        let setup = try Setup()
        try setup.db.execute("""
            CREATE TABLE left_accounts (id int PRIMARY KEY, balance int NOT NULL);
            CREATE TABLE right_accounts (id int PRIMARY KEY, balance int NOT NULL);
            INSERT INTO left_accounts SELECT g, 1000 FROM generate_series(1, 20000) g;
            INSERT INTO right_accounts SELECT g, 1000 FROM generate_series(1, 20000) g;
            """)
        let stop = Atomic(false)
        let group = DispatchGroup()
        group.enter()
        let database = setup.database
        Thread {
            defer { group.leave() }
            guard let writer = try? database.connect() else { return }
            while !stop.value {
                let id = Int.random(in: 1...20000), amount = Int.random(in: 1...50)
                try? writer.execute("""
                    BEGIN; UPDATE left_accounts SET balance = balance - \(amount) WHERE id = \(id);
                    UPDATE right_accounts SET balance = balance + \(amount) WHERE id = \(id); COMMIT;
                    """)
            }
        }.start()
        Thread.sleep(forTimeInterval: 0.3)
        let done = try setup.run(["export", "--dir", setup.directory, "left_accounts", "right_accounts", "--jobs", "2"])
        stop.value = true
        group.wait()
        #expect(done.status == 0, "\(done)")
        let path = done.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        var total = 0
        for name in ["left_accounts", "right_accounts"] {
            for line in try String(contentsOfFile: "\(path)/\(name).jsonl", encoding: .utf8).split(separator: "\n") {
                total += (try parseJSON(String(line)) as! [String: Any])["balance"] as! Int
            }
        }
        #expect(total == 40000 * 1000, "one snapshot: money is neither made nor lost")
    }

    @Test("bad exports are refused with a clear error; export list tells finished from unfinished")
    func refusals() throws {
        let setup = try Setup()
        func refused(_ arguments: [String], _ message: String) throws {
            let result = try setup.run(arguments)
            #expect(result.status != 0, "\(arguments): \(result)")
            #expect(result.stderr.contains(message), "\(arguments): \(result)")
        }
        try refused(["export", "--dir", setup.directory, "nosuch"], "does not exist")
        try refused(["export", "--dir", setup.directory, "items", "--at", "2999-01-01"], "in the future")
        try setup.db.execute("SELECT temporal_versioning.enable_temporal_versioning('public', 'items')")
        try refused(["export", "--dir", setup.directory, "items", "--at", "2001-01-01"], "before")
        try refused(["export", "--dir", setup.directory, "items", "--format", "xml"], "jsonl, json or csv")
        try refused(["export", "--dir", setup.directory], "name the tables")
        try refused(["export", "--dir", setup.directory, "--schema", "nosuch"], "does not exist")
        #expect(!FileManager.default.fileExists(atPath: setup.directory), "a refused export writes nothing")
        let file = setup.directory + ".file"
        _ = FileManager.default.createFile(atPath: file, contents: Data())
        defer { try? FileManager.default.removeItem(atPath: file) }
        try refused(["export", "--dir", file + "/sub", "items"], "could not create directory")

        let done = try setup.run(["export", "--dir", setup.directory, "--schema", "public", "--format", "json"])
        #expect(done.status == 0, "\(done)")
        let path = done.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let items = try parseJSON(String(contentsOfFile: path + "/items.json", encoding: .utf8)) as? [Any]
        #expect(items?.count == 2500)
        try FileManager.default.createDirectory(atPath: setup.directory + "/20000101-000000", withIntermediateDirectories: true)
        let listed = try setup.run(["export", "list", "--dir", setup.directory, "--format", "json"])
        #expect(listed.status == 0, "\(listed)")
        let entries = try parseJSON(listed.stdout) as? [[String: Any]] ?? []
        #expect(entries.count == 2)
        #expect((entries.first?["state"] as? String)?.hasPrefix("unfinished") == true, "\(listed)")
        #expect(entries.last?["state"] as? String == "complete" && entries.last?["rows"] as? Int == 2512, "\(listed)")
        let parted = try parseJSON(String(contentsOfFile: path + "/parted.json", encoding: .utf8)) as? [Any]
        #expect(parted?.count == 10, "a partitioned table is exported with all its partitions, once each")
        #expect(!FileManager.default.fileExists(atPath: path + "/parted_low.json"), "partitions are not exported apart")
    }

    @Test("export compare tells rows added, deleted and modified by key, and columns added, in JSON lines and in CSV")
    func compare() throws {
        let setup = try Setup()
        for format in ["jsonl", "csv"] {
            let first = try setup.run(["export", "--dir", setup.directory + "/" + format, "items", "plain", "--format", format])
            #expect(first.status == 0, "\(first)")
            try setup.db.execute(format == "jsonl" ? """
                UPDATE items SET price = price + 1 WHERE id IN (3, 4, 5);
                DELETE FROM items WHERE id IN (10, 11);
                INSERT INTO items (id, name) SELECT g, E'new\\nline "q"' FROM generate_series(3001, 3004) g;
                ALTER TABLE items ADD COLUMN extra int DEFAULT 1;
                """ : """
                UPDATE items SET name = E'changed,\\n"x"' WHERE id IN (3, 4, 5);
                DELETE FROM items WHERE id IN (12, 13);
                INSERT INTO items (id, name) SELECT g, 'new' FROM generate_series(4001, 4004) g;
                ALTER TABLE items DROP COLUMN extra;
                """)
            Thread.sleep(forTimeInterval: 1.05)
            let second = try setup.run(["export", "--dir", setup.directory + "/" + format, "items", "plain", "--format", format])
            #expect(second.status == 0, "\(second)")
            let a = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines), b = second.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let compared = try setup.run(["export", "compare", a, b, "--format", "json"])
            #expect(compared.status == 0, "\(compared)")
            let tables = (try parseJSON(compared.stdout) as? [String: Any])?["tables"] as? [[String: Any]] ?? []
            let items = tables.first { $0["table"] as? String == "public.items" } ?? [:]
            let plain = tables.first { $0["table"] as? String == "public.plain" } ?? [:]
            #expect(items["added"] as? Int == 4 && items["deleted"] as? Int == 2 && items["modified"] as? Int == 3, "\(format): \(items)")
            #expect((items["deletedKeys"] as? [String])?.count == 2, "\(items)")
            #expect(format == "jsonl" ? items["columnsAdded"] as? [String] == ["extra"] : items["columnsRemoved"] as? [String] == ["extra"], "\(items)")
            #expect(plain["added"] as? Int == 0 && plain["deleted"] as? Int == 0 && plain["modified"] as? Int == 0, "\(plain)")
            let readable = try setup.run(["export", "compare", a, b])
            #expect(readable.status == 0 && readable.stdout.contains("public.items"), "\(readable)")
        }
        let missing = try setup.run(["export", "compare", setup.directory, setup.directory])
        #expect(missing.status != 0 && missing.stderr.contains("not a finished export"), "\(missing)")
    }
}
