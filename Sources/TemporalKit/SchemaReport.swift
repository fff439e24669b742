import Postgres

/// The schema changes of versioned tables, classified for the ETL that
/// moves them into MongoDB: a client of temporal_versioning.schema_change_report.
public struct SchemaReport {
    public let connection: Connection

    public init(connection: Connection) {
        self.connection = connection
    }

    public struct Change: Sendable, Equatable {
        public var changedAt: String
        public var table: String
        public var change: String
        public var column: String?
        public var fromType: String?
        public var toType: String?
        /// new optional field, new required field, type change, field rename,
        /// field drop, collection rename, new table, table drop, no change of shape.
        public var kind: String
        /// safe, review, migration, breaking, none.
        public var category: String
        public var mongodb: String
        public var api: String
        public var dbUser: String
        public var transaction: Int64
        /// The journal's details, as JSON.
        public var details: String
    }

    /// The changes, oldest first: of one table or of all, within [since, until).
    public func changes(of table: TableName?, since: String?, until: String?) throws -> [Change] {
        try connection.query("""
            SELECT * FROM temporal_versioning.schema_change_report($1, $2, $3::pg_catalog.timestamptz, $4::pg_catalog.timestamptz)
            """, [table?.schema, table?.name, since, until]).namedRows.map { row in
            Change(changedAt: row["changed_at"] ?? "", table: row["source_table"] ?? "", change: row["change"] ?? "",
                   column: row["column_name"], fromType: row["from_type"], toType: row["to_type"], kind: row["kind"] ?? "",
                   category: row["category"] ?? "", mongodb: row["mongodb"] ?? "", api: row["api"] ?? "",
                   dbUser: row["db_user"] ?? "", transaction: Int64(row["tx_id"] ?? "") ?? 0, details: row["details"] ?? "{}")
        }
    }
}
