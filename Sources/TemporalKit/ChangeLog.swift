import Postgres

/// One change of a versioned table, as the change log shows it.
public struct ChangeLogEntry: Sendable {
    public var temporalID: Int64
    /// When its transaction began, in the session's time zone.
    public var changedAt: String
    /// INSERT, UPDATE, DELETE or TRUNCATE.
    public var changeType: String
    /// The row's key, and the row before and after it (JSON; null where there is none).
    public var key: String
    public var before: String?
    public var after: String?
    public var changedColumns: [String]
    public var txID: Int64
    public var dbUser: String?
    public var applicationName: String?
    public var clientAddress: String?
    /// What the application said of the change (temporal.user_id, temporal.changeset_id).
    public var userID: String?
    public var changeset: String?

    /// The changeset to name when undoing it: its own, else its transaction's id.
    public var revertHandle: String { changeset ?? String(txID) }
}

/// The changes of a table in a time window, oldest first, at most a limit.
public struct ChangeLog: Sendable {
    /// The changes (empty for a summary, whose rows are for people).
    public var entries: [ChangeLogEntry]
    /// There were more changes than the limit.
    public var truncated: Bool
    /// The rows as get_change_history returns them, for printing.
    public var rows: QueryResult
}

extension TimeTravel {
    /// The changes of `table` between two instants (resolved: see
    /// resolveInstants; either may be nil: from the start, up to now); at most
    /// `limit` (nil: all), saying whether there were more. A `summary` has one
    /// readable `changes` column instead of before and after, and no entries.
    public func changeLog(_ table: TableName, since: String?, until: String?, operation: String? = nil,
                          user: String? = nil, changeset: String? = nil, limit: Int?, summary: Bool = false) throws -> ChangeLog {
        let filter = LogFilter(since: since, until: until, operation: operation?.uppercased(), user: user, changeset: changeset,
                               limit: limit.map { $0 + 1 })
        let result = try log(table, filter, summary: summary)
        let kept = limit.map { Array(result.rows.prefix($0)) } ?? result.rows
        let rows = QueryResult(columns: result.columns, rows: kept)
        let entries = summary ? [] : rows.namedRows.map { row -> ChangeLogEntry in
            func field(_ name: String) -> String? { row[name] ?? nil }
            let changed: [String] = {
                guard let text = field("changed_columns"), case let .array(items)? = ArrayLiteral.parse(text) else { return [] }
                return items.compactMap { if case let .text(name) = $0 { name } else { nil } }
            }()
            return ChangeLogEntry(
                temporalID: Int64(field("temporal_id") ?? "") ?? 0, changedAt: field("changed_at") ?? "",
                changeType: field("change_type") ?? "", key: field("key") ?? "null", before: field("before"), after: field("after"),
                changedColumns: changed, txID: Int64(field("tx_id") ?? "") ?? 0, dbUser: field("db_user"),
                applicationName: field("application_name"), clientAddress: field("client_addr"),
                userID: field("user_id"), changeset: field("changeset"))
        }
        return ChangeLog(entries: entries, truncated: limit.map { result.rows.count > $0 } ?? false, rows: rows)
    }
}
