import Postgres

/// Reading a versioned table's past and putting it back: a client of the SQL
/// functions in sql/51_reading.sql and sql/52_revert.sql.
public struct TimeTravel {
    public let connection: Connection

    public init(connection: Connection) {
        self.connection = connection
    }

    /// Reads each timestamp the way PostgreSQL's timestamptz input does, in
    /// the session's time zone (PGTZ, the server's default), and returns it as
    /// an exact UTC instant. The session's settings are left as they were.
    public func resolveInstants(_ texts: [String]) throws -> [String] {
        var instants: [String] = []
        for text in texts {
            let row = try connection.query(
                """
                SELECT pg_catalog.isfinite($1::pg_catalog.timestamptz),
                       pg_catalog.to_char(pg_catalog.timezone('UTC', $1::pg_catalog.timestamptz), 'YYYY-MM-DD HH24:MI:SS.US')
                """,
                [text]).rows[0]
            guard row[0] == "t", let instant = row[1].map({ $0 + "+00" }) else {
                throw PostgresError(
                    kind: .server, sqlState: SQLState.invalidParameterValue,
                    message: "instant \"\(text)\" is not a finite point in time")
            }
            instants.append(instant)
        }
        return instants
    }

    /// From now on the session prints every time in UTC (what the CLI and
    /// the MCP tools show, so that instants read back are unambiguous).
    public func printTimesInUTC() throws {
        try connection.execute("SET TimeZone = 'UTC'")
    }

    /// The query for `table` as it was at `instant` (in $1), after the checks
    /// and warnings of as_of(); the caller runs it, so rows can stream. With
    /// `json`, each row is one jsonb object. The query names every built-in
    /// by its schema, so it is safe under any search_path.
    public func asOfQuery(_ table: TableName, at instant: String, limit: Int?, json: Bool = false) throws -> (sql: String, parameters: [any PostgresParameter]) {
        let sql = try connection.query(
            "SELECT temporal_versioning.prepare_as_of($1, $2, $3, $4)", [table.schema, table.name, instant, json]).scalar ?? ""
        if let limit { return ("\(sql) LIMIT $2", [instant, limit]) }
        return (sql, [instant])
    }

    /// Every version of the row with `key` (column name to value), oldest first.
    /// With `expandColumns`, each column of the row is a column of the result.
    public func rowHistory(_ table: TableName, key: [(column: String, value: String)], expandColumns: Bool) throws -> QueryResult {
        let keyObject = "{" + key.map { "\(JSON.string($0.column)): \(JSON.string($0.value))" }.joined(separator: ", ") + "}"
        let source = "temporal_versioning.get_row_history($1, $2, $3::pg_catalog.jsonb)"
        guard expandColumns, try tableExists(table) else {
            return try connection.query("SELECT * FROM \(source)", [table.schema, table.name, keyObject])
        }
        // The row images are read into the history table's row type, whose
        // columns have the base types of the table's domains: reading them
        // into the table's own type would check the domains' constraints
        // (a table owner's code) with the caller's rights. Both names come
        // quoted by the server.
        let shape = try connection.query("""
            SELECT pg_catalog.format('temporal_versioning.%I', v.history_table),
                   (SELECT pg_catalog.string_agg('r.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.column_name), ', ' ORDER BY c.attnum)
                    FROM temporal_versioning.live_columns(v.id) c)
            FROM temporal_versioning.versioned_tables v
            WHERE v.table_oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)
            """, [table.qualified]).rows.first
        guard let history = shape?[0] ?? nil, let columns = shape?[1] ?? nil else {
            return try connection.query("SELECT * FROM \(source)", [table.schema, table.name, keyObject])
        }
        return try connection.query("""
            SELECT h.version, h.change_type, h.valid_from, h.valid_to, h.db_user, h.user_id, h.changeset,
                   h.tx_id, h.changed_columns, \(columns)
            FROM \(source) h LEFT JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::\(history), h.row_data) r ON true
            ORDER BY h.version
            """, [table.schema, table.name, keyObject])
    }

