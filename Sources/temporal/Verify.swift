import ArgumentParser
import ChangeStream
import Foundation
import Postgres

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Prove that MongoDB holds what PostgreSQL holds: rows against current documents, changes against events and history.",
        discussion: """
            Reads which shapes and collections the stream of --slot writes (recorded by \
            temporal stream run in the collection temporalStreams), then, per published table:

              current   every row against its document, both read in key order in chunks:
                        rows, documents, missing, extra, mismatched (the first keys and fields)
              events    insert/update/delete events against the table's history, over the
                        transactions the stream wrote (a versioned table only)
              history   the same, for <collection>History

            Values compare by meaning: numbers by value (numeric exactly), dates to the \
            millisecond, json by content.

            Exact when the stream is stopped after everything (temporal stream run --end-lsn \
            POSITION); while it runs, rows written since its last batch may show as differences \
            (the report gives the stream's lag): run it again, or stop writers first.

            Exits 0 when everything matches, 1 on a difference, 2 when it cannot compare.

            Examples:
              temporal verify --slot app_slot --mongodb mongodb://db1/ --database bravo
              temporal verify --slot app_slot --mongodb mongodb://db1/ --database bravo --tables public.customers --shape current --format json
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "The stream's slot.")
    var slot: String

    @Option(help: ArgumentHelp("The MongoDB the stream writes to.", valueName: "uri"))
    var mongodb: String

    @Option(help: "Its database.")
    var database: String

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Only these tables (schema.table).", valueName: "table"))
    var tables: [String] = []

    @Option(help: "Only this shape: current, events or history.")
    var shape: String?

    @Option(help: "table for people, json for programs.")
    var format: String = "table"

    @Option(help: "Rows and documents read per round trip.")
    var chunk: Int = 5000

    func validate() throws {
        if let shape, Shape(rawValue: shape) == nil || shape == "embedded" {
            throw ValidationError("--shape is current, events or history, not \(shape).")
        }
        if !["table", "json"].contains(format) { throw ValidationError("--format is table or json, not \(format).") }
        if chunk < 1 { throw ValidationError("--chunk must be at least 1.") }
    }

    func run() throws {
        do {
            let postgres = try connection.connect()
            // A sorted read of a large collection may take minutes before its first batch.
            let mongo = try MongoConnection(uri: mongodb, database: database, socketTimeoutMilliseconds: 3_600_000)
            try mongo.ping()
            var request = VerifyRequest(slot: slot)
            request.tables = tables
            request.shape = shape.flatMap(Shape.init(rawValue:))
            request.chunk = chunk
            let report = try Verifier(postgres: postgres, mongo: mongo).run(request)
            if format == "json" {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                var data = try encoder.encode(VerifyOutput(report: report))
                data.append(0x0A)
                FileHandle.standardOutput.write(data)
            } else {
                print(Self.table(report), terminator: "")
            }
            if !report.matches { throw ExitCode(1) }
        } catch let error as PostgresError {
            printError(error.psqlDescription)
            throw ExitCode(2)
        } catch let error as SinkError {
            printError("ERROR:  \(error.message)")
            throw ExitCode(2)
        } catch let error as ShapeError {
            printError("ERROR:  \(error)")
            throw ExitCode(2)
        }
    }

    /// The report with its verdict, for programs.
    struct VerifyOutput: Encodable {
        var report: VerifyReport
        enum CodingKeys: String, CodingKey { case slot, database, confirmedLSN, lagBytes, streamActive, tables, matches }
        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(report.slot, forKey: .slot)
            try container.encode(report.database, forKey: .database)
            try container.encode(report.confirmedLSN, forKey: .confirmedLSN)
            try container.encode(report.lagBytes, forKey: .lagBytes)
            try container.encode(report.streamActive, forKey: .streamActive)
            try container.encode(report.tables, forKey: .tables)
            try container.encode(report.matches, forKey: .matches)
        }
    }

    static func table(_ report: VerifyReport) -> String {
        var text = "slot \(report.slot) confirmed at \(report.confirmedLSN), lag \(report.lagBytes) bytes\(report.streamActive ? ", stream running" : "")\n"
        var rows: [[String]] = [["table", "shape", "collection", "rows", "documents", "missing", "extra", "mismatched", "result"]]
        var details: [String] = []
        for table in report.tables {
            if let operations = table.operations {
                let counts = operations.map { "\($0.operation) \($0.postgres.map(String.init) ?? "-")/\($0.mongodb)" }.joined(separator: ", ")
                rows.append([table.table, table.shape, table.collection, "", "", "", "", "",
                             (table.matches ? "ok" : "DIFFERS") + (counts.isEmpty ? "" : " (postgres/mongodb: \(counts))")
                                 + (table.note.map { "; \($0)" } ?? "")])
                continue
            }
            rows.append([table.table, table.shape, table.collection, "\(table.rows ?? 0)", "\(table.documents ?? 0)",
                         "\(table.missing ?? 0)", "\(table.extra ?? 0)", "\(table.mismatched ?? 0)", table.matches ? "ok" : "DIFFERS"])
            if let keys = table.missingKeys, !keys.isEmpty { details.append("\(table.table): missing in MongoDB: \(keys.joined(separator: ", "))") }
            if let keys = table.extraKeys, !keys.isEmpty { details.append("\(table.table): not in PostgreSQL: \(keys.joined(separator: ", "))") }
            for mismatch in table.mismatches ?? [] {
                details.append("\(table.table): \(mismatch.key) differs in \(mismatch.fields.joined(separator: ", "))")
            }
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            text += zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: " | ")
                .trimmingCharacters(in: .whitespaces) + "\n"
        }
        for detail in details { text += detail + "\n" }
        text += report.matches ? "MongoDB matches PostgreSQL\n" : "MongoDB DIFFERS from PostgreSQL\n"
        return text
    }
}
