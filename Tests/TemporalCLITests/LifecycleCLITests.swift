import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// temporal prune, maintain, retention and archive, run as a user runs them:
/// a prune killed half way and finished by the next with writers going on,
/// policies applied by maintain, and every refusal changing nothing.
@Suite("temporal prune, maintain and archives", .serialized)
struct LifecycleCLITests {
    final class Setup: @unchecked Sendable {
        let database: TestDatabase
        let db: Connection
        let directory: String

        init() throws {
            database = try TestDatabase()
            db = try database.connect()
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("archive-\(database.name)").path
            _ = try Installer.install(on: db)
            try db.execute("""
                CREATE TABLE events (id int PRIMARY KEY, v int NOT NULL, note text, at timestamptz, doc jsonb);
                SELECT temporal_versioning.enable_temporal_versioning('public', 'events');
                """)
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }

        func run(_ arguments: [String]) throws -> TemporalCommand.Output {
            try TemporalCommand.run(arguments, environment: ["PGDATABASE": database.name])
        }

        /// `rounds` transactions of changes to `rows` rows; returns the instant after them.
        @discardableResult
        func changes(rows: Int, rounds: Int) throws -> String {
            try db.execute("""
                INSERT INTO events SELECT g, 0, 'it''s "n" \\ ' || g, now(), jsonb_build_object('g', g, 'a', ARRAY[g, NULL])
                FROM generate_series(1, \(rows)) g ON CONFLICT (id) DO NOTHING
                """)
            for round in 0..<rounds {
                try db.execute("UPDATE events SET v = v + 1, note = note || E'\\t\(round)'")
            }
            return try db.value("SELECT clock_timestamp()::text")!
        }

        func historyTexts(before floor: String) throws -> [String] {
            try db.column("""
                SELECT h::text FROM temporal_versioning.events_history h JOIN temporal_versioning.transactions t ON t.tx_id = h.temporal_tx_id
                WHERE t.valid_from < $1::timestamptz ORDER BY h.temporal_id
                """, [floor]).compactMap { $0 }
        }

        var floor: String? { get throws { try db.value("SELECT history_floor::text FROM temporal_versioning.versioned_tables") } }
    }

