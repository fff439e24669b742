import CBSON

/// BSON read back into event values: what `verify` compares and what the
/// shapes read of their keys' state. The inverse of `BSON.append` for every
/// type the events write; other BSON types come back as their Extended JSON text.
enum BSONReader {
    static func document(_ bson: OpaquePointer) -> EventDocument {
        let iterator = AlignedStorage()
        guard bson_iter_init(iterator.pointer, bson) else { return EventDocument() }
        return fields(iterator.pointer)
    }

    private static func fields(_ iterator: OpaquePointer) -> EventDocument {
        var document = EventDocument()
        while bson_iter_next(iterator) {
            document.append(String(cString: bson_iter_key(iterator)), value(iterator))
        }
        return document
    }

    private static func value(_ iterator: OpaquePointer) -> EventValue {
        switch bson_iter_type(iterator) {
        case BSON_TYPE_NULL, BSON_TYPE_UNDEFINED: return .null
        case BSON_TYPE_BOOL: return .bool(bson_iter_bool(iterator))
        case BSON_TYPE_INT32: return .int32(bson_iter_int32(iterator))
        case BSON_TYPE_INT64: return .int64(bson_iter_int64(iterator))
        case BSON_TYPE_DOUBLE: return .double(bson_iter_double(iterator))
        case BSON_TYPE_DATE_TIME: return .date(bson_iter_date_time(iterator))
        case BSON_TYPE_UTF8:
            var length: UInt32 = 0
            guard let text = bson_iter_utf8(iterator, &length) else { return .null }
            return .string(String(decoding: UnsafeRawBufferPointer(start: text, count: Int(length)), as: UTF8.self))
        case BSON_TYPE_DECIMAL128:
            var decimal = bson_decimal128_t()
            _ = bson_iter_decimal128(iterator, &decimal)
            var text = [CChar](repeating: 0, count: 64)
            bson_decimal128_to_string(&decimal, &text)
            return .decimal(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        case BSON_TYPE_BINARY:
            var subtype = bson_subtype_t(0)
            var length: UInt32 = 0
            var bytes: UnsafePointer<UInt8>?
            bson_iter_binary(iterator, &subtype, &length, &bytes)
            return .binary(subtype: UInt8(subtype.rawValue), bytes: bytes.map { Array(UnsafeBufferPointer(start: $0, count: Int(length))) } ?? [])
        case BSON_TYPE_DOCUMENT:
            let child = AlignedStorage()
            guard bson_iter_recurse(iterator, child.pointer) else { return .document(EventDocument()) }
            return .document(fields(child.pointer))
        case BSON_TYPE_ARRAY:
            let child = AlignedStorage()
            guard bson_iter_recurse(iterator, child.pointer) else { return .array([]) }
            return .array(fields(child.pointer).fields.map(\.value))
        default:
            // ObjectId, regex, timestamp, ...: never written by the events; kept as text to be reported.
            let scratch = bson_new()!
            defer { bson_destroy(scratch) }
            _ = bson_append_iter(scratch, "v", 1, iterator)
            guard let json = bson_as_relaxed_extended_json(scratch, nil) else { return .null }
            defer { bson_free(json) }
            return .string(String(cString: json))
        }
    }
}

extension EventValue {
    /// Text that two values share exactly when MongoDB takes them for the same
    /// `_id` (1, 1L and Decimal128 1.0 are one key): what the shapes key their state by.
    var keyText: String {
        var text = ""
        appendKeyText(to: &text)
        return text
    }

    private func appendKeyText(to text: inout String) {
        switch self {
        case .null: text += "n"
        case let .bool(flag): text += flag ? "t" : "f"
        // Numbers by value, as MongoDB matches _ids: 1, 1L, 1.0 and Decimal128 1.00 are one key
        // (and a numeric read back from MongoDB prints as 1.0E+2 where the row printed 100).
        case .int32, .int64, .double, .decimal: text += "n" + (VerifyValues.number(self) ?? "?")
        case let .string(value): text += "s\(value.utf8.count):\(value)"
        case let .date(milliseconds): text += "t\(milliseconds)"
        case let .binary(subtype, bytes): text += "b\(subtype):" + bytes.map { String($0, radix: 16) }.joined(separator: ",")
        case let .json(value): text += "j\(value.utf8.count):\(value)"
        case let .array(items):
            text += "["
            for item in items { item.appendKeyText(to: &text); text += "," }
            text += "]"
        case let .document(document):
            text += "{"
            for field in document.fields { text += "\(field.key.utf8.count):\(field.key)="; field.value.appendKeyText(to: &text); text += "," }
            text += "}"
        }
    }
}
