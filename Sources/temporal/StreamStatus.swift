import ArgumentParser
import ChangeStream
import Postgres

struct StreamStatus: DatabaseCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show where streams stand: confirmed position, lag, retained WAL, active or not.",
        discussion: """
            lag_bytes is how far the slot's confirmed position is behind the server's \
            current WAL position; retained_wal_bytes is how much WAL the server keeps \
            for the slot. A slot nobody reads keeps WAL forever: drop it when done. Only \
            pgoutput slots are listed (the ones a stream reads) unless --all. Backfills of \
            stream setup --snapshot are listed below the slots, or alone with --backfills.

            Examples:
              temporal stream status
              temporal stream status --slot app_slot --format json
              temporal stream status --slot app_slot --backfills --format json
            """)
    static var needsInstall: Bool { false }

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Only this slot.")
    var slot: String?

    @Flag(name: .customLong("all"), help: "Also list slots of other plugins (not streams').")
    var allPlugins = false

    @Flag(help: "List the backfills of stream setup --snapshot instead: table, kind, rows done / total, state.")
    var backfills = false

    func run(on database: Connection) throws {
        try database.pinSearchPath()
        let admin = StreamAdmin(connection: database)
        let renderer = Renderer(format: output.format)
        if backfills {
            renderer.print(try admin.backfills(slot: slot))
            return
        }
        renderer.print(try admin.status(slot: slot, allPlugins: allPlugins))
        // Snapshots and history backfills (stream setup --snapshot), with their progress.
        let backfills = try admin.backfills(slot: slot)
        if !backfills.rows.isEmpty && output.format == .table {
            print("")
            renderer.print(backfills)
        }
    }
}
