import CBSON

/// PostgreSQL's json and jsonb text into BSON, read as strict JSON (RFC 8259),
/// never as MongoDB Extended JSON: a key such as "$date" or "$numberLong" stays
/// a key of a document, as in the row. (libbson's own JSON reader interprets
/// such keys as type wrappers, which turned a jsonb document into a date, an
/// Int64 or an ObjectId.) Numbers keep their value:
///   - an integer is Int32 or Int64 when it fits, else Decimal128 when it has
///     at most 34 digits before its trailing zeros, else a double;
///   - any other number is a double when a double holds it (finite, and not
///     flushed to zero), else a Decimal128 (which holds exponents down to
///     -6176 and up to 6111), else its text as a string, the only case where
///     no BSON number can hold it.
/// The text comes from PostgreSQL, so it is valid JSON; anything else is kept
/// as a string rather than guessed at.
extension BSON {
    static func appendStrictJSON(_ text: String, key: String, to bson: OpaquePointer) {
        var bytes = Array(text.utf8)
        bytes.append(0)   // a sentinel: the parser may look one byte past the end
        var parser = StrictJSONParser(bytes: bytes, count: bytes.count - 1)
        let scratch = bson_new()!
        defer { bson_destroy(scratch) }
        guard parser.value(key: key, into: scratch), parser.atEnd else {
            appendString(text, key: key, to: bson)
            return
        }
        bson_concat(bson, scratch)
    }
}

/// A recursive-descent reader of strict JSON that appends what it reads to a
/// BSON document under a key.
struct StrictJSONParser {
    let bytes: [UInt8]
    let count: Int
    var index = 0

    init(bytes: [UInt8], count: Int) {
        self.bytes = bytes
        self.count = count
    }

    var atEnd: Bool {
        mutating get { skipSpace(); return index == count }
    }

    mutating func skipSpace() {
        while index < count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    mutating func value(key: String, into bson: OpaquePointer) -> Bool {
        skipSpace()
        guard index < count else { return false }
        let keyLength = Int32(key.utf8.count)
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            let child = bson_new()!
            defer { bson_destroy(child) }
            skipSpace()
            if index < count, bytes[index] == UInt8(ascii: "}") {
                index += 1
            } else {
                while true {
                    skipSpace()
                    guard let name = string() else { return false }
                    skipSpace()
                    guard index < count, bytes[index] == UInt8(ascii: ":") else { return false }
                    index += 1
                    guard value(key: name, into: child) else { return false }
                    skipSpace()
                    guard index < count else { return false }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    guard bytes[index] == UInt8(ascii: "}") else { return false }
                    index += 1
                    break
                }
            }
            return bson_append_document(bson, key, keyLength, child)
        case UInt8(ascii: "["):
            index += 1
            let child = bson_new()!
            defer { bson_destroy(child) }
            skipSpace()
            if index < count, bytes[index] == UInt8(ascii: "]") {
                index += 1
            } else {
                var position = 0
                while true {
                    guard value(key: String(position), into: child) else { return false }
                    position += 1
                    skipSpace()
                    guard index < count else { return false }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    guard bytes[index] == UInt8(ascii: "]") else { return false }
                    index += 1
                    break
                }
            }
            return bson_append_array(bson, key, keyLength, child)
        case UInt8(ascii: "\""):
            guard let text = string() else { return false }
            return text.withCString { bson_append_utf8(bson, key, keyLength, $0, Int32(text.utf8.count)) }
        case UInt8(ascii: "t"):
            guard literal("true") else { return false }
            return bson_append_bool(bson, key, keyLength, true)
        case UInt8(ascii: "f"):
            guard literal("false") else { return false }
            return bson_append_bool(bson, key, keyLength, false)
        case UInt8(ascii: "n"):
            guard literal("null") else { return false }
            return bson_append_null(bson, key, keyLength)
        default:
            return number(key: key, into: bson)
        }
    }

    private mutating func literal(_ word: String) -> Bool {
        for byte in word.utf8 {
            guard index < count, bytes[index] == byte else { return false }
            index += 1
        }
        return true
    }

    /// A JSON string, unescaped.
    private mutating func string() -> String? {
        guard index < count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        var result: [UInt8] = []
        while index < count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(validating: result, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard index < count else { return nil }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): result.append(escape)
                case UInt8(ascii: "b"): result.append(0x08)
                case UInt8(ascii: "f"): result.append(0x0C)
                case UInt8(ascii: "n"): result.append(0x0A)
                case UInt8(ascii: "r"): result.append(0x0D)
                case UInt8(ascii: "t"): result.append(0x09)
                case UInt8(ascii: "u"):
                    guard var scalar = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A surrogate pair: \uD83D\uDE00.
                        guard literal("\\u"), let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { return nil }
                    result.append(contentsOf: Array(String(Character(unicode)).utf8))
                default: return nil
                }
            default:
                result.append(byte)
            }
        }
        return nil
    }

    private mutating func hex4() -> UInt32? {
        guard index + 4 <= count,
              let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16) else { return nil }
        index += 4
        return value
    }

    private mutating func number(key: String, into bson: OpaquePointer) -> Bool {
        let start = index
        var integral = true
        while index < count {
            let byte = bytes[index]
            if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") {
                index += 1
            } else if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                integral = false
                index += 1
            } else {
                break
            }
        }
        guard index > start else { return false }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        let keyLength = Int32(key.utf8.count)
        if integral {
            if let small = Int32(text) { return bson_append_int32(bson, key, keyLength, small) }
            if let large = Int64(text) { return bson_append_int64(bson, key, keyLength, large) }
            // jsonb prints 1e400 as a 1 and 400 zeros: trailing zeros become
            // the exponent, so that Decimal128 holds it exactly.
            let zeros = text.reversed().prefix { $0 == "0" }.count
            let exact = zeros > 0 ? "\(text.dropLast(zeros))E+\(zeros)" : text
            if appendDecimal(exact, key: key, into: bson) { return true }
            if let double = Double(text), double.isFinite { return bson_append_double(bson, key, keyLength, double) }
        } else {
            if let double = Double(text), double.isFinite, double != 0 || !Self.hasNonZeroDigit(text) {
                return bson_append_double(bson, key, keyLength, double)
            }
            if appendDecimal(text, key: key, into: bson) { return true }
        }
        return text.withCString { bson_append_utf8(bson, key, keyLength, $0, Int32(text.utf8.count)) }
    }

    /// A Decimal128 of exactly this value, when Decimal128 holds it.
    private func appendDecimal(_ text: String, key: String, into bson: OpaquePointer) -> Bool {
        guard let decimal = Decimal128Text.exact(text) else { return false }
        var value = bson_decimal128_t()
        guard bson_decimal128_from_string(decimal, &value) else { return false }
        return bson_append_decimal128(bson, key, Int32(key.utf8.count), &value)
    }

    static func hasNonZeroDigit(_ text: String) -> Bool {
        for byte in text.utf8 {
            if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") { return false }
            if (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(byte) { return true }
        }
        return false
    }
}
