import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing

/// A history partitioned by time (enable --partition-history). Time cannot
/// be made to pass in a test, so the history is aged instead: its rows'
/// instants (temporal_at) and their transactions' (valid_from) move back
/// together by the same interval, exactly as if they had been written then.
@Suite("history partitioned by time")
struct HistoryPartitionTests {
    func setUp() throws -> (TestDatabase, Connection, TableName) {
        let (database, db) = try installedDatabase()
        try db.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance numeric NOT NULL, note text)")
        let table = try TableResolver.resolve("accounts", on: db)
        try Versioning(connection: db).enable(table, partitionHistory: "daily")
        return (database, db, table)
    }

    /// Moves every change so far back by `days`.
    func age(_ db: Connection, days: Int) throws {
        try db.execute("""
            UPDATE temporal_versioning.accounts_history SET temporal_at = temporal_at - interval '\(days) days';
            UPDATE temporal_versioning.transactions SET valid_from = valid_from - interval '\(days) days';
            UPDATE temporal_versioning.versioned_tables
               SET created_at = created_at - interval '\(days) days', versioning_since = versioning_since - interval '\(days) days';
            """)
    }

    func asOf(_ db: Connection, _ at: String) throws -> [String] {
        try db.column("SELECT r::text FROM temporal_versioning.as_of(NULL::accounts, $1::timestamptz) r ORDER BY 1", [at]).map { $0! }
    }

    func partitions(_ db: Connection) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for name in try db.column("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'temporal_versioning.accounts_history'::regclass") {
            counts[name!] = try db.count("SELECT count(*) FROM temporal_versioning.\(name!)")
        }
        return counts
    }

    @Test("partitions are made ahead; a change with no partition lands in the default one, and maintain moves it out")
    func partitionsAhead() throws {
        let (_, db, _) = try setUp()
        let made = try partitions(db)
        #expect(made.count == 5, "today, three days ahead, and the default: \(made)")
        // Today's partition gone (as if maintain had not run for a while): writes still succeed.
        let today = made.keys.filter { $0 != "accounts_history_default" }.sorted().first!
        try db.execute("ALTER TABLE temporal_versioning.accounts_history DETACH PARTITION temporal_versioning.\(today); DROP TABLE temporal_versioning.\(today)")
        try db.execute("INSERT INTO accounts SELECT g, g, 'n' FROM generate_series(1, 100) g; UPDATE accounts SET balance = balance + 1")
        #expect(try partitions(db)["accounts_history_default"] == 200)
        let at = try db.value("SELECT clock_timestamp()::text")!
        let before = try asOf(db, at)

        #expect(try Lifecycle(connection: db).ensureHistoryPartitions() == 1)
        let after = try partitions(db)
        #expect(after["accounts_history_default"] == 0 && after[today] == 200, "\(after)")
        #expect(try asOf(db, at) == before)
        #expect(try Lifecycle(connection: db).ensureHistoryPartitions() == 0, "again: nothing to do")
    }

    @Test("a prune drops the old partitions whole, archived; later instants read as before, earlier ones are refused; restore brings them back")
    func pruneDropsPartitions() throws {
        let (_, db, table) = try setUp()
        try db.execute("INSERT INTO accounts SELECT g, g, 'old' FROM generate_series(1, 3000) g")
        try db.execute("UPDATE accounts SET balance = balance * 2 WHERE id % 3 = 0")
        let old = try db.value("SELECT clock_timestamp()::text")!
        let oldRows = try asOf(db, old)
        try age(db, days: 3)
        let agedInstant = try db.value("SELECT ($1::timestamptz - interval '3 days')::text", [old])!
        #expect(try asOf(db, agedInstant) == oldRows, "aging keeps the history's meaning")
        #expect(try Lifecycle(connection: db).ensureHistoryPartitions() == 1, "the aged changes get their day's partition")
        try db.execute("UPDATE accounts SET note = 'new' WHERE id % 5 = 0; DELETE FROM accounts WHERE id % 7 = 0")
        let now = try db.value("SELECT clock_timestamp()::text")!
        let current = try asOf(db, now)
        let historyBefore = try db.column("SELECT h::text FROM temporal_versioning.accounts_history h ORDER BY temporal_id").map { $0! }
        let agedCount = try db.count("SELECT count(*) FROM temporal_versioning.accounts_history WHERE temporal_at < now() - interval '1 day'")
        #expect(agedCount == 4000)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hp-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let floorAsked = try db.value("SELECT (now() - interval '1 day')::text")!
        let results = try Lifecycle(connection: db).prune(table, before: floorAsked, archive: .directory(directory))
        #expect(results.count == 1 && results.first?.rowsDeleted == Int64(agedCount), "\(results)")
        let floor = try db.value("SELECT history_floor::text FROM temporal_versioning.versioned_tables")!
        #expect(try db.value("SELECT $1::timestamptz = date_trunc('day', ($2::timestamptz) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day'",
                             [floor, agedInstant]) == "t", "the floor is the end of the dropped day: \(floor)")
        #expect(try partitions(db).count == 5, "the old day's partition is gone")
        #expect(try asOf(db, now) == current)
        let refused = #expect(throws: PostgresError.self) { try asOf(db, agedInstant) }
        #expect(refused?.message.contains("before the floor") == true)

        let restored = try Archives(connection: db).restore(results.first!.archiveFile!, into: .history)
        #expect(restored.rowsRestored == Int64(agedCount))
        #expect(try db.column("SELECT h::text FROM temporal_versioning.accounts_history h ORDER BY temporal_id").map { $0! } == historyBefore)
        #expect(try asOf(db, agedInstant) == oldRows)
        #expect(try Lifecycle(connection: db).ensureHistoryPartitions() == 1, "the restored rows get their partition back")
        #expect(try asOf(db, agedInstant) == oldRows)
    }

    @Test("a partitioned prune that was started (floor recorded) and not finished is finished by the next")
    func resumesUnfinishedPrune() throws {
        let (_, db, table) = try setUp()
        try db.execute("INSERT INTO accounts SELECT g, g, 'old' FROM generate_series(1, 500) g")
        try age(db, days: 3)
        try Lifecycle(connection: db).ensureHistoryPartitions()
        try db.execute("UPDATE accounts SET note = 'new' WHERE id < 10")
        // Killed right after its start committed: the floor is there, nothing dropped yet.
        let started = try db.query("SELECT r.floor::text, r.end_page FROM temporal_versioning._prune_partitions_start('public', 'accounts', now() - interval '1 day', NULL) r").rows[0]
        #expect(started[1] == "2", "one partition: archive and drop")
        #expect(try db.value("SELECT history_floor::text FROM temporal_versioning.versioned_tables") == started[0])
        #expect(try db.count("SELECT count(*) FROM temporal_versioning.accounts_history") == 509)

        let results = try Lifecycle(connection: db).prune(table, before: try db.value("SELECT (now() - interval '2 days')::text")!, archive: .none)
        #expect(results.count == 1 && results[0].resumed && results[0].rowsDeleted == 500 && results[0].floor == started[0], "\(results)")
        #expect(try db.count("SELECT count(*) FROM temporal_versioning.accounts_history") == 9)
        #expect(try db.count("SELECT count(*) FROM temporal_versioning.prunes WHERE state = 'running'") == 0)
    }

    /// Whether each table of the history's tree has the key index (id, temporal_id).
    func keyIndexed(_ db: Connection) throws -> [String: Bool] {
        var indexed: [String: Bool] = [:]
        for row in try db.query("""
            SELECT c.relname::text, temporal_versioning._has_btree_index(c.oid, ARRAY['id', 'temporal_id']::name[])::text
            FROM pg_partition_tree('temporal_versioning.accounts_history') t JOIN pg_class c ON c.oid = t.relid
            """).rows {
            indexed[row[0]!] = row[1] == "true"
        }
        return indexed
    }

    @Test("the key index on closed partitions only: built concurrently, the current period written without it, maintain indexes a period once it has ended, 'all' puts it back")
    func keyIndexOnClosedPartitions() throws {
        let (database, db, table) = try setUp()
        let versioning = Versioning(connection: db)
        let lifecycle = Lifecycle(connection: db)
        // Refused for a history that is not partitioned, or a scope that does not exist, changing nothing.
        try db.execute("CREATE TABLE plain (id int PRIMARY KEY)")
        let plain = try TableResolver.resolve("plain", on: db)
        try versioning.enable(plain)
        let notPartitioned = #expect(throws: PostgresError.self) { try versioning.setHistoryKeyIndex(plain, .closed) }
        #expect(notPartitioned?.sqlState == "55000" && notPartitioned?.message.contains("not partitioned by time") == true)
        let unknown = #expect(throws: PostgresError.self) {
            try db.query("SELECT temporal_versioning.set_history_key_index('public', 'accounts', 'lazy')")
        }
        #expect(unknown?.sqlState == SQLState.invalidParameterValue)
        #expect(try db.column("SELECT options::text FROM temporal_versioning.versioned_tables ORDER BY id") == [#"{"partition_history": "daily"}"#, "{}"])
        #expect(try lifecycle.alignKeyIndex(plain).statements.isEmpty)

        try db.execute("INSERT INTO accounts SELECT g, g, 'old' FROM generate_series(1, 2000) g; UPDATE accounts SET balance = balance + 1 WHERE id % 2 = 0")
        let old = try db.value("SELECT clock_timestamp()::text")!
        let oldRows = try asOf(db, old)
        #expect(try keyIndexed(db).values.allSatisfy { $0 }, "by default every partition has it")
        #expect(try lifecycle.alignKeyIndex(table).statements.isEmpty, "and nothing is to do")

        // A writer holds the history: the partitioned index's DROP waits at
        // most the lock timeout and is left for later; every partition
        // still has an index meanwhile.
        #expect(try versioning.setHistoryKeyIndex(table, .closed))
        // temporal status shows the choice, and the step that moves the indexes next.
        let status = { (name: TableName) throws -> (String?, String?, String?) in
            let result = try versioning.status(name)
            #expect(["partitioned_by", "key_index", "key_index_step"].allSatisfy { column in result.columns.contains { $0.name == column } })
            let row = result.first
            return (row?["partitioned_by"] ?? nil, row?["key_index"] ?? nil, row?["key_index_step"] ?? nil)
        }
        let pending = try status(table)
        #expect(pending.0 == "daily" && pending.1 == "closed", "\(pending)")
        #expect(pending.2?.hasPrefix("CREATE INDEX CONCURRENTLY ON temporal_versioning.accounts_history_default") == true, "\(pending)")
        let plainStatus = try status(plain)
        #expect(plainStatus.0 == nil && plainStatus.1 == nil && plainStatus.2 == nil, "not partitioned: \(plainStatus)")
        let writer = try database.connect()
        try writer.execute("BEGIN; UPDATE accounts SET note = 'held' WHERE id = 1")
        let held = try lifecycle.alignKeyIndex(table, lockTimeout: "200ms")
        #expect(held.statements.count == 1 && held.statements[0].hasPrefix("CREATE INDEX CONCURRENTLY ON temporal_versioning.accounts_history_default"), "\(held)")
        #expect(held.deferred?.hasPrefix("DROP INDEX temporal_versioning.") == true, "\(held)")
        #expect(try keyIndexed(db).values.allSatisfy { $0 })
        try writer.execute("COMMIT")
        let done = try lifecycle.alignKeyIndex(table)
        #expect(done.statements.count == 1 && done.deferred == nil, "\(done)")
        var indexed = try keyIndexed(db)
        #expect(indexed["accounts_history"] == false && indexed["accounts_history_default"] == true)
        #expect(indexed.filter { $0.value }.count == 1, "the default partition alone: \(indexed)")
        let aligned = try status(table)
        #expect(aligned.1 == "closed" && aligned.2 == nil, "\(aligned)")

        // Two days later (aged): maintain makes that day's partition, closed, and indexes it.
        try age(db, days: 2)
        let agedInstant = try db.value("SELECT ($1::timestamptz - interval '2 days')::text", [old])!
        #expect(try lifecycle.maintain().isEmpty)
        indexed = try keyIndexed(db)
        let agedDay = try db.value("SELECT 'accounts_history_' || to_char(($1::timestamptz) AT TIME ZONE 'UTC', 'YYYYMMDD')", [agedInstant])!
        let today = try db.value("SELECT 'accounts_history_' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')")!
        #expect(indexed[agedDay] == true && indexed[today] == false, "\(indexed)")
        #expect(try db.count("SELECT count(*) FROM temporal_versioning.\(agedDay)") == 3001)

        // What a build that failed or was killed leaves, an invalid index,
        // is dropped concurrently and the partition's index built again.
        let agedIndex = try db.value("""
            SELECT k.index::text FROM temporal_versioning._key_indexes('temporal_versioning.\(agedDay)', ARRAY['id', 'temporal_id']::name[]) k
            """)!
        try db.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = '\(agedIndex)'::regclass")
        #expect(try keyIndexed(db)[agedDay] == false)
        let rebuilt = try lifecycle.alignKeyIndex(table)
        #expect(rebuilt.statements == ["DROP INDEX CONCURRENTLY \(agedIndex)", "CREATE INDEX CONCURRENTLY ON temporal_versioning.\(agedDay) (id, temporal_id)"], "\(rebuilt)")
        #expect(try keyIndexed(db)[agedDay] == true)

        // A key index of its own on the current partition (by hand here; or
        // left by a switch to 'all' half done) goes, concurrently: writes
        // would maintain it. A UNIQUE one is not a key index and stays.
        try db.execute("CREATE INDEX ON temporal_versioning.\(today) (id, temporal_id)")
        try db.execute("CREATE UNIQUE INDEX hand_unique ON temporal_versioning.\(today) (id, temporal_id)")
        let dropped = try lifecycle.alignKeyIndex(table)
        #expect(dropped.statements.count == 1 && dropped.statements[0].hasPrefix("DROP INDEX CONCURRENTLY temporal_versioning.\(today)_id_temporal_id_idx"), "\(dropped)")
        #expect(try keyIndexed(db)[today] == false)
        #expect(try db.count("SELECT count(*) FROM pg_indexes WHERE indexname = 'hand_unique'") == 1)

        // Another session moving the same history's index: this run does nothing.
        let other = try database.connect()
        try other.query("SELECT pg_advisory_lock(hashtext('pg-temporal key index'), hashtext('public.accounts'))")
        try db.execute("CREATE INDEX ON temporal_versioning.\(today) (id, temporal_id)")
        let busy = try lifecycle.alignKeyIndex(table)
        #expect(busy.busy && busy.statements.isEmpty, "\(busy)")
        try other.query("SELECT pg_advisory_unlock_all()")
        #expect(try lifecycle.alignKeyIndex(table).statements.count == 1)

        // Writes into the open period, and time travel on either side, as before.
        try db.execute("UPDATE accounts SET note = 'new' WHERE id % 5 = 0; DELETE FROM accounts WHERE id % 7 = 0")
        let now = try db.value("SELECT clock_timestamp()::text")!
        let current = try asOf(db, now)
        #expect(try asOf(db, agedInstant) == oldRows)
        #expect(try db.count("SELECT count(*) FROM temporal_versioning.\(today)") == 400 + 285)
        let rowHistory = { try db.column("SELECT h::text FROM temporal_versioning.accounts_history h WHERE id = 70 ORDER BY temporal_id").map { $0! } }
        let history70 = try rowHistory()
        #expect(history70.count == 4, "insert, update, update, delete: \(history70)")

        // Back to every partition: an index ON ONLY the history, the closed
        // partitions' own attached to it, the others built concurrently.
        #expect(try versioning.setHistoryKeyIndex(table, .all))
        #expect(try !versioning.setHistoryKeyIndex(table, .all), "already so")
        // A DDL of the table meanwhile builds no index inside it (a plain
        // history missing its index does get it back there).
        let plainIndex = try db.value("""
            SELECT k.index::text FROM temporal_versioning._key_indexes('temporal_versioning.plain_history', ARRAY['id', 'temporal_id']::name[]) k
            """)!
        try db.execute("DROP INDEX \(plainIndex); ALTER TABLE plain ADD COLUMN extra int")
        #expect(try db.value("SELECT temporal_versioning._has_btree_index('temporal_versioning.plain_history', ARRAY['id', 'temporal_id']::name[])::text") == "true")
        try db.execute("ALTER TABLE accounts ALTER COLUMN note SET DEFAULT 'n'")
        #expect(try keyIndexed(db)[today] == false)
        let back = try lifecycle.alignKeyIndex(table)
        #expect(back.statements.first?.hasPrefix("CREATE INDEX ON ONLY temporal_versioning.accounts_history ") == true, "\(back)")
        #expect(back.statements.filter { $0.hasPrefix("CREATE INDEX CONCURRENTLY") }.count == 4, "today's and the three ahead: \(back)")
        #expect(back.statements.filter { $0.hasPrefix("ALTER INDEX") }.count == 6, "those, the aged day's and the default's: \(back)")
        #expect(try keyIndexed(db).values.allSatisfy { $0 })
        #expect(try db.value("""
            SELECT bool_and(i.indisvalid)::text FROM pg_index i
            WHERE i.indrelid = 'temporal_versioning.accounts_history'::regclass AND i.indexrelid IN
                  (SELECT k.index FROM temporal_versioning._key_indexes('temporal_versioning.accounts_history', ARRAY['id', 'temporal_id']::name[]) k)
            """) == "true")
        #expect(try rowHistory() == history70)
        #expect(try asOf(db, now) == current && asOf(db, agedInstant) == oldRows)
        #expect(try lifecycle.alignKeyIndex(table).statements.isEmpty)
        #expect(try db.column("SELECT options::text FROM temporal_versioning.versioned_tables ORDER BY id") == [#"{"partition_history": "daily"}"#, "{}"])
    }
}
