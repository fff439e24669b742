import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing

/// Time travel against ground truth: random INSERT, UPDATE, DELETE and
/// TRUNCATE statements (multi-row, several per transaction, savepoints rolled
/// back, whole transactions rolled back, key changes, a column added and one
/// dropped half way), with the table snapshotted at recorded instants. Then
/// as-of must equal each snapshot, diff the difference of two snapshots, and
/// revert --to must restore each snapshot exactly. The seed is printed; set
/// TEMPORAL_TEST_SEED to replay a failure.
@Suite("time travel against ground truth")
struct GroundTruthTests {
    /// One table under test: its DDL, its key, and how to make random rows.
    struct Subject: Sendable {
        let table: String
        let ddl: String
        let keyColumns: [String]
        /// A random new row with the given number in its key, column to value.
        let newRow: @Sendable (inout SplitMix64, Int) -> [String: (any PostgresParameter)?]
        /// Random `SET` clauses ($1, $2, ...) with their parameters.
        let updateSets: [(String, @Sendable (inout SplitMix64) -> [(any PostgresParameter)?])]
        /// A column that `SET c = c` leaves unchanged.
        let noOpColumn: String
        /// Partitions that statements also name directly (a partitioned table).
        var partitions: [String] = []
    }

    /// The rows of a table as canonical jsonb text, keyed by their key's jsonb text.
    typealias Snapshot = [String: String]

    static let items = Subject(
        table: "items",
        ddl: """
            CREATE TABLE items (
                id int PRIMARY KEY, name text NOT NULL, qty int, price numeric(10, 2), tags text[],
                doc jsonb, raw bytea, seen_at timestamptz, note text);
            """,
        keyColumns: ["id"],
        newRow: { random, id in
            ["id": id, "name": random.text(), "qty": random.maybe { $0.int(-50, 50) },
             "price": random.maybe { $0.price() }, "tags": random.maybe { $0.tags() },
             "doc": random.maybe { $0.document() }, "raw": random.maybe { $0.bytes() },
             "seen_at": random.maybe { $0.instant() }, "note": random.maybe { $0.text() }]
        },
        updateSets: [
            ("name = $1", { random in [random.text()] }),
            ("qty = $1::int", { random in [random.maybe { $0.int(-50, 50) }] }),
            ("qty = coalesce(qty, 0) + 1", { _ in [] }),
            ("price = $1::numeric", { random in [random.maybe { $0.price() }] }),
            ("tags = $1::text[], doc = $2::jsonb", { random in [random.maybe { $0.tags() }, random.maybe { $0.document() }] }),
            ("raw = $1::bytea, seen_at = $2::timestamptz", { random in [random.maybe { $0.bytes() }, random.maybe { $0.instant() }] }),
            ("name = name", { _ in [] }),
        ],
        noOpColumn: "name")

    static let pairs = Subject(
        table: "pairs",
        ddl: "CREATE TABLE pairs (a int NOT NULL, b text NOT NULL, v int, w text, PRIMARY KEY (a, b));",
        keyColumns: ["a", "b"],
        newRow: { random, id in
            ["a": id % 17, "b": "k\(id)", "v": random.maybe { $0.int(0, 9) }, "w": random.maybe { $0.text() }]
        },
        updateSets: [
            ("v = $1::int", { random in [random.maybe { $0.int(0, 9) }] }),
            ("w = $1", { random in [random.maybe { $0.text() }] }),
            ("v = coalesce(v, 0) * 2, w = upper(w)", { _ in [] }),
        ],
        noOpColumn: "w")

