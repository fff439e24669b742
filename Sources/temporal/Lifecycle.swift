import ArgumentParser
import Postgres
import TemporalKit

struct Retention: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decide how long the history of a table is kept.",
        discussion: """
            A policy is applied by temporal maintain (run it from cron or a systemd timer):

              temporal retention set public.customers --keep 90d --archive-dir /var/lib/temporal/archive
              temporal retention show
              temporal maintain

            The changes older than the policy's length are written to an archive (PostgreSQL \
            COPY format, gzip, with a manifest holding its sha256) and then deleted, in \
            small batches. Time travel to an instant before the new floor is refused with \
            the floor in the message; every later instant reads exactly as before.
            """,
        subcommands: [RetentionSet.self, RetentionShow.self, RetentionUnset.self])
}

struct RetentionSet: DatabaseCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Keep the history of a table for a length of time.",
        discussion: """
            --keep takes PostgreSQL's interval ('90 days', '1 year') or 90d, 12h, 4w, 6mon, 1y. \
            Give --archive-dir (a directory on the machine that runs temporal maintain) or, \
            to delete old changes without keeping them anywhere, --no-archive.
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The versioned table.")
    var table: String

    @Option(help: ArgumentHelp("How long to keep changes.", valueName: "interval"))
    var keep: String

    @Option(help: ArgumentHelp("Where prunes write their archives.", valueName: "directory"))
    var archiveDir: String?

    @Flag(help: "Delete old changes without an archive.")
    var noArchive = false

    func validate() throws {
        try connection.refuseWritesIfReadOnly("retention set")
        if archiveDir != nil && noArchive {
            throw ValidationError("give --archive-dir or --no-archive, not both.")
        }
        guard archiveDir != nil || noArchive else {
            throw ValidationError("give --archive-dir DIR to keep pruned changes in archives, or --no-archive to delete them.")
        }
    }

    func run(on database: Connection) throws {
        let name = try TableResolver.resolve(table, on: database, includingDropped: true)
        let status = try Lifecycle(connection: database).setRetention(name, keep: keep, archiveDirectory: archiveDir)
        Renderer(format: output.format).printRecord(LifecycleTables.retention([status]))
    }
}

struct RetentionShow: DatabaseCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show each versioned table's retention policy, floor and last prune.")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run(on database: Connection) throws {
        try database.pinSearchPath()
        Renderer(format: output.format).print(LifecycleTables.retention(try Lifecycle(connection: database).retentionStatus()))
    }
}

struct RetentionUnset: DatabaseCommand {
    static let configuration = CommandConfiguration(
        commandName: "unset",
        abstract: "Keep the history of a table for ever again (the floor stays where prunes left it).")

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The versioned table.")
    var table: String

    func validate() throws {
        try connection.refuseWritesIfReadOnly("retention unset")
    }

    func run(on database: Connection) throws {
        let name = try TableResolver.resolve(table, on: database, includingDropped: true)
        if try Lifecycle(connection: database).unsetRetention(name) {
            print("\(name) keeps its history for ever")
        } else {
            printError("\(name) had no retention policy")
        }
    }
}

struct Prune: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete the changes of one table made before an instant, archiving them first.",
        discussion: """
            Look first, then prune:
              temporal prune public.customers --before '2026-01-01 00:00+00' --dry-run
              temporal prune public.customers --before '2026-01-01 00:00+00' --archive-dir /var/lib/temporal/archive

            The floor is recorded before anything is deleted: from then on time travel to \
            an earlier instant is refused, and every later instant reads as before. The \
            changes go to DIR/<history>_<start>_<floor>.copy.gz (with a manifest) and are \
            deleted in batches of about 10,000 rows, each in its own short transaction, \
            after its rows are fsynced in the archive. The table is not locked; writers go \
            on. A prune that is killed is finished by the next prune or maintain of the table.

            Without --archive-dir, the table's retention policy's directory is used; to \
            delete without any archive say --no-archive.

            A history partitioned by time (enable --partition-history) is pruned by whole \
            partitions: those that end at or before --before (and before every running \
            transaction began) are archived, detached and dropped, and the floor is the end of \
            the last of them (--dry-run shows it).
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The versioned table.")
    var table: String

    @Option(help: ArgumentHelp("Delete the changes made before this instant (the new floor).", valueName: "timestamp"))
    var before: String

    @Option(help: ArgumentHelp("Where to write the archive.", valueName: "directory"))
    var archiveDir: String?

    @Flag(help: "Delete without an archive.")
    var noArchive = false

    @Flag(help: "Show what would be deleted and archived, and change nothing.")
    var dryRun = false

    @Option(help: ArgumentHelp("Rows deleted per transaction (about).", valueName: "n"))
    var batchRows: Int64 = 10_000

    @Option(help: ArgumentHelp("Milliseconds to wait after each batch, leaving the server to the application.", valueName: "ms"))
    var pause: Int = 0

    func validate() throws {
        guard batchRows > 0 else { throw ValidationError("--batch-rows takes a positive number of rows.") }
        guard pause >= 0 else { throw ValidationError("--pause takes milliseconds, 0 or more.") }
        if archiveDir != nil && noArchive {
            throw ValidationError("give --archive-dir or --no-archive, not both.")
        }
        if !dryRun { try connection.refuseWritesIfReadOnly("prune") }
    }

    func run(on database: Connection) throws {
        let name = try TableResolver.resolve(table, on: database, includingDropped: true)
        let floor = try TimeTravel(connection: database).resolveInstants([before])[0]
        try TimeTravel(connection: database).printTimesInUTC()
        var lifecycle = Lifecycle(connection: database)
        lifecycle.rowsPerBatch = batchRows
        lifecycle.pauseBetweenBatches = Double(pause) / 1000
        let archive: Lifecycle.ArchiveChoice
        if let archiveDir {
            archive = .directory(archiveDir)
        } else if noArchive {
            archive = .none
        } else if let policy = try lifecycle.retentionStatus().first(where: { $0.table == name }), let directory = policy.archiveDirectory {
            archive = .directory(directory)
        } else {
            guard dryRun else {
                throw ValidationError("\(name) has no retention policy with an archive directory: give --archive-dir DIR, or --no-archive to delete without an archive.")
            }
            archive = .none
        }
        let renderer = Renderer(format: output.format)
        if dryRun {
            renderer.printRecord(LifecycleTables.preview(try lifecycle.previewPrune(name, before: floor, archive: archive)))
            return
        }
        if output.format == .table {
            lifecycle.progress = { table, rows in writeStandardError("\r\(table): \(rows) rows pruned") }
        }
        let results = try lifecycle.prune(name, before: floor, archive: archive)
        if output.format == .table && !results.isEmpty { writeStandardError("\n") }
        if results.isEmpty {
            let state = try database.query("""
                SELECT v.history_floor::pg_catalog.text, v.options OPERATOR(pg_catalog.->>) 'partition_history'
                FROM temporal_versioning.versioned_tables v
                WHERE v.id OPERATOR(pg_catalog.=) (temporal_versioning.find_versioned_table($1, $2)).id
                """, [name.schema, name.name]).rows.first
            let current = state?[0].map { "its floor is \($0)" } ?? "it has no floor"
            if let period = state?[1] ?? nil {
                printError("nothing to prune in \(name) before \(floor) (\(current)): its history is partitioned \(period), and a prune drops only whole partitions that end by then and before every running transaction began")
            } else {
                printError("nothing to prune in \(name) before \(floor): no change is older (\(current))")
            }
            if output.format == .table { return }
        }
        renderer.print(LifecycleTables.prunes(results))
    }
}

