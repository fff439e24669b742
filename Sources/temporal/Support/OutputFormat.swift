import ArgumentParser
import Postgres
import TemporalKit

enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case table, json, csv
}

/// `--format`, shared by every command that prints data.
struct OutputOptions: ParsableArguments {
    @Option(help: "How to print results: table for people, json or csv for programs.")
    var format: OutputFormat = .table
}

/// Prints query results on stdout as a psql-style table, JSON or CSV.
struct Renderer {
    var format: OutputFormat

    /// Many rows: an aligned table, a JSON array of objects, or CSV with a header.
    func print(_ result: QueryResult) {
        switch format {
        case .table: Swift.print(alignedTable(result), terminator: "")
        case .json: Swift.print(jsonArray(result))
        case .csv: Swift.print(csv(result), terminator: "")
        }
    }

    /// One record: `column | value` lines (psql's expanded display), a JSON object, or CSV.
    func printRecord(_ result: QueryResult) {
        switch format {
        case .table: Swift.print(expandedRecord(result), terminator: "")
        case .json: Swift.print(result.rows.first.map { result.jsonObject($0) } ?? "null")
        case .csv: Swift.print(csv(result), terminator: "")
        }
    }

    /// Runs `sql` and prints its rows as they arrive (json, csv); a table
    /// needs every row for its column widths, so it is printed at the end.
    func stream(_ connection: Connection, _ sql: String, _ parameters: [(any PostgresParameter)?]) throws {
        switch format {
        case .table:
            print(try connection.query(sql, parameters))
        case .csv:
            var wroteHeader = false
            let columns = try connection.stream(sql, parameters) { columns, row in
                if !wroteHeader {
                    Swift.print(CSV.line(columns.map(\.name)))
                    wroteHeader = true
                }
                Swift.print(CSV.line(row))
            }
            if !wroteHeader { Swift.print(CSV.line(columns.map(\.name))) }
        case .json:
            var first = true
            Swift.print("[", terminator: "")
            try connection.stream(sql, parameters) { columns, row in
                Swift.print((first ? "" : ",\n ") + QueryResult(columns: columns, rows: []).jsonObject(row), terminator: "")
                first = false
            }
            Swift.print("]")
        }
    }

    /// Streams a query of one jsonb column as a JSON array of its values.
    func streamJSONObjects(_ connection: Connection, _ sql: String, _ parameters: [(any PostgresParameter)?]) throws {
        var first = true
        Swift.print("[", terminator: "")
        try connection.stream(sql, parameters) { _, row in
            Swift.print((first ? "" : ",\n ") + (row[0] ?? "null"), terminator: "")
            first = false
        }
        Swift.print("]")
    }

    /// A revert's plan (source_table, action, key, before, after) and its counts.
    func printRevert(_ plan: RevertPlan) {
        switch format {
        case .json:
            Swift.print(plan.json)
        case .csv:
            Swift.print(CSV.line(["source_table", "action", "key", "before", "after"]))
            for change in plan.changes { Swift.print(CSV.line([change.table, change.action, change.key, change.before, change.after])) }
        case .table:
            if plan.changes.isEmpty {
                Swift.print("nothing to revert: the rows are already as they were")
                return
            }
            let rows = plan.changes.map { [$0.table, $0.action, $0.key, $0.before, $0.after] }
            Swift.print(alignedTable(QueryResult(columns: ["source_table", "action", "key", "before", "after"].map {
                QueryResult.Column(name: $0, typeOID: 25) }, rows: rows)), terminator: "")
            Swift.print(plan.applied
                ? "reverted: \(plan.deletes) deleted, \(plan.updates) updated, \(plan.inserts) inserted"
                : "dry run: would delete \(plan.deletes), update \(plan.updates), insert \(plan.inserts); nothing was changed")
        }
    }

    private func alignedTable(_ result: QueryResult) -> String {
        let headers = result.columns.map(\.name)
        let cells = result.rows.map { $0.map { $0 ?? "" } }
        var widths = headers.map(\.count)
        for row in cells {
            for (index, value) in row.enumerated() { widths[index] = max(widths[index], value.count) }
        }
        let rightAligned = result.columns.map { PostgresType.isNumber($0.typeOID) }
        func pad(_ text: String, _ index: Int, center: Bool = false) -> String {
            let padding = widths[index] - text.count
            if center {
                let left = padding / 2
                return String(repeating: " ", count: left) + text + String(repeating: " ", count: padding - left)
            }
            return rightAligned[index]
                ? String(repeating: " ", count: padding) + text
                : text + String(repeating: " ", count: padding)
        }
        func line(_ cells: [String]) -> String {
            var text = " " + cells.joined(separator: " | ")
            while text.last == " " { text.removeLast() }
            return text + "\n"
        }
        var output = line(headers.indices.map { pad(headers[$0], $0, center: true) })
        output += widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "+") + "\n"
        for row in cells {
            output += line(row.indices.map { pad(row[$0], $0) })
        }
        output += "(\(cells.count) \(cells.count == 1 ? "row" : "rows"))\n"
        return output
    }

    private func expandedRecord(_ result: QueryResult) -> String {
        guard let row = result.rows.first else { return "(0 rows)\n" }
        let width = result.columns.map(\.name.count).max() ?? 0
        return zip(result.columns, row).map { column, value in
            column.name + String(repeating: " ", count: width - column.name.count) + " | " + (value ?? "")
        }.joined(separator: "\n") + "\n"
    }

    private func jsonArray(_ result: QueryResult) -> String { result.jsonArray }

    private func csv(_ result: QueryResult) -> String {
        ([CSV.line(result.columns.map(\.name))] + result.rows.map { CSV.line($0) })
            .joined(separator: "\n") + "\n"
    }
}

/// RFC 4180 CSV as PostgreSQL's COPY ... CSV writes it, so that COPY reads
/// it back exactly: NULL is an empty field, an empty string is `""`, and
/// fields with commas, quotes or line breaks are quoted.
enum CSV {
    static func line(_ fields: [String?]) -> String {
        fields.map { value in
            guard let value else { return "" }
            return value.isEmpty || value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + value.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
                : value
        }.joined(separator: ",")
    }
}
