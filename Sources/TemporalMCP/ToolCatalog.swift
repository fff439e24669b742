import MCP

/// A tool: its MCP description, and whether only UNRESTRICTED mode offers it.
struct ToolSpec: Sendable {
    var tool: Tool
    /// Offered only in UNRESTRICTED mode (it changes the database whatever its arguments).
    var writesOnly: Bool
    /// Each parameter: its JSON type, and whether it must be given.
    var parameters: [(name: String, type: String, required: Bool)]
}

/// The tools, with the names, parameters and defaults of seed 003.
enum ToolCatalog {
    private static func schema(_ properties: [(String, String, String, Value?)], required: [String]) -> Value {
        var object: [String: Value] = [:]
        for (name, type, description, defaultValue) in properties {
            var property: [String: Value] = ["type": .string(type), "description": .string(description)]
            if let defaultValue { property["default"] = defaultValue }
            if name == "limit" { property["minimum"] = .int(1); property["maximum"] = .int(1000) }
            if name == "operation" { property["enum"] = .array(["INSERT", "UPDATE", "DELETE"].map(Value.string)) }
            object[name] = .object(property)
        }
        return .object([
            "type": "object", "properties": .object(object),
            "required": .array(required.map(Value.string)), "additionalProperties": false,
        ])
    }

    private static let schemaName = ("schema_name", "string", "The table's schema, e.g. public.", Value?.none)
    private static let tableName = ("table_name", "string", "The table's name, without its schema.", Value?.none)
    private static let limit = ("limit", "integer", "The most rows to return (1-1000); the result says when there were more.", Value?.some(.int(100)))
    private static let timestampHelp = "a PostgreSQL timestamptz such as '2026-01-15 10:30:00+00' (without a zone: the server's)"

    static let preview = " Always preview first: call it with dry_run=true, show the plan to the user, and only then call it again with dry_run=false and the plan_id the preview returned; it refuses when the table changed since."

    private static func spec(_ name: String, _ title: String, _ description: String,
                             _ properties: [(String, String, String, Value?)], required: [String],
                             readOnly: Bool, destructive: Bool = false, idempotent: Bool = true, writesOnly: Bool = false) -> ToolSpec {
        ToolSpec(
            tool: Tool(name: name, title: title, description: description,
                       inputSchema: schema(properties, required: required),
                       annotations: .init(title: title, readOnlyHint: readOnly, destructiveHint: readOnly ? nil : destructive,
                                          idempotentHint: readOnly ? nil : idempotent, openWorldHint: false)),
            writesOnly: writesOnly,
            parameters: properties.map { ($0.0, $0.1, required.contains($0.0)) })
    }

