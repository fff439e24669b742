import Postgres

/// Publications and slots for `temporal stream`: setup, status, drop, and the
/// checks made before streaming, each failing in PostgreSQL's words with
/// what to do.
public struct StreamAdmin {
    public let connection: Connection

    public init(connection: Connection) {
        self.connection = connection
    }

    /// Slot names are what PostgreSQL allows: lower case letters, digits, underscores.
    public static func validSlotName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 63
            && name.allSatisfy { ($0.isLowercase && $0.isASCII && $0.isLetter) || ($0.isNumber && $0.isASCII) || $0 == "_" }
    }

    public func requireLogicalWAL() throws {
        let level = try connection.query("SHOW wal_level").scalar ?? ""
        guard level == "logical" else {
            throw PostgresError(
                kind: .server, sqlState: SQLState.objectNotInPrerequisiteState,
                message: "logical decoding requires wal_level >= logical",
                detail: "wal_level is \(level).",
                hint: "Set it and restart PostgreSQL: ALTER SYSTEM SET wal_level = logical;")
        }
    }

    /// Checks that a stream can start, and returns the slot's confirmed position.
    public func checkReady(slot: String, publication: String) throws -> LSN {
        try requireLogicalWAL()
        let rows = try connection.query("""
            SELECT s.plugin, s.slot_type, s.database, s.active_pid::text, s.confirmed_flush_lsn::text, current_database()
            FROM pg_replication_slots s WHERE s.slot_name = $1
            """, [slot]).rows
        guard let row = rows.first else {
            throw PostgresError(
                kind: .server, sqlState: SQLState.undefinedObject,
                message: "replication slot \"\(slot)\" does not exist",
                hint: "Create it, with its publication: temporal stream setup --slot \(slot) --publication \(publication) TABLE ...")
        }
        guard row[1] == "logical", row[0] == "pgoutput" else {
            throw PostgresError(
                kind: .server, sqlState: SQLState.objectNotInPrerequisiteState,
                message: "replication slot \"\(slot)\" does not use the pgoutput plugin",
                detail: "It is a \(row[1] ?? "") slot with plugin \(row[0] ?? "none").")
        }
        guard row[2] == row[5] else {
            throw PostgresError(
                kind: .server, sqlState: SQLState.objectNotInPrerequisiteState,
                message: "replication slot \"\(slot)\" was not created in this database",
                detail: "It belongs to database \"\(row[2] ?? "")\"; connect to that one.")
        }
        if let pid = row[3] {
            throw PostgresError(
                kind: .server, sqlState: "55006",
                message: "replication slot \"\(slot)\" is active for PID \(pid)",
                hint: "Another stream is reading it; stop that one first.")
        }
        try requirePublication(publication)
        return row[4].flatMap(LSN.init) ?? .zero
    }

    public func requirePublication(_ publication: String) throws {
        guard try connection.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [publication]).rows.isEmpty == false else {
            throw PostgresError(
                kind: .server, sqlState: SQLState.undefinedObject,
                message: "publication \"\(publication)\" does not exist",
                hint: "Create it, with its slot: temporal stream setup --publication \(publication) --slot SLOT TABLE ...")
        }
    }

    /// The tables a publication holds, as `schema.table` (unquoted), in name order.
    /// Partitions of a partitioned table published through its root are not listed.
    public func publishedTables(_ publication: String) throws -> [String] {
        try requirePublication(publication)
        return try connection.query(
            "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1",
            [publication]).rows.compactMap { $0[0] }
    }

    public struct SetupReport: Sendable {
        public var createdPublication: Bool
        public var slotPosition: LSN
        /// Tables whose UPDATE and DELETE events will lack the whole old row.
        public var withoutFullIdentity: [String]
        public var madeFull: [String]
        /// With a snapshot: what `stream run` will write before it streams.
        public var backfills: [Backfill] = []
        /// Things said but not refused (a history asked of a table that is not versioned).
        public var warnings: [String] = []
    }

    /// Creates the publication for `tables` and a pgoutput slot, in that order
    /// (a slot cannot be created inside a transaction with writes, so the
    /// publication is rolled back by hand if the slot fails).
    public func setup(slot: String, publication: String, tables: [(schema: String, name: String)], replicaIdentityFull: Bool,
                      snapshot: SnapshotRequest? = nil) throws -> SetupReport {
        try requireLogicalWAL()
        // A snapshot's request is checked whole before anything is created.
        let plan = try snapshot.map { try planSnapshot($0, tables: tables) }
        if try !connection.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [slot]).rows.isEmpty {
            throw PostgresError(kind: .server, sqlState: SQLState.duplicateObject,
                                message: "replication slot \"\(slot)\" already exists",
                                hint: "Stream from it with temporal stream run, or drop it first: temporal stream drop --slot \(slot)")
        }
        if try !connection.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [publication]).rows.isEmpty {
            throw PostgresError(kind: .server, sqlState: SQLState.duplicateObject,
                                message: "publication \"\(publication)\" already exists",
                                hint: "Use another name, or drop it first: temporal stream drop --slot \(slot) --publication \(publication)")
        }
        // Backfills left by an earlier slot of this name (dropped with SQL, say) are not this one's.
        try forgetBackfills(slot: slot)
        var lacking: [String] = []
        var madeFull: [String] = []
        try connection.transaction {
            var partitioned = false
            for table in tables {
                let qualified = try connection.query(
                    "SELECT format('%I.%I', $1::text, $2::text)", [table.schema, table.name]).scalar ?? ""
                let identity = try checkReplicaIdentity(qualified, makeFull: replicaIdentityFull)
                partitioned = partitioned || identity.partitioned
                if identity.madeFull { madeFull.append(qualified) } else if !identity.full { lacking.append(qualified) }
            }
            let list = try connection.query("""
                SELECT string_agg(format('%I.%I', t.schema_name, t.table_name), ', ' ORDER BY t.n)
                FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(schema_name, table_name, n)
                """, [tables.map(\.schema), tables.map(\.name)]).scalar ?? ""
            // A partitioned table's changes are published as its own, not as
            // each partition's, so that its events name it (and its key).
            try connection.execute("CREATE PUBLICATION \(try connection.quoteIdentifier(publication)) FOR TABLE \(list)"
                                   + (partitioned ? " WITH (publish_via_partition_root = true)" : ""))
        }
        do {
            if let snapshot, let plan {
                var report = SetupReport(createdPublication: true, slotPosition: .zero, withoutFullIdentity: lacking, madeFull: madeFull)
                report.warnings = plan.warnings
                (report.slotPosition, report.backfills) = try createSlotWithSnapshot(slot: slot, request: snapshot, plan: plan)
                return report
            }
            let position = try connection.query(
                "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", [slot]).scalar
            return SetupReport(createdPublication: true, slotPosition: position.flatMap(LSN.init) ?? .zero,
                               withoutFullIdentity: lacking, madeFull: madeFull)
        } catch {
            if let name = try? connection.quoteIdentifier(publication) {
                try? connection.execute("DROP PUBLICATION IF EXISTS \(name)")
            }
            throw error
        }
    }

    /// Checks that UPDATE and DELETE on a table about to be published keep
    /// working: it (and, partitioned, each of its partitions, whose own
    /// replica identity is the one that counts) has a primary key, a replica
    /// identity index or FULL. With `makeFull`, sets FULL on all of them.
    func checkReplicaIdentity(_ qualified: String, makeFull: Bool) throws -> (full: Bool, madeFull: Bool, partitioned: Bool) {
        let relations = try connection.query("""
            SELECT format('%I.%I', n.nspname, c.relname), c.relreplident::text,
                   EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), c.relkind::text, r.oid = c.oid
            FROM (SELECT to_regclass($1)::oid AS oid) r
            JOIN pg_class c ON c.oid = r.oid OR c.oid IN (SELECT t.relid FROM pg_partition_tree(r.oid) t)
            JOIN pg_namespace n ON n.oid = c.relnamespace
            ORDER BY r.oid = c.oid DESC, 1
            """, [qualified]).rows
        let partitioned = relations.first?[3] == "p"
        // The leaves (or the table itself) hold the rows; a partitioned table's own identity does not count.
        let holders = relations.filter { $0[3] != "p" }
        let full = holders.allSatisfy { $0[1] == "f" } && (!partitioned || relations.first?[1] == "f")
        if makeFull && !full {
            for relation in relations where relation[1] != "f" {
                try connection.execute("ALTER TABLE \(relation[0] ?? "") REPLICA IDENTITY FULL")
            }
            return (true, true, partitioned)
        }
        if let bad = holders.first(where: { !($0[1] == "f" || $0[1] == "i" || ($0[1] == "d" && $0[2] == "t")) }) {
            let name = bad[0] ?? qualified
            throw PostgresError(
                kind: .server, sqlState: SQLState.objectNotInPrerequisiteState,
                message: name == qualified ? "table \(qualified) has no replica identity" : "partition \(name) of \(qualified) has no replica identity",
                detail: "Once it is published, UPDATE and DELETE on it would fail for every application.",
                hint: "Add a primary key, or pass --replica-identity-full.")
        }
        return (full, false, partitioned)
    }

    /// Logical slots of this database: position, lag, retained WAL, activity.
    /// Only pgoutput slots (the ones a stream can read) unless `allPlugins`,
    /// or the slot asked for by name.
    public func status(slot: String?, allPlugins: Bool = false) throws -> QueryResult {
        let result = try connection.query("""
            SELECT s.slot_name, s.plugin, s.active, s.active_pid, s.confirmed_flush_lsn, pg_current_wal_lsn() AS current_lsn,
                   pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint AS lag_bytes,
                   pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint AS retained_wal_bytes,
                   pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)) AS retained_wal,
                   s.wal_status
            FROM pg_replication_slots s
            WHERE s.slot_type = 'logical' AND s.database = current_database()
              AND ($1::text IS NULL OR s.slot_name = $1)
              AND ($1::text IS NOT NULL OR $2 OR s.plugin = 'pgoutput')
            ORDER BY s.slot_name
            """, [slot, allPlugins])
        if let slot, result.rows.isEmpty {
            throw PostgresError(kind: .server, sqlState: SQLState.undefinedObject,
                                message: "replication slot \"\(slot)\" does not exist")
        }
        return result
    }

    /// Drops the slot (the server forgets its position and frees its WAL) and,
    /// if named, the publication. A slot of another plugin is not a stream's:
    /// it is dropped only with `force`.
    public func drop(slot: String, publication: String?, force: Bool = false) throws {
        let plugin = try connection.query(
            "SELECT plugin::text FROM pg_replication_slots WHERE slot_name = $1", [slot]).rows.first
        guard let plugin else {
            throw PostgresError(kind: .server, sqlState: SQLState.undefinedObject,
                                message: "replication slot \"\(slot)\" does not exist",
                                hint: "temporal stream status lists the slots of this database.")
        }
        if let name = plugin[0], name != "pgoutput", !force {
            throw PostgresError(kind: .server, sqlState: SQLState.objectNotInPrerequisiteState,
                                message: "replication slot \"\(slot)\" is not a stream's: it uses the \(name) plugin",
                                detail: "Another tool reads it; dropping it loses that tool's position.",
                                hint: "Drop it anyway with --force.")
        }
        try connection.query("SELECT pg_drop_replication_slot($1)", [slot])
        try forgetBackfills(slot: slot)
        if let publication {
            try requirePublication(publication)
            try connection.execute("DROP PUBLICATION \(try connection.quoteIdentifier(publication))")
        }
    }
}
