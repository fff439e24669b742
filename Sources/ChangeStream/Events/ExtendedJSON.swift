import Foundation

/// MongoDB Extended JSON (relaxed) for event documents: what `mongoimport`
/// and `mongosh` read, and the same types a MongoDB sink stores. Dates are
/// {"$date": ...}, Decimal128 {"$numberDecimal": ...}, binaries {"$binary": ...}.
public enum ExtendedJSON {
    public static func encode(_ document: EventDocument) -> String {
        var output = ""
        output.reserveCapacity(512)
        write(document, to: &output)
        return output
    }

    static func write(_ document: EventDocument, to output: inout String) {
        output += "{"
        var first = true
        for field in document.fields {
            if !first { output += ", " }
            first = false
            writeString(field.key, to: &output)
            output += ": "
            write(field.value, to: &output)
        }
        output += "}"
    }

    static func write(_ value: EventValue, to output: inout String) {
        switch value {
        case .null: output += "null"
        case let .bool(flag): output += flag ? "true" : "false"
        case let .int32(number): output += String(number)
        case let .int64(number): output += String(number)
        case let .double(number):
            if number.isNaN { output += #"{"$numberDouble": "NaN"}"# }
            else if number.isInfinite { output += number < 0 ? #"{"$numberDouble": "-Infinity"}"# : #"{"$numberDouble": "Infinity"}"# }
            else if number == number.rounded() && abs(number) < 1e15 { output += String(format: "%.1f", number) }
            else { output += "\(number)" }
        case let .decimal(text):
            output += #"{"$numberDecimal": "#
            writeString(text, to: &output)
            output += "}"
        case let .string(text): writeString(text, to: &output)
        case let .date(milliseconds):
            output += #"{"$date": "#
            if let iso = isoDate(milliseconds) { writeString(iso, to: &output) } else { output += #"{"$numberLong": "\#(milliseconds)"}"# }
            output += "}"
        case let .binary(subtype, bytes):
            output += #"{"$binary": {"base64": ""# + base64(bytes) + #"", "subType": ""#
            output += String(format: "%02x", subtype) + "\"}}"
        case let .json(text): output += text
        case let .array(items):
            output += "["
            for (index, item) in items.enumerated() {
                if index > 0 { output += ", " }
                write(item, to: &output)
            }
            output += "]"
        case let .document(document): write(document, to: &output)
        }
    }

    static func writeString(_ text: String, to output: inout String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20:
                output += String(format: "\\u%04x", scalar.value)
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }

    /// ISO 8601 with milliseconds in UTC, for years 1970 to 9999 (relaxed
    /// Extended JSON prints other dates as {"$numberLong"}).
    static func isoDate(_ milliseconds: Int64) -> String? {
        guard milliseconds >= 0, milliseconds < 253_402_300_800_000 else { return nil }
        let days = Int(milliseconds / 86_400_000)
        let remainder = Int(milliseconds % 86_400_000)
        let (year, month, day) = civil(fromDays: days)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, month, day,
                      remainder / 3_600_000, remainder / 60000 % 60, remainder / 1000 % 60, remainder % 1000)
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

    static func base64(_ bytes: [UInt8]) -> String {
        var output = [UInt8]()
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 2 < bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { output.append(alphabet[Int(chunk >> UInt32(shift) & 63)]) }
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
        return String(decoding: output, as: UTF8.self)
    }
}
