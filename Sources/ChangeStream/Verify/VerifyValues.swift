import CBSON

/// How `verify` orders keys and compares values: keys in MongoDB's order of
/// BSON values, values by meaning.
enum VerifyValues {
    /// The fields of a current document that the shapes add to the row's.
    static let shapeFields: Set<String> = [EventField.id, "currentVersion", "updatedAt", "lastEventId", "lastPosition", "_history", "deletedAt"]

    /// The row's fields whose value the document does not hold (or holds when the row lacks them).
    static func differingFields(row: EventDocument, document: EventDocument, ignoring ignored: Set<String> = []) -> [String] {
        var differing: [String] = []
        for field in row.fields {
            guard let stored = document[field.key] else { differing.append(field.key); continue }
            if !same(field.value, stored) { differing.append(field.key) }
        }
        for field in document.fields where !shapeFields.contains(field.key) && !ignored.contains(field.key) && row[field.key] == nil {
            differing.append(field.key)
        }
        return differing
    }

    /// Same meaning: numbers by value (numeric exactly), json by content (keys in any order).
    static func same(_ a: EventValue, _ b: EventValue) -> Bool {
        if a == b { return true }   // the common case, without normalising
        switch (a, b) {
        case let (.json(text), other), let (other, .json(text)):
            if case .json = other { return a == b }
            return same(jsonValue(text), other)
        case let (.document(x), .document(y)):
            guard x.fields.count == y.fields.count else { return false }
            return x.fields.allSatisfy { field in y[field.key].map { same(field.value, $0) } ?? false }
        case let (.array(x), .array(y)):
            return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        default:
            if let x = number(a), let y = number(b) { return x == y }
            return a == b
        }
    }

    /// A json text as the value MongoDB holds for it.
    static func jsonValue(_ text: String) -> EventValue {
        let bson = BSON.make(EventDocument([("v", .json(text))]))
        defer { bson_destroy(bson) }
        return BSONReader.document(bson)["v"] ?? .null
    }

    /// A number's value as canonical text: sign, significant digits, exponent.
    static func number(_ value: EventValue) -> String? {
        switch value {
        case let .int32(number): return canonical(String(number))
        case let .int64(number): return canonical(String(number))
        case let .double(number):
            if number.isNaN { return "NaN" }
            if number.isInfinite { return number < 0 ? "-Infinity" : "Infinity" }
            return canonical("\(number)")
        case let .decimal(text): return canonical(text)
        default: return nil
        }
    }

