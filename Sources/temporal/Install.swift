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

            Needs the right to create a schema in the database. Following schema changes \
            (ALTER TABLE on versioned tables) needs event triggers, which need a superuser \
            (rds_superuser on Amazon RDS); without one, install warns and goes on.

            Example:
              temporal install --db 'postgresql://dba@db1.internal/app'
            """)
    static var needsInstall: Bool { false }

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        try connection.refuseWritesIfReadOnly("install")
    }

    func run(on database: Connection) throws {
        let report = try Installer.install(on: database)
        switch output.format {
        case .json:
            print("""
                {"version": \(JSON.string(report.version)), \
                "previous_version": \(report.previousVersion.map(JSON.string) ?? "null"), \
                "applied_migrations": [\(report.appliedMigrations.map(JSON.string).joined(separator: ", "))], \
                "follows_schema_changes": \(report.followsSchemaChanges)}
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
        }
        if !report.followsSchemaChanges {
            printError("WARNING:  schema changes of versioned tables are not followed (event triggers need a superuser)")
        }
    }
}
