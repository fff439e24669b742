import ArgumentParser
import Postgres

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
        case .json: Swift.print(result.rows.first.map { jsonObject(result.columns, $0) } ?? "null")
        case .csv: Swift.print(csv(result), terminator: "")
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
        var output = " " + headers.indices.map { pad(headers[$0], $0, center: true) }.joined(separator: " | ") + "\n"
        output += widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "+") + "\n"
        for row in cells {
            output += " " + row.indices.map { pad(row[$0], $0) }.joined(separator: " | ") + "\n"
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

    private func jsonArray(_ result: QueryResult) -> String {
        "[" + result.rows.map { jsonObject(result.columns, $0) }.joined(separator: ",\n ") + "]"
    }

    private func jsonObject(_ columns: [QueryResult.Column], _ row: [String?]) -> String {
        "{" + zip(columns, row).map { column, value in
            JSON.string(column.name) + ": " + JSON.value(value, typeOID: column.typeOID)
        }.joined(separator: ", ") + "}"
    }

    private func csv(_ result: QueryResult) -> String {
        func field(_ value: String) -> String {
            value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + value.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
                : value
        }
        var output = result.columns.map { field($0.name) }.joined(separator: ",") + "\n"
        for row in result.rows {
            output += row.map { field($0 ?? "") }.joined(separator: ",") + "\n"
        }
        return output
    }
}