    static let all: [ToolSpec] = [
        spec("enable_temporal_versioning", "Enable versioning",
             "Start keeping a full history of a table: every INSERT, UPDATE and DELETE from now on is recorded, queryable by time. UNRESTRICTED mode only.",
             [schemaName, tableName, ("history_table_suffix", "string", "The history table's name is the table's plus this.", .string("_history"))],
             required: ["schema_name", "table_name"], readOnly: false, destructive: false, idempotent: true, writesOnly: true),
        spec("disable_temporal_versioning", "Disable versioning",
             "Stop keeping the history of a table. With drop_history=true the history kept so far is deleted for good. UNRESTRICTED mode only.",
             [schemaName, tableName, ("drop_history", "boolean", "Also delete the history kept so far.", .bool(false))],
             required: ["schema_name", "table_name"], readOnly: false, destructive: true, idempotent: true, writesOnly: true),
        spec("list_temporal_tables", "List versioned tables",
             "The tables whose history is kept, with their history tables and since when.",
             [], required: [], readOnly: true),
        spec("get_temporal_status", "Versioning status",
             "Whether a table is versioned, its history table, how many changes are kept and since when.",
             [schemaName, tableName], required: ["schema_name", "table_name"], readOnly: true),
        spec("query_temporal_data", "Table as of a time",
             "The rows of a table as they were at a point in time (time travel).",
             [schemaName, tableName, ("timestamp", "string", "The instant: " + timestampHelp + ".", nil), limit],
             required: ["schema_name", "table_name", "timestamp"], readOnly: true),
        spec("get_change_history", "Change log",
             "The changes made to a table between two instants, oldest first: operation, key, before and after, who and in which changeset.",
             [schemaName, tableName,
              ("start_time", "string", "From this instant: " + timestampHelp + ".", nil),
              ("end_time", "string", "Up to this instant: " + timestampHelp + ".", nil),
              ("operation", "string", "Only INSERT, UPDATE or DELETE.", nil), limit],
             required: ["schema_name", "table_name", "start_time", "end_time"], readOnly: true),
        spec("get_row_history", "Row history",
             "Every version of one row, oldest first, found by its primary key.",
             [schemaName, tableName,
              ("primary_key_column", "string", "The key column's name.", nil),
              ("primary_key_value", "string", "The key's value, as text.", nil), limit],
             required: ["schema_name", "table_name", "primary_key_column", "primary_key_value"], readOnly: true),
        spec("compare_temporal_data", "Compare two times",
             "The rows added, deleted and modified in a table between two instants.",
             [schemaName, tableName,
              ("timestamp1", "string", "The earlier instant: " + timestampHelp + ".", nil),
              ("timestamp2", "string", "The later instant.", nil), limit],
             required: ["schema_name", "table_name", "timestamp1", "timestamp2"], readOnly: true),
        spec("revert_table_data", "Revert a table to a time",
             "Puts a table's rows back as they were at an instant, as new changes (kept in the history, so it can be undone). With dry_run=true (the default) nothing changes: the plan is returned with its plan_id. Applying (dry_run=false) needs UNRESTRICTED mode." + preview,
             [schemaName, tableName, ("timestamp", "string", "The instant to go back to: " + timestampHelp + ".", nil),
              ("dry_run", "boolean", "Only preview (the default).", .bool(true)),
              ("plan_id", "string", "With dry_run=false: the plan_id of the preview being applied.", nil)],
             required: ["schema_name", "table_name", "timestamp"], readOnly: false, destructive: true, idempotent: false),
        spec("revert_changeset", "Revert a changeset",
             "Undoes the changes of one changeset (or transaction id) in every table it touched, as new changes. With dry_run=true (the default) nothing changes: the plan is returned with its plan_id. Applying (dry_run=false) needs UNRESTRICTED mode." + preview,
             [("changeset_id", "string", "The changeset, as get_change_history shows it.", nil),
              ("dry_run", "boolean", "Only preview (the default).", .bool(true)),
              ("plan_id", "string", "With dry_run=false: the plan_id of the preview being applied.", nil)],
             required: ["changeset_id"], readOnly: false, destructive: true, idempotent: false),
        spec("get_stream_status", "Change streams",
             "The change streams' replication slots: confirmed position, lag, retained WAL, active or not.",
             [], required: [], readOnly: true),
    ]
}

/// A call's arguments, checked against the tool's parameters: unknown names,
/// wrong types and missing required ones are refused before anything runs.
struct ToolArguments {
    private let values: [String: Value]

    init(_ arguments: [String: Value], spec: ToolSpec) throws {
        for name in arguments.keys.sorted() where !spec.parameters.contains(where: { $0.name == name }) {
            throw ToolError("\(spec.tool.name) has no parameter \(name); its parameters are \(spec.parameters.map(\.name).joined(separator: ", "))")
        }
        for parameter in spec.parameters {
            guard let value = arguments[parameter.name], value != .null else {
                if parameter.required { throw ToolError("\(spec.tool.name) needs \(parameter.name)") }
                continue
            }
            let fits: Bool = switch parameter.type {
            case "string": value.stringValue != nil
            case "boolean": value.boolValue != nil
            case "integer": value.intValue != nil || value.doubleValue.map { Int(exactly: $0) != nil } == true
            default: true
            }
            guard fits else { throw ToolError("\(parameter.name) must be a \(parameter.type)") }
        }
        values = arguments
    }

    func string(_ name: String) -> String? { values[name]?.stringValue }
    func bool(_ name: String, default fallback: Bool) -> Bool { values[name]?.boolValue ?? fallback }
    func int(_ name: String) -> Int? { values[name]?.intValue ?? values[name]?.doubleValue.flatMap { Int(exactly: $0) } }
    func required(_ name: String) -> String { string(name) ?? "" }
}
