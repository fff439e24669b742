import Postgres

/// What a type OID means for decoding: built-in types by OID, arrays by their
/// element type, domains by their base type, and tables' primary keys, read
/// from the catalog (and read again when an unknown OID shows up).
public final class TypeCatalog {
    private var arrayElements: [UInt32: UInt32] = [:]
    private var domainBases: [UInt32: UInt32] = [:]
    private var primaryKeys: [UInt32: [String]] = [:]
    /// Key words that quote_ident quotes (all but the unreserved ones).
    private var quotedKeywords: Set<String> = []
    private let connection: Connection?

    /// A catalog that knows only built-in scalar types (for tests from bytes).
    public init() { connection = nil }

    /// What a catalog learned from a server, saved so that bytes captured from
    /// that server decode the same way without it (the offline test tier).
    public struct Snapshot: Sendable, Equatable {
        public var arrayElements: [UInt32: UInt32] = [:]
        public var domainBases: [UInt32: UInt32] = [:]
        public var primaryKeys: [UInt32: [String]] = [:]
        public var quotedKeywords: Set<String> = []
        public init() {}
    }

    /// A catalog that knows what `snapshot` holds and asks no server.
    public init(snapshot: Snapshot) {
        connection = nil
        arrayElements = snapshot.arrayElements
        domainBases = snapshot.domainBases
        primaryKeys = snapshot.primaryKeys
        quotedKeywords = snapshot.quotedKeywords
    }

    /// What this catalog knows of the types not built in, the keys of
    /// `relations` and the key words, for bytes captured alongside.
    public func snapshot(relations: [UInt32]) throws -> Snapshot {
        var snapshot = Snapshot()
        snapshot.arrayElements = arrayElements.filter { !TypeOID.isBuiltin($0.key) }
        snapshot.domainBases = domainBases.filter { !TypeOID.isBuiltin($0.key) }
        for relation in relations { snapshot.primaryKeys[relation] = try primaryKey(relation) ?? [] }
        snapshot.quotedKeywords = quotedKeywords
        return snapshot
    }

    public init(connection: Connection) throws {
        self.connection = connection
        try reload()
        quotedKeywords = Set(try connection.query(
            "SELECT word FROM pg_catalog.pg_get_keywords() WHERE catcode OPERATOR(pg_catalog.<>) 'U'").rows.compactMap { $0[0] })
    }

    /// `schema.table` the way format('%I.%I') writes it (`public."Odd Table"`),
    /// so that every name reads back as the same table, dots and all.
    /// pgoutput sends an empty namespace for pg_catalog.
    public func qualifiedName(namespace: String, name: String) -> String {
        "\(quoteIdentifier(namespace.isEmpty ? "pg_catalog" : namespace)).\(quoteIdentifier(name))"
    }

    /// PostgreSQL's quote_ident: as it is when it is lower case letters,
    /// digits and underscores, not starting with a digit, and no key word;
    /// otherwise in double quotes, with double quotes doubled.
    func quoteIdentifier(_ identifier: String) -> String {
        let bytes = identifier.utf8
        let plain = !bytes.isEmpty
            && bytes.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") }
            && !(bytes.first! >= UInt8(ascii: "0") && bytes.first! <= UInt8(ascii: "9"))
            && !quotedKeywords.contains(identifier)
        if plain { return identifier }
        var quoted = "\""
        for character in identifier {
            quoted.append(character)
            if character == "\"" { quoted.append(character) }
        }
        return quoted + "\""
    }

    private func reload() throws {
        guard let connection else { return }
        for row in try connection.query("""
            SELECT oid::int8, typelem::int8, typbasetype::int8, typtype::text FROM pg_type
            WHERE (typcategory = 'A' AND typelem <> 0) OR typtype = 'd'
            """).rows {
            guard let oid = row[0].flatMap(UInt32.init) else { continue }
            if row[3] == "d" { domainBases[oid] = row[2].flatMap(UInt32.init) } else { arrayElements[oid] = row[1].flatMap(UInt32.init) }
        }
    }

    /// The type to decode values of `oid` as: a domain's base type, or `oid`.
    func resolve(_ oid: UInt32) -> UInt32 {
        var current = oid
        for _ in 0..<8 {
            guard let base = domainBases[current] else { return current }
            current = base
        }
        return current
    }

    func element(ofArray oid: UInt32) -> UInt32? {
        if let element = arrayElements[oid] { return element }
        if let builtin = TypeOID.builtinArrays[oid] { return builtin }
        return nil
    }

