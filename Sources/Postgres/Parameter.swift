/// A value sent to PostgreSQL as a query parameter, in text format.
/// Values always travel as parameters (`$1`), never spliced into SQL.
public protocol PostgresParameter: Sendable {
    var postgresText: String { get }
}

extension String: PostgresParameter {
    public var postgresText: String { self }
}

extension Int: PostgresParameter {
    public var postgresText: String { String(self) }
}

extension Int64: PostgresParameter {
    public var postgresText: String { String(self) }
}

extension UInt64: PostgresParameter {
    public var postgresText: String { String(self) }
}

extension Bool: PostgresParameter {
    public var postgresText: String { self ? "true" : "false" }
}

extension Double: PostgresParameter {
    public var postgresText: String { String(self) }
}

extension Array: PostgresParameter where Element == String {
    /// A one-dimensional array literal, every element quoted: `{"a","b \"c\""}`.
    public var postgresText: String {
        let elements = map { element -> String in
            var escaped = ""
            for character in element {
                if character == "\"" || character == "\\" { escaped.append("\\") }
                escaped.append(character)
            }
            return "\"\(escaped)\""
        }
        return "{" + elements.joined(separator: ",") + "}"
    }
}