    /// A partitioned table, two levels deep: statements on it move rows
    /// between partitions (a new region is a new key), statements on one
    /// partition (UPDATE, DELETE, TRUNCATE) fire only that partition's triggers.
    static let parts = Subject(
        table: "parts",
        ddl: """
            CREATE TABLE parts (region int NOT NULL, id int NOT NULL, v int, w text, PRIMARY KEY (region, id)) PARTITION BY RANGE (region);
            CREATE TABLE parts_low PARTITION OF parts FOR VALUES FROM (0) TO (5);
            CREATE TABLE parts_high PARTITION OF parts FOR VALUES FROM (5) TO (10) PARTITION BY RANGE (id);
            CREATE TABLE parts_high_a PARTITION OF parts_high FOR VALUES FROM (MINVALUE) TO (600);
            CREATE TABLE parts_high_b PARTITION OF parts_high FOR VALUES FROM (600) TO (MAXVALUE);
            """,
        keyColumns: ["region", "id"],
        newRow: { random, id in
            ["region": random.int(0, 9), "id": id, "v": random.maybe { $0.int(0, 9) }, "w": random.maybe { $0.text() }]
        },
        updateSets: [
            ("v = $1::int", { random in [random.maybe { $0.int(0, 9) }] }),
            ("w = $1", { random in [random.maybe { $0.text() }] }),
            ("region = (region + 3) % 10", { _ in [] }),
            ("v = coalesce(v, 0) + 1, w = lower(w)", { _ in [] }),
        ],
        noOpColumn: "w",
        partitions: ["parts_low", "parts_high", "parts_high_a", "parts_high_b"])

    @Test("as-of, diff, revert and prune match snapshots: a partitioned table, statements on it and on its partitions", .timeLimit(.minutes(5)))
    func partsAgainstSnapshots() throws {
        try run(Self.parts, transactions: 700, schemaChanges: false)
    }

    @Test("as-of, diff and revert match snapshots: single key, all types, columns added and dropped", .timeLimit(.minutes(5)))
    func itemsAgainstSnapshots() throws {
        try run(Self.items, transactions: 1000, schemaChanges: true)
    }

    @Test("as-of, diff and revert match snapshots: composite key", .timeLimit(.minutes(5)))
    func pairsAgainstSnapshots() throws {
        try run(Self.pairs, transactions: 700, schemaChanges: false)
    }

    @Test("as-of, diff and revert match snapshots: history partitioned by time, columns added and dropped", .timeLimit(.minutes(5)))
    func itemsWithPartitionedHistory() throws {
        try run(Self.items, transactions: 600, schemaChanges: true, partitionHistory: "daily")
    }

    private func run(_ subject: Subject, transactions: Int, schemaChanges: Bool, partitionHistory: String? = nil) throws {
        let seed = ProcessInfo.processInfo.environment["TEMPORAL_TEST_SEED"].flatMap(UInt64.init)
            ?? UInt64.random(in: 1...UInt64.max)
        print("GroundTruthTests \(subject.table): TEMPORAL_TEST_SEED=\(seed)")
        var random = SplitMix64(seed: seed)

        let (_, db) = try installedDatabase()
        try db.execute(subject.ddl)
        for n in 0..<40 {
            try insert(subject, count: 1, startingAt: n, db, &random)
        }
        let table = try TableResolver.resolve(subject.table, on: db)
        try Versioning(connection: db).enable(table, partitionHistory: partitionHistory)

        var nextID = 1000
        var snapshots: [(instant: String, rows: Snapshot, columns: [String])] = []
        var statements = 0
        var droppedAt: Int?
        for step in 0..<transactions {
            if schemaChanges && step == transactions / 3 {
                try db.execute("ALTER TABLE items ADD COLUMN extra int DEFAULT 7")
            }
            if schemaChanges && step == 2 * transactions / 3 {
                try db.execute("ALTER TABLE items DROP COLUMN note")
                droppedAt = snapshots.count
            }
            try db.execute("BEGIN")
            let rollBackAll = random.chance(0.06)
            for _ in 0..<random.int(1, 4) {
                let savepoint = random.chance(0.12)
                if savepoint { try db.execute("SAVEPOINT s") }
                statements += try randomStatement(subject, db, &random, nextID: &nextID)
                if savepoint && random.chance(0.5) { try db.execute("ROLLBACK TO SAVEPOINT s") }
            }
            try db.execute(rollBackAll ? "ROLLBACK" : "COMMIT")
            if random.chance(0.05) || step == transactions - 1 {
                let instant = try db.value("SELECT clock_timestamp()")!
                snapshots.append((instant, try snapshot(subject, db), try liveColumns(subject, db)))
            }
        }
        print("GroundTruthTests \(subject.table): \(statements) statements in \(transactions) transactions, \(snapshots.count) snapshots")
        #expect(statements >= transactions, "the run made \(statements) statements")
        #expect(snapshots.count >= 5)

        let current = try liveColumns(subject, db)
        // as-of at every instant equals the snapshot taken then.
        for (index, snap) in snapshots.enumerated() {
            let asOf = try rows(db, "SELECT r FROM temporal_versioning.query_temporal_data('public', $1, $2) r", [subject.table, snap.instant], subject)
            #expect(try project(asOf, to: current.filter(snap.columns.contains), db)
                        == project(snap.rows, to: current.filter(snap.columns.contains), db),
                    "as-of snapshot \(index) of \(snapshots.count), seed \(seed)")
        }
        // The typed form agrees with the jsonb form.
        let typed = try db.count("""
            SELECT count(*) FROM temporal_versioning.as_of(NULL::\(subject.table), $1::timestamptz)
            """, [snapshots[snapshots.count / 2].instant])
        #expect(typed == snapshots[snapshots.count / 2].rows.count)

