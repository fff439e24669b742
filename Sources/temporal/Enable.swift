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
              temporal enable orders --partition-history daily --key-index closed
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

    @Option(help: ArgumentHelp(
        "With --partition-history: the key index on all partitions, or only on the closed ones (writes into the current period skip it; temporal maintain indexes a period once it ends).",
        valueName: "all|closed"))
    var keyIndex: String?

    func validate() throws {
        try connection.refuseWritesIfReadOnly("enable")
        if let partitionHistory, !["daily", "weekly", "monthly"].contains(partitionHistory) {
            throw ValidationError("--partition-history takes daily, weekly or monthly, not \(partitionHistory).")
        }
        if let keyIndex {
            guard HistoryKeyIndex(rawValue: keyIndex) != nil else {
                throw ValidationError("--key-index takes all or closed, not \(keyIndex).")
            }
            if keyIndex == "closed" && partitionHistory == nil {
                throw ValidationError("--key-index closed needs --partition-history: only a history partitioned by time has closed partitions.")
            }
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
        let versioning = Versioning(connection: database)
        let scope = keyIndex.flatMap(HistoryKeyIndex.init(rawValue:))
        // One transaction: the table is versioned with its index as asked, or not at all.
        let history = try database.transaction {
            let history = try versioning.enable(name, suffix: suffix, keyColumns: key, partitionHistory: partitionHistory)
            if let scope { try versioning.setHistoryKeyIndex(name, scope) }
            return history
        }
        print("versioning \(name) into \(history)")
        if scope != nil {
            // (Outside the transaction: the builds are CONCURRENTLY.)
            let alignment = try Lifecycle(connection: database).alignKeyIndex(name)
            if let deferred = alignment.deferred {
                print("the key index is not yet where it was asked: writers held the history; temporal maintain finishes it (\(deferred))")
            } else if scope == .closed {
                print("key index on closed partitions only")
            }
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
