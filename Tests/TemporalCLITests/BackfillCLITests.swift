import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `stream setup --snapshot --history-since`: what existed before the slot
/// comes from the snapshot and the history, what came after from the stream,
/// each change exactly once, even with writers going on during setup and
/// with the stream killed while it writes the backfill.
@Suite("temporal stream backfill", .serialized)
struct BackfillCLITests {
    final class Setup: @unchecked Sendable {
        let database: TestDatabase
        let db: Connection
        let slot: String
        let file: URL

        init(rows: Int) throws {
            database = try TestDatabase()
            db = try database.connect()
            slot = "b_\(database.name)"
            file = FileManager.default.temporaryDirectory.appendingPathComponent("\(database.name).jsonl")
            _ = try Installer.install(on: db)
            try db.execute("""
                CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, note text);
                INSERT INTO accounts SELECT g, g, 'n' || g FROM generate_series(1, \(rows)) g;
                SELECT temporal_versioning.enable_temporal_versioning('public', 'accounts');
                CREATE TABLE plain (id int PRIMARY KEY, v text); INSERT INTO plain VALUES (1, 'a'), (2, 'b');
                CREATE TABLE nokey (v int);
                CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
                CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);
                """)
        }

        deinit {
            for _ in 0..<100 where (try? db.value("SELECT active FROM pg_replication_slots WHERE slot_name = $1", [slot])) == "t" {
                Thread.sleep(forTimeInterval: 0.05)
            }
            _ = try? db.query("SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1", [slot])
            try? FileManager.default.removeItem(at: file)
        }

        func run(_ arguments: [String]) throws -> TemporalCommand.Output {
            try TemporalCommand.run(arguments, environment: ["PGDATABASE": database.name])
        }

        func start(_ extra: [String]) throws -> Process {
            let process = Process()
            process.executableURL = TemporalCommand.binary
            process.arguments = ["stream", "run", "--publication", "pub", "--slot", slot, "--heartbeat", "0.5"] + extra
            process.environment = ProcessInfo.processInfo.environment.merging(["PGDATABASE": database.name]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            return process
        }

        var currentLSN: String { get throws { try db.value("SELECT pg_current_wal_lsn()::text")! } }

        func events() throws -> [[String: Any]] {
            try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
        }
    }

