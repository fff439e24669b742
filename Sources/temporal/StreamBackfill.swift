import ArgumentParser
import ChangeStream
import Postgres
import TemporalKit

struct StreamBackfill: DatabaseCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Add tables to a stream's publication and backfill their rows, without stopping the stream.",
        discussion: """
            Adds the tables to the publication, then copies their rows in the snapshot of a \
            temporary slot made afterwards. The running stream (or the next stream run) writes \
            one snapshot event per row when it reaches that slot's consistent point: changes \
            committed before it come first, then the rows as they were there, then the changes \
            after it. Nothing is missed or written twice, and the backfill goes on where it \
            stopped after a crash, like the one of stream setup --snapshot.

            The changes pg-temporal kept of these tables are not backfilled this way (those made \
            while the table was being added would come twice); set up a stream with \
            setup --snapshot --history-since for them.

            Example:
              temporal stream backfill --slot app_slot --publication app_pub public.invoices --replica-identity-full
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "The slot of the running stream.")
    var slot: String

    @Option(help: "The stream's publication: the tables are added to it.")
    var publication: String

    @Flag(help: "Set REPLICA IDENTITY FULL on the tables.")
    var replicaIdentityFull = false

    @Argument(help: "The tables to add and backfill.")
    var tables: [String]

    func validate() throws {
        try connection.refuseWritesIfReadOnly("stream backfill")
        guard StreamAdmin.validSlotName(slot) else {
            throw ValidationError("slot names contain only lower case letters, digits and underscores.")
        }
        if tables.isEmpty { throw ValidationError("name at least one table to backfill.") }
    }

    func run(on database: Connection) throws {
        let names = try tables.map { try TableResolver.resolve($0, on: database) }
        try database.pinSearchPath()
        let backfills = try StreamAdmin(connection: database).addBackfill(
            slot: slot, publication: publication, tables: names.map { ($0.schema, $0.name) },
            request: .init(conninfo: connection.db), replicaIdentityFull: replicaIdentityFull)
        if output.format == .json {
            print("[" + backfills.map {
                "{\"table\": \(JSON.string($0.table)), \"kind\": \(JSON.string($0.kind)), \"rows\": \($0.rows)}"
            }.joined(separator: ", ") + "]")
            return
        }
        for backfill in backfills {
            print("\(backfill.table) added to \(publication): \(backfill.rows) rows, written by the stream when it gets there")
        }
    }
}