    @Test("a prune killed half way, with writers going on, is finished by the next; the archive holds each pruned change once",
          .timeLimit(.minutes(3)))
    func killedPruneResumes() throws {
        let setup = try Setup()
        let floor = try setup.changes(rows: 4000, rounds: 12)
        Thread.sleep(forTimeInterval: 0.05)
        try setup.changes(rows: 4000, rounds: 2)
        let old = try setup.historyTexts(before: floor)
        let allBefore = try setup.db.column("SELECT h::text FROM temporal_versioning.events_history h ORDER BY temporal_id").compactMap { $0 }
        #expect(old.count == 4000 * 13)

        // Writers go on through the prune and its kill.
        let stop = Atomic(false)
        let writes = DispatchGroup()
        writes.enter()
        let database = setup.database
        Thread {
            defer { writes.leave() }
            guard let writer = try? database.connect() else { return }
            while !stop.value {
                let id = Int.random(in: 1...4000)
                try? writer.execute("UPDATE events SET v = v + 100 WHERE id = \(id)")
            }
        }.start()

        let process = Process()
        process.executableURL = TemporalCommand.binary
        process.arguments = ["prune", "events", "--before", floor, "--archive-dir", setup.directory, "--batch-rows", "500"]
        process.environment = ProcessInfo.processInfo.environment.merging(["PGDATABASE": setup.database.name]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let watcher = try setup.database.connect()
        var deletedAtKill = 0
        while process.isRunning {
            deletedAtKill = try watcher.count("SELECT coalesce(sum(rows_deleted), 0) FROM temporal_versioning.prunes")
            if deletedAtKill >= 5000 { break }
            Thread.sleep(forTimeInterval: 0.005)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal, "the prune was killed, not finished")
        #expect(deletedAtKill > 0 && deletedAtKill < old.count, "killed half way: \(deletedAtKill) of \(old.count)")

        // The floor was recorded first; the prune is unfinished.
        let expectedFloor = try setup.db.value("SELECT $1::timestamptz::text", [floor])
        #expect(try setup.floor == expectedFloor)
        let shown = try setup.run(["retention", "show", "--format", "json"])
        let status = (try parseJSON(shown.stdout) as? [[String: Any]])?.first
        #expect(status?["unfinished_prune"] as? Bool == true, "\(shown)")
        let asOf = try setup.run(["as-of", "events", "--at", "2000-01-01"])
        #expect(asOf.status != 0)

        let again = try setup.run(["prune", "events", "--before", floor, "--archive-dir", setup.directory, "--format", "json"])
        stop.value = true
        writes.wait()
        #expect(again.status == 0, "\(again)")
        let results = try parseJSON(again.stdout) as? [[String: Any]] ?? []
        #expect(results.count == 1 && results.first?["resumed"] as? Bool == true, "\(again)")
        #expect(results.first?["rows_deleted"] as? Int == old.count, "\(again)")
        #expect(try setup.historyTexts(before: floor).isEmpty, "no change older than the floor is left")

        // No change at or after the floor was deleted, and the writers' changes are all there.
        let remaining = Set(try setup.db.column("SELECT h::text FROM temporal_versioning.events_history h").compactMap { $0 })
        let kept = Set(allBefore).subtracting(old)
        #expect(kept.isSubset(of: remaining))
        #expect(try setup.db.count("SELECT count(*) FROM temporal_versioning.events_history WHERE v >= 100") > 0, "writers wrote during the prune")

        // The archive: its sha256 is the manifest's and sha256sum's; read back, it is exactly the pruned changes, once each.
        let archive = results.first?["archive"] as? String ?? ""
        let manifest = try ArchiveManifest.read(ArchiveManifest.path(forArchive: archive))
        #expect(manifest.rows == Int64(old.count))
        let sum = Process()
        sum.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        sum.arguments = [archive]
        let pipe = Pipe()
        sum.standardOutput = pipe
        try sum.run()
        let printed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        sum.waitUntilExit()
        #expect(printed.split(separator: " ").first.map(String.init) == manifest.sha256, "sha256sum: \(printed)")
        #expect(results.first?["sha256"] as? String == manifest.sha256)

        try setup.db.execute("CREATE SCHEMA restored")
        let into = try setup.run(["archive", "restore", archive, "--into", "restored.events_2026"])
        #expect(into.status == 0, "\(into)")
        let columns = try setup.db.column("""
            SELECT format('%I', attname) FROM pg_attribute WHERE attrelid = 'temporal_versioning.events_history'::regclass
            AND attnum > 0 AND NOT attisdropped ORDER BY attnum
            """).compactMap { $0 }.joined(separator: ", ")
        let archived = try setup.db.column("""
            SELECT ROW(\(columns))::temporal_versioning.events_history::text FROM restored.events_2026 ORDER BY temporal_id
            """).compactMap { $0 }
        #expect(archived == old, "the archive holds exactly the pruned changes, each once")

        // Back into the history: the history is whole again, and the floor goes back.
        let back = try setup.run(["archive", "restore", archive, "--into-history", "--format", "json"])
        #expect(back.status == 0, "\(back)")
        let all = Set(try setup.db.column("SELECT h::text FROM temporal_versioning.events_history h").compactMap { $0 })
        #expect(Set(allBefore).isSubset(of: all))
        #expect(try setup.floor == nil)
        #expect(try setup.run(["as-of", "events", "--at", floor, "--limit", "1"]).status == 0)
    }

    @Test("maintain applies each retention policy, again and again; archive list checks the archives", .timeLimit(.minutes(2)))
    func maintainAppliesPolicies() throws {
        let setup = try Setup()
        try setup.changes(rows: 300, rounds: 3)
        let oldCount = try setup.db.count("SELECT count(*) FROM temporal_versioning.events_history")
        Thread.sleep(forTimeInterval: 2.2)
        try setup.changes(rows: 300, rounds: 1)

        let nothing = try setup.run(["maintain", "--format", "json"])
        let nothingDone = try parseJSON(nothing.stdout) as? [Any]
        #expect(nothing.status == 0 && nothingDone?.isEmpty == true, "no policy, nothing to do: \(nothing)")

        let set = try setup.run(["retention", "set", "events", "--keep", "2s", "--archive-dir", setup.directory, "--format", "json"])
        #expect(set.status == 0, "\(set)")
        #expect((try parseJSON(set.stdout) as? [String: Any])?["keep"] as? String == "00:00:02", "\(set)")

        let first = try setup.run(["maintain", "--format", "json"])
        #expect(first.status == 0, "\(first)")
        let pruned = try parseJSON(first.stdout) as? [[String: Any]] ?? []
        #expect(pruned.count == 1 && pruned.first?["rows_deleted"] as? Int == oldCount, "\(first)")
        #expect(try setup.floor != nil)

        let second = try setup.run(["maintain", "--format", "json"])
        let secondDone = try parseJSON(second.stdout) as? [Any]
        #expect(second.status == 0 && secondDone?.isEmpty == true, "nothing more was due: \(second)")
        #expect(try setup.db.count("SELECT count(*) FROM temporal_versioning.events_history") == 300)

        // status shows the floor and the last week's growth, and warns past --warn-size.
        let status = try setup.run(["status", "events", "--format", "json", "--warn-size", "1kB"])
        #expect(status.status == 1, "over --warn-size: exit 1, for monitoring: \(status)")
        let record = try parseJSON(status.stdout) as? [String: Any] ?? [:]
        #expect(record["history_floor"] as? String != nil && record["changes_7d"] as? Int == 300, "\(status)")
        let growth = record["growth_7d"] as? [[String: Any]] ?? []
        #expect(growth.count == 7 && growth.last?["changes"] as? Int == 300, "\(status)")
        #expect(status.stderr.contains("over --warn-size 1kB"), "\(status)")
        let quiet = try setup.run(["status", "events", "--warn-size", "10GB"])
        #expect(quiet.status == 0 && !quiet.stderr.contains("WARNING"), "\(quiet)")

        let listed = try setup.run(["archive", "list", setup.directory, "--verify", "--format", "json"])
        #expect(listed.status == 0, "\(listed)")
        let entries = try parseJSON(listed.stdout) as? [[String: Any]] ?? []
        #expect(entries.count == 1 && entries.first?["sha256_ok"] as? Bool == true && entries.first?["rows"] as? Int == oldCount, "\(listed)")

        // A damaged archive is found by list --verify and refused by restore, which changes nothing.
        let archive = entries.first?["archive"] as? String ?? ""
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: archive))
        try handle.seek(toOffset: 30)
        let byte = try handle.read(upToCount: 1)![0]
        try handle.seek(toOffset: 30)
        try handle.write(contentsOf: Data([byte ^ 0xff]))
        try handle.close()
        let damaged = try setup.run(["archive", "list", setup.directory, "--verify"])
        #expect(damaged.status != 0, "\(damaged)")
        let refused = try setup.run(["archive", "restore", archive, "--into-history"])
        #expect(refused.status != 0 && refused.stderr.contains("does not match its manifest"), "\(refused)")
        #expect(try setup.db.count("SELECT count(*) FROM temporal_versioning.events_history") == 300)

