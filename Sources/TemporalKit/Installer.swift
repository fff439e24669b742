import Postgres

/// How `temporal install` puts pg-temporal in a database.
public enum InstallMethod: String, Sendable, CaseIterable {
    /// The extension when the server has it (and the role may create it),
    /// the plain SQL otherwise; a database keeps the form it has.
    case automatic
    /// CREATE EXTENSION temporal_versioning (moving a plain install into it).
    case `extension`
    /// The plain SQL, as on managed services (moving an extension out of it).
    case plain
}

/// The form pg-temporal has in a database.
public enum InstalledForm: String, Sendable, Equatable {
    /// The temporal_versioning extension (CREATE EXTENSION).
    case `extension`
    /// The plain SQL `temporal install` runs.
    case plain
}

/// Which capture function the triggers of newly versioned tables call.
public enum CapturePath: String, Sendable, Equatable {
    /// The extension's C library (extension/src/capture.c).
    case c
    /// The generated PL/pgSQL functions, the reference.
    case plpgsql
}

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
    /// The form before (nil on a fresh install) and now.
    public var previousForm: InstalledForm?
    public var form: InstalledForm
    /// Why automatic chose the plain SQL, when it did.
    public var plainBecause: String?
    public var capture: CapturePath
}

/// Installs or upgrades pg-temporal in a database, as the temporal_versioning
/// extension or as plain SQL (the same objects either way: the extension's
/// scripts are generated from the same files), and moves it from one form to
/// the other. Everything happens in one transaction; history and catalog rows
/// are never touched by a move. Safe to run again.
public enum Installer {
    public static var bundledVersion: String { EmbeddedSQL.version }
    public static let extensionName = "temporal_versioning"