struct Maintain: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply every retention policy and finish prunes that were killed.",
        discussion: """
            Meant for cron or a systemd timer; safe to run at any time and again:
              */15 * * * *  temporal maintain --db service=app
            Each table with a policy is pruned to now minus its --keep, archiving into its \
            directory. Histories partitioned by time (enable --partition-history) get their \
            partitions for the next three periods, and, with --key-index closed, the key index \
            of each period that ended (CREATE INDEX CONCURRENTLY). Prints one line per prune; \
            nothing when nothing was due. Exits 1, after applying retention, when a history's \
            key index could not be moved where it was asked.
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        try connection.refuseWritesIfReadOnly("maintain")
    }

    func run(on database: Connection) throws {
        try database.query("SET TimeZone = 'UTC'")
        var problems: [Lifecycle.KeyIndexAlignment] = []
        let results = try Lifecycle(connection: database).maintain { problems.append($0) }
        // Nothing due prints nothing (cron mails what a job prints), but for programs.
        if !(results.isEmpty && output.format == .table) {
            Renderer(format: output.format).print(LifecycleTables.prunes(results))
        }
        if !problems.isEmpty {
            throw PostgresError(
                kind: .server, sqlState: SQLState.objectNotInPrerequisiteState,
                message: "the key index of \(problems.map(\.table.qualified).joined(separator: ", ")) could not be moved where it was asked (retention was applied)",
                detail: problems.compactMap(\.error).joined(separator: "\n"),
                hint: "temporal maintain tries again on its next run; SELECT temporal_versioning.key_index_step(schema, table) shows the statement.")
        }
    }
}

struct Archive: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List archives written by prunes, check them, and read them back.",
        discussion: """
              temporal archive list /var/lib/temporal/archive --verify
              temporal archive restore /var/lib/temporal/archive/customers_history_20260101T000000Z_20260401T000000Z.copy.gz --into-history
              temporal archive restore FILE --into restore.customers_2026q1
            """,
        subcommands: [ArchiveList.self, ArchiveRestore.self])
}

struct ArchiveList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the archives of a directory from their manifests (no database needed).")

    @OptionGroup var output: OutputOptions

    @Argument(help: "The archive directory.")
    var directory: String

    @Flag(help: "Check each archive's sha256 against its manifest.")
    var verify = false

    func run() throws {
        do {
            let entries = try Archives.list(directory, verify: verify)
            Renderer(format: output.format).print(LifecycleTables.archives(entries, verified: verify))
            if verify, entries.contains(where: { $0.verified != true }) {
                printError("some archives are missing or do not match their manifest")
                throw ExitCode(1)
            }
        } catch let error as PostgresError {
            printError(error.psqlDescription)
            throw ExitCode(1)
        }
    }
}

struct ArchiveRestore: DatabaseCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Put an archive's rows back into the history, or into a table of their own.",
        discussion: """
            The archive's sha256 is checked against its manifest first, and the restore is \
            one transaction. --into-history puts back each row that is not in the history \
            (restoring twice adds nothing) with its transaction, and moves the floor back \
            to the archive's start when the archive ends at the floor. --into creates a new \
            table with the archive's columns, to read old changes without touching the history.
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The archive (X.copy.gz) or its manifest (X.manifest.json).")
    var archive: String

    @Flag(help: "Put the rows back into the history they came from.")
    var intoHistory = false

    @Option(help: ArgumentHelp("Create this table with the archive's rows.", valueName: "schema.table"))
    var into: String?

    func validate() throws {
        if intoHistory && into != nil {
            throw ValidationError("give --into-history or --into SCHEMA.TABLE, not both.")
        }
        guard intoHistory || into != nil else {
            throw ValidationError("give --into-history or --into SCHEMA.TABLE.")
        }
        try connection.refuseWritesIfReadOnly("archive restore")
    }

    func run(on database: Connection) throws {
        let target: Archives.RestoreTarget
        if let into {
            let parts = try database.query("SELECT p[1], p[2] FROM pg_catalog.parse_ident($1) p", [into]).rows[0]
            guard let schema = parts[0], let name = parts[1] else {
                throw ValidationError("--into takes a schema-qualified name such as restore.customers_history_2026q1.")
            }
            target = .table(try TableName.named(schema: schema, name: name, on: database))
        } else {
            target = .history
        }
        let result = try Archives(connection: database).restore(archive, into: target)
        Renderer(format: output.format).printRecord(LifecycleTables.restore(result))
    }
}

