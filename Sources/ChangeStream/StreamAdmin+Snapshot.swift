import Postgres
#if canImport(Glibc)
import Glibc
#endif

/// `temporal stream setup --snapshot`: the slot is created on a replication
/// connection that exports its snapshot, and while that connection holds it,
/// a second connection imports it and copies every published table (and, with
/// a history, the changes pg-temporal kept) into temporal_versioning, numbered
/// in key order. The copies are exactly what existed at the slot's consistent
/// point, whatever writers do meanwhile; `stream run` writes them in chunks
/// before it streams from that point, checkpointing as it goes, so that a run
/// killed at any moment goes on where it stopped. (The exported snapshot
/// itself dies with its connection: copying it is what makes the backfill
/// resumable. The copy costs the space of the tables until it is written.)
extension StreamAdmin {
    public struct SnapshotRequest: Sendable {
        /// The connection string, for the replication connection.
        public var conninfo: String
        /// nil: no history; "all"; "90d"; or a timestamptz.
        public var historySince: String?
        /// Refuse, rather than warn about, a history asked of a table that is not versioned.
        public var strict: Bool

        public init(conninfo: String, historySince: String? = nil, strict: Bool = false) {
            self.conninfo = conninfo
            self.historySince = historySince
            self.strict = strict
        }
    }

    /// One table's snapshot, or the changes of its history, to write before streaming.
    public struct Backfill: Sendable, Equatable {
        public var id: Int
        public var kind: String
        public var table: String
        public var rows: Int
    }

    struct SnapshotPlan {
        /// Tables, each with whether its history is backfilled.
        var tables: [(schema: String, name: String, history: Bool)]
        var since: String?
        var warnings: [String]
    }

    /// Checks a snapshot request before anything is created: pg-temporal is
    /// installed (the progress is kept in its catalog), every table has a
    /// primary key, the instant parses, and the tables whose history is asked
    /// for are versioned (or the request is refused with `strict`).
    func planSnapshot(_ request: SnapshotRequest, tables: [(schema: String, name: String)]) throws -> SnapshotPlan {
        guard try connection.query("SELECT pg_catalog.to_regclass('temporal_versioning.stream_backfills') IS NOT NULL").scalar == "t" else {
            throw PostgresError(kind: .server, sqlState: SQLState.objectNotInPrerequisiteState,
                                message: "--snapshot needs pg-temporal installed in this database",
                                detail: "The progress of a snapshot is kept in temporal_versioning, so that a stream killed while writing it goes on where it stopped.",
                                hint: "Install it first: temporal install")
        }
        var since: String?
        if let text = request.historySince, text != "all" {
            let days = text.hasSuffix("d") ? Int(text.dropLast()) : nil
            since = days != nil
                ? try connection.query("SELECT (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(days => $1))::pg_catalog.text",
                                       [days!]).scalar
                : try connection.query("SELECT $1::pg_catalog.timestamptz::pg_catalog.text", [text]).scalar
        }
        var plan = SnapshotPlan(tables: [], since: since, warnings: [])
        for table in tables {
            let row = try connection.query("""
                SELECT format('%I.%I', n.nspname, c.relname),
                       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
                       EXISTS (SELECT 1 FROM temporal_versioning.versioned_tables v WHERE v.table_oid = c.oid AND v.enabled),
                       c.relispartition OR (c.relkind <> 'p' AND EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid OR i.inhrelid = c.oid))
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relname = $2
                """, [table.schema, table.name]).rows[0]
            let qualified = row[0] ?? table.name
            guard row[1] == "t" else {
                throw PostgresError(kind: .server, sqlState: SQLState.invalidTableDefinition,
                                    message: "table \(qualified) has no primary key",
                                    detail: "A snapshot is written in chunks in key order, and each row's events name it by its key.",
                                    hint: "Add one (ALTER TABLE \(qualified) ADD PRIMARY KEY (...)), or leave the table out of the snapshot.")
            }
            guard row[3] != "t" else {
                throw PostgresError(kind: .server, sqlState: SQLState.featureNotSupported,
                                    message: "cannot snapshot \(qualified): it is a partition or part of an inheritance tree",
                                    detail: "A partitioned table is snapshotted (and streamed) as one table, through its root.",
                                    hint: "Snapshot its partitioned table instead, or an inheritance tree's tables one by one.")
            }
            var history = request.historySince != nil
            if history && row[2] != "t" {
                let message = "table \(qualified) is not versioned: it has no history to backfill"
                if request.strict {
                    throw PostgresError(kind: .server, sqlState: SQLState.objectNotInPrerequisiteState, message: message,
                                        hint: "Version it first (temporal enable \(qualified)), or leave out --strict to snapshot it without history.")
                }
                plan.warnings.append(message + "; only its rows are snapshotted")
                history = false
            }
            plan.tables.append((table.schema, table.name, history))
        }
        return plan
    }

