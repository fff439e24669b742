import Postgres

/// What `temporal install` did.
public struct InstallReport: Sendable, Equatable {
    /// The version installed before, or nil on a fresh install.
    public var previousVersion: String?
    public var version: String
    /// The migrations applied by this run, by file name.
    public var appliedMigrations: [String]
    /// Whether the event triggers that follow schema changes are in place
    /// (creating them needs a superuser).
    public var followsSchemaChanges: Bool
}

/// Installs or upgrades the `temporal_versioning` schema: pending migrations,
/// then every function and event trigger, then fresh capture functions for
/// every versioned table, all in one transaction. Safe to run again.
public enum Installer {
    public static var bundledVersion: String { EmbeddedSQL.version }

    public static func install(on connection: Connection) throws -> InstallReport {
        try connection.transaction {
            // Every name in the SQL is schema-qualified; with search_path
            // pinned, no type, function or operator a role with CREATE on a
            // schema of the installer's path planted can stand in for a
            // built-in while pg-temporal's objects are created.
            try connection.execute("SET LOCAL search_path = pg_catalog, pg_temp")
            // Two installs racing would both see a migration as pending.
            try connection.query("SELECT pg_advisory_xact_lock(hashtext('pg-temporal install'))")
            // "already exists, skipping" notices are expected on every upgrade.
            try connection.execute("SET LOCAL client_min_messages = warning")
            let previousVersion = try installedVersion(on: connection)

            try connection.execute("CREATE SCHEMA IF NOT EXISTS temporal_versioning")
            try connection.execute("""
                CREATE TABLE IF NOT EXISTS temporal_versioning.installed_migrations (
                    version    integer     PRIMARY KEY,
                    name       text        NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let applied = Set(
                try connection.query("SELECT version FROM temporal_versioning.installed_migrations")
                    .rows.compactMap { $0[0].flatMap { Int($0) } })

            var appliedNow: [String] = []
            for migration in EmbeddedSQL.migrations {
                guard let version = migration.migrationVersion else {
                    throw PostgresError(kind: .protocolViolation, message: "migration \(migration.name) has no number")
                }
                guard !applied.contains(version) else { continue }
                try connection.execute(migration.text)
                try connection.query(
                    "INSERT INTO temporal_versioning.installed_migrations (version, name) VALUES ($1, $2)",
                    [version, migration.name])
                appliedNow.append(migration.name)
            }
            for file in EmbeddedSQL.functions {
                try connection.execute(file.text)
            }
            // Capture functions are generated code: regenerate them so that an
            // upgrade reaches tables versioned by an earlier release, and add
            // the capture triggers a newer release brought.
            try connection.query("""
                SELECT temporal_versioning.build_capture_function(id), temporal_versioning.create_capture_triggers(id)
                FROM temporal_versioning.versioned_tables
                WHERE enabled AND table_oid IS NOT NULL
                ORDER BY id
                """)
            let eventTriggers = try connection.query("""
                SELECT count(*) FROM pg_event_trigger
                WHERE evtname IN ('temporal_versioning_alter_table', 'temporal_versioning_sql_drop')
                """).scalar
            return InstallReport(
                previousVersion: previousVersion,
                version: EmbeddedSQL.version,
                appliedMigrations: appliedNow,
                followsSchemaChanges: eventTriggers == "2")
        }
    }

    /// The version of the SQL installed in the connected database, or nil.
    public static func installedVersion(on connection: Connection) throws -> String? {
        let present = try connection.query(
            "SELECT pg_catalog.to_regprocedure('temporal_versioning.version()') IS NOT NULL").scalar == "t"
        guard present else { return nil }
        return try connection.query("SELECT temporal_versioning.version()").scalar
    }

    /// Throws a clear error unless this binary's SQL is installed in the database.
    public static func requireInstalled(on connection: Connection) throws {
        let found: String?
        do {
            found = try installedVersion(on: connection)
        } catch let error as PostgresError where error.sqlState == SQLState.insufficientPrivilege {
            throw PostgresError(
                kind: .server, sqlState: SQLState.insufficientPrivilege,
                message: "\(error.message): pg-temporal's schema temporal_versioning belongs to the role that installed it",
                detail: "Only that role and superusers may use pg-temporal's functions and read its history.",
                hint: "Ask that role to GRANT you what you need, for example: GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA temporal_versioning TO you; GRANT SELECT ON ALL TABLES IN SCHEMA temporal_versioning TO you;")
        }
        guard let installed = found else {
            throw PostgresError(
                kind: .server, sqlState: "55000",
                message: "pg-temporal is not installed in database \"\(connection.databaseName)\"",
                hint: "Install it with: temporal install")
        }
        guard installed == EmbeddedSQL.version else {
            throw PostgresError(
                kind: .server, sqlState: "55000",
                message: "database \"\(connection.databaseName)\" has pg-temporal \(installed), this temporal is \(EmbeddedSQL.version)",
                hint: "Upgrade the database side with: temporal install")
        }
    }
}