/// The lifecycle's typed results as rows for the renderer.
enum LifecycleTables {
    static func result(_ columns: [(String, UInt32)], _ rows: [[String?]]) -> QueryResult {
        QueryResult(columns: columns.map { QueryResult.Column(name: $0.0, typeOID: $0.1) }, rows: rows)
    }

    static let text: UInt32 = 25

    static func retention(_ statuses: [Lifecycle.RetentionStatus]) -> QueryResult {
        result([("table", text), ("keep", text), ("archive_dir", text), ("history_floor", text), ("due_floor", text),
                ("last_prune_at", text), ("last_prune_rows", PostgresType.int8), ("last_archive", text),
                ("unfinished_prune", PostgresType.bool)],
               statuses.map { [$0.table.qualified, $0.keep, $0.archiveDirectory, $0.historyFloor, $0.dueFloor, $0.lastPruneAt,
                               $0.lastPruneRows.map(String.init), $0.lastArchive, $0.unfinishedPrune ? "t" : "f"] })
    }

    static func preview(_ preview: Lifecycle.PrunePreview) -> QueryResult {
        result([("table", text), ("history_table", text), ("range_start", text), ("new_floor", text),
                ("changes", PostgresType.int8), ("transactions", PostgresType.int8), ("archive", text)],
               [[preview.table.qualified, preview.historyTable, preview.rangeStart, preview.floor, String(preview.changes),
                 String(preview.transactions), preview.archive ?? "(none)"]])
    }

