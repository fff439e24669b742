/// MongoDB Extended JSON (relaxed) for event documents: what `mongoimport`
/// and `mongosh` read, and the same types a MongoDB sink stores. Dates are
/// {"$date": ...}, Decimal128 {"$numberDecimal": ...}, binaries {"$binary": ...}.
///
/// Written straight into bytes: this is the hot path of a JSON-lines stream.
public enum ExtendedJSON {
    public static func encode(_ document: EventDocument) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(512)
        append(document, to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    public static func append(_ document: EventDocument, to output: inout some ByteOutput) {
        output.append(UInt8(ascii: "{"))
        var first = true
        for field in document.fields {
            if !first { output.append(static: ", ") }
            first = false
            appendString(field.key, to: &output)
            output.append(static: ": ")
            append(field.value, to: &output)
        }
        output.append(UInt8(ascii: "}"))
    }

    static func append(_ value: EventValue, to output: inout some ByteOutput) {
        switch value {
        case .null: output.append(static: "null")
        case let .bool(flag): output.append(static: flag ? "true" : "false")
        case let .int32(number): appendInteger(Int64(number), to: &output)
        case let .int64(number): appendInteger(number, to: &output)
        case let .double(number):
            if number.isNaN { output.append(static: #"{"$numberDouble": "NaN"}"#) }
            else if number.isInfinite {
                output.append(static: number < 0 ? #"{"$numberDouble": "-Infinity"}"# : #"{"$numberDouble": "Infinity"}"#)
            } else { output.append(utf8: "\(number)") }
        case let .decimal(text):
            output.append(static: #"{"$numberDecimal": "#)
            appendString(text, to: &output)
            output.append(UInt8(ascii: "}"))
        case let .string(text): appendString(text, to: &output)
        case let .date(milliseconds):
            output.append(static: #"{"$date": "#)
            if !appendISODate(milliseconds, to: &output) {
                output.append(static: #"{"$numberLong": ""#)
                appendInteger(milliseconds, to: &output)
                output.append(static: #""}"#)
            }
            output.append(UInt8(ascii: "}"))
        case let .binary(subtype, bytes):
            output.append(static: #"{"$binary": {"base64": ""#)
            appendBase64(bytes, to: &output)
            output.append(static: #"", "subType": ""#)
            output.append(hexDigits[Int(subtype >> 4)])
            output.append(hexDigits[Int(subtype & 15)])
            output.append(static: #""}}"#)
        case let .json(text):
            var text = text
            text.withUTF8 { appendJSONValue(bytes: $0, to: &output) }
        case let .array(items):
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(static: ", ") }
                append(item, to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case let .document(document): append(document, to: &output)
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    static func appendString(_ text: String, to output: inout some ByteOutput) {
        var text = text
        text.withUTF8 { appendString(bytes: $0, to: &output) }
    }

    /// The bytes of a string (valid UTF-8), quoted and escaped for JSON.
    static func appendString(bytes: UnsafeBufferPointer<UInt8>, to output: inout some ByteOutput) {
        output.append(UInt8(ascii: "\""))
        appendEscaped(bytes: bytes, to: &output)
        output.append(UInt8(ascii: "\""))
    }

    /// The bytes of a string, escaped for JSON, without quotes.
    static func appendEscaped(bytes: UnsafeBufferPointer<UInt8>, to output: inout some ByteOutput) {
        var plainFrom = 0
        for index in 0..<bytes.count {
            let byte = bytes[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[plainFrom..<index]))
            switch byte {
            case UInt8(ascii: "\""): output.append(static: #"\""#)
            case UInt8(ascii: "\\"): output.append(static: #"\\"#)
            case UInt8(ascii: "\n"): output.append(static: #"\n"#)
            case UInt8(ascii: "\r"): output.append(static: #"\r"#)
            case UInt8(ascii: "\t"): output.append(static: #"\t"#)
            default:
                output.append(static: #"\u00"#)
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 15)])
            }
            plainFrom = index + 1
        }
        output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[plainFrom..<bytes.count]))
    }

    static func appendInteger(_ number: Int64, to output: inout some ByteOutput) {
        if number < 0 { output.append(UInt8(ascii: "-")) }
        var magnitude = number.magnitude
        var divisor: UInt64 = 1
        while divisor <= magnitude / 10 { divisor *= 10 }
        while divisor > 0 {
            output.append(UInt8(ascii: "0") + UInt8(magnitude / divisor))
            magnitude %= divisor
            divisor /= 10
        }
    }

    /// `"YYYY-MM-DDTHH:MM:SS.mmmZ"` for years 1970 to 9999; false otherwise
    /// (relaxed Extended JSON prints other dates as {"$numberLong"}).
    static func appendISODate(_ milliseconds: Int64, to output: inout some ByteOutput) -> Bool {
        guard milliseconds >= 0, milliseconds < 253_402_300_800_000 else { return false }
        let days = Int(milliseconds / 86_400_000)
        let remainder = Int(milliseconds % 86_400_000)
        let (year, month, day) = civil(fromDays: days)
        // Laid out in a small buffer first and appended at once: dates are in every event.
        var text: (UInt64, UInt64, UInt64, UInt16) = (0, 0, 0, 0)   // 26 bytes
        withUnsafeMutableBytes(of: &text) { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            func put(_ value: Int, width: Int, at offset: Int) {
                var value = value
                for index in stride(from: offset + width - 1, through: offset, by: -1) {
                    bytes[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10)
                    value /= 10
                }
            }
            bytes[0] = UInt8(ascii: "\"")
            put(year, width: 4, at: 1)
            bytes[5] = UInt8(ascii: "-")
            put(month, width: 2, at: 6)
            bytes[8] = UInt8(ascii: "-")
            put(day, width: 2, at: 9)
            bytes[11] = UInt8(ascii: "T")
            put(remainder / 3_600_000, width: 2, at: 12)
            bytes[14] = UInt8(ascii: ":")
            put(remainder / 60000 % 60, width: 2, at: 15)
            bytes[17] = UInt8(ascii: ":")
            put(remainder / 1000 % 60, width: 2, at: 18)
            bytes[20] = UInt8(ascii: ".")
            put(remainder % 1000, width: 3, at: 21)
            bytes[24] = UInt8(ascii: "Z")
            bytes[25] = UInt8(ascii: "\"")
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[0..<26]))
        }
        return true
    }

    static func civil(fromDays days: Int) -> (Int, Int, Int) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let dayOfEra = z - era * 146097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func appendBase64(_ bytes: [UInt8], to output: inout some ByteOutput) {
        var index = 0
        while index + 2 < bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            output.append(alphabet[Int(chunk >> 18 & 63)])
            output.append(alphabet[Int(chunk >> 12 & 63)])
            output.append(alphabet[Int(chunk >> 6 & 63)])
            output.append(alphabet[Int(chunk & 63)])
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            let chunk = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            output.append(alphabet[Int(chunk >> 18 & 63)])
            output.append(alphabet[Int(chunk >> 12 & 63)])
            output.append(rest == 2 ? alphabet[Int(chunk >> 6 & 63)] : UInt8(ascii: "="))
            output.append(UInt8(ascii: "="))
        }
    }

    static func base64(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        appendBase64(bytes, to: &output)
        return String(decoding: output, as: UTF8.self)
    }
}

extension ExtendedJSON {
    /// A json or jsonb value as it goes into an Extended JSON line: as it is,
    /// unless one of its keys begins with `$`. Extended JSON has no way to
    /// write such a key (its specification says so: `{"$date": ...}` is read
    /// as a date, `{"$numberLong": "5"}` as an Int64), so that value is
    /// written as a JSON string of its text: a reader gets the exact text
    /// back, never a value the row did not hold. (The MongoDB sink stores it
    /// as a document, keys and all.)
    static func appendJSONValue(bytes text: UnsafeBufferPointer<UInt8>, to output: inout some ByteOutput) {
        if hasDollarKey(text) {
            appendString(bytes: text, to: &output)
        } else {
            output.append(contentsOf: text)
        }
    }

    /// Whether an object in this JSON text has a key that begins with `$`
    /// (or with an escape, which could spell one).
    static func hasDollarKey(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        var containers: [Bool] = []   // true: an object
        var inString = false, escaped = false, firstInString = false, isKey = false, expectKey = false
        for byte in text {
            if inString {
                if firstInString {
                    firstInString = false
                    if isKey && (byte == UInt8(ascii: "$") || byte == UInt8(ascii: "\\")) { return true }
                }
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "{"): containers.append(true); expectKey = true
            case UInt8(ascii: "["): containers.append(false); expectKey = false
            case UInt8(ascii: "}"), UInt8(ascii: "]"): _ = containers.popLast(); expectKey = false
            case UInt8(ascii: ","): expectKey = containers.last == true
            case UInt8(ascii: ":"): expectKey = false
            case UInt8(ascii: "\""): inString = true; firstInString = true; isKey = expectKey; expectKey = false
            default: break
            }
        }
        return false
    }
}