    public struct LogFilter: Sendable {
        public var since: String?
        public var until: String?
        public var operation: String?
        public var user: String?
        public var changeset: String?
        public var limit: Int?

        public init(since: String? = nil, until: String? = nil, operation: String? = nil,
                    user: String? = nil, changeset: String? = nil, limit: Int? = nil) {
            self.since = since
            self.until = until
            self.operation = operation
            self.user = user
            self.changeset = changeset
            self.limit = limit
        }
    }

    /// The changes of `table`, oldest first. `summary` gives one readable
    /// `changes` column instead of the before and after objects.
    public func log(_ table: TableName, _ filter: LogFilter, summary: Bool) throws -> QueryResult {
        let source = """
            temporal_versioning.get_change_history($1, $2, $3::pg_catalog.timestamptz, $4::pg_catalog.timestamptz, $5, $6::pg_catalog.int4, $7, $8)
            """
        let parameters: [(any PostgresParameter)?] = [
            table.schema, table.name, filter.since, filter.until, filter.operation, filter.limit, filter.user, filter.changeset,
        ]
        guard summary else {
            return try connection.query("SELECT * FROM \(source)", parameters)
        }
        return try connection.query("""
            SELECT l.temporal_id, l.changed_at, l.change_type, l.key, l.db_user, l.user_id, l.changeset, l.tx_id,
                   CASE
                       WHEN l.change_type OPERATOR(pg_catalog.=) 'UPDATE' THEN (SELECT pg_catalog.string_agg(
                                                      pg_catalog.format('%s: %s -> %s', c,
                                                                        coalesce(l.before OPERATOR(pg_catalog.->>) c, 'NULL'),
                                                                        coalesce(l.after OPERATOR(pg_catalog.->>) c, 'NULL')), ', ')
                                           FROM pg_catalog.unnest(l.changed_columns) c)
                       WHEN l.change_type OPERATOR(pg_catalog.=) 'INSERT' THEN l.after::pg_catalog.text
                       ELSE l.before::pg_catalog.text END AS changes
            FROM \(source) l
            """, parameters)
    }

    /// Rows added, deleted and modified between two instants.
    public func diff(_ table: TableName, from: String, to: String) throws -> QueryResult {
        try connection.query(
            "SELECT * FROM temporal_versioning.compare_temporal_data($1, $2, $3, $4)",
            [table.schema, table.name, from, to])
    }

    /// What to revert: a table to an instant, or one changeset or transaction.
    public enum RevertTarget: Sendable {
        case instant(TableName, String)
        case changeset(String, TableName?)
        case transaction(Int64, TableName?)
    }

    /// Plans (dryRun) or carries out a revert; either way returns the plan,
    /// one row per key: source_table, action, key, before, after.
    public func revert(_ target: RevertTarget, dryRun: Bool) throws -> QueryResult {
        switch target {
        case let .instant(table, instant):
            return try connection.query("""
                SELECT pg_catalog.format('%I.%I', $1::pg_catalog.text, $2::pg_catalog.text) AS source_table, r.*
                FROM temporal_versioning.revert_table_data($1, $2, $3, $4) r
                """, [table.schema, table.name, instant, dryRun])
        case let .changeset(id, table):
            return try connection.query(
                "SELECT * FROM temporal_versioning.revert_changeset($1, $2, $3, $4)",
                [id, dryRun, table?.schema, table?.name])
        case let .transaction(id, table):
            return try connection.query(
                "SELECT * FROM temporal_versioning.revert_transaction($1, $2, $3, $4)",
                [id, dryRun, table?.schema, table?.name])
        }
    }

    private func tableExists(_ table: TableName) throws -> Bool {
        try connection.query("SELECT pg_catalog.to_regclass($1) IS NOT NULL", [table.qualified]).scalar == "t"
    }
}
