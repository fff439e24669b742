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

    public static func append(_ document: EventDocument, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "{"))
        var first = true
        for field in document.fields {
            if !first { output.append(contentsOf: separator) }
            first = false
            appendString(field.key, to: &output)
            output.append(contentsOf: colon)
            append(field.value, to: &output)
        }
        output.append(UInt8(ascii: "}"))
    }

    private static let separator: [UInt8] = Array(", ".utf8)
    private static let colon: [UInt8] = Array(": ".utf8)

    static func append(_ value: EventValue, to output: inout [UInt8]) {
        switch value {
        case .null: output.append(contentsOf: "null".utf8)
        case let .bool(flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
        case let .int32(number): appendInteger(Int64(number), to: &output)
        case let .int64(number): appendInteger(number, to: &output)
        case let .double(number):
            if number.isNaN { output.append(contentsOf: #"{"$numberDouble": "NaN"}"#.utf8) }
            else if number.isInfinite {
                output.append(contentsOf: (number < 0 ? #"{"$numberDouble": "-Infinity"}"# : #"{"$numberDouble": "Infinity"}"#).utf8)
            } else { output.append(contentsOf: "\(number)".utf8) }
        case let .decimal(text):
            output.append(contentsOf: #"{"$numberDecimal": "#.utf8)
            appendString(text, to: &output)
            output.append(UInt8(ascii: "}"))
        case let .string(text): appendString(text, to: &output)
        case let .date(milliseconds):
            output.append(contentsOf: #"{"$date": "#.utf8)
            if !appendISODate(milliseconds, to: &output) {
                output.append(contentsOf: #"{"$numberLong": ""#.utf8)
                appendInteger(milliseconds, to: &output)
                output.append(contentsOf: #""}"#.utf8)
            }
            output.append(UInt8(ascii: "}"))
        case let .binary(subtype, bytes):
            output.append(contentsOf: #"{"$binary": {"base64": ""#.utf8)
            appendBase64(bytes, to: &output)
            output.append(contentsOf: #"", "subType": ""#.utf8)
            output.append(hexDigits[Int(subtype >> 4)])
            output.append(hexDigits[Int(subtype & 15)])
            output.append(contentsOf: #""}}"#.utf8)
        case let .json(text): output.append(contentsOf: text.utf8)
        case let .array(items):
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(contentsOf: separator) }
                append(item, to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case let .document(document): append(document, to: &output)
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    static func appendString(_ text: String, to output: inout [UInt8]) {
        var text = text
        text.withUTF8 { appendString(bytes: $0, to: &output) }
    }

    private static func appendString(bytes: UnsafeBufferPointer<UInt8>, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var plainFrom = 0
        for index in 0..<bytes.count {
            let byte = bytes[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[plainFrom..<index]))
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): output.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): output.append(contentsOf: #"\n"#.utf8)
            case UInt8(ascii: "\r"): output.append(contentsOf: #"\r"#.utf8)
            case UInt8(ascii: "\t"): output.append(contentsOf: #"\t"#.utf8)
            default:
                output.append(contentsOf: #"\u00"#.utf8)
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 15)])
            }
            plainFrom = index + 1
        }
        output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[plainFrom..<bytes.count]))
        output.append(UInt8(ascii: "\""))
    }

    static func appendInteger(_ number: Int64, to output: inout [UInt8]) {
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

    private static func appendDigits(_ value: Int, width: Int, to output: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var value = value
        while divisor > 0 {
            output.append(UInt8(ascii: "0") + UInt8(value / divisor))
            value %= divisor
            divisor /= 10
        }
    }

    /// `"YYYY-MM-DDTHH:MM:SS.mmmZ"` for years 1970 to 9999; false otherwise
    /// (relaxed Extended JSON prints other dates as {"$numberLong"}).
    static func appendISODate(_ milliseconds: Int64, to output: inout [UInt8]) -> Bool {
        guard milliseconds >= 0, milliseconds < 253_402_300_800_000 else { return false }
        let days = Int(milliseconds / 86_400_000)
        let remainder = Int(milliseconds % 86_400_000)
        let (year, month, day) = civil(fromDays: days)
        output.append(UInt8(ascii: "\""))
        appendDigits(year, width: 4, to: &output)
        output.append(UInt8(ascii: "-"))
        appendDigits(month, width: 2, to: &output)
        output.append(UInt8(ascii: "-"))
        appendDigits(day, width: 2, to: &output)
        output.append(UInt8(ascii: "T"))
        appendDigits(remainder / 3_600_000, width: 2, to: &output)
        output.append(UInt8(ascii: ":"))
        appendDigits(remainder / 60000 % 60, width: 2, to: &output)
        output.append(UInt8(ascii: ":"))
        appendDigits(remainder / 1000 % 60, width: 2, to: &output)
        output.append(UInt8(ascii: "."))
        appendDigits(remainder % 1000, width: 3, to: &output)
        output.append(contentsOf: #"Z""#.utf8)
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

    static func appendBase64(_ bytes: [UInt8], to output: inout [UInt8]) {
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
