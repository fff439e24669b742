import ArgumentParser
import ChangeStream
import Foundation
import Postgres
import TemporalKit

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export tables, consistently, into a directory named by the instant exported.",
        discussion: """
            temporal export --dir exports/raw public.campaigns public.users
            temporal export --dir exports/raw --schema public --jobs 4
            temporal export --dir exports/raw --versioned --at '2026-06-22 07:21:14+00'
            temporal export list --dir exports/raw
            temporal export compare exports/raw/20250622-072114 exports/raw/20250622-072326

            Writes DIR/YYYYMMDD-HHMMSS/ (the instant exported, UTC), one file per table \
            (users.jsonl, .json or .csv) and, last, export-summary.json: per table the row \
            count, file size and sha256, the key, and the snapshot and WAL position read at. \
            A directory without the summary is an unfinished export. An existing directory \
            is never overwritten.

            Without --at, every table is read in one snapshot, shared by the --jobs \
            connections. With --at, versioned tables are exported as they were then (time \
            travel, in the same snapshot); a table that is not versioned is refused unless \
            --allow-current exports it as it is now (the summary says which).

            jsonl and json write each value typed as the change events type it (Extended \
            JSON: $numberLong, $numberDecimal, $date, ...); a value the type cannot hold \
            exactly (a timestamp's microseconds) is also given as text in the row's "_exact". \
            csv is PostgreSQL's own CSV (COPY), exact for every type.
            """,
        subcommands: [ExportRun.self, ExportList.self, ExportCompare.self],
        defaultSubcommand: ExportRun.self)
}

struct ExportRun: DatabaseCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Export tables (the default: temporal export --dir ... TABLE...).")

    @OptionGroup var connection: ConnectionOptions

    @Option(help: ArgumentHelp("The directory exports go into.", valueName: "directory"))
    var dir: String

    @Option(help: ArgumentHelp("Export as of this instant (versioned tables).", valueName: "timestamp"))
    var at: String?

    @Argument(help: "The tables to export.")
    var tables: [String] = []

    @Option(help: ArgumentHelp("Export every table of this schema.", valueName: "schema"))
    var schema: String?

    @Flag(help: "Export every versioned table.")
    var versioned = false

    @Option(help: "jsonl, json or csv.")
    var format: String = "jsonl"

    @Option(help: "Connections reading in parallel (in one shared snapshot).")
    var jobs: Int = 1

    @Flag(help: "With --at, export tables that are not versioned as they are now.")
    var allowCurrent = false

    func validate() throws {
        guard ExportFormat(rawValue: format) != nil else {
            throw ValidationError("--format takes jsonl, json or csv, not \(format).")
        }
        guard jobs >= 1 && jobs <= 64 else { throw ValidationError("--jobs takes 1 to 64.") }
        let selections = [!tables.isEmpty, schema != nil, versioned].filter { $0 }.count
        guard selections == 1 else {
            throw ValidationError("name the tables, or give --schema NAME or --versioned (one of them).")
        }
    }

    func run(on database: Connection) throws {
        var names: [TableName] = []
        if let schema {
            names = try database.query("""
                SELECT n.nspname, c.relname, pg_catalog.format('%I.%I', n.nspname, c.relname)
                FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                WHERE n.nspname OPERATOR(pg_catalog.=) $1 AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}') AND NOT c.relispartition
                ORDER BY c.relname
                """, [schema]).rows.map { TableName(schema: $0[0]!, name: $0[1]!, qualified: $0[2]!) }
            if names.isEmpty {
                guard try database.query("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) $1", [schema]).rows.isEmpty else {
                    throw ValidationError("schema \(schema) has no tables to export.")
                }
                throw PostgresError(kind: .server, sqlState: "3F000", message: "schema \"\(schema)\" does not exist")
            }
        } else if versioned {
            names = try database.query("""
                SELECT v.schema_name, v.table_name, pg_catalog.format('%I.%I', v.schema_name, v.table_name)
                FROM temporal_versioning.versioned_tables v WHERE v.table_oid IS NOT NULL AND v.enabled
                ORDER BY 1, 2
                """).rows.map { TableName(schema: $0[0]!, name: $0[1]!, qualified: $0[2]!) }
        } else {
            names = try tables.map { try TableResolver.resolve($0, on: database) }
        }
        let exporter = Exporter(
            conninfo: connection.db,
            request: .init(directory: dir, at: at, tables: names, format: ExportFormat(rawValue: format)!, jobs: jobs,
                           allowCurrent: allowCurrent))
        if isatty(STDERR_FILENO) != 0 {
            exporter.progress = { table, rows, done in
                writeStandardError("\r\(table): \(rows) rows" + (done ? "\n" : ""))
            }
        }
        let result = try exporter.run()
        print(result.path)
        for table in result.summary.tables {
            printError("\(table.table): \(table.count) rows, \(table.size) bytes (\(table.readAs)) -> \(table.filename)")
        }
    }
}

