import ArgumentParser
import ChangeStream
import Postgres
import TemporalKit

struct SchemaChanges: DatabaseCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema-changes",
        abstract: "Report the schema changes of versioned tables, classified for the ETL into MongoDB.",
        discussion: """
            Reads the journal the event triggers keep (temporal_versioning.schema_changes) and \
            classifies each change like the impact matrix of the migration guide: a new optional \
            field (safe, automatic), a new required field (NOT NULL without a default: review), \
            a type change (migration), a field rename or drop (breaking), a new table, a table \
            renamed or dropped. Only versioned tables are journaled: a table that is not \
            versioned is not in this report.

              temporal schema-changes --since '2026-06-01'
              temporal schema-changes public.users --format json
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "Only this table (a dropped table is found by its last name).")
    var table: String?

    @Option(help: ArgumentHelp("Changes at or after this instant.", valueName: "timestamp"))
    var since: String?

    @Option(help: ArgumentHelp("Changes before this instant.", valueName: "timestamp"))
    var until: String?

    func run(on database: Connection) throws {
        let name = try table.map { try TableResolver.resolve($0, on: database, includingDropped: true) }
        let instants = try TimeTravel(connection: database).resolveInstants([since, until].compactMap { $0 })
        try TimeTravel(connection: database).printTimesInUTC()
        let changes = try SchemaReport(connection: database).changes(
            of: name, since: since == nil ? nil : instants[0], until: until == nil ? nil : instants.last)
        let text: UInt32 = 25
        let columns: [(String, UInt32)] = [
            ("changed_at", text), ("table", text), ("change", text), ("column", text), ("from_type", text), ("to_type", text),
            ("kind", text), ("category", text), ("mongodb", text), ("api", text), ("db_user", text), ("tx_id", PostgresType.int8),
            ("details", PostgresType.jsonb),
        ]
        Renderer(format: output.format).print(QueryResult(
            columns: columns.map { QueryResult.Column(name: $0.0, typeOID: $0.1) },
            rows: changes.map { [$0.changedAt, $0.table, $0.change, $0.column, $0.fromType, $0.toType, $0.kind, $0.category,
                                 $0.mongodb, $0.api, $0.dbUser, String($0.transaction), $0.details] }))
    }
}

struct Schema: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a table's current shape as a MongoDB $jsonSchema validator.",
        discussion: """
            Each column's BSON type is the one change events and exports write for it (int8 \
            to long, numeric to decimal, timestamptz to date, jsonb to any JSON value, arrays to \
            array); NOT NULL columns are required, the others may be null.

              temporal schema public.users --json-schema
              mongosh audit --eval "db.runCommand({collMod: 'users', validator: $(temporal schema public.users --json-schema)})"
            """)

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The table.")
    var table: String

    @Flag(help: "Print the $jsonSchema validator (the only form for now).")
    var jsonSchema = false

    func validate() throws {
        guard jsonSchema else { throw ValidationError("say which form: --json-schema") }
    }

    func run(on database: Connection) throws {
        let name = try TableResolver.resolve(table, on: database)
        try database.pinSearchPath()
        print(try JSONSchema.validator(for: name, on: database))
    }
}