    /// Learns types created since the catalog was read. A failed catalog
    /// query is an error, never a guess: a type read wrongly would change
    /// the values of every event.
    func learn(_ oid: UInt32) throws {
        guard connection != nil, arrayElements[oid] == nil, domainBases[oid] == nil, !TypeOID.isBuiltin(oid) else { return }
        try reload()
    }

    /// The primary key of a table, or nil (then the replica identity is used).
    /// A failed catalog query is an error: a guessed key would change entityId.
    func primaryKey(_ relationOID: UInt32) throws -> [String]? {
        if let key = primaryKeys[relationOID] { return key.isEmpty ? nil : key }
        guard let connection else { return nil }
        let key = (try connection.query("""
            SELECT a.attname::text FROM pg_index i
            CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.n
            """, [Int(relationOID)]).rows.compactMap { $0[0] })
        primaryKeys[relationOID] = key
        return key.isEmpty ? nil : key
    }

    /// Forgets a table's key after its shape changed, to ask the server again
    /// (a catalog without a server keeps what its snapshot says).
    func forgetKey(_ relationOID: UInt32) {
        if connection != nil { primaryKeys[relationOID] = nil }
    }
}

enum TypeOID {
    static let bool: UInt32 = 16, bytea: UInt32 = 17, int8: UInt32 = 20, int2: UInt32 = 21, int4: UInt32 = 23
    static let oid: UInt32 = 26, json: UInt32 = 114, float4: UInt32 = 700, float8: UInt32 = 701
    static let date: UInt32 = 1082, timestamp: UInt32 = 1114, timestamptz: UInt32 = 1184
    static let numeric: UInt32 = 1700, uuid: UInt32 = 2950, jsonb: UInt32 = 3802

    /// Built-in array types and their elements, for decoding without a catalog.
    static let builtinArrays: [UInt32: UInt32] = [
        1000: bool, 1001: bytea, 1005: int2, 1007: int4, 1016: int8, 1028: oid, 199: json, 1021: float4,
        1022: float8, 1182: date, 1115: timestamp, 1185: timestamptz, 1231: numeric, 2951: uuid, 3807: jsonb,
        1009: 25, 1015: 1043, 1014: 1042,
    ]

    static func isBuiltin(_ oid: UInt32) -> Bool { oid < 16384 }
}

/// Turns PostgreSQL's text output of a value into an EventValue of the same
/// meaning. The replication session prints times in UTC, ISO style, and
/// bytea in hex (see Streamer), which is what this reads.
public struct ValueDecoder {
    public let types: TypeCatalog

    public init(types: TypeCatalog) { self.types = types }

    /// A session that reads values as the stream does: its settings, as pgoutput prints with them.
    public static let sessionSettings = ["search_path = pg_catalog, pg_temp", "client_encoding = 'UTF8'", "TimeZone = 'UTC'",
                                         "DateStyle = 'ISO, YMD'", "bytea_output = 'hex'", "extra_float_digits = 3",
                                         "IntervalStyle = 'postgres'"]

    /// How to decode the values of one column: worked out once per column
    /// (when its table's Relation message arrives), not once per value.
    public enum Plan: Sendable {
        case scalar(UInt32)
        case array(element: UInt32)
    }

    public func plan(for typeOID: UInt32) throws -> Plan {
        var oid = types.resolve(typeOID)
        if let element = types.element(ofArray: oid) { return .array(element: types.resolve(element)) }
        try types.learn(oid)
        oid = types.resolve(oid)
        if let element = types.element(ofArray: oid) { return .array(element: types.resolve(element)) }
        return .scalar(oid)
    }

    /// The value, and its exact text when the typed value loses precision
    /// (a timestamp's microseconds in a millisecond BSON date).
    public func decode(_ text: String, typeOID: UInt32) throws -> (value: EventValue, exactText: String?) {
        decode(text, plan: try plan(for: typeOID))
    }

    public func decode(_ text: String, plan: Plan) -> (value: EventValue, exactText: String?) {
        switch plan {
        case let .scalar(oid):
            return scalar(text, oid: oid)
        case let .array(element):
            guard let elements = ArrayLiteral.parse(text) else { return (.string(text), nil) }
            var lossy = false
            let value = convert(elements, element: element, lossy: &lossy)
            return (value, lossy ? text : nil)
        }
    }

    private func convert(_ node: ArrayLiteral.Node, element: UInt32, lossy: inout Bool) -> EventValue {
        switch node {
        case .null: return .null
        case let .text(text):
            let (value, exact) = scalar(text, oid: element)
            if exact != nil { lossy = true }
            return value
        case let .array(items): return .array(items.map { convert($0, element: element, lossy: &lossy) })
        }
    }

