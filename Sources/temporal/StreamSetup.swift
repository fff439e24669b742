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

            Example:
              temporal stream setup --publication app_pub --slot app_slot public.customers public.orders --replica-identity-full
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

    @Argument(help: "The tables to publish.")
    var tables: [String]

    func validate() throws {
        try connection.refuseWritesIfReadOnly("stream setup")
        guard StreamAdmin.validSlotName(slot) else {
            throw ValidationError("slot names may contain only lower case letters, digits and underscores: --slot app_slot")
        }
        if tables.isEmpty { throw ValidationError("name at least one table to publish.") }
    }

    func run(on database: Connection) throws {
        let names = try tables.map { try TableResolver.resolve($0, on: database) }
        try database.pinSearchPath()
        let report = try StreamAdmin(connection: database).setup(
            slot: slot, publication: publication, tables: names.map { ($0.schema, $0.name) },
            replicaIdentityFull: replicaIdentityFull)
        if output.format == .json {
            print("""
                {"publication": \(JSON.string(publication)), "slot": \(JSON.string(slot)), "lsn": \(JSON.string(report.slotPosition.description)), \
                "replica_identity_full_set": [\(report.madeFull.map(JSON.string).joined(separator: ", "))], \
                "without_replica_identity_full": [\(report.withoutFullIdentity.map(JSON.string).joined(separator: ", "))]}
                """)
            return
        }
        print("publication \(publication) for \(names.map(\.qualified).joined(separator: ", "))")
        print("slot \(slot) (pgoutput) starts at \(report.slotPosition)")
        for table in report.madeFull { print("REPLICA IDENTITY FULL set on \(table)") }
        if !report.withoutFullIdentity.isEmpty {
            printError("WARNING:  without REPLICA IDENTITY FULL, UPDATE and DELETE events lack the row before the change: \(report.withoutFullIdentity.joined(separator: ", "))")
            printError("HINT:  Run setup with --replica-identity-full, or ALTER TABLE ... REPLICA IDENTITY FULL.")
        }
    }
}
