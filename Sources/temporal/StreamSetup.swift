import ArgumentParser
import ChangeStream
import Postgres
import TemporalKit

struct StreamSetup: DatabaseCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup",
        abstract: "Create the publication and the replication slot a stream reads.",
        discussion: """
            Creates a publication for the tables and a logical replication slot using \
            PostgreSQL's built-in pgoutput plugin. From then on the server keeps the WAL \
            the slot has not confirmed: run the stream, or drop the slot when done.

            UPDATE and DELETE events carry the whole row before the change only for \
            tables with REPLICA IDENTITY FULL; setup lists the others, and sets FULL on \
            them with --replica-identity-full. A table without any replica identity (no \
            primary key) is refused: once published, UPDATE and DELETE on it would fail.

            With --snapshot, every table is copied as it is at the slot's start (inside the \
            snapshot the slot exports, so writers may go on meanwhile), and with \
            --history-since so are the changes pg-temporal kept of the versioned ones; stream \
            run writes them before it streams, and nothing is missed or written twice. The \
            copies take space in temporal_versioning until they are written. Needs \
            temporal install.

            Examples:
              temporal stream setup --publication app_pub --slot app_slot public.customers public.orders --replica-identity-full
              temporal stream setup --publication app_pub --slot app_slot public.customers --snapshot --history-since 90d
            """)
    static var needsInstall: Bool { false }

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Name of the publication to create.")
    var publication: String

    @Option(help: "Name of the slot to create (lower case letters, digits, underscores).")
    var slot: String

    @Flag(help: "Set REPLICA IDENTITY FULL on tables that lack it.")
    var replicaIdentityFull = false

    @Flag(help: "Snapshot every table at the slot's start: stream run writes one snapshot event per row before it streams.")
    var snapshot = false

    @Option(help: ArgumentHelp(
        "With --snapshot: also the changes pg-temporal kept of versioned tables since then: all, a number of days (90d) or a timestamptz.",
        valueName: "since"))
    var historySince: String?

    @Flag(help: "With --history-since: refuse tables that are not versioned, instead of snapshotting them without history.")
    var strict = false

    @Argument(help: "The tables to publish.")
    var tables: [String]

    func validate() throws {
        try connection.refuseWritesIfReadOnly("stream setup")
        guard StreamAdmin.validSlotName(slot) else {
            throw ValidationError("slot names may contain only lower case letters, digits and underscores: --slot app_slot")
        }
        if tables.isEmpty { throw ValidationError("name at least one table to publish.") }
        if historySince != nil && !snapshot { throw ValidationError("--history-since goes with --snapshot.") }
        if let historySince, historySince.isEmpty { throw ValidationError("--history-since takes all, a number of days (90d) or a timestamptz.") }
    }

    func run(on database: Connection) throws {
        let names = try tables.map { try TableResolver.resolve($0, on: database) }
        try database.pinSearchPath()
        if snapshot { try Installer.requireInstalled(on: database) }
        let report = try StreamAdmin(connection: database).setup(
            slot: slot, publication: publication, tables: names.map { ($0.schema, $0.name) },
            replicaIdentityFull: replicaIdentityFull,
            snapshot: snapshot ? .init(conninfo: connection.db, historySince: historySince, strict: strict) : nil)
        for warning in report.warnings { printError("WARNING:  \(warning)") }
        if output.format == .json {
            print("""
                {"publication": \(JSON.string(publication)), "slot": \(JSON.string(slot)), "lsn": \(JSON.string(report.slotPosition.description)), \
                "replica_identity_full_set": [\(report.madeFull.map(JSON.string).joined(separator: ", "))], \
                "without_replica_identity_full": [\(report.withoutFullIdentity.map(JSON.string).joined(separator: ", "))], \
                "backfills": [\(report.backfills.map { "{\"table\": \(JSON.string($0.table)), \"kind\": \(JSON.string($0.kind)), \"rows\": \($0.rows)}" }.joined(separator: ", "))]}
                """)
            return
        }
        print("publication \(publication) for \(names.map(\.qualified).joined(separator: ", "))")
        print("slot \(slot) (pgoutput) starts at \(report.slotPosition)")
        for table in report.madeFull { print("REPLICA IDENTITY FULL set on \(table)") }
        for backfill in report.backfills {
            print("\(backfill.kind) of \(backfill.table): \(backfill.rows) rows, written by stream run before it streams")
        }
        if !report.withoutFullIdentity.isEmpty {
            printError("WARNING:  without REPLICA IDENTITY FULL, UPDATE and DELETE events lack the row before the change: \(report.withoutFullIdentity.joined(separator: ", "))")
            printError("HINT:  Run setup with --replica-identity-full, or ALTER TABLE ... REPLICA IDENTITY FULL.")
        }
    }
}
