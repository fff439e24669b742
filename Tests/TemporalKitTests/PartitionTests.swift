import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing

/// Versioning a partitioned table: partitions created, attached, detached and
/// dropped after enable, and what time travel says about their rows.
@Suite("versioning partitioned tables")
struct PartitionTests {
    static let ddl = """
        CREATE TABLE readings (sensor int NOT NULL, at date NOT NULL, value numeric, PRIMARY KEY (sensor, at)) PARTITION BY RANGE (at);
        CREATE TABLE readings_2026_01 PARTITION OF readings FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
        CREATE TABLE readings_2026_02 PARTITION OF readings FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
        INSERT INTO readings VALUES (1, '2026-01-05', 1.5), (2, '2026-02-07', 2.5);
        """

    func instant(_ db: Connection) throws -> String {
        try db.value("SELECT clock_timestamp()::text")!
    }

    func asOf(_ db: Connection, _ at: String) throws -> [String] {
        try db.column("SELECT r::text FROM temporal_versioning.as_of(NULL::readings, $1::timestamptz) r ORDER BY 1", [at]).map { $0! }
    }

    func now(_ db: Connection) throws -> [String] {
        try db.column("SELECT r::text FROM readings r ORDER BY 1").map { $0! }
    }

    @Test("partitions created or attached later capture too; attached rows count as inserted, detached ones as deleted")
    func attachAndDetach() throws {
        let (_, db) = try versionedTable(Self.ddl, table: "public.readings")
        let start = try instant(db)
        let original = try now(db)

        try db.execute("""
            CREATE TABLE readings_2026_03 PARTITION OF readings FOR VALUES FROM ('2026-03-01') TO ('2026-04-01');
            INSERT INTO readings_2026_03 VALUES (3, '2026-03-02', 3.5);
            """)
        #expect(try db.count("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'readings_2026_03'::regclass AND tgname LIKE 'temporal_capture_%'") == 5)
        let afterCreate = try instant(db)
        let withMarch = try now(db)

        try db.execute("""
            CREATE TABLE readings_2026_04 (sensor int NOT NULL, at date NOT NULL, value numeric);
            INSERT INTO readings_2026_04 VALUES (4, '2026-04-01', 4.5), (5, '2026-04-02', 5.5);
            ALTER TABLE readings ATTACH PARTITION readings_2026_04 FOR VALUES FROM ('2026-04-01') TO ('2026-05-01');
            """)
        let afterAttach = try instant(db)
        let withApril = try now(db)
        #expect(withApril.count == 5)

        try db.execute("ALTER TABLE readings DETACH PARTITION readings_2026_01")
        let afterDetach = try instant(db)
        let withoutJanuary = try now(db)
        // The detached table lives on, outside the history.
        try db.execute("UPDATE readings_2026_01 SET value = 0")

        #expect(try asOf(db, start) == original)
        #expect(try asOf(db, afterCreate) == withMarch)
        #expect(try asOf(db, afterAttach) == withApril)
        #expect(try asOf(db, afterDetach) == withoutJanuary)
        let journal = try db.column("SELECT change FROM temporal_versioning.schema_changes ORDER BY id").map { $0! }
        #expect(journal.contains("add partition") && journal.contains("detach partition"), "\(journal)")
        #expect(try db.count("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'readings_2026_01'::regclass AND tgname LIKE 'temporal_capture_%'") == 0,
                "a detached partition loses its capture triggers")

        // A revert through the partitioned table puts rows back in their partitions.
        try db.execute("DELETE FROM readings_2026_04; UPDATE readings SET value = -1, at = '2026-03-20' WHERE sensor = 2")
        _ = try db.query("SELECT * FROM temporal_versioning.revert_table_data('public', 'readings', $1, false)", [afterDetach])
        #expect(try now(db) == withoutJanuary)
        #expect(try db.count("SELECT count(*) FROM readings_2026_04") == 2)
        // Back to when January was attached: its row has no partition now, and PostgreSQL says so; nothing changes.
        let refused = #expect(throws: PostgresError.self) {
            try db.query("SELECT * FROM temporal_versioning.revert_table_data('public', 'readings', $1, false)", [afterCreate])
        }
        #expect(refused?.message.contains("no partition") == true, "\(String(describing: refused))")
        #expect(try now(db) == withoutJanuary)
    }

    @Test("a partition is not dropped on its own, nor versioned alone, nor stripped of its capture triggers")
    func refusals() throws {
        let (_, db) = try versionedTable(Self.ddl, table: "public.readings")
        let history = try db.count("SELECT count(*) FROM temporal_versioning.readings_history")
        let drop = #expect(throws: PostgresError.self) { try db.execute("DROP TABLE readings_2026_02") }
        #expect(drop?.message.contains("is a partition of versioned table") == true)
        #expect(drop?.hint?.contains("DETACH PARTITION") == true)
        #expect(try db.count("SELECT count(*) FROM readings") == 2, "nothing dropped")

        let trigger = #expect(throws: PostgresError.self) { try db.execute("DROP TRIGGER temporal_capture_delete ON readings_2026_02") }
        #expect(trigger?.message.contains("captures the history") == true)

        let partition = #expect(throws: PostgresError.self) {
            try db.query("SELECT temporal_versioning.enable_temporal_versioning('public', 'readings_2026_02')")
        }
        #expect(partition?.message.contains("is a partition") == true && partition?.hint?.contains("readings") == true)

        // Detached first, its row is recorded as deleted; then it may go.
        try db.execute("ALTER TABLE readings DETACH PARTITION readings_2026_02 CONCURRENTLY")
        try db.execute("DROP TABLE readings_2026_02")
        #expect(try db.count("SELECT count(*) FROM temporal_versioning.readings_history") == history + 1)
        #expect(try db.value("SELECT temporal_operation::text FROM temporal_versioning.readings_history ORDER BY temporal_id DESC LIMIT 1") == "D")

        // Truncating the partitioned table records each row once.
        try db.execute("INSERT INTO readings VALUES (9, '2026-01-09', 9)")
        let before = try db.count("SELECT count(*) FROM temporal_versioning.readings_history")
        try db.execute("TRUNCATE readings")
        #expect(try db.count("SELECT count(*) FROM temporal_versioning.readings_history") == before + 2)

        // Disable takes the triggers off every partition; dropping the whole table is fine.
        try db.query("SELECT temporal_versioning.disable_temporal_versioning('public', 'readings')")
        #expect(try db.count("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'temporal_capture_%'") == 0)
        try db.query("SELECT temporal_versioning.enable_temporal_versioning('public', 'readings')")
        try db.execute("DROP TABLE readings")
        #expect(try db.count("SELECT count(*) FROM temporal_versioning.versioned_partitions") == 0)
    }
}
