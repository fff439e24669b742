import Postgres

/// Type OIDs from pg_type that decide how a text value is rendered.
public enum PostgresType {
    public static let bool: UInt32 = 16
    public static let int8: UInt32 = 20
    public static let int2: UInt32 = 21
    public static let int4: UInt32 = 23
    public static let oid: UInt32 = 26
    public static let json: UInt32 = 114
    public static let float4: UInt32 = 700
    public static let float8: UInt32 = 701
    public static let numeric: UInt32 = 1700
    public static let jsonb: UInt32 = 3802
    /// Arrays of text-like elements: name[], text[], varchar[].
    public static let textArrays: Set<UInt32> = [1003, 1009, 1015]

    public static func isNumber(_ typeOID: UInt32) -> Bool {
        [int8, int2, int4, oid, float4, float8, numeric].contains(typeOID)
    }
}

/// Renders PostgreSQL text values as JSON by their type, and JSON strings.
public enum JSON {
    public static func value(_ text: String?, typeOID: UInt32) -> String {
        guard let text else { return "null" }
        switch typeOID {
        case PostgresType.bool:
            return text == "t" ? "true" : "false"
        case _ where PostgresType.isNumber(typeOID):
            // NaN and Infinity are not JSON numbers: keep them as strings.
            return text.allSatisfy({ $0.isNumber || $0 == "-" || $0 == "." || $0 == "e" || $0 == "E" || $0 == "+" })
                ? text : string(text)
        case PostgresType.json, PostgresType.jsonb:
            return text
        case _ where PostgresType.textArrays.contains(typeOID):
            return ArrayLiteral.parse(text).map(array) ?? string(text)
        default:
            return string(text)
        }
    }

    /// A text array as JSON: nested arrays for several dimensions, null for NULL.
    private static func array(_ node: ArrayLiteral.Node) -> String {
        switch node {
        case .null: "null"
        case let .text(text): string(text)
        case let .array(items): "[" + items.map(array).joined(separator: ", ") + "]"
        }
    }

    public static func string(_ text: String) -> String {
        var output = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        return output + "\""
    }
}

extension QueryResult {
    /// The rows as a JSON array of objects, each value by its type: what
    /// `--format json` prints and what the MCP tools return.
    public var jsonArray: String {
        "[" + rows.map(jsonObject).joined(separator: ",\n ") + "]"
    }

    public func jsonObject(_ row: [String?]) -> String {
        "{" + zip(columns, row).map { column, value in
            JSON.string(column.name) + ": " + JSON.value(value, typeOID: column.typeOID)
        }.joined(separator: ", ") + "}"
    }
}