        // diff between pairs of instants equals the difference of the snapshots.
        for _ in 0..<8 {
            let i = random.int(0, snapshots.count - 2), j = random.int(i + 1, snapshots.count - 1)
            let shared = current.filter { snapshots[i].columns.contains($0) && snapshots[j].columns.contains($0) }
            let expected = difference(try project(snapshots[i].rows, to: shared, db), try project(snapshots[j].rows, to: shared, db))
            let result = try db.query("""
                SELECT change, key::text, coalesce(\(keep("before", "$4"))::text, 'null'), coalesce(\(keep("after", "$4"))::text, 'null')
                FROM temporal_versioning.compare_temporal_data('public', $1, $2, $3)
                """, [subject.table, snapshots[i].instant, snapshots[j].instant, shared])
            var actual: [String: String] = [:]
            for row in result.rows {
                let before = row[2]!, after = row[3]!
                // A row that differs only in a column one of the instants did not have is no difference here.
                if before != after { actual[row[1]!] = "\(row[0]!) \(before) -> \(after)" }
            }
            #expect(actual == expected, "diff \(i)->\(j), seed \(seed)")
        }

        // (A partitioned history is pruned by whole partitions: HistoryPartitionTests.)
        if partitionHistory == nil {
            try pruneAndRestore(subject, table, snapshots.map(\.instant), current: current, db, &random, seed: seed)
        }

