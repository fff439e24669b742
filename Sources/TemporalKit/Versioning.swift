import Postgres

/// Turning versioning on and off, and reading what is versioned. A thin
/// client of the SQL API in schema temporal_versioning: a DBA with only psql
/// can do all of this with the same functions.
public struct Versioning {
    public let connection: Connection

    public init(connection: Connection) {
        self.connection = connection
    }

    /// Starts capturing every change of `table`. Returns the history table's name.
    /// With `partitionHistory` (daily, weekly, monthly), the history is
    /// range-partitioned by time, and prunes drop whole partitions.
    @discardableResult
    public func enable(_ table: TableName, suffix: String = "_history", keyColumns: [String]? = nil,
                       partitionHistory: String? = nil) throws -> String {
        let result = try connection.query(
            "SELECT temporal_versioning.enable_temporal_versioning($1, $2, $3, $4, $5)",
            [table.schema, table.name, suffix, keyColumns, partitionHistory])
        return result.scalar ?? ""
    }

    /// Where the key index (key, temporal_id) of a history partitioned by
    /// time is to be: on every partition, or on the partitions whose period
    /// has ended (and the default one), so that writes into the current
    /// period do not maintain it. Records the choice (in the caller's
    /// transaction, if any); `Lifecycle.alignKeyIndex` (and `temporal
    /// maintain`) then builds and drops the indexes, concurrently. Returns
    /// whether the choice changed.
    @discardableResult
    public func setHistoryKeyIndex(_ table: TableName, _ scope: HistoryKeyIndex) throws -> Bool {
        try connection.query(
            "SELECT temporal_versioning.set_history_key_index($1, $2, $3)",
            [table.schema, table.name, scope.rawValue]
        ).scalar == "t"
    }

    /// Stops capturing changes of `table`; drops its history when asked.
    @discardableResult
    public func disable(_ table: TableName, dropHistory: Bool = false) throws -> String {
        try connection.query(
            "SELECT temporal_versioning.disable_temporal_versioning($1, $2, $3)",
            [table.schema, table.name, dropHistory]
        ).scalar ?? ""
    }

    /// Every table that is or was versioned.
    public func list() throws -> QueryResult {
        try connection.query("SELECT * FROM temporal_versioning.list_temporal_tables()")
    }

    /// Capture state and exact change counts of one table.
    public func status(_ table: TableName) throws -> QueryResult {
        try connection.query(
            "SELECT * FROM temporal_versioning.get_temporal_status($1, $2)", [table.schema, table.name])
    }
}

/// Which partitions of a history partitioned by time carry its key index.
public enum HistoryKeyIndex: String, CaseIterable, Sendable {
    /// Every partition (the default).
    case all
    /// Only those whose period has ended, and the default partition.
    case closed
}
