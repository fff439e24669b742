import ArgumentParser
import Postgres
import TemporalKit

struct Status: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the history of one table holds.",
        discussion: """
            Whether versioning is on and capture triggers fire, the key, the inserts, \
            updates, deletes and truncates captured (counted exactly, which reads the \
            whole history), the first and last change, the history's size and how many \
            schema changes were followed.

            Examples:
              temporal status public.customers
              temporal status customers --format json
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The table (a dropped table's kept history is found by its last name).")
    var table: String

    func run(on database: Connection) throws {
        let name = try TableResolver.resolve(table, on: database, includingDropped: true)
        try database.pinSearchPath()
        Renderer(format: output.format).printRecord(try Versioning(connection: database).status(name))
    }
}