    public static func install(on connection: Connection, method: InstallMethod = .automatic) throws -> InstallReport {
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
            let extensionVersion = try connection.query(
                "SELECT extversion FROM pg_extension WHERE extname = $1", [extensionName]).rows.first?[0] ?? nil
            let previousForm: InstalledForm? = extensionVersion != nil ? .extension : previousVersion != nil ? .plain : nil
            let migrationsBefore = try installedMigrations(on: connection)

            let (form, plainBecause) = try chooseForm(on: connection, method: method, previousForm: previousForm)
            switch (previousForm, form) {
            case (nil, .extension):
                try connection.execute("CREATE EXTENSION \(extensionName) VERSION '\(bundledVersion)'")
            case (.extension?, .extension):
                if extensionVersion != bundledVersion {
                    try connection.execute("ALTER EXTENSION \(extensionName) UPDATE TO '\(bundledVersion)'")
                } else if previousVersion != bundledVersion {
                    // The extension's functions are not its version's: put them back.
                    try releaseExtension(on: connection)
                    try installPlainSQL(on: connection)
                    try adoptIntoExtension(on: connection)
                }
            case (.plain?, .extension):
                try installPlainSQL(on: connection)
                try adoptIntoExtension(on: connection)
            case (.extension?, .plain):
                try releaseExtension(on: connection)
                try installPlainSQL(on: connection)
            case (nil, .plain), (.plain?, .plain):
                try installPlainSQL(on: connection)
            }
            if form == .plain {
                // The C capture function is the extension's: its triggers go
                // back to the PL/pgSQL functions, then it goes.
                try connection.query("SELECT set_config('temporal.capture', 'sql', true)")
            }
            // Capture functions are generated code: regenerate them so that an
            // upgrade reaches tables versioned by an earlier release, and add
            // the capture triggers a newer release brought (or switch them to
            // the capture path this form has).
            try connection.query("""
                SELECT temporal_versioning.build_capture_function(id), temporal_versioning.create_capture_triggers(id)
                FROM temporal_versioning.versioned_tables
                WHERE enabled AND table_oid IS NOT NULL
                ORDER BY id
                """)
            if form == .plain {
                try connection.execute("""
                    DROP FUNCTION IF EXISTS temporal_versioning._capture_c();
                    DROP FUNCTION IF EXISTS temporal_versioning._emit_change_context_c();
                    DROP FUNCTION IF EXISTS temporal_versioning._capture_library_version();
                    DROP FUNCTION IF EXISTS temporal_versioning._capture_c_statements();
                    """)
            }
            let appliedNow = try installedMigrations(on: connection).subtracting(migrationsBefore)
            let eventTriggers = try connection.query("""
                SELECT count(*) FROM pg_event_trigger
                WHERE evtname IN ('temporal_versioning_alter_table', 'temporal_versioning_sql_drop')
                """).scalar
            let usesC = try connection.query("""
                SELECT temporal_versioning._c_capture_function() IS NOT NULL
                   AND coalesce(current_setting('temporal.capture', true), '') <> 'sql'
                """).scalar == "t"
            return InstallReport(
                previousVersion: previousVersion,
                version: EmbeddedSQL.version,
                appliedMigrations: EmbeddedSQL.migrations.filter { appliedNow.contains($0.migrationVersion ?? -1) }.map(\.name),
                followsSchemaChanges: eventTriggers == "2",
                previousForm: previousForm,
                form: form,
                plainBecause: plainBecause,
                capture: usesC ? .c : .plpgsql)
        }
    }

    /// The form to install in, and why automatic chose the plain SQL.
    private static func chooseForm(on connection: Connection, method: InstallMethod,
                                   previousForm: InstalledForm?) throws -> (InstalledForm, String?) {
        let available = try connection.query("""
            SELECT EXISTS (SELECT FROM pg_available_extension_versions WHERE name = $1 AND version = $2)
            """, [extensionName, bundledVersion]).scalar == "t"
        switch method {
        case .plain:
            return (.plain, nil)
        case .extension:
            guard available else {
                throw PostgresError(
                    kind: .server, sqlState: "58P01",
                    message: "extension \"\(extensionName)\" version \"\(bundledVersion)\" is not available on this server",
                    detail: "The extension's files are not in the server's share/extension directory (pg_config --sharedir).",
                    hint: "Build and install it on the database server: make -C extension install PG_CONFIG=/path/to/pg_config. Or keep the plain SQL: temporal install --method plain")
            }
            return (.extension, nil)
        case .automatic:
            if let previousForm {
                if previousForm == .extension, !available {
                    throw PostgresError(
                        kind: .server, sqlState: "58P01",
                        message: "database \"\(connection.databaseName)\" has the extension \"\(extensionName)\", but version \"\(bundledVersion)\" is not available on this server",
                        hint: "Install this version's extension files on the server (make -C extension install), or move the database to the plain SQL: temporal install --method plain")
                }
                return (previousForm, previousForm == .plain ? "the database has the plain SQL (move it with --method extension)" : nil)
            }
            guard available else { return (.plain, "the extension is not available on this server") }
            if try connection.query("SELECT current_setting('temporal.capture', true) = 'sql'").scalar == "t" {
                return (.plain, "temporal.capture is set to sql")
            }
            guard try connection.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").scalar == "t" else {
                return (.plain, "creating the extension needs a superuser")
            }
            return (.extension, nil)
        }
    }

    private static func installedMigrations(on connection: Connection) throws -> Set<Int> {
        guard try connection.query("SELECT to_regclass('temporal_versioning.installed_migrations') IS NOT NULL").scalar == "t" else {
            return []
        }
        return Set(try connection.query("SELECT version FROM temporal_versioning.installed_migrations")
            .rows.compactMap { $0[0].flatMap { Int($0) } })
    }

    /// The plain SQL: pending migrations, then every function and event trigger.
    private static func installPlainSQL(on connection: Connection) throws {
        try connection.execute("CREATE SCHEMA IF NOT EXISTS temporal_versioning")
        try connection.execute("""
            CREATE TABLE IF NOT EXISTS temporal_versioning.installed_migrations (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())
            """)
        let applied = try installedMigrations(on: connection)
        for migration in EmbeddedSQL.migrations {
            guard let version = migration.migrationVersion else {
                throw PostgresError(kind: .protocolViolation, message: "migration \(migration.name) has no number")
            }
            guard !applied.contains(version) else { continue }
            try connection.execute(migration.text)
            try connection.query(
                "INSERT INTO temporal_versioning.installed_migrations (version, name) VALUES ($1, $2)",
                [version, migration.name])
        }
        for file in EmbeddedSQL.functions {
            try connection.execute(file.text)
        }
    }

    /// Makes a plain install (already at this version) the extension: creates
    /// it empty, adds pg-temporal's own objects to it (the catalog tables and
    /// their sequences, the functions, the event triggers; not the history
    /// tables nor the generated capture functions, which are the database's
    /// and which pg_dump must keep dumping), then completes it with ALTER
    /// EXTENSION UPDATE, which replaces the functions and registers the
    /// catalog tables for pg_dump.
    private static func adoptIntoExtension(on connection: Connection) throws {
        try connection.execute("CREATE EXTENSION \(extensionName) VERSION 'unpackaged'")
        let additions = try connection.query("""
            SELECT format('ALTER EXTENSION temporal_versioning ADD TABLE %s', c.oid::regclass)
            FROM pg_class c
            WHERE c.relnamespace = 'temporal_versioning'::regnamespace AND c.relname = ANY (string_to_array($1, ',')) AND c.relkind IN ('r', 'p')
            UNION ALL
            SELECT format('ALTER EXTENSION temporal_versioning ADD SEQUENCE %s', s.oid::regclass)
            FROM pg_class s JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype IN ('a', 'i')
            JOIN pg_class c ON c.oid = d.refobjid
            WHERE s.relkind = 'S' AND c.relnamespace = 'temporal_versioning'::regnamespace AND c.relname = ANY (string_to_array($1, ','))
            UNION ALL
            SELECT format('ALTER EXTENSION temporal_versioning ADD FUNCTION %s', p.oid::regprocedure)
            FROM pg_proc p
            WHERE p.pronamespace = 'temporal_versioning'::regnamespace
              AND p.proname NOT IN (SELECT temporal_versioning._capture_function_name(v.history_table)
                                    FROM temporal_versioning.versioned_tables v)
            UNION ALL
            SELECT format('ALTER EXTENSION temporal_versioning ADD EVENT TRIGGER %I', e.evtname)
            FROM pg_event_trigger e
            WHERE e.evtname IN ('temporal_versioning_alter_table', 'temporal_versioning_sql_drop')
            """, [EmbeddedSQL.catalogTables.joined(separator: ",")])
        for row in additions.rows {
            if let statement = row[0] { try connection.execute(statement) }
        }
        try connection.execute("ALTER EXTENSION \(extensionName) UPDATE TO '\(bundledVersion)'")
    }

    /// Makes the extension plain SQL again: every object leaves the extension
    /// (and stays, with its rows), then the empty extension is dropped.
    private static func releaseExtension(on connection: Connection) throws {
        let removals = try connection.query("""
            SELECT format('ALTER EXTENSION temporal_versioning DROP %s %s', o.type, o.identity)
            FROM pg_depend d CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) o
            WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
              AND d.refobjid = (SELECT e.oid FROM pg_extension e WHERE e.extname = $1)
              -- (PostgreSQL 18 also records a table's array type as a member;
              -- it leaves the extension with its table.)
              AND d.classid <> 'pg_type'::regclass
            ORDER BY d.classid, d.objid
            """, [extensionName])
        for row in removals.rows {
            if let statement = row[0] { try connection.execute(statement) }
        }
        try connection.execute("DROP EXTENSION \(extensionName) RESTRICT")
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
