import ArgumentParser
import Postgres
import TemporalKit

struct Diff: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the rows added, deleted and modified between two instants.",
        discussion: """
            Compares the table as it was at --from with the table as it was at --to (now \
            unless given), reading only the rows changed after --from. A modified row \
            lists the columns that changed. Times are PostgreSQL timestamptz values in your \
            session's time zone.

            --format json prints {"added": [row, ...], "deleted": [row, ...], \
            "modified": [{"key", "before", "after", "changed"}, ...]}.

            Examples:
              temporal diff public.customers --from '2026-01-15 09:00+00'
              temporal diff customers --from '2026-01-15 09:00+00' --to '2026-01-15 10:00+00' --format json
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The versioned table.")
    var table: String

    @Option(help: ArgumentHelp("The earlier instant.", valueName: "timestamp"))
    var from: String

    @Option(help: ArgumentHelp("The later instant (default: now).", valueName: "timestamp"))
    var to: String = "now"

    func run(on database: Connection) throws {
        let name = try TableResolver.resolve(table, on: database, includingDropped: true)
        try database.pinSearchPath()
        let timeTravel = TimeTravel(connection: database)
        let instants = try timeTravel.resolveInstants([from, to])
        try timeTravel.printTimesInUTC()
        let differences = try timeTravel.compare(name, from: instants[0], to: instants[1])
        guard output.format == .json else {
            return Renderer(format: output.format).print(differences.rows)
        }
        print(differences.json)
    }
}
