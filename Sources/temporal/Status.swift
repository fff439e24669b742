import ArgumentParser
import Postgres
import TemporalKit

struct Status: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the history of one table holds.",
        discussion: """
            Whether versioning is on and capture triggers fire, the key, the inserts, \
            updates, deletes and truncates captured (counted exactly, which reads the \
            whole history), the first and last change, the history's size, how many \
            schema changes were followed, and for a history partitioned by time its \
            period, where its key index is (all or closed partitions) and, while the \
            table is versioned, the next statement that temporal maintain runs to move it.

            Examples:
              temporal status public.customers
              temporal status customers --format json
              temporal status public.events --warn-size 10GB
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The table (a dropped table's kept history is found by its last name).")
    var table: String

    @Option(help: ArgumentHelp("Warn, and exit 1, when the history is larger than this (PostgreSQL's size units: 500MB, 10GB).", valueName: "size"))
    var warnSize: String?

    func run(on database: Connection) throws {
        let name = try TableResolver.resolve(table, on: database, includingDropped: true)
        try database.pinSearchPath()
        let threshold = try warnSize.map { try database.query("SELECT pg_catalog.pg_size_bytes($1)", [$0]).scalar ?? "0" }
        let status = try Versioning(connection: database).status(name)
        Renderer(format: output.format).printRecord(status)
        if let threshold, let limit = Int64(threshold), let bytes = status.first?["history_bytes"].flatMap({ Int64($0) }), bytes > limit {
            let pretty = try database.query("SELECT pg_catalog.pg_size_pretty($1::pg_catalog.int8)", [bytes]).scalar ?? "\(bytes) bytes"
            printError("WARNING:  the history of \(name) is \(pretty), over --warn-size \(warnSize!)")
            printError("HINT:  Keep less of it (temporal retention set \(name) --keep ... --archive-dir DIR, then temporal maintain), or prune it (temporal prune).")
            // For monitoring: the record is printed, and the exit status says it is over.
            throw ExitCode(1)
        }
    }
}