    /// Adds tables to a running stream's publication and backfills them
    /// (`temporal stream backfill`): they are copied in the snapshot of a
    /// temporary slot made after they joined the publication, and the stream
    /// writes their rows when it reaches that slot's consistent point, between
    /// the changes committed before it and those after, without stopping.
    /// With a history (`request.historySince`), the changes the history
    /// keeps up to that point are written instead of the stream's own events
    /// of the same transactions (from the tables' joining to that point).
    public func addBackfill(slot: String, publication: String, tables: [(schema: String, name: String)],
                            request: SnapshotRequest, replicaIdentityFull: Bool) throws -> (backfills: [Backfill], warnings: [String]) {
        // The slot may be in use: the stream it feeds runs on.
        let plugin = try connection.query("SELECT plugin::text FROM pg_catalog.pg_replication_slots WHERE slot_name = $1", [slot]).rows.first
        guard let plugin else {
            throw PostgresError(kind: .server, sqlState: SQLState.undefinedObject,
                                message: "replication slot \"\(slot)\" does not exist",
                                hint: "Set the stream up first: temporal stream setup --slot \(slot) ...")
        }
        guard plugin[0] == "pgoutput" else {
            throw PostgresError(kind: .server, sqlState: SQLState.objectNotInPrerequisiteState,
                                message: "replication slot \"\(slot)\" does not use the pgoutput plugin")
        }
        try requirePublication(publication)
        let plan = try planSnapshot(request, tables: tables)
        // Announce the backfill in the WAL, before the tables join the
        // publication: the stream waits there (on this lock) until the copy
        // is made and knows its consistent point before it passes it.
        let lock = Self.backfillSetupLock(slot: slot)
        try connection.query("SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtext($1))", [lock])
        defer { _ = try? connection.query("SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext($1))", [lock]) }
        try connection.query("SELECT pg_catalog.pg_logical_emit_message(false, $1, $2)", [EventBuilder.backfillPrefix, slot])
        let quotedPublication = try connection.quoteIdentifier(publication)
        var added: [String] = []
        do {
            for table in tables {
            let qualified = try connection.query("SELECT pg_catalog.format('%I.%I', $1::text, $2::text)", [table.schema, table.name]).scalar ?? ""
            let member = try connection.query("""
                SELECT 1 FROM pg_catalog.pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3
                """, [publication, table.schema, table.name])
            guard member.rows.isEmpty else {
                throw PostgresError(kind: .server, sqlState: SQLState.duplicateObject,
                                    message: "table \(qualified) is already in publication \"\(publication)\"",
                                    detail: "Its changes are streamed already; a backfill is for a table the stream does not have yet.")
            }
            let partitioned = try checkReplicaIdentity(qualified, makeFull: replicaIdentityFull).partitioned
            if partitioned {
                try connection.execute("ALTER PUBLICATION \(quotedPublication) SET (publish_via_partition_root = true)")
            }
            try connection.execute("ALTER PUBLICATION \(quotedPublication) ADD TABLE \(qualified)")
            added.append(qualified)
            }
            let temporary = "\(slot)_backfill_\(UInt32.random(in: 0...UInt32.max))"
            let backfills = try createSlotWithSnapshot(slot: temporary, request: request, plan: plan, temporary: true, recordFor: slot).1
            return (backfills, plan.warnings)
        } catch {
            // Nothing half done: a table in the publication without its backfill would start mid-story.
            for table in added { _ = try? connection.execute("ALTER PUBLICATION \(quotedPublication) DROP TABLE \(table)") }
            throw error
        }
    }

