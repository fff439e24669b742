import Foundation
import Postgres

/// A fresh database on the throwaway PostgreSQL server that scripts/pg-start
/// started (scripts/test exports its PGHOST and PGPORT). Each test gets its
/// own, so tests run in parallel without seeing each other's tables, event
/// triggers or grants. Databases are not dropped one by one: Swift may end a
/// value's life before the test's last use of a connection to it, and the
/// whole cluster is thrown away after the run (scripts/pg-stop).
public final class TestDatabase: @unchecked Sendable {
    public let name: String

    public init() throws {
        guard ProcessInfo.processInfo.environment["PGHOST"] != nil else {
            throw TestSetupError(
                "PGHOST is not set: run the tests through scripts/test, which starts PostgreSQL, or `source .run/pg.env` after scripts/pg-start")
        }
        name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
        let admin = try Connection(conninfo: "dbname=postgres")
        try admin.execute("CREATE DATABASE \(name)")
    }

    /// A conninfo string for this database, with extra settings appended.
    public func conninfo(_ extra: String = "") -> String {
        "dbname=\(name) \(extra)"
    }

    public func connect(_ extra: String = "", applicationName: String = "temporal-tests") throws -> Connection {
        try Connection(conninfo: conninfo(extra), applicationName: applicationName)
    }

    /// Creates a login role for this test (roles are cluster-wide, so its name is unique).
    public func createRole(_ suffix: String, options: String = "LOGIN") throws -> String {
        let role = "\(name)_\(suffix)"
        try connect().execute("CREATE ROLE \(role) \(options)")
        return role
    }

    /// Drops the roles this database's tests created.
    public func dropRoles(_ roles: [String]) {
        guard let connection = try? connect() else { return }
        for role in roles {
            _ = try? connection.execute("DROP OWNED BY \(role) CASCADE")
            if let admin = try? Connection(conninfo: "dbname=postgres") {
                _ = try? admin.execute("DROP ROLE IF EXISTS \(role)")
            }
        }
    }
}

public struct TestSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension Connection {
    /// The first column of every row.
    public func column(_ sql: String, _ parameters: [(any PostgresParameter)?] = []) throws -> [String?] {
        try query(sql, parameters).rows.map { $0.first ?? nil }
    }

    public func value(_ sql: String, _ parameters: [(any PostgresParameter)?] = []) throws -> String? {
        try query(sql, parameters).scalar
    }

    public func count(_ sql: String, _ parameters: [(any PostgresParameter)?] = []) throws -> Int {
        Int(try value(sql, parameters) ?? "") ?? -1
    }
}