struct ExportList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the exports in a directory, oldest first, and which are unfinished (no database needed).")

    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("The directory exports go into.", valueName: "directory"))
    var dir: String

    func run() throws {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        } catch {
            printError("ERROR:  could not read directory \"\(dir)\": no such directory or not readable")
            throw ExitCode(1)
        }
        var rows: [[String?]] = []
        for name in entries {
            var isDirectory: ObjCBool = false
            let path = dir + "/" + name
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            let summaryPath = path + "/" + ExportSummary.filename
            guard let data = FileManager.default.contents(atPath: summaryPath) else {
                rows.append([name, nil, nil, nil, nil, nil, "unfinished: no \(ExportSummary.filename)"])
                continue
            }
            guard let summary = try? JSONDecoder().decode(ExportSummary.self, from: data) else {
                rows.append([name, nil, nil, nil, nil, nil, "damaged: \(ExportSummary.filename) cannot be read"])
                continue
            }
            rows.append([name, summary.at, summary.exportedAt, summary.format.rawValue, String(summary.tables.count),
                         String(summary.tables.reduce(0) { $0 + $1.count }), "complete"])
        }
        let text: UInt32 = 25
        Renderer(format: output.format).print(QueryResult(
            columns: [("export", text), ("at", text), ("exported_at", text), ("format", text), ("tables", PostgresType.int8),
                      ("rows", PostgresType.int8), ("state", text)].map { QueryResult.Column(name: $0.0, typeOID: $0.1) },
            rows: rows))
    }
}

struct ExportCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two exports: per table, the rows added, deleted and modified (by key), and the columns that changed.",
        discussion: """
            Reads both exports streaming (spread by key over temporary files, then compared \
            a part at a time), so memory stays small whatever their size. Values are compared \
            on the columns both exports have; with --format json, for scripts. Exits 0 whether \
            or not they differ.
            """)

    @OptionGroup var output: OutputOptions

    @Argument(help: "The earlier export's directory.")
    var before: String

    @Argument(help: "The later export's directory.")
    var after: String

    func run() throws {
        let comparison: ExportComparison
        do {
            comparison = try ExportComparison.compare(before, after)
        } catch let error as PostgresError {
            printError(error.psqlDescription)
            throw ExitCode(1)
        }
        if output.format == .json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(comparison), as: UTF8.self))
            return
        }
        let text: UInt32 = 25
        let columns: [(String, UInt32)] = [
            ("table", text), ("state", text), ("rows_before", PostgresType.int8), ("rows_after", PostgresType.int8),
            ("added", PostgresType.int8), ("deleted", PostgresType.int8), ("modified", PostgresType.int8),
            ("columns_added", text), ("columns_removed", text), ("first_keys", text),
        ]
        Renderer(format: output.format).print(QueryResult(
            columns: columns.map { QueryResult.Column(name: $0.0, typeOID: $0.1) },
            rows: comparison.tables.map { table in
                let keys = [("+", table.addedKeys), ("-", table.deletedKeys), ("~", table.modifiedKeys)]
                    .flatMap { sign, keys in keys.map { sign + $0 } }.joined(separator: " ")
                return [table.table, table.state, String(table.rowsBefore), String(table.rowsAfter), String(table.added),
                        String(table.deleted), String(table.modified), table.columnsAdded.joined(separator: ", "),
                        table.columnsRemoved.joined(separator: ", "), keys]
            }))
    }
}