        // revert --to every instant, in random order, restores that snapshot exactly.
        var order = Array(snapshots.indices)
        order.shuffle(using: &random)
        for index in order {
            let snap = snapshots[index]
            let before = try snapshot(subject, db)
            if let droppedAt, index < droppedAt {
                let error = #expect(throws: PostgresError.self) {
                    try db.query("SELECT * FROM temporal_versioning.revert_table_data('public', $1, $2, false)", [subject.table, snap.instant])
                }
                #expect(error?.message.contains("was dropped") == true)
                #expect(try snapshot(subject, db) == before, "a refused revert changed nothing")
                continue
            }
            let plan = try db.query("SELECT action, key::text FROM temporal_versioning.revert_table_data('public', $1, $2, true)", [subject.table, snap.instant]).rows
            let done = try db.query("SELECT action, key::text FROM temporal_versioning.revert_table_data('public', $1, $2, false)", [subject.table, snap.instant]).rows
            #expect(plan == done, "the dry run showed what the revert did, seed \(seed)")
            let restored = try snapshot(subject, db)
            let columns = try liveColumns(subject, db).filter(snap.columns.contains)
            #expect(try project(restored, to: columns, db) == project(snap.rows, to: columns, db),
                    "revert to snapshot \(index), seed \(seed)")
            // Nothing touched that did not need to be: a second revert finds nothing to do.
            #expect(try db.count("SELECT count(*) FROM temporal_versioning.revert_table_data('public', $1, $2, true)", [subject.table, snap.instant]) == 0)
        }
    }

    // MARK: - Prune at a random floor

    /// Prunes at a random snapshot's instant: every later instant gives the
    /// same as-of, diff and revert plan as before, every earlier one is
    /// refused with the floor in the message; the archive, restored, gives
    /// back the history and the transactions exactly.
    private func pruneAndRestore(_ subject: Subject, _ table: TableName, _ instants: [String], current: [String],
                                 _ db: Connection, _ random: inout SplitMix64, seed: UInt64) throws {
        let cut = random.int(1, instants.count - 2)
        let floor = instants[cut]
        let history = "temporal_versioning.\(subject.table)_history"
        func asOf(_ instant: String) throws -> [String] {
            try db.column("SELECT r::text FROM temporal_versioning.query_temporal_data('public', $1, $2) r ORDER BY 1",
                          [subject.table, instant]).map { $0 ?? "" }
        }
        // A revert refused (across a dropped column) must be refused alike.
        func plan(_ instant: String) throws -> [String] {
            do {
                return try plannedRows(instant)
            } catch let error as PostgresError {
                return ["refused: \(error.message)"]
            }
        }
        func plannedRows(_ instant: String) throws -> [String] {
            try db.column("SELECT concat_ws(' ', action, key::text, before::text, after::text) FROM temporal_versioning.revert_table_data('public', $1, $2, true) ORDER BY 1",
                          [subject.table, instant]).map { $0 ?? "" }
        }
        func diff(_ from: String, _ to: String) throws -> [String] {
            try db.column("SELECT concat_ws(' ', change, key::text, before::text, after::text) FROM temporal_versioning.compare_temporal_data('public', $1, $2, $3) ORDER BY 1",
                          [subject.table, from, to]).map { $0 ?? "" }
        }
        let later = Array(instants[cut...])
        let asOfBefore = try later.map(asOf)
        let plansBefore = try later.map(plan)
        let pairs = (0..<4).map { _ -> (Int, Int) in
            let i = random.int(0, later.count - 2)
            return (i, random.int(i + 1, later.count - 1))
        }
        let diffsBefore = try pairs.map { try diff(later[$0.0], later[$0.1]) }
        let historyBefore = try db.column("SELECT h::text FROM \(history) h ORDER BY temporal_id")
        let transactionsBefore = try db.column("SELECT t::text FROM temporal_versioning.transactions t ORDER BY tx_id")
        let older = try db.count("""
            SELECT count(*) FROM \(history) h JOIN temporal_versioning.transactions t ON t.tx_id = h.temporal_tx_id
            WHERE t.valid_from < $1::timestamptz
            """, [floor])

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("archive-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let results = try Lifecycle(connection: db).prune(table, before: floor, archive: .directory(directory))
        #expect(results.count == 1 && results[0].rowsDeleted == Int64(older), "pruned \(results) of \(older) older changes, seed \(seed)")
        #expect(try db.count("SELECT count(*) FROM \(history)") == historyBefore.count - older)

        for (index, instant) in later.enumerated() {
            #expect(try asOf(instant) == asOfBefore[index], "as-of \(instant) after the prune at \(floor), seed \(seed)")
            #expect(try plan(instant) == plansBefore[index], "revert plan to \(instant) after the prune at \(floor), seed \(seed)")
        }
        for (index, pair) in pairs.enumerated() {
            #expect(try diff(later[pair.0], later[pair.1]) == diffsBefore[index], "diff after the prune, seed \(seed)")
        }
        for instant in instants[..<cut] {
            let error = #expect(throws: PostgresError.self) { try asOf(instant) }
            #expect(error?.message.contains("before the floor") == true)
            #expect(error?.detail?.contains(try db.value("SELECT $1::timestamptz::text", [floor])!) == true, "\(String(describing: error))")
        }

        guard let archive = results.first?.archiveFile else { return }
        let restored = try Archives(connection: db).restore(archive, into: .history)
        #expect(restored.rowsRestored == Int64(older))
        #expect(try db.column("SELECT h::text FROM \(history) h ORDER BY temporal_id") == historyBefore, "the history restored exactly, seed \(seed)")
        #expect(try db.column("SELECT t::text FROM temporal_versioning.transactions t ORDER BY tx_id") == transactionsBefore,
                "the transactions restored exactly, seed \(seed)")
        #expect(try asOf(instants[0]).count >= 0, "time travel below the old floor works again")
    }

    // MARK: - Random statements

    /// Runs one random statement; returns 1 (the statement count).
    private func randomStatement(_ subject: Subject, _ db: Connection, _ random: inout SplitMix64, nextID: inout Int) throws -> Int {
        let roll = random.int(0, 99)
        let keys = try db.column("SELECT \(jsonKey(subject)) FROM \(subject.table) ORDER BY random() LIMIT \(random.int(1, 6))")
        let condition = keyCondition(subject, parameter: 1)
        switch roll {
        case 0..<30:
            try insert(subject, count: random.int(1, 5), startingAt: nextID, db, &random)
            nextID += 5
        case 30..<65 where !keys.isEmpty:
            let (set, values) = subject.updateSets[random.int(0, subject.updateSets.count - 1)]
            let parameters = values(&random)
            try db.query("UPDATE \(subject.table) SET \(set) WHERE \(keyCondition(subject, parameter: parameters.count + 1))",
                         parameters + [keys.compactMap { $0 }])
        case 65..<85 where !keys.isEmpty:
            try db.query("DELETE FROM \(subject.table) WHERE \(condition)", [keys.compactMap { $0 }])
        case 80..<85 where !keys.isEmpty && !subject.partitions.isEmpty:
            // A statement on one partition: only that partition's triggers fire.
            let partition = subject.partitions[random.int(0, subject.partitions.count - 1)]
            if random.chance(0.1) {
                try db.execute("TRUNCATE \(partition)")
            } else if random.chance(0.5) {
                try db.query("DELETE FROM \(partition) WHERE \(condition)", [keys.compactMap { $0 }])
            } else {
                try db.query("UPDATE \(partition) SET v = coalesce(v, 0) + 10, w = 'p' WHERE \(condition)", [keys.compactMap { $0 }])
            }
        case 85..<93 where !keys.isEmpty && subject.keyColumns == ["id"]:
            // Change keys: the old key ends, a new one begins.
            try db.query("UPDATE \(subject.table) SET id = id + 100000 WHERE \(condition) AND id < 100000", [keys.compactMap { $0 }])
        case 93..<95:
            try db.execute("TRUNCATE \(subject.table)")
        case 95..<100:
            // A statement that matches rows and changes nothing.
            try db.execute("UPDATE \(subject.table) SET \(subject.noOpColumn) = \(subject.noOpColumn)")
        default:
            try insert(subject, count: 1, startingAt: nextID, db, &random)
            nextID += 1
        }
        return 1
    }

    /// Inserts `count` random rows, with values for the columns the table has now.
    private func insert(_ subject: Subject, count: Int, startingAt first: Int, _ db: Connection, _ random: inout SplitMix64) throws {
        let columns = try liveColumns(subject, db)
        var tuples: [String] = []
        var parameters: [(any PostgresParameter)?] = []
        var named: [String] = []
        for n in 0..<count {
            let row = subject.newRow(&random, first + n)
            named = columns.filter { row.keys.contains($0) }
            tuples.append("(" + named.indices.map { "$\(parameters.count + $0 + 1)" }.joined(separator: ", ") + ")")
            parameters += named.map { row[$0]! }
        }
        try db.query(
            "INSERT INTO \(subject.table) (\(named.joined(separator: ", "))) VALUES \(tuples.joined(separator: ", ")) ON CONFLICT DO NOTHING",
            parameters)
    }

    // MARK: - Snapshots

    private func jsonKey(_ subject: Subject) -> String {
        "jsonb_build_object(" + subject.keyColumns.map { "'\($0)', \($0)" }.joined(separator: ", ") + ")"
    }

    /// Rows whose key is in the jsonb[] parameter $n.
    private func keyCondition(_ subject: Subject, parameter: Int) -> String {
        "(\(jsonKey(subject))) = ANY ($\(parameter)::jsonb[])"
    }

    private func snapshot(_ subject: Subject, _ db: Connection) throws -> Snapshot {
        try rows(db, "SELECT to_jsonb(t) FROM \(subject.table) t", [], subject)
    }

    private func rows(_ db: Connection, _ sql: String, _ parameters: [(any PostgresParameter)?], _ subject: Subject) throws -> Snapshot {
        var result: Snapshot = [:]
        let keyObject = "jsonb_build_object(" + subject.keyColumns.map { "'\($0)', r->'\($0)'" }.joined(separator: ", ") + ")"
        for row in try db.query("SELECT (\(keyObject))::text, r::text FROM (\(sql)) AS q(r)", parameters).rows {
            result[row[0]!] = row[1]!
        }
        return result
    }

    private func liveColumns(_ subject: Subject, _ db: Connection) throws -> [String] {
        try db.column("""
            SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum
            """, [subject.table]).compactMap { $0 }
    }

    /// Keeps only `columns` of every row. PostgreSQL does it, so the text
    /// stays canonical jsonb (1.50 stays 1.50).
    private func project(_ snapshot: Snapshot, to columns: [String], _ db: Connection) throws -> Snapshot {
        let keys = Array(snapshot.keys)
        let projected = try db.column("""
            SELECT \(keep("x::jsonb", "$2"))::text FROM unnest($1::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n
            """, [keys.map { snapshot[$0]! }, columns])
        return Dictionary(uniqueKeysWithValues: zip(keys, projected.map { $0 ?? "null" }))
    }

    /// SQL for the jsonb object `expression` with only the keys in the text[] `columns`.
    private func keep(_ expression: String, _ columns: String) -> String {
        "(SELECT jsonb_object_agg(k, v) FROM jsonb_each(\(expression)) e(k, v) WHERE k = ANY (\(columns)::text[]))"
    }

    /// What changed from `old` to `new`: key -> "change before -> after".
    private func difference(_ old: Snapshot, _ new: Snapshot) -> [String: String] {
        var result: [String: String] = [:]
        for key in Set(old.keys).union(new.keys) {
            switch (old[key], new[key]) {
            case let (before?, nil): result[key] = "deleted \(before) -> null"
            case let (nil, after?): result[key] = "added null -> \(after)"
            case let (before?, after?) where before != after: result[key] = "modified \(before) -> \(after)"
            default: break
            }
        }
        return result
    }
}

