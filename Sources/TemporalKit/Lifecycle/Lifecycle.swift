import Foundation
import Postgres

/// The lifecycle of history: retention policies, prunes with their archives,
/// and reading archives back. A client of sql/70_lifecycle.sql; the files
/// (archives, manifests) are written here, on the machine that runs it.
public struct Lifecycle {
    public let connection: Connection
    /// Told of each committed batch of a prune: the rows deleted so far.
    public var progress: ((_ table: TableName, _ rowsDeleted: Int64) -> Void)?

    public init(connection: Connection) {
        self.connection = connection
    }

    // MARK: Retention policies

    public struct RetentionStatus: Sendable, Equatable {
        public var table: TableName
        /// How long history is kept, as PostgreSQL prints the interval; nil: for ever.
        public var keep: String?
        public var archiveDirectory: String?
        /// Changes before this instant were pruned.
        public var historyFloor: String?
        /// The floor the policy asks for now.
        public var dueFloor: String?
        public var lastPruneAt: String?
        public var lastPruneRows: Int64?
        public var lastArchive: String?
        public var unfinishedPrune: Bool
    }

    /// Keeps the history of `table` for `keep` (an interval: '90 days', 90d),
    /// pruned by `maintain`, archived into `archiveDirectory` (nil: no archive).
    @discardableResult
    public func setRetention(_ table: TableName, keep: String, archiveDirectory: String?) throws -> RetentionStatus {
        let interval = try Self.interval(keep, on: connection)
        try connection.query(
            "SELECT temporal_versioning.set_retention($1, $2, $3::pg_catalog.interval, $4)",
            [table.schema, table.name, interval, archiveDirectory.map(Self.absolutePath)])
        return try retentionStatus().first { $0.table == table }!
    }

    /// Keeps the history of `table` for ever again. False if it had no policy.
    @discardableResult
    public func unsetRetention(_ table: TableName) throws -> Bool {
        try connection.query("SELECT temporal_versioning.unset_retention($1, $2)", [table.schema, table.name]).scalar == "t"
    }

    public func retentionStatus() throws -> [RetentionStatus] {
        try connection.query("SELECT pg_catalog.format('%I.%I', s.schema_name, s.table_name) AS qualified, s.* FROM temporal_versioning.retention_status() s").namedRows.map { row in
            RetentionStatus(
                table: TableName(schema: row["schema_name"] ?? "", name: row["table_name"] ?? "", qualified: row["qualified"] ?? ""),
                keep: row["keep"], archiveDirectory: row["archive_dir"], historyFloor: row["history_floor"],
                dueFloor: row["due_floor"], lastPruneAt: row["last_prune_at"],
                lastPruneRows: row["last_prune_rows"].flatMap { Int64($0) }, lastArchive: row["last_archive"],
                unfinishedPrune: row.bool("unfinished_prune") ?? false)
        }
    }