    @Test("writers going on during setup: history, snapshot and stream give every committed change exactly once and end at the table",
          .timeLimit(.minutes(3)))
    func exactlyOnceWithWriters() throws {
        let setup = try Setup(rows: 2000)
        let database = setup.database
        // Writers change random rows before, during and after setup.
        let stopWriting = Atomic(false)
        let writes = DispatchGroup()
        writes.enter()
        Thread {
            defer { writes.leave() }
            guard let writer = try? database.connect() else { return }
            var next = 100_000
            while !stopWriting.value {
                let id = Int.random(in: 1...2000)
                switch Int.random(in: 0..<4) {
                case 0: try? writer.execute("INSERT INTO accounts VALUES (\(next), 0, 'new')"); next += 1
                case 1: try? writer.execute("DELETE FROM accounts WHERE id = \(id)")
                default: try? writer.execute("BEGIN; SET LOCAL temporal.user_id = 'w'; UPDATE accounts SET balance = balance + 1 WHERE id = \(id); COMMIT;")
                }
            }
        }.start()
        Thread.sleep(forTimeInterval: 0.5)
        let made = try setup.run(["stream", "setup", "--publication", "pub", "--slot", setup.slot, "accounts", "plain",
                                  "--replica-identity-full", "--snapshot", "--history-since", "all"])
        #expect(made.status == 0, "\(made)")
        #expect(made.stdout.contains("history of public.accounts"), "\(made)")
        #expect(made.stderr.contains("public.plain is not versioned"), "a history asked of a table that has none: \(made)")
        Thread.sleep(forTimeInterval: 0.5)
        stopWriting.value = true
        writes.wait()

        let run = try setup.run(["stream", "run", "--publication", "pub", "--slot", setup.slot, "--output", setup.file.path,
                                 "--end-lsn", try setup.currentLSN])
        #expect(run.status == 0, "\(run)")
        let events = try setup.events()
        #expect(Set(events.map { $0["_id"] as! String }).count == events.count, "no event twice")
        #expect(events.map { $0["_id"] as! String } == events.map { $0["_id"] as! String }.sorted(), "written in _id order")

        // Every change the history holds (all of them, since versioning began) is one event:
        // from the history backfill if it committed before the slot, from the stream if after.
        let changes = events.filter { $0["entityType"] as? String == "public.accounts" && $0["operation"] as? String != "snapshot" }
            .map { "\($0["txId"]!) \($0["operation"]!) \($0["entityId"]!)" }.sorted()
        let history = try setup.db.column("""
            SELECT h.temporal_tx_id || ' ' || CASE h.temporal_operation WHEN 'I' THEN 'insert' WHEN 'U' THEN 'update' ELSE 'delete' END
                   || ' ' || h.id
            FROM temporal_versioning.accounts_history h
            """).compactMap { $0 }.sorted()
        #expect(changes.count == history.count)
        #expect(changes == history, "each change exactly once")
        #expect(events.contains { ($0["metadata"] as? [String: Any])?["backfill"] as? Bool == true }, "some came from the history")
        let streamed = events.filter {
            let metadata = $0["metadata"] as? [String: Any]
            return metadata?["backfill"] == nil && metadata?["snapshot"] == nil
        }
        #expect(!streamed.isEmpty, "some came from the stream")
        let lastBackfilled = events.last { ($0["metadata"] as? [String: Any])?["snapshot"] as? Bool == true }?["_id"] as? String ?? ""
        #expect(streamed.allSatisfy { ($0["_id"] as! String) > lastBackfilled }, "streamed events sort after the backfill")

        // Replayed in _id order, the events end at the table as it is.
        var state: [String: String] = [:]
        for event in events where event["entityType"] as? String == "public.accounts" {
            let key = "\(event["entityId"]!)"
            if let after = event["after"] as? [String: Any] {
                state[key] = "\(after["balance"]!)"
            } else {
                state[key] = nil
            }
        }
        let table = try setup.db.query("SELECT id::text, balance::text FROM accounts").rows
        #expect(state.count == table.count)
        #expect(table.allSatisfy { state[$0[0]!] == $0[1]! }, "the replay ends at the table")
        #expect(events.filter { $0["entityType"] as? String == "public.plain" }.map { $0["operation"] as? String } == ["snapshot", "snapshot"])
        // Done: the copies are gone, status says so.
        #expect(try setup.db.value("SELECT count(*) FROM pg_tables WHERE schemaname = 'temporal_versioning' AND tablename LIKE 'backfill\\_%'") == "0")
        #expect(try setup.db.value("SELECT string_agg(DISTINCT state, ',') FROM temporal_versioning.stream_backfills") == "done")
    }

