import ArgumentParser
import Postgres
import TemporalKit

struct Enable: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start keeping the full history of a table.",
        discussion: """
            Creates the history table temporal_versioning.<table><suffix> and the four \
            statement-level triggers that capture every INSERT, UPDATE, DELETE and \
            TRUNCATE from now on. Rows already in the table are not copied: time travel \
            reads them from the table itself until they first change.

            The table needs a key that identifies each row: its primary key, or NOT NULL \
            columns with a unique index given with --key.

            A partitioned table is versioned as one table: every partition, and every \
            partition created or attached later, is captured into its one history.

            Examples:
              temporal enable public.customers
              temporal enable audit_log --key event_id,shard --suffix _versions
            """)

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The table: customers (found through search_path), sales.customers, or '\"Mixed Case\"'.")
    var table: String

    @Option(help: "Suffix of the history table's name.")
    var suffix: String = "_history"

    @Option(
        help: ArgumentHelp("Key columns for a table without a primary key, comma-separated.", valueName: "col[,col]"),
        transform: { $0.split(separator: ",").map { String($0).trimmingSpaces() } })
    var key: [String]?

    @Option(help: ArgumentHelp(
        "Partition the history by time, so that prunes drop whole partitions: daily, weekly or monthly.", valueName: "period"))
    var partitionHistory: String?

    func validate() throws {
        try connection.refuseWritesIfReadOnly("enable")
        if let partitionHistory, !["daily", "weekly", "monthly"].contains(partitionHistory) {
            throw ValidationError("--partition-history takes daily, weekly or monthly, not \(partitionHistory).")
        }
        if suffix.isEmpty {
            throw ValidationError("--suffix must not be empty; the default is _history.")
        }
        if let key, key.isEmpty || key.contains(where: \.isEmpty) {
            throw ValidationError("--key takes column names separated by commas, such as --key id or --key tenant_id,id.")
        }
    }

    func run(on database: Connection) throws {
        let name = try TableResolver.resolve(table, on: database)
        let history = try Versioning(connection: database).enable(name, suffix: suffix, keyColumns: key, partitionHistory: partitionHistory)
        print("versioning \(name) into \(history)")
    }
}

extension String {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
