/// A value in a change event, with the meaning it had in PostgreSQL: what
/// becomes BSON in MongoDB and Extended JSON in JSON lines. Equality is
/// "same value as stored": NaN equals NaN, as it does in PostgreSQL.
public enum EventValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int32(Int32)
    case int64(Int64)
    case double(Double)
    /// A numeric, exactly, for Decimal128 (NaN and infinities included).
    case decimal(String)
    case string(String)
    /// Milliseconds since the Unix epoch (BSON's date).
    case date(Int64)
    case binary(subtype: UInt8, bytes: [UInt8])
    /// json or jsonb text: an object, array or scalar, kept as it was written.
    case json(String)
    indirect case array([EventValue])
    indirect case document(EventDocument)

    public static func == (lhs: EventValue, rhs: EventValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case let (.bool(a), .bool(b)): a == b
        case let (.int32(a), .int32(b)): a == b
        case let (.int64(a), .int64(b)): a == b
        case let (.double(a), .double(b)): a == b || (a.isNaN && b.isNaN)
        case let (.decimal(a), .decimal(b)): a == b
        case let (.string(a), .string(b)): a == b
        case let (.date(a), .date(b)): a == b
        case let (.binary(s1, b1), .binary(s2, b2)): s1 == s2 && b1 == b2
        case let (.json(a), .json(b)): a == b
        case let (.array(a), .array(b)): a == b
        case let (.document(a), .document(b)): a == b
        default: false
        }
    }
}

/// Fields in order, like a BSON document.
public struct EventDocument: Equatable, Sendable {
    public private(set) var fields: [(key: String, value: EventValue)] = []

    public init() {}

    public init(_ fields: [(key: String, value: EventValue)]) {
        self.fields = fields
    }

    public mutating func reserveCapacity(_ count: Int) {
        fields.reserveCapacity(count)
    }

    public mutating func append(_ key: String, _ value: EventValue) {
        fields.append((key, value))
    }

    /// Sets a field: replaces its value where it is, appends it otherwise.
    public mutating func set(_ key: String, _ value: EventValue) {
        if let index = fields.firstIndex(where: { $0.key == key }) {
            fields[index].value = value
        } else {
            fields.append((key, value))
        }
    }

    public subscript(_ key: String) -> EventValue? {
        fields.first { $0.key == key }?.value
    }

    public var isEmpty: Bool { fields.isEmpty }

    public static func == (lhs: EventDocument, rhs: EventDocument) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

public enum BinarySubtype {
    public static let generic: UInt8 = 0
    public static let uuid: UInt8 = 4
}