    /// Reads a length of time: PostgreSQL's interval input ('90 days',
    /// '1 year 2 months') or the short forms 90d, 12h, 4w, 6mon, 1y.
    public static func interval(_ text: String, on connection: Connection) throws -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units = ["d": "days", "h": "hours", "w": "weeks", "mon": "months", "y": "years", "min": "minutes", "s": "seconds"]
        var expanded = trimmed
        for (suffix, unit) in units.sorted(by: { $0.key.count > $1.key.count }) where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            if !number.isEmpty, number.allSatisfy(\.isNumber) {
                expanded = "\(number) \(unit)"
                break
            }
        }
        return try connection.query("SELECT $1::pg_catalog.interval::pg_catalog.text", [expanded]).scalar ?? expanded
    }

    // MARK: Prunes

    /// Where a prune puts the rows it deletes.
    public enum ArchiveChoice: Sendable, Equatable {
        case directory(String)
        /// Deleted without an archive: the DBA said so.
        case none
    }

    public struct PrunePreview: Sendable, Equatable {
        public var table: TableName
        public var historyTable: String
        public var rangeStart: String
        public var floor: String
        public var changes: Int64
        public var transactions: Int64
        /// The archive's path (or its name, without an archive directory).
        public var archive: String?
    }

    public struct PruneResult: Sendable, Equatable {
        public var table: TableName
        public var pruneID: Int64
        public var rangeStart: String
        public var floor: String
        public var rowsDeleted: Int64
        public var archiveFile: String?
        public var archiveBytes: Int64
        public var archiveSHA256: String?
        /// The prune was started by an earlier run that did not finish.
        public var resumed: Bool
    }

    /// What a prune of `table` before `floor` would delete; changes nothing.
    public func previewPrune(_ table: TableName, before floor: String, archive: ArchiveChoice) throws -> PrunePreview {
        let row = try connection.query(
            "SELECT * FROM temporal_versioning.prune_preview($1, $2, $3)", [table.schema, table.name, floor]).namedRows[0]
        let name = row["archive_name"] ?? ""
        var path: String?
        if case let .directory(directory) = archive { path = Self.absolutePath(directory) + "/" + name }
        return PrunePreview(
            table: table, historyTable: row["history_table"] ?? "", rangeStart: row["range_start"] ?? "",
            floor: row["new_floor"] ?? "", changes: Int64(row["changes"] ?? "") ?? 0,
            transactions: Int64(row["transactions"] ?? "") ?? 0, archive: path)
    }

    /// Deletes the changes of `table` made before `floor`, in batches, after
    /// writing them to an archive. An unfinished prune of the table is
    /// finished first. Returns the prunes carried out (none when nothing is
    /// older than the floor).
    public func prune(_ table: TableName, before floor: String, archive: ArchiveChoice) throws -> [PruneResult] {
        try withPruneLock(table) { tableID in
            var results = try finishUnfinished(table, tableID: tableID)
            var directory: String?
            if case let .directory(path) = archive {
                directory = Self.absolutePath(path)
                let preview = try previewPrune(table, before: floor, archive: .directory(path))
                if let file = preview.archive, preview.changes > 0, ArchiveFile.exists(file) {
                    throw PostgresError(
                        kind: .server, sqlState: "58030",
                        message: "archive \"\(file)\" exists already",
                        detail: "A prune writes a new archive and does not overwrite one.",
                        hint: "Move the file away, or restore it first: temporal archive restore \(file) --into-history")
                }
            }
            let start = try partitionedHistory(tableID) ? "_prune_partitions_start" : "_prune_start"
            if let started = try connection.query(
                "SELECT r.* FROM temporal_versioning.\(start)($1, $2, $3, $4) r WHERE r.id IS NOT NULL",
                [table.schema, table.name, floor, directory]).namedRows.first {
                results.append(try carryOut(PruneState(started), table: table, resumed: false))
            }
            try forgetOldTransactions()
            return results
        }
    }

    /// Finishes a prune of `table` that was killed, with the floor and
    /// archive it recorded. Returns it, or nothing if there was none.
    public func finishUnfinishedPrune(_ table: TableName) throws -> [PruneResult] {
        try withPruneLock(table) { tableID in
            let results = try finishUnfinished(table, tableID: tableID)
            try forgetOldTransactions()
            return results
        }
    }

    private func finishUnfinished(_ table: TableName, tableID: String) throws -> [PruneResult] {
        try connection.query("""
            SELECT r.* FROM temporal_versioning.prunes r
            WHERE r.versioned_table_id = $1::pg_catalog.int4 AND r.state = 'running' ORDER BY r.id
            """, [tableID]).namedRows.map { try carryOut(PruneState($0), table: table, resumed: true) }
    }

    /// Runs `body` holding the session's advisory lock on prunes of `table`.
    private func withPruneLock<T>(_ table: TableName, _ body: (_ tableID: String) throws -> T) throws -> T {
        let tableID = try connection.query(
            "SELECT (temporal_versioning.find_versioned_table($1, $2)).id", [table.schema, table.name]).scalar ?? ""
        let locked = try connection.query(
            "SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext('pg-temporal prune'), $1::pg_catalog.int4)", [tableID]).scalar
        guard locked == "t" else {
            throw PostgresError(
                kind: .server, sqlState: "55P03",
                message: "another prune of \(table.qualified) is running",
                hint: "Wait for it to finish; a prune that was killed is finished by the next one.")
        }
        defer {
            _ = try? connection.query(
                "SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext('pg-temporal prune'), $1::pg_catalog.int4)", [tableID])
        }
        return try body(tableID)
    }

    /// Whether the history of the versioned table `tableID` is partitioned by time.
    private func partitionedHistory(_ tableID: String) throws -> Bool {
        try connection.query(
            "SELECT v.options ? 'partition_history' FROM temporal_versioning.versioned_tables v WHERE v.id = $1::pg_catalog.int4",
            [tableID]).scalar == "t"
    }

    /// Creates the coming partitions of every history partitioned by time
    /// (and moves in the changes the default partition took). Returns how many.
    @discardableResult
    public func ensureHistoryPartitions() throws -> Int {
        try connection.query("""
            SELECT coalesce(sum(temporal_versioning.ensure_history_partitions(v.id)), 0)
            FROM temporal_versioning.versioned_tables v WHERE v.enabled AND v.options ? 'partition_history'
            """).scalar.flatMap { Int($0) } ?? 0
    }

    /// What `alignKeyIndex` did for one history partitioned by time.
    public struct KeyIndexAlignment: Sendable, Equatable {
        public var table: TableName
        /// The statements run, in order.
        public var statements: [String]
        /// A statement left for the next run: it could not take its lock
        /// within the lock timeout (writers were holding the history).
        public var deferred: String?
        /// Another session was moving this history's key index: nothing done.
        public var busy = false
        /// Why a statement failed (`alignKeyIndexes` only; `alignKeyIndex` throws).
        public var error: String?
    }

    /// Puts the key index of a history partitioned by time where
    /// `Versioning.setHistoryKeyIndex` asked: runs the statements of
    /// temporal_versioning.key_index_step one at a time, outside any
    /// transaction, under an advisory lock of the table (a run that finds it
    /// taken does nothing). Index builds are CREATE INDEX CONCURRENTLY
    /// (writers go on; a build waits for the transactions older than it);
    /// the statements that lock the history against writers (the
    /// partitioned index's DROP, CREATE ON ONLY, ATTACH) wait at most
    /// `lockTimeout`, else are left for the next run.
    @discardableResult
    public func alignKeyIndex(_ table: TableName, lockTimeout: String = "2s") throws -> KeyIndexAlignment {
        var alignment = KeyIndexAlignment(table: table, statements: [])
        guard try connection.query("""
            SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext('pg-temporal key index'),
                                                   pg_catalog.hashtext(pg_catalog.format('%I.%I', $1::pg_catalog.text, $2::pg_catalog.text)))
            """, [table.schema, table.name]).scalar == "t" else {
            alignment.busy = true
            return alignment
        }
        defer {
            _ = try? connection.query("""
                SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext('pg-temporal key index'),
                                                     pg_catalog.hashtext(pg_catalog.format('%I.%I', $1::pg_catalog.text, $2::pg_catalog.text)))
                """, [table.schema, table.name])
        }
        while let step = try connection.query("SELECT temporal_versioning.key_index_step($1, $2)", [table.schema, table.name]).scalar {
            guard !alignment.statements.contains(step) else {
                throw PostgresError(kind: .server, sqlState: SQLState.objectNotInPrerequisiteState,
                                    message: "the key index of \(table.qualified) did not change after: \(step)",
                                    hint: "Look at the history's indexes (\\d+ temporal_versioning.<history>); an index of the same columns made by hand may be in the way.")
            }
            let locking = !step.contains(" CONCURRENTLY ")
            do {
                if locking { try connection.query("SELECT pg_catalog.set_config('lock_timeout', $1, false)", [lockTimeout]) }
                defer { if locking { _ = try? connection.execute("RESET lock_timeout") } }
                try connection.execute(step)
            } catch let error as PostgresError where error.sqlState == "55P03" && locking {
                alignment.deferred = step
                break
            }
            alignment.statements.append(step)
        }
        return alignment
    }

    /// `alignKeyIndex` for every enabled history partitioned by time; a
    /// table whose statement fails is reported in its `error`, and the
    /// others go on.
    @discardableResult
    public func alignKeyIndexes(lockTimeout: String = "2s") throws -> [KeyIndexAlignment] {
        try connection.query("""
            SELECT v.schema_name::pg_catalog.text, v.table_name::pg_catalog.text,
                   pg_catalog.format('%I.%I', v.schema_name, v.table_name)
            FROM temporal_versioning.versioned_tables v
            WHERE v.enabled AND v.options ? 'partition_history' ORDER BY v.id
            """).rows.map { row in
            let table = TableName(schema: row[0] ?? "", name: row[1] ?? "", qualified: row[2] ?? "")
            do {
                return try alignKeyIndex(table, lockTimeout: lockTimeout)
            } catch let error as PostgresError where error.kind == .server {
                return KeyIndexAlignment(table: table, statements: [], error: error.psqlDescription)
            }
        }
    }

    /// Applies every retention policy (and finishes unfinished prunes),
    /// creates the coming partitions of histories partitioned by time and
    /// builds the key index of the periods that ended (where it is on
    /// closed partitions only): for cron or a systemd timer. Safe to run at
    /// any time, and again.
    ///
    /// A history whose key index could not be moved is handed to
    /// `keyIndexProblem` (and left for the next run); retention goes on.
    public func maintain(keyIndexProblem: (KeyIndexAlignment) -> Void = { _ in }) throws -> [PruneResult] {
        try ensureHistoryPartitions()
        for alignment in try alignKeyIndexes() where alignment.error != nil {
            keyIndexProblem(alignment)
        }
        var results: [PruneResult] = []
        for status in try retentionStatus() {
            guard let due = status.dueFloor else {
                if status.unfinishedPrune { results += try finishUnfinishedPrune(status.table) }
                continue
            }
            let choice: ArchiveChoice = status.archiveDirectory.map { .directory($0) } ?? .none
            results += try prune(status.table, before: due, archive: choice)
        }
        return results
    }

    struct PruneState {
        var id: Int64
        var rangeStart: String
        var floor: String
        var nextPage: Int64
        var endPage: Int64
        var rowsDeleted: Int64
        var archiveFile: String?
        var archiveBytes: Int64
        /// A prune of a partitioned history: its steps drop partitions.
        var partitioned: Bool

        init(_ row: Row) {
            id = Int64(row["id"] ?? "") ?? 0
            rangeStart = row["range_start"] ?? ""
            floor = row["floor"] ?? ""
            nextPage = Int64(row["next_page"] ?? "") ?? 0
            endPage = Int64(row["end_page"] ?? "") ?? 0
            rowsDeleted = Int64(row["rows_deleted"] ?? "") ?? 0
            archiveFile = row["archive_file"]
            archiveBytes = Int64(row["archive_bytes"] ?? "") ?? 0
            partitioned = row["partitions"] != nil
        }
    }

    /// Rows a batch aims at: small enough that a batch's transaction is
    /// short, large enough that the per-batch fsync does not dominate.
    public var rowsPerBatch: Int64 = 10_000
    /// Seconds to wait after each committed batch, leaving the server's
    /// CPU and disk to the application (pt-archiver's --sleep).
    public var pauseBetweenBatches: Double = 0

    private func carryOut(_ start: PruneState, table: TableName, resumed: Bool) throws -> PruneResult {
        var state = start
        if let file = state.archiveFile {
            try ArchiveFile.prepare(file, length: state.archiveBytes)
        }
        var span: Int64 = 8
        while state.partitioned && state.nextPage < state.endPage {
            let (deleted, bytes) = try partitionStep(state)
            state.nextPage += 1
            state.rowsDeleted += deleted
            state.archiveBytes = bytes
            if deleted > 0 { progress?(table, state.rowsDeleted) }
        }
        while state.nextPage < state.endPage {
            let from = state.nextPage
            let to = min(from + span, state.endPage)
            let (deleted, bytes) = try batch(state, to: to)
            state.nextPage = to
            state.rowsDeleted += deleted
            state.archiveBytes = bytes
            progress?(table, state.rowsDeleted)
            if pauseBetweenBatches > 0 && state.nextPage < state.endPage && deleted > 0 {
                Thread.sleep(forTimeInterval: pauseBetweenBatches)
            }
            // The next range holds about rowsPerBatch old rows, if they lie as these did.
            if deleted > 0 {
                span = max(1, min(1 << 20, (to - from) * rowsPerBatch / deleted))
            } else if to - from == span {
                span = min(1 << 20, span * 4)
            }
        }
        var sha: String?
        if let file = state.archiveFile {
            sha = try ArchiveFile.sha256(file)
            let columns = try connection.query("""
                SELECT u.c FROM temporal_versioning.prunes r, pg_catalog.unnest(r.archive_columns) WITH ORDINALITY AS u(c, i)
                WHERE r.id = $1::pg_catalog.int8 ORDER BY u.i
                """, [state.id]).rows.map { $0[0] ?? "" }
            let info = try connection.query("""
                SELECT v.history_table, r.pruned_by, r.started_at, pg_catalog.current_setting('server_version')
                FROM temporal_versioning.prunes r JOIN temporal_versioning.versioned_tables v ON v.id = r.versioned_table_id
                WHERE r.id = $1::pg_catalog.int8
                """, [state.id]).rows[0]
            let manifest = ArchiveManifest(
                format: ArchiveManifest.currentFormat, schema: table.schema, table: table.name, historyTable: info[0] ?? "",
                rangeStart: state.rangeStart, rangeEnd: state.floor, rows: state.rowsDeleted, bytes: state.archiveBytes,
                sha256: sha!, columns: columns, pruneID: state.id, prunedBy: info[1] ?? "", startedAt: info[2] ?? "",
                serverVersion: info[3] ?? "")
            try ArchiveFile.writeDurably(ArchiveManifest.path(forArchive: file), try manifest.encoded())
        }
        try connection.query("SELECT temporal_versioning._prune_finish($1::pg_catalog.int8, $2)", [state.id, sha])
        return PruneResult(
            table: table, pruneID: state.id, rangeStart: state.rangeStart, floor: state.floor, rowsDeleted: state.rowsDeleted,
            archiveFile: state.archiveFile, archiveBytes: state.archiveBytes, archiveSHA256: sha, resumed: resumed)
    }

    /// One batch, pages [state.nextPage, to): in one REPEATABLE READ
    /// transaction, the old rows are copied to the archive (fsynced), the
    /// same rows deleted, and the progress recorded. A batch that fails is
    /// cut from the archive and tried again (serialization failures) or
    /// reported. Returns the rows deleted and the archive's new length.
    private func batch(_ state: PruneState, to: Int64) throws -> (Int64, Int64) {
        var attempt = 0
        while true {
            attempt += 1
            // Set once the batch's statements are done: an error after it
            // came from COMMIT, which may have committed (the connection
            // lost, say), so the archive is left as it is; the next run cuts
            // it to the length the database recorded.
            var committing = false
            do {
                return try connection.transaction(repeatableRead: true) {
                    let statements = try connection.query(
                        "SELECT copy_sql, delete_sql FROM temporal_versioning._prune_batch_sql($1::pg_catalog.int8, $2::pg_catalog.int8, $3::pg_catalog.int8)",
                        [state.id, state.nextPage, to]).rows[0]
                    var copied = 0
                    var bytes = state.archiveBytes
                    if let file = state.archiveFile {
                        bytes = try ArchiveFile.appendMember(file) { sink in
                            copied = try connection.copyOutLines(statements[0] ?? "") { try sink($0) }
                        }
                    }
                    let deleted = Int64(try connection.query(statements[1] ?? "").affectedRows ?? 0)
                    if state.archiveFile != nil, deleted != Int64(copied) {
                        throw PostgresError(
                            kind: .server, sqlState: "40001",
                            message: "the prune copied \(copied) rows but would delete \(deleted); nothing of this batch was deleted")
                    }
                    try connection.query(
                        "SELECT temporal_versioning._prune_progress($1::pg_catalog.int8, $2::pg_catalog.int8, $3::pg_catalog.int8, $4::pg_catalog.int8)",
                        [state.id, to, deleted, bytes])
                    committing = true
                    return (deleted, bytes)
                }
            } catch let error as PostgresError where !committing {
                if let file = state.archiveFile {
                    try ArchiveFile.prepare(file, length: state.archiveBytes)
                }
                let retryable = error.sqlState == "40001" || error.sqlState == "40P01"
                guard retryable, attempt < 5 else { throw error }
            } catch where !committing {
                if let file = state.archiveFile {
                    try ArchiveFile.prepare(file, length: state.archiveBytes)
                }
                throw error
            }
        }
    }

    /// One step of a prune of a partitioned history: the archive of a
    /// partition (its rows copied, fsynced, the step recorded, in one
    /// transaction), or its DETACH (waiting at most lock_timeout for the
    /// history's writers, and tried again) and DROP. Returns the rows
    /// dropped and the archive's length.
    private func partitionStep(_ state: PruneState) throws -> (Int64, Int64) {
        let step = try connection.query(
            "SELECT * FROM temporal_versioning._prune_partition_step($1::pg_catalog.int8, $2::pg_catalog.int8)",
            [state.id, state.nextPage]).namedRows[0]
        let record = "SELECT temporal_versioning._prune_progress($1::pg_catalog.int8, $2::pg_catalog.int8, $3::pg_catalog.int8, $4::pg_catalog.int8)"
        if state.nextPage % 2 == 0 {
            guard let file = state.archiveFile, let copy = step["copy_sql"] else {
                try connection.query(record, [state.id, state.nextPage + 1, 0, state.archiveBytes])
                return (0, state.archiveBytes)
            }
            var committing = false
            do {
                return try connection.transaction(repeatableRead: true) {
                    let bytes = try ArchiveFile.appendMember(file) { sink in
                        try connection.copyOutLines(copy) { try sink($0) }
                    }
                    try connection.query(record, [state.id, state.nextPage + 1, 0, bytes])
                    committing = true
                    return (0, bytes)
                }
            } catch where !committing {
                try ArchiveFile.prepare(file, length: state.archiveBytes)
                throw error
            }
        }
        if let detach = step["detach_sql"] {
            var attempt = 0
            while true {
                attempt += 1
                do {
                    try connection.execute("SET lock_timeout = '2s'")
                    defer { _ = try? connection.execute("RESET lock_timeout") }
                    try connection.execute(detach)
                    break
                } catch let error as PostgresError where error.sqlState == "55P03" && attempt < 30 {
                    Thread.sleep(forTimeInterval: 1)
                }
            }
        }
        return try connection.transaction {
            var rows: Int64 = 0
            if let count = step["count_sql"], let drop = step["drop_sql"] {
                rows = Int64(try connection.query(count).scalar ?? "0") ?? 0
                try connection.execute(drop)
            }
            try connection.query(record, [state.id, state.nextPage + 1, rows, state.archiveBytes])
            return (rows, state.archiveBytes)
        }
    }

    /// Deletes transactions older than every history's floor, in batches.
    private func forgetOldTransactions() throws {
        while let n = try connection.query("SELECT temporal_versioning._forget_old_transactions(10000)").scalar, n != "0" {}
    }

    public static func absolutePath(_ path: String) -> String {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        if trimmed.hasPrefix("/") { return trimmed }
        return FileManager.default.currentDirectoryPath + "/" + trimmed
    }
}