/// A small seedable random generator (SplitMix64), so that a failing run can be replayed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func int(_ low: Int, _ high: Int) -> Int { Int.random(in: low...high, using: &self) }

    mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &self) < probability }

    /// NULL one time in five, else a value made with this generator.
    mutating func maybe(_ make: (inout SplitMix64) -> any PostgresParameter) -> (any PostgresParameter)? {
        chance(0.2) ? nil : make(&self)
    }

    mutating func text() -> String {
        let pieces = ["a", "Ω", "it's", "\"q\"", " ", "x,y", "naïve", "\\", "{}", "0", "Zz"]
        return (0..<int(1, 4)).map { _ in pieces[int(0, pieces.count - 1)] }.joined()
    }

    /// Prices with varying scale: 1.5 and 1.50 are different texts for the same number.
    mutating func price() -> String {
        let cents = int(-10000, 10000)
        return chance(0.5) ? String(format: "%.2f", Double(cents) / 100) : String(format: "%.1f", Double(cents / 10) / 10)
    }

    mutating func tags() -> String {
        "{" + (0..<int(0, 3)).map { _ in chance(0.2) ? "NULL" : "\"t\(int(0, 9))\"" }.joined(separator: ",") + "}"
    }

    mutating func document() -> String {
        #"{"n": \#(int(0, 99)), "list": [\#(int(0, 9)), "x"], "nested": {"ok": \#(chance(0.5))}}"#
    }

    mutating func bytes() -> String {
        "\\x" + (0..<int(0, 6)).map { _ in String(format: "%02x", int(0, 255)) }.joined()
    }

    mutating func instant() -> String {
        "2026-0\(int(1, 9))-1\(int(0, 9)) 1\(int(0, 9)):3\(int(0, 9)):00.\(int(100000, 999999))+00"
    }
}
