import ArgumentParser
import TemporalKit

@main
struct Temporal: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "temporal",
        abstract: "Full, queryable history for PostgreSQL tables.",
        discussion: """
            temporal keeps every INSERT, UPDATE, DELETE and TRUNCATE of the tables you \
            choose, with who made it and in which transaction.

            A typical session before a risky migration:

              temporal install --db postgresql://dba@db1/app
              temporal enable public.orders
              ... run the migration ...
              temporal status public.orders

            Connection settings follow libpq: --db takes a conninfo string or URI, and \
            PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, ~/.pgpass and service files \
            all work as they do for psql.
            """,
        version: Installer.bundledVersion,
        subcommands: [
            Install.self, Enable.self, Disable.self, List.self, Status.self,
            AsOf.self, History.self, Log.self, Diff.self, Revert.self, Stream.self,
            Retention.self, Prune.self, Maintain.self, Archive.self, Export.self, SchemaChanges.self, Schema.self, Verify.self, MCPCommand.self,
        ]
    )
}
