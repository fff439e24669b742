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

            With --history-since, the changes pg-temporal kept of a versioned table since that \
            instant (all, a number of days such as 90d, or a timestamptz) come first, in commit \
            order, as the events the stream would have written for them. The stream skips its \
            own events of the table's transactions that the history holds (those committed \
            between the table's joining and the consistent point), so each change is written once.

            Examples:
              temporal stream backfill --slot app_slot --publication app_pub public.invoices --replica-identity-full
              temporal stream backfill --slot app_slot --publication app_pub public.invoices --history-since 90d
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "The slot of the running stream.")
    var slot: String

    @Option(help: "The stream's publication: the tables are added to it.")
    var publication: String

    @Flag(help: "Set REPLICA IDENTITY FULL on the tables.")
    var replicaIdentityFull = false

    @Option(help: "Also backfill the changes kept in the history of versioned tables since then: all, a number of days (90d) or a timestamptz.")
    var historySince: String?

    @Flag(help: "With --history-since: refuse tables that are not versioned, instead of backfilling them without history.")
    var strict = false

    @Argument(help: "The tables to add and backfill.")
    var tables: [String]

    func validate() throws {
        try connection.refuseWritesIfReadOnly("stream backfill")
        guard StreamAdmin.validSlotName(slot) else {
            throw ValidationError("slot names contain only lower case letters, digits and underscores.")
        }
        if tables.isEmpty { throw ValidationError("name at least one table to backfill.") }
        if let historySince, historySince.isEmpty { throw ValidationError("--history-since takes all, a number of days (90d) or a timestamptz.") }
        if strict && historySince == nil { throw ValidationError("--strict goes with --history-since.") }
    }

    func run(on database: Connection) throws {
        let names = try tables.map { try TableResolver.resolve($0, on: database) }
        try database.pinSearchPath()
        let (backfills, warnings) = try StreamAdmin(connection: database).addBackfill(
            slot: slot, publication: publication, tables: names.map { ($0.schema, $0.name) },
            request: .init(conninfo: connection.db, historySince: historySince, strict: strict),
            replicaIdentityFull: replicaIdentityFull)
        for warning in warnings { printError("WARNING:  \(warning)") }
        if output.format == .json {
            print("[" + backfills.map {
                "{\"table\": \(JSON.string($0.table)), \"kind\": \(JSON.string($0.kind)), \"rows\": \($0.rows)}"
            }.joined(separator: ", ") + "]")
            return
        }
        for backfill in backfills {
            let what = backfill.kind == "history" ? "changes of its history" : "rows"
            print("\(backfill.table) added to \(publication): \(backfill.rows) \(what), written by the stream when it gets there")
        }
    }
}
