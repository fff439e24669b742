import Postgres

/// A table's schema and name, exactly as stored in the catalog.
public struct TableName: Hashable, Sendable, CustomStringConvertible {
    public var schema: String
    public var name: String
    /// Schema-qualified and quoted by PostgreSQL (`format('%I.%I')`), for messages.
    public var qualified: String

    public init(schema: String, name: String, qualified: String) {
        self.schema = schema
        self.name = name
        self.qualified = qualified
    }

    public var description: String { qualified }

    /// The table with this schema and name, quoted by PostgreSQL.
    public static func named(schema: String, name: String, on connection: Connection) throws -> TableName {
        let qualified = try connection.query(
            "SELECT pg_catalog.format('%I.%I', $1::pg_catalog.text, $2::pg_catalog.text)", [schema, name]).scalar ?? "\(schema).\(name)"
        return TableName(schema: schema, name: name, qualified: qualified)
    }
}

public enum TableResolver {
    /// Resolves a table name the way psql does: `customers` through
    /// search_path, `sales.customers`, `"Mixed Case"`. With
    /// `includingDropped`, a versioned table that was dropped is found by its
    /// last name, so that its kept history can still be inspected or removed.
    public static func resolve(_ text: String, on connection: Connection, includingDropped: Bool = false) throws -> TableName {
        // to_regclass parses the name with PostgreSQL's own rules and returns
        // NULL for a table that does not exist; bad syntax is PostgreSQL's error.
        let live = try connection.query("""
            SELECT n.nspname, c.relname, pg_catalog.format('%I.%I', n.nspname, c.relname)
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
            WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)
            """, [text])
        if let table = tableName(live) { return table }

        if includingDropped, try Installer.installedVersion(on: connection) != nil {
            let dropped = try connection.query("""
                SELECT v.schema_name, v.table_name, pg_catalog.format('%I.%I', v.schema_name, v.table_name)
                FROM temporal_versioning.versioned_tables v, pg_catalog.parse_ident($1) AS p(parts)
                WHERE v.table_oid IS NULL
                  AND v.table_name OPERATOR(pg_catalog.=) p.parts[pg_catalog.cardinality(p.parts)]
                  AND CASE WHEN pg_catalog.cardinality(p.parts) OPERATOR(pg_catalog.=) 1
                            THEN v.schema_name OPERATOR(pg_catalog.=) ANY (pg_catalog.current_schemas(false))
                           WHEN pg_catalog.cardinality(p.parts) OPERATOR(pg_catalog.=) 2
                            THEN v.schema_name OPERATOR(pg_catalog.=) p.parts[1]
                           ELSE false END
                ORDER BY v.id DESC LIMIT 1
                """, [text])
            if let table = tableName(dropped) { return table }
        }
        throw PostgresError(
            kind: .server, sqlState: SQLState.undefinedTable,
            message: "relation \"\(text)\" does not exist")
    }

    private static func tableName(_ result: QueryResult) -> TableName? {
        guard let row = result.rows.first, let schema = row[0], let name = row[1], let qualified = row[2] else {
            return nil
        }
        return TableName(schema: schema, name: name, qualified: qualified)
    }
}
