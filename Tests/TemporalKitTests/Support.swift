import Postgres
import TemporalKit
import TestSupport

/// A fresh database with pg-temporal installed, and a connection to it.
func installedDatabase() throws -> (TestDatabase, Connection) {
    let database = try TestDatabase()
    let connection = try database.connect()
    _ = try Installer.install(on: connection)
    return (database, connection)
}

/// A fresh installed database with `ddl` run and `table` versioned.
func versionedTable(_ ddl: String, table: String = "public.customers") throws -> (TestDatabase, Connection) {
    let (database, connection) = try installedDatabase()
    try connection.execute(ddl)
    let name = try TableResolver.resolve(table, on: connection)
    try Versioning(connection: connection).enable(name)
    return (database, connection)
}

/// The history of a table as `operation:key:column=value,...` lines in
/// temporal_id order: compact to compare, and it shows what a reader sees.
func historyLines(_ connection: Connection, _ history: String = "customers_history", columns: [String]) throws -> [String] {
    let list = columns.map { "coalesce(h.\($0)::text, '∅')" }.joined(separator: " || ',' || ")
    return try connection.column("""
        SELECT h.temporal_operation::text || ':' || \(list)
        FROM temporal_versioning.\(history) h ORDER BY h.temporal_id
        """).map { $0 ?? "" }
}