    /// The advisory lock `stream backfill` holds while it adds tables to a slot's stream.
    public static func backfillSetupLock(slot: String) -> String { "temporal stream backfill setup \(slot)" }

    /// Creates the slot, exporting its snapshot, and copies what the plan
    /// asks for in that snapshot. If the copy fails, the slot is dropped.
    /// A temporary slot only lends its snapshot; the backfills are recorded
    /// for `recordFor`.
    func createSlotWithSnapshot(slot: String, request: SnapshotRequest, plan: SnapshotPlan,
                                temporary: Bool = false, recordFor: String? = nil) throws -> (LSN, [Backfill]) {
        let replication = try ReplicationConnection(conninfo: request.conninfo, applicationName: "temporal stream setup")
        defer { replication.close() }
        let (point, snapshot) = try replication.createLogicalSlotExportingSnapshot(slot, temporary: temporary)
        var backfills: [Backfill] = []
        do {
            try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            do {
                try connection.query("SET TRANSACTION SNAPSHOT \(try connection.quoteLiteral(snapshot))")
                // The stream sees every row whatever the policies: so must the copy
                // (and no owner's policy runs); row security refusing is an error.
                try connection.execute("SET LOCAL row_security = off")
                let instant = try connection.query("SELECT pg_catalog.statement_timestamp()::pg_catalog.text").scalar ?? ""
                for table in plan.tables {
                    let rows = try connection.query("""
                        SELECT b.id, b.kind, pg_catalog.format('%I.%I', b.schema_name, b.table_name), b.rows_total
                        FROM temporal_versioning._backfill_prepare($1, $2, $3, $4::pg_catalog.pg_lsn, $5::pg_catalog.timestamptz,
                                                                   $6, $7::pg_catalog.timestamptz) b
                        """, [recordFor ?? slot, table.schema, table.name, point.description, instant, table.history, plan.since]).rows
                    backfills += rows.map {
                        Backfill(id: Int($0[0] ?? "") ?? 0, kind: $0[1] ?? "", table: $0[2] ?? "", rows: Int($0[3] ?? "") ?? 0)
                    }
                }
                try connection.execute("COMMIT")
            } catch {
                _ = try? connection.execute("ROLLBACK")
                throw error
            }
        } catch {
            // The connection that made the slot drops it: no wait for it to let go.
            if (try? replication.command("DROP_REPLICATION_SLOT \(try replication.quoteIdentifier(slot))")) == nil {
                replication.close()
                try? waitUntilInactive(slot: slot)
                _ = try? connection.query("SELECT pg_catalog.pg_drop_replication_slot($1)", [slot])
            }
            replication.close()
            throw error
        }
        replication.close()
        return (point, backfills)
    }

    /// The backfills of a slot, with their progress.
    public func backfills(slot: String?) throws -> QueryResult {
        guard try connection.query("SELECT pg_catalog.to_regclass('temporal_versioning.stream_backfills') IS NOT NULL").scalar == "t" else {
            return QueryResult(columns: [], rows: [])
        }
        return try connection.query("""
            SELECT b.slot_name, pg_catalog.format('%I.%I', b.schema_name, b.table_name) AS table_name, b.kind,
                   b.rows_done, b.rows_total, b.state, b.consistent_lsn, b.updated_at
            FROM temporal_versioning.stream_backfills b
            WHERE $1::text IS NULL OR b.slot_name = $1
            ORDER BY b.slot_name, b.id
            """, [slot])
    }

    /// Forgets the backfills of a dropped slot and drops their copies.
    func forgetBackfills(slot: String) throws {
        guard try connection.query("SELECT pg_catalog.to_regclass('temporal_versioning.stream_backfills') IS NOT NULL").scalar == "t" else {
            return
        }
        try connection.query("SELECT temporal_versioning._backfill_forget($1)", [slot])
    }

    /// Waits until no walsender holds the slot (a closed connection lets go of it a moment later).
    func waitUntilInactive(slot: String) throws {
        for _ in 0..<100 {
            if try connection.query("SELECT active FROM pg_replication_slots WHERE slot_name = $1", [slot]).scalar != "t" { return }
            usleep(50_000)
        }
    }
}
