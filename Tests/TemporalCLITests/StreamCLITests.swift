import Foundation
import Postgres
import TestSupport
import Testing

/// `temporal stream` as a service is run: a process that is started, killed
/// with SIGKILL, stopped with SIGTERM, and left without its MongoDB for a while.
@Suite("temporal stream", .serialized)
struct StreamCLITests {
    /// A database with an installed pg-temporal, a table, and a stream set up on it.
    final class Setup: @unchecked Sendable {
        let database: TestDatabase
        let db: Connection
        let slot: String
        let file: URL

        init() throws {
            database = try TestDatabase()
            db = try database.connect()
            slot = "c_\(database.name)"
            file = FileManager.default.temporaryDirectory.appendingPathComponent("\(database.name).jsonl")
            try db.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, note text)")
            let setup = try run(["stream", "setup", "--publication", "pub", "--slot", slot, "accounts", "--replica-identity-full"])
            #expect(setup.status == 0, "\(setup)")
        }

        deinit {
            try? waitUntilSlotIsFree()
            _ = try? db.query("SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1", [slot])
            try? FileManager.default.removeItem(at: file)
        }

        func run(_ arguments: [String], environment: [String: String] = [:]) throws -> TemporalCommand.Output {
            try TemporalCommand.run(arguments, environment: ["PGDATABASE": database.name].merging(environment) { $1 })
        }

