import ArgumentParser
import Postgres
import TemporalKit

struct List: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tables that are or were versioned.",
        discussion: """
            One line per table: whether versioning is on, whether its capture triggers \
            are in place, its key, since when its history is unbroken, and the size of \
            its history (rows estimated by the planner, bytes exact; `temporal status` \
            counts rows exactly).

            Examples:
              temporal list
              temporal list --format json
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run(on database: Connection) throws {
        Renderer(format: output.format).print(try Versioning(connection: database).list())
    }
}
