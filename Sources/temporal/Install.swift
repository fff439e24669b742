import ArgumentParser
import Postgres
import TemporalKit

struct Install: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Install or upgrade pg-temporal in a database.",
        discussion: """
            Creates the schema temporal_versioning (catalog tables, functions and the \
            event triggers that follow schema changes), or upgrades it to this version \
            of temporal. Everything happens in one transaction: on any error nothing \
            changes. Running it again is safe and prints the installed version.

            Two forms, with the same objects: the temporal_versioning extension \
            (CREATE EXTENSION, when its files are installed on the server, see \
            extension/; its C library captures changes faster) and the plain SQL \
            (what managed services allow). By default a new install takes the extension \
            when the server has it and the role is a superuser, the plain SQL otherwise, \
            and an existing one keeps its form; --method extension or plain moves a \
            database from one to the other, keeping every history row. It says which \
            form it installed and which capture path the triggers use.

            Needs the right to create a schema in the database. Following schema changes \
            (ALTER TABLE on versioned tables) needs event triggers, which need a superuser \
            (rds_superuser on Amazon RDS); without one, install warns and goes on.

            Example:
              temporal install --db 'postgresql://dba@db1.internal/app'
            """)
    static var needsInstall: Bool { false }

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "automatic (the extension when the server has it), extension or plain.")
    var method: InstallMethod = .automatic

    func validate() throws {
        try connection.refuseWritesIfReadOnly("install")
    }

    func run(on database: Connection) throws {
        let report = try Installer.install(on: database, method: method)
        switch output.format {
        case .json:
            print("""
                {"version": \(JSON.string(report.version)), \
                "previous_version": \(report.previousVersion.map(JSON.string) ?? "null"), \
                "applied_migrations": [\(report.appliedMigrations.map(JSON.string).joined(separator: ", "))], \
                "follows_schema_changes": \(report.followsSchemaChanges), \
                "form": \(JSON.string(report.form.rawValue)), \
                "previous_form": \(report.previousForm.map { JSON.string($0.rawValue) } ?? "null"), \
                "capture": \(JSON.string(report.capture.rawValue))}
                """)
        case .table, .csv:
            let database = database.databaseName
            switch report.previousVersion {
            case nil:
                print("pg-temporal \(report.version) installed in database \"\(database)\"")
            case report.version where report.appliedMigrations.isEmpty:
                print("pg-temporal \(report.version) is up to date in database \"\(database)\"")
            case let previous?:
                print("pg-temporal upgraded from \(previous) to \(report.version) in database \"\(database)\"")
            }
            if !report.appliedMigrations.isEmpty {
                print("migrations applied: \(report.appliedMigrations.joined(separator: ", "))")
            }
            if let previous = report.previousForm, previous != report.form {
                print("moved from \(Self.describe(previous)) to \(Self.describe(report.form)); the history is unchanged")
            }
            let capture = report.capture == .c ? "C capture (the extension's library)" : "PL/pgSQL capture"
            print("installed as \(Self.describe(report.form)), \(capture)"
                  + (report.plainBecause.map { " (plain SQL: \($0))" } ?? ""))
        }
        if !report.followsSchemaChanges {
            printError("WARNING:  schema changes of versioned tables are not followed (event triggers need a superuser)")
        }
    }

    static func describe(_ form: InstalledForm) -> String {
        switch form {
        case .extension: return "the extension \(Installer.extensionName)"
        case .plain: return "plain SQL"
        }
    }
}

extension InstallMethod: ExpressibleByArgument {}
