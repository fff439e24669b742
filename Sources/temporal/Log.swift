import ArgumentParser
import Postgres
import TemporalKit

struct Log: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the changes made to a table, oldest first.",
        discussion: """
            One line per changed row: when, what (INSERT, UPDATE, DELETE, TRUNCATE), the \
            key, who (database role and application user), the changeset and transaction, \
            and what changed. --format json and csv give the row before and after each \
            change in full.

            Filters combine: a time window (--since, --until: PostgreSQL timestamptz \
            values, in your session's time zone), --op, --user (a database role or an \
            application user id) and --changeset. At most --limit changes are shown \
            (1000 unless given; 0 for all).

            Examples:
              temporal log public.customers --since '2026-01-15 00:00+00' --op delete
              temporal log customers --changeset cs-789 --format json
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The versioned table (or a dropped one, by its last name).")
    var table: String

    @Option(help: ArgumentHelp("Only changes at or after this instant.", valueName: "timestamp"))
    var since: String?

    @Option(help: ArgumentHelp("Only changes at or before this instant.", valueName: "timestamp"))
    var until: String?

    @Option(name: .customLong("op"), help: "Only this operation: insert, update, delete or truncate.")
    var operation: Operation?

    @Option(help: "Only changes by this database role or application user (temporal.user_id).")
    var user: String?

    @Option(help: "Only changes of this changeset (temporal.changeset_id).")
    var changeset: String?

    @Option(parsing: .unconditional, help: "Show at most this many changes; 0 shows all.")
    var limit: Int = 1000

    enum Operation: String, ExpressibleByArgument, CaseIterable {
        case insert, update, delete, truncate
    }

    func validate() throws {
        if limit < 0 || limit > Int(Int32.max) {
            throw ValidationError("--limit must be between 0 (all) and \(Int32.max), not \(limit).")
        }
    }

    func run(on database: Connection) throws {
        let name = try TableResolver.resolve(table, on: database, includingDropped: true)
        try database.pinSearchPath()
        let timeTravel = TimeTravel(connection: database)
        let window = try timeTravel.resolveInstants([since, until].compactMap { $0 })
        try timeTravel.printTimesInUTC()
        let changes = try timeTravel.changeLog(
            name, since: since == nil ? nil : window.first, until: until == nil ? nil : window.last,
            operation: operation?.rawValue, user: user, changeset: changeset, limit: limit == 0 ? nil : limit,
            summary: output.format == .table)
        Renderer(format: output.format).print(changes.rows)
        if changes.truncated {
            printError("(the first \(limit) changes; --limit N shows more, --limit 0 all)")
        }
    }
}
