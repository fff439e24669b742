import ArgumentParser
import Postgres
import TemporalKit

struct History: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every version of one row, oldest first.",
        discussion: """
            One line per change of the row: what the change was, when it was valid, who \
            made it (database role, application user, changeset, transaction), the \
            columns it changed and the row as it was after it. Version 0 (EXISTING) is \
            the row as it was when versioning began, if it existed then. Also works for \
            a table that was dropped: its history stays.

            --key takes column=value, repeated for each column of a composite key.

            Examples:
              temporal history public.customers --key id=12345
              temporal history order_lines --key order_id=7 --key line=2 --format json
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The versioned table (or a dropped one, by its last name).")
    var table: String

    @Option(
        name: .customLong("key"),
        help: ArgumentHelp("A key column and its value, column=value; repeat for composite keys.", valueName: "column=value"))
    var keys: [String] = []

    func validate() throws {
        if keys.isEmpty { throw ValidationError("give the row's key: --key id=12345 (one --key per key column).") }
        for key in keys where !key.contains("=") || key.hasPrefix("=") {
            throw ValidationError("--key takes column=value, such as --key id=12345; got '\(key)'.")
        }
    }

    var keyPairs: [(column: String, value: String)] {
        keys.map { key in
            let parts = key.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(parts[0]), String(parts[1]))
        }
    }

    func run(on database: Connection) throws {
        let name = try TableResolver.resolve(table, on: database, includingDropped: true)
        try database.pinSearchPath()
        let timeTravel = TimeTravel(connection: database)
        try timeTravel.printTimesInUTC()
        let versions = try timeTravel.rowHistory(name, key: keyPairs, expandColumns: output.format != .json)
        Renderer(format: output.format).print(versions)
    }
}
