import ChangeStream
import Postgres
import TemporalKit

/// What each tool does: the TemporalKit call the CLI's command makes, and its
/// result as the JSON the CLI's `--format json` prints, wrapped in an object
/// that says how many rows there are and whether the limit cut them.
enum ToolHandlers {
    static func run(_ name: String, _ call: ToolArguments, server: TemporalMCPServer) async throws -> String {
        let mode = server.options.mode
        let maximum = server.options.maximumRows
        let limit = min(max(call.int("limit") ?? 100, 1), maximum)
        func table(_ connection: Connection) -> TableName {
            let schema = call.required("schema_name"), name = call.required("table_name")
            return TableName(schema: schema, name: name, qualified: quoted(schema) + "." + quoted(name))
        }
        func requireUnrestricted(_ what: String) throws {
            guard mode == .unrestricted else {
                throw ToolError("\(what) changes the database: it needs UNRESTRICTED mode (temporal mcp --mode unrestricted); this server runs in RESTRICTED mode, where every statement is read-only")
            }
        }
        switch name {
        case "enable_temporal_versioning":
            try requireUnrestricted("enable_temporal_versioning")
            return try await server.session.run(readOnly: false) { connection in
                let message = try Versioning(connection: connection).enable(table(connection), suffix: call.string("history_table_suffix") ?? "_history")
                return "{\"enabled\": true, \"message\": \(JSON.string(message))}"
            }
        case "disable_temporal_versioning":
            try requireUnrestricted("disable_temporal_versioning")
            return try await server.session.run(readOnly: false) { connection in
                let message = try Versioning(connection: connection).disable(table(connection), dropHistory: call.bool("drop_history", default: false))
                return "{\"disabled\": true, \"message\": \(JSON.string(message))}"
            }
        case "list_temporal_tables":
            return try await server.session.run(readOnly: true) { connection in
                rows(try Versioning(connection: connection).list(), limit: maximum)
            }
        case "get_temporal_status":
            return try await server.session.run(readOnly: true) { connection in
                let result = try Versioning(connection: connection).status(table(connection))
                return result.rows.first.map { result.jsonObject($0) } ?? "{}"
            }
        case "query_temporal_data":
            return try await server.session.run(readOnly: true) { connection in
                let timeTravel = TimeTravel(connection: connection)
                let instant = try timeTravel.resolveInstants([call.required("timestamp")])[0]
                let query = try timeTravel.asOfQuery(table(connection), at: instant, limit: limit + 1, json: true)
                let result = try connection.query(query.sql, query.parameters)
                let objects = result.rows.prefix(limit).map { $0[0] ?? "null" }
                return "{\"as_of\": \(JSON.string(instant)), \"row_count\": \(objects.count), \"truncated\": \(result.rows.count > limit),\n"
                    + " \"rows\": [" + objects.joined(separator: ",\n  ") + "]}"
            }
        case "get_change_history":
            return try await server.session.run(readOnly: true) { connection in
                let timeTravel = TimeTravel(connection: connection)
                let instants = try timeTravel.resolveInstants([call.required("start_time"), call.required("end_time")])
                let changes = try timeTravel.changeLog(table(connection), since: instants[0], until: instants[1],
                                                       operation: call.string("operation"), limit: limit)
                return "{\"row_count\": \(changes.rows.rows.count), \"truncated\": \(changes.truncated),\n \"rows\": \(changes.rows.jsonArray)}"
            }
        case "get_row_history":
            return try await server.session.run(readOnly: true) { connection in
                let key = [(column: call.required("primary_key_column"), value: call.required("primary_key_value"))]
                return rows(try TimeTravel(connection: connection).rowHistory(table(connection), key: key, expandColumns: false), limit: limit)
            }
        case "compare_temporal_data":
            return try await server.session.run(readOnly: true) { connection in
                let timeTravel = TimeTravel(connection: connection)
                let instants = try timeTravel.resolveInstants([call.required("timestamp1"), call.required("timestamp2")])
                let (differences, truncated) = try timeTravel.compare(table(connection), from: instants[0], to: instants[1]).limited(to: limit)
                return "{\"row_count\": \(differences.count), \"truncated\": \(truncated),\n \"differences\": \(differences.json)}"
            }
        case "revert_table_data", "revert_changeset":
            let dryRun = call.bool("dry_run", default: true)
            if !dryRun {
                try requireUnrestricted("\(name) with dry_run=false")
                guard call.string("plan_id") != nil else {
                    throw ToolError("\(name) with dry_run=false needs the plan_id of a preview: call it with dry_run=true first, show the plan, then apply that plan_id")
                }
            }
            return try await server.session.run(readOnly: dryRun) { connection in
                let timeTravel = TimeTravel(connection: connection)
                let target: TimeTravel.RevertTarget
                if name == "revert_table_data" {
                    let instant = try timeTravel.resolveInstants([call.required("timestamp")])[0]
                    target = .instant(table(connection), instant)
                } else if let id = Int64(call.required("changeset_id")), try !changesetExists(call.required("changeset_id"), connection) {
                    target = .transaction(id, nil)
                } else {
                    target = .changeset(call.required("changeset_id"), nil)
                }
                if dryRun { return try timeTravel.planRevert(target).json }
                return try timeTravel.applyRevert(target, expecting: call.string("plan_id")).json
            }
        case "get_stream_status":
            return try await server.session.run(readOnly: true) { connection in
                rows(try StreamAdmin(connection: connection).status(slot: nil), limit: maximum)
            }
        default:
            throw ToolError("unknown tool \(name)")
        }
    }

    /// Rows as the CLI's JSON, at most `limit` (a query asked for one more, to know).
    static func rows(_ result: QueryResult, limit: Int) -> String {
        let kept = QueryResult(columns: result.columns, rows: Array(result.rows.prefix(limit)))
        return "{\"row_count\": \(kept.rows.count), \"truncated\": \(result.rows.count > limit),\n \"rows\": \(kept.jsonArray)}"
    }

    static func changesetExists(_ id: String, _ connection: Connection) throws -> Bool {
        try connection.query("SELECT EXISTS (SELECT FROM temporal_versioning.transactions WHERE changeset_id OPERATOR(pg_catalog.=) $1)", [id]).scalar == "t"
    }

    static func quoted(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