        /// Starts `temporal stream run ...` as a service would; its output goes to a log file.
        func start(_ extra: [String], environment: [String: String] = [:]) throws -> Process {
            let process = Process()
            process.executableURL = TemporalCommand.binary
            process.arguments = ["stream", "run", "--publication", "pub", "--slot", slot, "--heartbeat", "0.5"] + extra
            process.environment = ProcessInfo.processInfo.environment
                .merging(["PGDATABASE": database.name]) { $1 }.merging(environment) { $1 }
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("\(database.name).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            try handle.seekToEnd()
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            return process
        }

        var confirmed: LSN {
            get throws { LSN(try db.value("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", [slot])!)! }
        }

        var currentLSN: String { get throws { try db.value("SELECT pg_current_wal_lsn()::text")! } }

        /// Waits until the slot is no longer held by a (killed) stream.
        func waitUntilSlotIsFree() throws {
            for _ in 0..<100 {
                if try db.value("SELECT active FROM pg_replication_slots WHERE slot_name = $1", [slot]) == "f" { return }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }

    /// Single-row changes in single-writer transactions: their commit order is
    /// the order they are generated in, which is what the events must show.
    struct Workload {
        var expected: [String] = []
        private var live: [Int] = []
        private var next = 1
        private var random = SystemRandomNumberGenerator()

        mutating func transaction(statements: Int) -> String {
            var sql = "BEGIN;"
            for _ in 0..<statements {
                let roll = Int.random(in: 0..<10, using: &random)
                if live.isEmpty || roll < 4 {
                    sql += "INSERT INTO accounts VALUES (\(next), \(roll), 'n\(next)');"
                    expected.append("insert \(next)")
                    live.append(next)
                    next += 1
                } else if roll < 8 {
                    let key = live[Int.random(in: 0..<live.count, using: &random)]
                    sql += "UPDATE accounts SET balance = balance + 1 WHERE id = \(key);"
                    expected.append("update \(key)")
                } else {
                    let index = Int.random(in: 0..<live.count, using: &random)
                    sql += "DELETE FROM accounts WHERE id = \(live[index]);"
                    expected.append("delete \(live[index])")
                    live.remove(at: index)
                }
            }
            return sql + "COMMIT;"
        }
    }

    /// A plain HTTP GET on 127.0.0.1, enough to read a metrics page.
    static func httpGet(port: Int, path: String) throws -> String {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestSetupError("cannot connect to 127.0.0.1:\(port)") }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count <= 0 { break }
            response += buffer[..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }

    /// The events of a JSON-lines file, or of MongoDB documents, as "operation key" in _id order.
    private static func summary(_ lines: [String]) throws -> [String] {
        try lines.map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return (object["_id"] as! String, "\(object["operation"]!) \(object["entityId"]!)")
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    @Test("setup reports what it made; status and drop; a table without a key is refused")
    func setupStatusDrop() throws {
        let setup = try Setup()
        try setup.db.execute("CREATE TABLE plain (id int PRIMARY KEY); CREATE TABLE nokey (v int)")
        let other = "d_\(setup.database.name)"
        let made = try setup.run(["stream", "setup", "--publication", "pub2", "--slot", other, "plain", "--format", "json"])
        #expect(made.status == 0, "\(made)")
        let report = try #require(try parseJSON(made.stdout) as? [String: Any])
        #expect(report["without_replica_identity_full"] as? [String] == ["public.plain"])
        #expect(made.stderr.isEmpty)

        let status = try setup.run(["stream", "status", "--slot", other, "--format", "json"])
        let rows = try #require(try parseJSON(status.stdout) as? [[String: Any]])
        #expect(rows.first?["slot_name"] as? String == other && rows.first?["active"] as? Bool == false)
        #expect(rows.first?["lag_bytes"] is Int)

        let drop = try setup.run(["stream", "drop", "--slot", other, "--publication", "pub2"])
        #expect(drop.status == 0, "\(drop)")
        #expect(try setup.db.count("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", [other]) == 0)
        #expect(try setup.run(["stream", "status", "--slot", other]).stderr.contains("does not exist"))

        let refused = try setup.run(["stream", "setup", "--publication", "pub3", "--slot", "e_\(setup.database.name)", "nokey"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("has no replica identity") && refused.stderr.contains("HINT:  Add a primary key"))
        #expect(try setup.run(["stream", "setup", "--publication", "p", "--slot", "Bad-Name", "plain"]).status == 64)
    }

    @Test("bad input: missing slot or publication, unreachable MongoDB (no credentials shown), bad options")
    func badInput() throws {
        let setup = try Setup()
        let noSlot = try setup.run(["stream", "run", "--publication", "pub", "--slot", "missing_slot"])
        #expect(noSlot.status == 1)
        #expect(noSlot.stderr.contains(#"ERROR:  replication slot "missing_slot" does not exist"#), "\(noSlot)")
        let noPublication = try setup.run(["stream", "run", "--publication", "nopub", "--slot", setup.slot])
        #expect(noPublication.stderr.contains(#"publication "nopub" does not exist"#), "\(noPublication)")
        let mongo = try setup.run(["stream", "run", "--publication", "pub", "--slot", setup.slot,
                                   "--mongodb", "mongodb://auditor:pa55word@127.0.0.1:1/?serverSelectionTimeoutMS=300", "--database", "audit"])
        #expect(mongo.status == 1)
        #expect(mongo.stderr.contains("does not answer") && mongo.stderr.contains("mongodb://***@127.0.0.1:1/"), "\(mongo)")
        #expect(!mongo.stderr.contains("pa55word"))
        #expect(try setup.run(["stream", "run", "--publication", "pub", "--slot", setup.slot, "--mongodb", "mongodb://x"]).status == 64)
        #expect(try setup.run(["stream", "run", "--publication", "pub", "--slot", setup.slot, "--end-lsn", "12"]).status == 64)
        #expect(try setup.confirmed == LSN(try setup.db.value("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", [setup.slot])!)!)
    }

    @Test("a server without wal_level = logical is refused in PostgreSQL's words", .timeLimit(.minutes(2)))
    func walLevelReplica() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let runDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("replica-\(UUID().uuidString)")
        func script(_ name: String) throws -> Int32 {
            let process = Process()
            process.executableURL = root.appendingPathComponent("scripts/\(name)")
            process.environment = ProcessInfo.processInfo.environment.merging(
                ["TEMPORAL_RUN_DIR": runDirectory.path, "TEMPORAL_PG_WAL_LEVEL": "replica"]) { $1 }
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(try script("pg-start") == 0)
        defer { _ = try? script("pg-stop"); try? FileManager.default.removeItem(at: runDirectory) }
        let environment = try String(contentsOf: runDirectory.appendingPathComponent("pg.env"), encoding: .utf8)
        func value(_ name: String) -> String {
            environment.split(separator: "\n").first { $0.contains("export \(name)=") }!
                .split(separator: "=", maxSplits: 1)[1].trimmingCharacters(in: CharacterSet(charactersIn: "'"))
        }
        let conninfo = "host=\(value("PGHOST")) port=\(value("PGPORT")) user=postgres dbname=postgres"
        let connection = try Connection(conninfo: conninfo)
        try connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
        let refused = try TemporalCommand.run(["stream", "setup", "--db", conninfo, "--publication", "p", "--slot", "s", "t"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("ERROR:  logical decoding requires wal_level >= logical"), "\(refused)")
        #expect(refused.stderr.contains("HINT:  Set it and restart PostgreSQL: ALTER SYSTEM SET wal_level = logical;"))
        #expect(try connection.count("SELECT count(*) FROM pg_publication") == 0)
    }

    @Test("SIGTERM finishes the batch, confirms it and exits 0; metrics are served meanwhile", .timeLimit(.minutes(2)))
    func sigterm() throws {
        let setup = try Setup()
        let port = Int.random(in: 29100...29900)
        let process = try setup.start(["--output", setup.file.path, "--metrics-port", String(port)])
        var workload = Workload()
        for _ in 0..<20 { try setup.db.execute(workload.transaction(statements: 5)) }
        let last = try setup.currentLSN
        for _ in 0..<100 {
            if (try? String(contentsOf: setup.file, encoding: .utf8))?.split(separator: "\n").count == 100 { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        // The counter moves just after the batch is written: the file can show the lines a moment before.
        var metrics = ""
        for _ in 0..<100 {
            metrics = try Self.httpGet(port: port, path: "/metrics")
            if metrics.contains("temporal_stream_events_written_total 100") { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(metrics.contains("temporal_stream_events_written_total 100"), "\(metrics)")
        for name in ["temporal_stream_lag_bytes", "temporal_stream_retained_wal_bytes", "temporal_stream_batch_duration_seconds"] {
            #expect(metrics.contains(name), "\(name)")
        }
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let lines = try String(contentsOf: setup.file, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(try Self.summary(lines) == workload.expected)
        #expect(try setup.confirmed >= LSN(last)!)
    }

    @Test("the PostgreSQL connection lost mid-stream: it streams again from the slot, every change once", .timeLimit(.minutes(3)))
    func reconnects() throws {
        let setup = try Setup()
        let process = try setup.start(["--output", setup.file.path, "--batch-size", "50"])
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        var workload = Workload()
        var transactions: [String] = []
        for _ in 0..<200 { transactions.append(workload.transaction(statements: 10)) }
        let batches = transactions
        let database = setup.database
        let writes = DispatchGroup()
        writes.enter()
        Thread {
            defer { writes.leave() }
            guard let writer = try? database.connect() else { return }
            for sql in batches {
                try? writer.execute(sql)
                Thread.sleep(forTimeInterval: 0.005)
            }
        }.start()
        // Cut the replication connection under the stream, as a restarted server or a network would;
        // then cut again the moment the stream connects anew, while it is still starting up.
        var terminated = 0
        var cutWhileStarting = 0
        for _ in 0..<4 {
            Thread.sleep(forTimeInterval: Double.random(in: 0.2...0.6))
            for _ in 0..<200 {   // once the stream is back on the slot
                let count = Int(try setup.db.value("""
                    SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL
                    """, [setup.slot]) ?? "0") ?? 0
                if count > 0 { terminated += 1; break }
                Thread.sleep(forTimeInterval: 0.05)
            }
            for _ in 0..<2000 {   // the first of its new connections to appear
                let count = Int(try setup.db.value("""
                    SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                    WHERE datname = $1 AND application_name = 'temporal stream' AND pid <> pg_backend_pid()
                    """, [setup.database.name]) ?? "0") ?? 0
                if count > 0 { cutWhileStarting += 1; break }
                Thread.sleep(forTimeInterval: 0.005)
            }
        }
        writes.wait()
        #expect(terminated == 4, "the stream came back on the slot after each cut")
        #expect(cutWhileStarting == 4, "the stream was cut again while starting anew")
        var lines: [String] = []
        for _ in 0..<600 {
            lines = (try? String(contentsOf: setup.file, encoding: .utf8))?.split(separator: "\n").map(String.init) ?? []
            if lines.count >= workload.expected.count || !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(process.isRunning, "the stream outlived its connections")
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        lines = try String(contentsOf: setup.file, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 2000, "one event per change")
        #expect(try Self.summary(lines) == workload.expected, "in commit order")
        let log = try String(contentsOf: FileManager.default.temporaryDirectory.appendingPathComponent("\(setup.database.name).log"),
                             encoding: .utf8)
        #expect(log.contains("streaming again"), "\(log)")
    }

    @Test("killed while transactions in progress are spooled: each run removes the spools of killed ones", .timeLimit(.minutes(3)))
    func spoolsOfKilledRuns() throws {
        let setup = try Setup()
        try setup.db.execute("ALTER DATABASE \(setup.database.name) SET logical_decoding_work_mem = '64kB'")
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(setup.database.name)")
        defer { try? FileManager.default.removeItem(at: base) }
        let root = base.appendingPathComponent("temporal-spool-\(setup.slot)")
        func runs() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? [] }
        func spooled() -> Bool {
            runs().contains { !((try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent($0).path)) ?? []).isEmpty }
        }
        // A large transaction stays open: PostgreSQL streams it in blocks, which wait in the spool.
        let writer = try setup.database.connect()
        try writer.execute("BEGIN; INSERT INTO accounts SELECT g, g, repeat('x', 100) FROM generate_series(1, 20000) g")
        for _ in 0..<3 {
            let process = try setup.start(["--output", setup.file.path, "--spool-dir", base.path])
            for _ in 0..<200 where !spooled() { Thread.sleep(forTimeInterval: 0.05) }
            #expect(spooled(), "the open transaction was spooled")
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try setup.waitUntilSlotIsFree()
            #expect(runs().count <= 1, "\(runs())")
        }
        let process = try setup.start(["--output", setup.file.path, "--spool-dir", base.path])
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        for _ in 0..<200 where !spooled() { Thread.sleep(forTimeInterval: 0.05) }
        #expect(runs().count == 1, "only the running stream's spool is left: \(runs())")
        try writer.execute("COMMIT")
        var lines = 0
        for _ in 0..<300 where lines < 20000 {
            lines = ((try? String(contentsOf: setup.file, encoding: .utf8)) ?? "").split(separator: "\n").count
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(lines == 20000, "the spooled transaction is written once, at its commit")
    }

    @Test("SIGKILL at random moments, into MongoDB and into a file: every change exactly once, in commit order",
          .timeLimit(.minutes(5)))
    func crashes() throws {
        for target in ["mongodb", "file"] {
            let setup = try Setup()
            let reader = try MongoReader.testServer()
            let sink = target == "mongodb"
                ? ["--mongodb", reader.uri, "--database", setup.database.name, "--batch-size", "50"]
                : ["--output", setup.file.path, "--batch-size", "50"]
            var workload = Workload()
            // A writer keeps committing while the stream is killed and started again.
            let writes = DispatchGroup()
            let database = setup.database
            var transactions: [String] = []
            for _ in 0..<400 { transactions.append(workload.transaction(statements: 10)) }
            let batches = transactions
            writes.enter()
            Thread {
                guard let writer = try? database.connect() else { writes.leave(); return }
                for sql in batches {
                    try? writer.execute(sql)
                    Thread.sleep(forTimeInterval: 0.002)
                }
                writes.leave()
            }.start()
            for _ in 0..<5 {
                let process = try setup.start(sink)
                Thread.sleep(forTimeInterval: Double.random(in: 0.3...1.2))
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                #expect(process.terminationReason == .uncaughtSignal)
                try setup.waitUntilSlotIsFree()
            }
            writes.wait()
            let final = try setup.start(sink + ["--end-lsn", try setup.currentLSN])
            final.waitUntilExit()
            #expect(final.terminationStatus == 0, "\(target)")

            let lines = target == "mongodb"
                ? try reader.documents(database: setup.database.name, collection: "changeEvents")
                : try String(contentsOf: setup.file, encoding: .utf8).split(separator: "\n").map(String.init)
            #expect(workload.expected.count == 4000)
            #expect(lines.count == workload.expected.count, "\(target): one event per change")
            #expect(try Self.summary(lines) == workload.expected, "\(target): in commit order")
        }
    }

    @Test("while MongoDB is down nothing is confirmed; when it is back every event arrives once", .timeLimit(.minutes(3)))
    func mongoOutage() throws {
        let setup = try Setup()
        let mongo = try OwnMongoServer()
        // With a 2 s wal_sender_timeout the server drops a stream that stops
        // reporting; the outage lasts longer, so the stream must keep reporting.
        let process = try setup.start(["--mongodb", mongo.uri, "--database", "audit"],
                                      environment: ["PGOPTIONS": "-c wal_sender_timeout=2s"])
        defer { if process.isRunning { process.terminate() } }
        var workload = Workload()
        for _ in 0..<10 { try setup.db.execute(workload.transaction(statements: 5)) }
        let beforeOutage = try setup.currentLSN
        for _ in 0..<100 where try setup.confirmed < LSN(beforeOutage)! { Thread.sleep(forTimeInterval: 0.1) }
        #expect(try setup.confirmed >= LSN(beforeOutage)!)

        mongo.stop()
        for _ in 0..<10 { try setup.db.execute(workload.transaction(statements: 5)) }
        let confirmedDuringOutage = try setup.confirmed
        Thread.sleep(forTimeInterval: 3)
        #expect(process.isRunning, "the stream waits for MongoDB")
        #expect(try setup.confirmed == confirmedDuringOutage, "nothing confirmed while MongoDB is down")
        #expect(confirmedDuringOutage < LSN(try setup.currentLSN)!)

        try mongo.start()
        let end = try setup.currentLSN
        for _ in 0..<300 where try setup.confirmed < LSN(end)! { Thread.sleep(forTimeInterval: 0.1) }
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let documents = try MongoReader(uri: mongo.uri).documents(database: "audit", collection: "changeEvents")
        #expect(try Self.summary(documents) == workload.expected)
    }
}
