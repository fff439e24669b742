import ArgumentParser
import Postgres
import TemporalKit

struct AsOf: DatabaseCommand {
    static let configuration = CommandConfiguration(
        commandName: "as-of",
        abstract: "Show a table as it was at an instant.",
        discussion: """
            Rebuilds the table from its history: rows that did not change after the \
            instant come from the table itself, the others from the history. The cost \
            follows the number of changes since the instant, not the size of the table; \
            rows stream out as they are read (json and csv).

            The instant is anything PostgreSQL's timestamptz accepts, read in your \
            session's time zone (PGTZ, or the server's); times are printed in UTC. It must \
            lie between the moment versioning was turned on and now.

            Examples:
              temporal as-of public.customers --at '2026-01-15 10:30:00+00'
              temporal as-of customers --at 'yesterday 09:00' --limit 20 --format json
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The versioned table.")
    var table: String

    @Option(help: ArgumentHelp("The instant: a PostgreSQL timestamptz, e.g. '2026-01-15 10:30:00+00'.", valueName: "timestamp"))
    var at: String

    @Option(parsing: .unconditional, help: "Print at most this many rows.")
    var limit: Int?

    func validate() throws {
        if let limit, limit < 0 || limit > Int(Int32.max) {
            throw ValidationError("--limit must be between 0 and \(Int32.max), not \(limit).")
        }
    }

    func run(on database: Connection) throws {
        let name = try TableResolver.resolve(table, on: database, includingDropped: true)
        try database.pinSearchPath()
        let timeTravel = TimeTravel(connection: database)
        let instant = try timeTravel.resolveInstants([at])[0]
        try timeTravel.printTimesInUTC()
        let query = try timeTravel.asOfQuery(name, at: instant, limit: limit, json: output.format == .json)
        let renderer = Renderer(format: output.format)
        if output.format == .json {
            try renderer.streamJSONObjects(database, query.sql, query.parameters)
        } else {
            try renderer.stream(database, query.sql, query.parameters)
        }
    }
}