    static func canonical(_ text: String) -> String? {
        var bytes = Array(text.utf8)[...]
        while bytes.first == UInt8(ascii: " ") { bytes = bytes.dropFirst() }
        while bytes.last == UInt8(ascii: " ") { bytes = bytes.dropLast() }
        var negative = false
        if bytes.first == UInt8(ascii: "-") { negative = true; bytes = bytes.dropFirst() } else if bytes.first == UInt8(ascii: "+") { bytes = bytes.dropFirst() }
        switch String(decoding: bytes, as: UTF8.self).lowercased() {
        case "nan": return "NaN"
        case "inf", "infinity": return negative ? "-Infinity" : "Infinity"
        default: break
        }
        var exponent = 0
        if let e = bytes.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            guard let value = Int(String(decoding: bytes[(e + 1)...], as: UTF8.self)) else { return nil }
            exponent = value
            bytes = bytes[..<e]
        }
        var digits: [UInt8] = []
        digits.reserveCapacity(bytes.count)
        var seenPoint = false
        for byte in bytes {
            if byte == UInt8(ascii: ".") { seenPoint = true; continue }
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            if digits.isEmpty && byte == UInt8(ascii: "0") {
                if seenPoint { exponent -= 1 }
                continue
            }
            digits.append(byte)
            if seenPoint { exponent -= 1 }
        }
        if digits.isEmpty { return "0" }
        while digits.last == UInt8(ascii: "0") { digits.removeLast(); exponent += 1 }
        return (negative ? "-" : "") + String(decoding: digits, as: UTF8.self) + "e" + String(exponent)
    }

    /// A key as relaxed Extended JSON, for reports.
    static func text(_ value: EventValue) -> String {
        var output = JSONBuffer(capacity: 64)
        ExtendedJSON.append(value, to: &output)
        return String(decoding: UnsafeBufferPointer(start: output.bytes.baseAddress, count: output.count), as: UTF8.self)
    }

    // MARK: - MongoDB's order of BSON values

    private static func rank(_ value: EventValue) -> Int {
        switch value {
        case .null: 1
        case .int32, .int64, .double, .decimal: 2
        case .string: 3
        case .document, .json: 4
        case .array: 5
        case .binary: 6
        case .bool: 8
        case .date: 9
        }
    }

    /// Negative, zero or positive as MongoDB sorts `a` before, with or after `b`.
    static func order(_ a: EventValue, _ b: EventValue) -> Int {
        let (ra, rb) = (rank(a), rank(b))
        if ra != rb { return ra < rb ? -1 : 1 }
        switch (a, b) {
        case let (.string(x), .string(y)): return compareBytes(Array(x.utf8), Array(y.utf8))
        case let (.bool(x), .bool(y)): return x == y ? 0 : (!x ? -1 : 1)
        case let (.date(x), .date(y)): return x == y ? 0 : (x < y ? -1 : 1)
        case let (.binary(s1, b1), .binary(s2, b2)):
            if b1.count != b2.count { return b1.count < b2.count ? -1 : 1 }
            if s1 != s2 { return s1 < s2 ? -1 : 1 }
            return compareBytes(b1, b2)
        case let (.document(x), .document(y)):
            for (f, g) in zip(x.fields, y.fields) {
                let byType = rank(f.value) - rank(g.value)
                if byType != 0 { return byType < 0 ? -1 : 1 }
                let byName = compareBytes(Array(f.key.utf8), Array(g.key.utf8))
                if byName != 0 { return byName }
                let byValue = order(f.value, g.value)
                if byValue != 0 { return byValue }
            }
            return x.fields.count == y.fields.count ? 0 : (x.fields.count < y.fields.count ? -1 : 1)
        case let (.array(x), .array(y)):
            for (f, g) in zip(x, y) {
                let byValue = order(f, g)
                if byValue != 0 { return byValue }
            }
            return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
        default:
            return compareNumbers(a, b)
        }
    }

    private static func compareBytes(_ x: [UInt8], _ y: [UInt8]) -> Int {
        for (p, q) in zip(x, y) where p != q { return p < q ? -1 : 1 }
        return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
    }

    private static func compareNumbers(_ a: EventValue, _ b: EventValue) -> Int {
        switch (a, b) {
        case let (.int32(x), .int32(y)): return x == y ? 0 : (x < y ? -1 : 1)
        case let (.int64(x), .int64(y)): return x == y ? 0 : (x < y ? -1 : 1)
        case let (.int32(x), .int64(y)): return Int64(x) == y ? 0 : (Int64(x) < y ? -1 : 1)
        case let (.int64(x), .int32(y)): return x == Int64(y) ? 0 : (x < Int64(y) ? -1 : 1)
        default:
            guard let x = number(a), let y = number(b) else { return 0 }
            return compareCanonical(x, y)
        }
    }

    /// Compares two numbers in `canonical` form (digits × 10^exponent), exactly.
    /// NaN sorts first, as MongoDB sorts it.
    static func compareCanonical(_ x: String, _ y: String) -> Int {
        if x == y { return 0 }
        func parts(_ text: String) -> (rank: Int, digits: [UInt8], magnitude: Int) {
            switch text {
            case "NaN": return (-3, [], 0)
            case "-Infinity": return (-2, [], 0)
            case "Infinity": return (2, [], 0)
            case "0": return (0, [], 0)
            default:
                let negative = text.hasPrefix("-")
                let body = negative ? String(text.dropFirst()) : text
                let pieces = body.split(separator: "e")
                let digits = Array(pieces[0].utf8)
                let exponent = pieces.count > 1 ? Int(pieces[1]) ?? 0 : 0
                return (negative ? -1 : 1, digits, digits.count + exponent)
            }
        }
        let (p, q) = (parts(x), parts(y))
        if p.rank != q.rank { return p.rank < q.rank ? -1 : 1 }
        guard abs(p.rank) == 1 else { return 0 }
        var order: Int
        if p.magnitude != q.magnitude {
            order = p.magnitude < q.magnitude ? -1 : 1
        } else {
            order = 0
            for index in 0..<max(p.digits.count, q.digits.count) {
                let d = index < p.digits.count ? p.digits[index] : UInt8(ascii: "0")
                let e = index < q.digits.count ? q.digits[index] : UInt8(ascii: "0")
                if d != e { order = d < e ? -1 : 1; break }
            }
        }
        return p.rank < 0 ? -order : order
    }

}