    @Test("killed again and again while it writes a 100,000-row snapshot: it goes on where it stopped, every row once",
          .timeLimit(.minutes(4)))
    func killedDuringBackfill() throws {
        let setup = try Setup(rows: 100_000)
        let made = try setup.run(["stream", "setup", "--publication", "pub", "--slot", setup.slot, "accounts", "--snapshot"])
        #expect(made.status == 0, "\(made)")
        var kills = 0
        for _ in 0..<4 {
            let process = try setup.start(["--output", setup.file.path, "--batch-size", "500"])
            // Kill it at a random moment once it has written something.
            let before = (try? String(contentsOf: setup.file, encoding: .utf8).utf8.count) ?? 0
            for _ in 0..<200 {
                let size = (try? FileManager.default.attributesOfItem(atPath: setup.file.path)[.size] as? Int) ?? 0
                if size > before { break }
                Thread.sleep(forTimeInterval: 0.02)
            }
            Thread.sleep(forTimeInterval: Double.random(in: 0...0.3))
            if process.isRunning { kill(process.processIdentifier, SIGKILL); kills += 1 }
            process.waitUntilExit()
            for _ in 0..<100 where (try? setup.db.value("SELECT active FROM pg_replication_slots WHERE slot_name = $1", [setup.slot])) == "t" {
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        #expect(kills >= 2, "the stream was killed while it wrote the snapshot")
        let status = try setup.run(["stream", "status", "--slot", setup.slot, "--backfills", "--format", "json"])
        let backfills = try #require(try parseJSON(status.stdout) as? [[String: Any]], "\(status)")
        #expect(backfills.first?["table_name"] as? String == "public.accounts")
        #expect(backfills.first?["rows_total"] as? Int == 100_000)
        #expect((backfills.first?["rows_done"] as? Int ?? 0) > 0, "status shows the progress")
        let progress = Int(try setup.db.value("SELECT rows_done FROM temporal_versioning.stream_backfills") ?? "0") ?? 0
        #expect(progress > 0, "the checkpoint moved")
        try setup.db.execute("UPDATE accounts SET balance = -1 WHERE id = 7")
        let finish = try setup.run(["stream", "run", "--publication", "pub", "--slot", setup.slot, "--output", setup.file.path,
                                    "--end-lsn", try setup.currentLSN])
        #expect(finish.status == 0, "\(finish)")
        let events = try setup.events()
        let snapshot = events.filter { $0["operation"] as? String == "snapshot" }
        #expect(snapshot.count == 100_000)
        #expect(Set(snapshot.map { "\($0["entityId"]!)" }).count == 100_000, "every row once")
        #expect(Set(events.map { $0["_id"] as! String }).count == events.count)
        #expect(events.last?["operation"] as? String == "update" && "\(events.last!["entityId"]!)" == "7", "then the stream")
    }

    @Test("stream backfill adds a table to a running stream: its rows at a point, the changes before and after, nothing twice",
          .timeLimit(.minutes(3)))
    func backfillRunningStream() throws {
        let setup = try Setup(rows: 100)
        try setup.db.execute("CREATE TABLE later (id int PRIMARY KEY, v int NOT NULL); INSERT INTO later SELECT g, 0 FROM generate_series(1, 3000) g")
        let made = try setup.run(["stream", "setup", "--publication", "pub", "--slot", setup.slot, "accounts", "--replica-identity-full"])
        #expect(made.status == 0, "\(made)")
        let port = Int.random(in: 29100...29900)
        let process = try setup.start(["--output", setup.file.path, "--metrics-port", String(port)])
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        let database = setup.database
        let stopWriting = Atomic(false)
        let writes = DispatchGroup()
        writes.enter()
        Thread {
            defer { writes.leave() }
            guard let writer = try? database.connect() else { return }
            var next = 10_000
            while !stopWriting.value {
                let id = Int.random(in: 1...3000)
                switch Int.random(in: 0..<5) {
                case 0: try? writer.execute("INSERT INTO later VALUES (\(next), 1)"); next += 1
                case 1: try? writer.execute("DELETE FROM later WHERE id = \(id)")
                case 2: try? writer.execute("UPDATE accounts SET balance = balance + 1 WHERE id = \(Int.random(in: 1...100))")
                default: try? writer.execute("UPDATE later SET v = v + 1 WHERE id = \(id)")
                }
            }
        }.start()
        Thread.sleep(forTimeInterval: 0.5)
        let added = try setup.run(["stream", "backfill", "--slot", setup.slot, "--publication", "pub", "later", "--replica-identity-full"])
        #expect(added.status == 0, "\(added)")
        #expect(added.stdout.contains("public.later added to pub"), "\(added)")
        Thread.sleep(forTimeInterval: 0.8)
        stopWriting.value = true
        writes.wait()
        let target = LSN(try setup.currentLSN)!
        for _ in 0..<300 {
            let confirmed = LSN(try setup.db.value("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", [setup.slot]) ?? "0/0")!
            if confirmed >= target { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(process.isRunning, "the stream ran on")
        // The backfill's progress is in the metrics too.
        let copied = try setup.db.value("SELECT rows_total FROM temporal_versioning.stream_backfills") ?? ""
        let metrics = try StreamCLITests.httpGet(port: port, path: "/metrics")
        let gauges = metrics.split(separator: "\n").filter { $0.hasPrefix("temporal_stream_backfill_rows_") }
        #expect(gauges.contains { $0.hasPrefix("temporal_stream_backfill_rows_total{") && $0.contains("public.later") && $0.hasSuffix(" \(copied).0") },
                "\(gauges)")
        #expect(gauges.contains { $0.hasPrefix("temporal_stream_backfill_rows_done{") && $0.hasSuffix(" \(copied).0") }, "\(gauges)")
        process.terminate()
        process.waitUntilExit()
        let events = try setup.events()
        let ids = events.map { $0["_id"] as! String }
        #expect(Set(ids).count == ids.count, "nothing twice")
        #expect(ids == ids.sorted(), "in _id order")
        let later = events.filter { $0["entityType"] as? String == "public.later" }
        #expect(later.contains { $0["operation"] as? String == "snapshot" })
        var state: [String: String] = [:]
        for event in later {
            let key = "\(event["entityId"]!)"
            if let after = event["after"] as? [String: Any] { state[key] = "\(after["v"]!)" } else { state[key] = nil }
        }
        let table = try setup.db.query("SELECT id::text, v::text FROM later").rows
        #expect(state.count == table.count)
        #expect(table.allSatisfy { state[$0[0]!] == $0[1]! }, "the events of the added table end at the table")
        #expect(try setup.db.value("SELECT string_agg(DISTINCT state, ',') FROM temporal_versioning.stream_backfills") == "done")
    }

    @Test("stream backfill --history-since of a versioned table while it is written: every change the history keeps once, then the stream",
          .timeLimit(.minutes(3)))
    func backfillRunningStreamWithHistory() throws {
        let setup = try Setup(rows: 100)
        try setup.db.execute("""
            CREATE TABLE later (id int PRIMARY KEY, v int NOT NULL); INSERT INTO later SELECT g, 0 FROM generate_series(1, 500) g;
            SELECT temporal_versioning.enable_temporal_versioning('public', 'later');
            UPDATE later SET v = 1 WHERE id <= 50; DELETE FROM later WHERE id > 490;
            """)
        #expect(try setup.run(["stream", "setup", "--publication", "pub", "--slot", setup.slot, "accounts"]).status == 0)
        let process = try setup.start(["--output", setup.file.path])
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        let database = setup.database
        let stopWriting = Atomic(false)
        let writes = DispatchGroup()
        writes.enter()
        Thread {
            defer { writes.leave() }
            guard let writer = try? database.connect() else { return }
            var next = 10_000
            while !stopWriting.value {
                let id = Int.random(in: 1...500)
                switch Int.random(in: 0..<5) {
                case 0: try? writer.execute("INSERT INTO later VALUES (\(next), 1)"); next += 1
                case 1: try? writer.execute("DELETE FROM later WHERE id = \(id)")
                case 2: try? writer.execute("UPDATE accounts SET balance = balance + 1 WHERE id = \(Int.random(in: 1...100))")
                default: try? writer.execute("BEGIN; SET LOCAL temporal.user_id = 'w'; UPDATE later SET v = v + 1 WHERE id = \(id); COMMIT;")
                }
            }
        }.start()
        Thread.sleep(forTimeInterval: 0.5)
        // Every change committed before the table joins can only come from its history.
        let keptBefore = Int(try setup.db.value("SELECT count(*) FROM temporal_versioning.later_history") ?? "0")!
        let added = try setup.run(["stream", "backfill", "--slot", setup.slot, "--publication", "pub", "later",
                                   "--replica-identity-full", "--history-since", "all", "--strict"])
        #expect(added.status == 0, "\(added)")
        #expect(added.stdout.contains("changes of its history"), "\(added)")
        Thread.sleep(forTimeInterval: 0.8)
        stopWriting.value = true
        writes.wait()
        let target = LSN(try setup.currentLSN)!
        for _ in 0..<300 {
            let confirmed = LSN(try setup.db.value("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", [setup.slot]) ?? "0/0")!
            if confirmed >= target { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(process.isRunning, "the stream ran on")
        process.terminate()
        process.waitUntilExit()
        let events = try setup.events()
        let ids = events.map { $0["_id"] as! String }
        #expect(Set(ids).count == ids.count, "nothing twice")
        #expect(ids == ids.sorted(), "in _id order")
        let later = events.filter { $0["entityType"] as? String == "public.later" }
        // Every change the history keeps is one event, from the history up to the
        // backfill's consistent point and from the stream after it.
        let changes = later.filter { $0["operation"] as? String != "snapshot" }
            .map { "\($0["txId"]!) \($0["operation"]!) \($0["entityId"]!)" }.sorted()
        let history = try setup.db.column("""
            SELECT h.temporal_tx_id || ' ' || CASE h.temporal_operation WHEN 'I' THEN 'insert' WHEN 'U' THEN 'update' ELSE 'delete' END
                   || ' ' || h.id
            FROM temporal_versioning.later_history h
            """).compactMap { $0 }.sorted()
        #expect(changes.count == history.count)
        #expect(changes == history, "each change exactly once")
        let fromHistory = later.filter { ($0["metadata"] as? [String: Any])?["backfill"] as? Bool == true }
        #expect(keptBefore > 60, "the writer changed the table before it joined")
        #expect(fromHistory.count >= keptBefore, "the history's changes, before the table joined and after")
        #expect(later.contains { ($0["metadata"] as? [String: Any])?["backfill"] == nil && $0["operation"] as? String != "snapshot" },
                "then the stream's")
        var state: [String: String] = [:]
        for event in later {
            let key = "\(event["entityId"]!)"
            if let after = event["after"] as? [String: Any] { state[key] = "\(after["v"]!)" } else { state[key] = nil }
        }
        let table = try setup.db.query("SELECT id::text, v::text FROM later").rows
        #expect(state.count == table.count)
        #expect(table.allSatisfy { state[$0[0]!] == $0[1]! }, "replayed in _id order, the events end at the table")
        #expect(try setup.db.value("SELECT string_agg(DISTINCT state, ',') FROM temporal_versioning.stream_backfills") == "done")
    }

    @Test("a table's new shape is one schema event, just before the first change that has it, also when it changed while the stream was stopped")
    func schemaEvents() throws {
        let setup = try Setup(rows: 3)
        try setup.db.execute("CREATE TABLE shapes (id int PRIMARY KEY, v int)")
        let made = try setup.run(["stream", "setup", "--publication", "pub", "--slot", setup.slot, "shapes"])
        #expect(made.status == 0, "\(made)")
        try setup.db.execute("""
            INSERT INTO shapes VALUES (1, 1);
            ALTER TABLE shapes ADD COLUMN note text;
            INSERT INTO shapes VALUES (2, 2, 'x');
            ALTER TABLE shapes ALTER COLUMN v TYPE bigint;
            UPDATE shapes SET v = 3 WHERE id = 1;
            """)
        let first = try setup.run(["stream", "run", "--publication", "pub", "--slot", setup.slot, "--output", setup.file.path,
                                   "--end-lsn", try setup.currentLSN])
        #expect(first.status == 0, "\(first)")
        var events = try setup.events()
        #expect(events.map { $0["operation"] as? String ?? "" } == ["insert", "schema", "insert", "schema", "update"])
        let schemas = events.filter { $0["operation"] as? String == "schema" }
        #expect(schemas.first?["entityType"] as? String == "public.shapes")
        let added = (schemas.first?["changes"] as? [String: Any])?["note"] as? [String: Any]
        #expect(added?["from"] is NSNull && added?["to"] as? String == "text", "\(schemas)")
        let retyped = (schemas.last?["changes"] as? [String: Any])?["v"] as? [String: Any]
        #expect(retyped?["from"] as? String == "integer" && retyped?["to"] as? String == "bigint", "\(schemas)")
        #expect(events.map { $0["_id"] as! String } == events.map { $0["_id"] as! String }.sorted(), "schema events sort before the changes after them")

        // Changed while no stream ran: the next run tells it before the first change.
        try setup.db.execute("ALTER TABLE shapes DROP COLUMN note; INSERT INTO shapes VALUES (3, 3)")
        let second = try setup.run(["stream", "run", "--publication", "pub", "--slot", setup.slot, "--output", setup.file.path,
                                    "--end-lsn", try setup.currentLSN])
        #expect(second.status == 0, "\(second)")
        events = try setup.events()
        #expect(events.suffix(2).map { $0["operation"] as? String ?? "" } == ["schema", "insert"], "\(events.suffix(3))")
        let dropped = (events.suffix(2).first?["changes"] as? [String: Any])?["note"] as? [String: Any]
        #expect(dropped?["from"] as? String == "text" && dropped?["to"] is NSNull)

        // A third run with no change of shape writes no schema event.
        try setup.db.execute("INSERT INTO shapes VALUES (4, 4)")
        let third = try setup.run(["stream", "run", "--publication", "pub", "--slot", setup.slot, "--output", setup.file.path,
                                   "--end-lsn", try setup.currentLSN])
        #expect(third.status == 0, "\(third)")
        #expect(try setup.events().suffix(1).map { $0["operation"] as? String ?? "" } == ["insert"])
        #expect(try setup.events().filter { $0["operation"] as? String == "schema" }.count == 3)
    }

    @Test("a partitioned table is snapshotted, backfilled and streamed as one table, through its root, writes into a partition too")
    func partitionedTable() throws {
        let setup = try Setup(rows: 10)
        try setup.db.execute("""
            CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (100) TO (200);
            ALTER TABLE parted ADD COLUMN v int;
            INSERT INTO parted SELECT g, 0 FROM generate_series(1, 150) g;
            SELECT temporal_versioning.enable_temporal_versioning('public', 'parted');
            UPDATE parted SET v = 1 WHERE id <= 20;
            """)
        let made = try setup.run(["stream", "setup", "--publication", "pub", "--slot", setup.slot, "parted",
                                  "--snapshot", "--history-since", "all"])
        #expect(made.status == 0, "\(made)")
        #expect(try setup.db.value("SELECT pubviaroot::text FROM pg_publication WHERE pubname = 'pub'") == "true")
        try setup.db.execute("""
            UPDATE parted SET v = 2 WHERE id <= 3;
            UPDATE parted_2 SET v = 3 WHERE id = 150;
            DELETE FROM parted_1 WHERE id = 50;
            INSERT INTO parted_2 VALUES (199, 4);
            """)
        let run = try setup.run(["stream", "run", "--publication", "pub", "--slot", setup.slot, "--output", setup.file.path,
                                 "--end-lsn", try setup.currentLSN])
        #expect(run.status == 0, "\(run)")
        let events = try setup.events()
        #expect(Set(events.map { $0["entityType"] as? String }) == ["public.parted"], "every event names the partitioned table")
        let snapshot = events.filter { $0["operation"] as? String == "snapshot" }
        #expect(snapshot.count == 150)
        let history = events.filter { ($0["metadata"] as? [String: Any])?["backfill"] as? Bool == true }
        #expect(history.count == 20, "the history's 20 updates")
        let streamed = events.filter {
            let metadata = $0["metadata"] as? [String: Any]
            return metadata?["backfill"] == nil && metadata?["snapshot"] == nil
        }.map { "\($0["operation"]!) \($0["entityId"]!)" }
        #expect(streamed == ["update 1", "update 2", "update 3", "update 150", "delete 50", "insert 199"], "\(streamed)")
    }

    @Test("bad input: a table without a key, a history of a table that has none with --strict, an instant before the history, no pg-temporal")
    func badInput() throws {
        let setup = try Setup(rows: 10)
        for (arguments, message) in [
            (["nokey", "--snapshot"], "table public.nokey has no primary key"),
            (["parted_1", "--snapshot"], "cannot snapshot public.parted_1: it is a partition or part of an inheritance tree"),
            (["plain", "--snapshot", "--history-since", "all", "--strict"], "table public.plain is not versioned"),
            (["accounts", "--snapshot", "--history-since", "2001-01-01"], "the history of \"public.accounts\" begins at"),
            (["accounts", "--snapshot", "--history-since", "soon"], "invalid input syntax for type timestamp with time zone"),
        ] {
            let refused = try setup.run(["stream", "setup", "--publication", "pub", "--slot", setup.slot] + arguments)
            #expect(refused.status != 0, "\(arguments)")
            #expect(refused.stderr.contains(message), "\(refused)")
            #expect(try setup.db.value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", [setup.slot]) == "0", "nothing made")
            #expect(try setup.db.value("SELECT count(*) FROM pg_publication") == "0")
            #expect(try setup.db.value("SELECT count(*) FROM temporal_versioning.stream_backfills") == "0")
        }
        let bare = try TestDatabase()
        try bare.connect().execute("CREATE TABLE t (id int PRIMARY KEY)")
        let uninstalled = try TemporalCommand.run(["stream", "setup", "--publication", "pub", "--slot", "u_\(bare.name)", "t", "--snapshot"],
                                                  environment: ["PGDATABASE": bare.name])
        #expect(uninstalled.status != 0)
        #expect(uninstalled.stderr.contains("temporal install"), "\(uninstalled)")
        // Dropping the slot forgets its backfills and their copies.
        #expect(try setup.run(["stream", "setup", "--publication", "pub", "--slot", setup.slot, "accounts", "--snapshot"]).status == 0)
        #expect(try setup.db.value("SELECT count(*) FROM temporal_versioning.stream_backfills") == "1")
        #expect(try setup.run(["stream", "drop", "--slot", setup.slot, "--publication", "pub"]).status == 0)
        #expect(try setup.db.value("SELECT count(*) FROM temporal_versioning.stream_backfills") == "0")
        #expect(try setup.db.value("SELECT count(*) FROM pg_tables WHERE schemaname = 'temporal_versioning' AND tablename LIKE 'backfill\\_%'") == "0")
    }
}

/// A flag two threads share.
final class Atomic<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}
