import Postgres

/// The rows added, deleted and modified in a table between two instants:
/// what `temporal diff` prints and the MCP tool compare_temporal_data returns.
public struct DiffResult: Sendable {
    public struct Modification: Sendable {
        /// The row's key, its whole row at each instant (JSON), and the columns that differ.
        public var key: String
        public var before: String
        public var after: String
        public var changed: [String]
    }

    /// Whole rows (JSON) that exist only at the later instant, or only at the earlier one.
    public var added: [String] = []
    public var deleted: [String] = []
    public var modified: [Modification] = []
    /// The rows as compare_temporal_data returns them (change, key, before, after, changed_columns).
    public var rows: QueryResult

    public var count: Int { added.count + deleted.count + modified.count }

    public init(_ rows: QueryResult) {
        self.rows = rows
        for row in rows.namedRows {
            switch row["change"] ?? nil {
            case "added": added.append((row["after"] ?? nil) ?? "null")
            case "deleted": deleted.append((row["before"] ?? nil) ?? "null")
            default:
                let changed: [String] = {
                    guard let text = row["changed_columns"] ?? nil, case let .array(items)? = ArrayLiteral.parse(text) else { return [] }
                    return items.compactMap { if case let .text(name) = $0 { name } else { nil } }
                }()
                modified.append(Modification(key: (row["key"] ?? nil) ?? "null", before: (row["before"] ?? nil) ?? "null",
                                             after: (row["after"] ?? nil) ?? "null", changed: changed))
            }
        }
    }

    /// The first `limit` differences (in the order the rows came), and whether there were more.
    public func limited(to limit: Int) -> (DiffResult, truncated: Bool) {
        guard count > limit else { return (self, false) }
        return (DiffResult(QueryResult(columns: rows.columns, rows: Array(rows.rows.prefix(limit)))), true)
    }

    /// `{"added": [...], "deleted": [...], "modified": [{key, before, after, changed}]}`.
    public var json: String {
        let modifications = modified.map { change in
            #"{"key": \#(change.key), "before": \#(change.before), "after": \#(change.after), "changed": [\#(change.changed.map(JSON.string).joined(separator: ", "))]}"#
        }
        return """
            {"added": [\(added.joined(separator: ", "))],
             "deleted": [\(deleted.joined(separator: ", "))],
             "modified": [\(modifications.joined(separator: ",\n  "))]}
            """
    }
}

extension TimeTravel {
    /// The differences of `table` between two instants, grouped.
    public func compare(_ table: TableName, from: String, to: String) throws -> DiffResult {
        DiffResult(try diff(table, from: from, to: to))
    }
}
