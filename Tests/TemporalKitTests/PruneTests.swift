import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing

/// The prune against transactions that are still running when it starts.
@Suite("prune and running transactions")
struct PruneTests {
    @Test("a transaction that began after the floor but got a lower xid than an older one is not pruned")
    func runningTransactionAfterFloor() throws {
        let (database, db) = try versionedTable("CREATE TABLE customers (id int PRIMARY KEY, v int); INSERT INTO customers VALUES (1, 0), (2, 0), (3, 0);")
        try db.execute("UPDATE customers SET v = 1")  // some history before everything
        let table = try TableResolver.resolve("customers", on: db)

        // M begins before the floor; X begins after it and writes first, so X's xid is lower.
        let m = try database.connect(), x = try database.connect()
        try m.execute("BEGIN")
        _ = try m.query("SELECT now()")
        Thread.sleep(forTimeInterval: 0.02)
        let floor = try db.value("SELECT clock_timestamp()::text")!
        Thread.sleep(forTimeInterval: 0.02)
        try x.execute("BEGIN; UPDATE customers SET v = 10 WHERE id = 1")
        try m.execute("UPDATE customers SET v = 20 WHERE id = 2; COMMIT")
        let xid = try x.value("SELECT txid_current()")!

        // The prune starts (its floor and cutoff recorded) while X runs; X commits; the prune goes on.
        _ = try db.query("SELECT * FROM temporal_versioning._prune_start('public', 'customers', $1, NULL)", [floor])
        try x.execute("COMMIT")
        let results = try Lifecycle(connection: db).prune(table, before: floor, archive: .none)
        #expect(results.first?.resumed == true)
        #expect(try db.count("SELECT count(*) FROM temporal_versioning.customers_history WHERE temporal_tx_id = $1::bigint", [xid]) == 1,
                "X began after the floor: its change stays")
        // And time travel to any instant after the floor still sees X's change happen after it.
        #expect(try db.value("SELECT r.v::text FROM temporal_versioning.as_of(NULL::customers, $1::timestamptz) r WHERE r.id = 1", [floor]) == "1")
    }

    @Test("a prune with nothing to delete leaves the floor where it is, so restoring the last archive reopens the history")
    func noOpPruneKeepsFloor() throws {
        let (_, db) = try versionedTable("CREATE TABLE customers (id int PRIMARY KEY, v int); INSERT INTO customers VALUES (1, 0), (2, 0);")
        let table = try TableResolver.resolve("customers", on: db)
        try db.execute("UPDATE customers SET v = 1")
        let before = try db.value("SELECT clock_timestamp()::text")!
        let old = try db.column("SELECT r::text FROM temporal_versioning.as_of(NULL::customers, $1::timestamptz) r ORDER BY 1", [before])
        try db.execute("UPDATE customers SET v = 2")
        Thread.sleep(forTimeInterval: 0.02)
        let first = try db.value("SELECT clock_timestamp()::text")!
        Thread.sleep(forTimeInterval: 0.02)
        let second = try db.value("SELECT clock_timestamp()::text")!
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("noop-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let lifecycle = Lifecycle(connection: db)
        let pruned = try lifecycle.prune(table, before: first, archive: .directory(directory))
        #expect(pruned.count == 1)
        let floor = try db.value("SELECT history_floor::text FROM temporal_versioning.versioned_tables")
        #expect(try lifecycle.prune(table, before: second, archive: .none).isEmpty, "nothing between the two floors")
        #expect(try db.value("SELECT history_floor::text FROM temporal_versioning.versioned_tables") == floor, "the floor did not move")
        _ = try Archives(connection: db).restore(pruned[0].archiveFile!, into: .history)
        #expect(try db.value("SELECT history_floor::text FROM temporal_versioning.versioned_tables") == nil)
        #expect(try db.column("SELECT r::text FROM temporal_versioning.as_of(NULL::customers, $1::timestamptz) r ORDER BY 1", [before]) == old)
    }
}