    static func prunes(_ results: [Lifecycle.PruneResult]) -> QueryResult {
        result([("table", text), ("prune_id", PostgresType.int8), ("range_start", text), ("floor", text),
                ("rows_deleted", PostgresType.int8), ("archive", text), ("archive_bytes", PostgresType.int8),
                ("sha256", text), ("resumed", PostgresType.bool)],
               results.map { [$0.table.qualified, String($0.pruneID), $0.rangeStart, $0.floor, String($0.rowsDeleted),
                              $0.archiveFile, String($0.archiveBytes), $0.archiveSHA256, $0.resumed ? "t" : "f"] })
    }

    static func archives(_ entries: [Archives.Entry], verified: Bool) -> QueryResult {
        var columns: [(String, UInt32)] = [("archive", text), ("table", text), ("range_start", text), ("range_end", text),
                                           ("rows", PostgresType.int8), ("bytes", PostgresType.int8), ("present", PostgresType.bool)]
        if verified { columns.append(("sha256_ok", PostgresType.bool)) }
        return result(columns, entries.map { entry in
            var row: [String?] = [entry.archive, "\(entry.manifest.schema).\(entry.manifest.table)", entry.manifest.rangeStart,
                                  entry.manifest.rangeEnd, String(entry.manifest.rows), String(entry.manifest.bytes),
                                  entry.present ? "t" : "f"]
            if verified { row.append(entry.verified == true ? "t" : "f") }
            return row
        })
    }

    static func restore(_ result: Archives.RestoreResult) -> QueryResult {
        self.result([("archive", text), ("table", text), ("restored_into", text), ("rows_read", PostgresType.int8),
                     ("rows_restored", PostgresType.int8), ("history_floor", text)],
                    [[result.archive, result.table.qualified, result.target, String(result.rowsRead),
                      String(result.rowsRestored), result.historyFloor]])
    }
}