        let unset = try setup.run(["retention", "unset", "events"])
        #expect(unset.status == 0, "\(unset)")
        #expect(try setup.db.count("SELECT count(*) FROM temporal_versioning.retention_policies") == 0)
    }

    @Test("enable --key-index closed; maintain moves a key index, and reports one it could not move after applying retention", .timeLimit(.minutes(2)))
    func keyIndexOnClosedPartitions() throws {
        let setup = try Setup()
        let db = setup.db
        try db.execute("CREATE TABLE orders (id int PRIMARY KEY, amount int)")
        let withoutPartitions = try setup.run(["enable", "orders", "--key-index", "closed"])
        #expect(withoutPartitions.status != 0 && withoutPartitions.stderr.contains("--partition-history"), "\(withoutPartitions)")
        let unknown = try setup.run(["enable", "orders", "--partition-history", "daily", "--key-index", "lazy"])
        #expect(unknown.status != 0 && unknown.stderr.contains("all or closed"), "\(unknown)")
        #expect(try db.count("SELECT count(*) FROM temporal_versioning.versioned_tables WHERE table_name = 'orders'") == 0)

        let enabled = try setup.run(["enable", "orders", "--partition-history", "daily", "--key-index", "closed"])
        #expect(enabled.status == 0 && enabled.stdout.contains("key index on closed partitions only"), "\(enabled)")
        let keyIndexes = { (relation: String) -> Int in
            try db.count("SELECT count(*) FROM temporal_versioning._key_indexes('temporal_versioning.\(relation)', '{id,temporal_id}')")
        }
        #expect(try keyIndexes("orders_history") == 0 && keyIndexes("orders_history_default") == 1)
        try db.execute("INSERT INTO orders SELECT g, g FROM generate_series(1, 100) g")

        // Back to 'all', but a DBA's event trigger refuses CREATE INDEX; a
        // retention policy is due meanwhile.
        try db.execute("""
            SELECT temporal_versioning.set_history_key_index('public', 'orders', 'all');
            CREATE FUNCTION refuse_index() RETURNS event_trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'indexes are built by the DBA team'; END $$;
            CREATE EVENT TRIGGER refuse_index ON ddl_command_start WHEN TAG IN ('CREATE INDEX') EXECUTE FUNCTION refuse_index();
            """)
        try setup.changes(rows: 50, rounds: 1)
        Thread.sleep(forTimeInterval: 2.2)
        #expect(try setup.run(["retention", "set", "events", "--keep", "2s", "--archive-dir", setup.directory]).status == 0)
        let refused = try setup.run(["maintain", "--format", "json"])
        #expect(refused.status != 0, "\(refused)")
        #expect(refused.stderr.contains("public.orders") && refused.stderr.contains("indexes are built by the DBA team"), "\(refused)")
        let pruned = try parseJSON(refused.stdout) as? [[String: Any]] ?? []
        #expect(pruned.count == 1 && pruned.first?["rows_deleted"] as? Int == 100, "retention was applied (50 inserts, 50 updates): \(refused)")
        #expect(try keyIndexes("orders_history") == 0)

        try db.execute("DROP EVENT TRIGGER refuse_index")
        let again = try setup.run(["maintain"])
        #expect(again.status == 0, "\(again)")
        #expect(try db.value("""
            SELECT bool_and(temporal_versioning._has_btree_index(t.relid, '{id,temporal_id}'))::text
            FROM pg_partition_tree('temporal_versioning.orders_history') t
            """) == "true")
    }

    @Test("bad prunes are refused with a clear error and change nothing", .timeLimit(.minutes(2)))
    func refusals() throws {
        let setup = try Setup()
        let floor = try setup.changes(rows: 100, rounds: 2)
        try setup.db.execute("CREATE TABLE plain (id int PRIMARY KEY)")
        let history = try setup.db.count("SELECT count(*) FROM temporal_versioning.events_history")

        func refused(_ arguments: [String], _ message: String) throws {
            let result = try setup.run(arguments)
            #expect(result.status != 0, "\(arguments): \(result)")
            #expect(result.stderr.contains(message), "\(arguments): \(result)")
            #expect(try setup.db.count("SELECT count(*) FROM temporal_versioning.events_history") == history, "\(arguments) changed nothing")
            #expect(try setup.floor == nil, "\(arguments) recorded no floor")
            #expect(try setup.db.count("SELECT count(*) FROM temporal_versioning.prunes") == 0)
        }
        try refused(["prune", "events", "--before", floor], "--archive-dir")
        try refused(["prune", "events", "--before", "2999-01-01", "--no-archive"], "is in the future")
        try refused(["prune", "events", "--before", "not a time", "--no-archive"], "invalid input syntax for type timestamp")
        try refused(["prune", "plain", "--before", floor, "--no-archive"], "is not versioned")
        try refused(["prune", "nosuch", "--before", floor, "--no-archive"], "does not exist")
        try refused(["prune", "events", "--before", floor, "--archive-dir", setup.directory, "--no-archive"], "not both")
        try refused(["retention", "set", "events", "--keep=-1 day", "--no-archive"], "keeps nothing")
        try refused(["retention", "set", "events", "--keep", "90d"], "--no-archive")

        // An archive of the same name is never overwritten.
        let preview = try setup.run(["prune", "events", "--before", floor, "--archive-dir", setup.directory, "--dry-run", "--format", "json"])
        #expect(preview.status == 0, "\(preview)")
        let planned = (try parseJSON(preview.stdout) as? [String: Any])?["archive"] as? String ?? ""
        #expect(planned.hasPrefix(setup.directory + "/events_history_") && planned.hasSuffix(".copy.gz"), "\(preview)")
        #expect((try parseJSON(preview.stdout) as? [String: Any])?["changes"] as? Int == history, "\(preview)")
        try FileManager.default.createDirectory(atPath: setup.directory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: planned, contents: Data("keep me".utf8))
        try refused(["prune", "events", "--before", floor, "--archive-dir", setup.directory], "exists already")
        #expect(try String(contentsOfFile: planned, encoding: .utf8) == "keep me")

        // Read-only mode refuses before connecting.
        try refused(["prune", "events", "--before", floor, "--no-archive", "--read-only"], "read-only")
    }
}