    private func scalar(_ text: String, oid: UInt32) -> (value: EventValue, exactText: String?) {
        switch oid {
        case TypeOID.bool: return (.bool(text == "t"), nil)
        case TypeOID.int2, TypeOID.int4: return (Int32(text).map(EventValue.int32) ?? .string(text), nil)
        case TypeOID.int8, TypeOID.oid: return (Int64(text).map(EventValue.int64) ?? .string(text), nil)
        case TypeOID.float4, TypeOID.float8: return (Self.double(text).map(EventValue.double) ?? .string(text), nil)
        case TypeOID.numeric: return (Self.decimal(text), nil)
        case TypeOID.json, TypeOID.jsonb: return (.json(text), nil)
        case TypeOID.bytea: return (Self.hexBytes(text).map { .binary(subtype: BinarySubtype.generic, bytes: $0) } ?? .string(text), nil)
        case TypeOID.uuid: return (Self.uuid(text).map { .binary(subtype: BinarySubtype.uuid, bytes: $0) } ?? .string(text), nil)
        case TypeOID.timestamptz, TypeOID.timestamp, TypeOID.date:
            guard let (milliseconds, exact) = Self.instant(text) else { return (.string(text), nil) }
            return (.date(milliseconds), exact ? nil : text)
        default: return (.string(text), nil)
        }
    }

    static func double(_ text: String) -> Double? {
        switch text {
        case "NaN": .nan
        case "Infinity": .infinity
        case "-Infinity": -.infinity
        default: Double(text)
        }
    }

    /// Decimal128 when it holds the value exactly (Decimal128Text), else exact text.
    static func decimal(_ text: String) -> EventValue {
        Decimal128Text.holds(text.utf8) ? .decimal(text) : .string(text)
    }

    /// `\x0a1b...` (bytea_output = hex).
    static func hexBytes(_ text: String) -> [UInt8]? {
        guard text.hasPrefix("\\x") else { return nil }
        return bytes(fromHex: text.utf8.dropFirst(2))
    }

    static func uuid(_ text: String) -> [UInt8]? {
        let bytes = bytes(fromHex: text.utf8.filter { $0 != UInt8(ascii: "-") }[...])
        return bytes?.count == 16 ? bytes : nil
    }

    private static func bytes(fromHex hex: some Collection<UInt8>) -> [UInt8]? {
        guard hex.count % 2 == 0 else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(hex.count / 2)
        var high: UInt8?
        for character in hex {
            let nibble: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = character - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = character - UInt8(ascii: "A") + 10
            default: return nil
            }
            if let first = high {
                result.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return result
    }

    /// `YYYY-MM-DD[ HH:MM:SS[.ffffff]][+HH[:MM]]` to milliseconds since the
    /// Unix epoch, and whether that is exact. Years before 1 or after 9999,
    /// BC dates and infinities are not dates here (they stay text).
    static func instant(_ text: String) -> (Int64, Bool)? {
        var text = text
        return text.withUTF8 { instant(utf8: $0) }
    }

    static func instant(utf8 bytes: UnsafeBufferPointer<UInt8>) -> (Int64, Bool)? {
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard bytes.count >= 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10) else { return nil }
        var seconds = Int64(daysFromCivil(year: year, month: month, day: day)) * 86400
        var microseconds = 0
        var index = 10
        if index < bytes.count && bytes[index] == UInt8(ascii: " ") {
            guard let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19) else { return nil }
            seconds += Int64(hour * 3600 + minute * 60 + second)
            index = 19
            if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
                var digits = 0
                index += 1
                while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                    if digits < 6 { microseconds = microseconds * 10 + Int(bytes[index] - 48) }
                    digits += 1
                    index += 1
                }
                for _ in digits..<6 { microseconds *= 10 }
            }
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) {
                let sign = bytes[index] == UInt8(ascii: "+") ? 1 : -1
                guard let hours = number((index + 1)..<(index + 3)) else { return nil }
                var offset = hours * 3600
                index += 3
                if index < bytes.count && bytes[index] == UInt8(ascii: ":") {
                    guard let minutes = number((index + 1)..<(index + 3)) else { return nil }
                    offset += minutes * 60
                    index += 3
                }
                seconds -= Int64(sign * offset)
            }
        }
        guard index == bytes.count, year >= 1, (1...12).contains(month), (1...31).contains(day) else { return nil }
        return (seconds * 1000 + Int64(microseconds / 1000), microseconds % 1000 == 0)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146097 + dayOfEra - 719468
    }
}
