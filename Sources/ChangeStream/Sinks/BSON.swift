import CBSON

/// Builds BSON documents with libbson from event documents: Int64 stays
/// Int64, numeric becomes Decimal128, dates BSON dates, json real documents.
enum BSON {
    /// A new bson_t holding `document`; the caller destroys it.
    static func make(_ document: EventDocument) -> OpaquePointer {
        let bson = bson_new()!
        append(document, to: bson)
        return bson
    }

    static func append(_ document: EventDocument, to bson: OpaquePointer) {
        for field in document.fields {
            append(field.value, key: field.key, to: bson)
        }
    }

    static func append(_ value: EventValue, key: String, to bson: OpaquePointer) {
        let keyLength = Int32(key.utf8.count)
        switch value {
        case .null: bson_append_null(bson, key, keyLength)
        case let .bool(flag): bson_append_bool(bson, key, keyLength, flag)
        case let .int32(number): bson_append_int32(bson, key, keyLength, number)
        case let .int64(number): bson_append_int64(bson, key, keyLength, number)
        case let .double(number): bson_append_double(bson, key, keyLength, number)
        case let .decimal(text):
            var decimal = bson_decimal128_t()
            if bson_decimal128_from_string(text, &decimal) {
                bson_append_decimal128(bson, key, keyLength, &decimal)
            } else {
                appendString(text, key: key, to: bson)
            }
        case let .string(text): appendString(text, key: key, to: bson)
        case let .date(milliseconds): bson_append_date_time(bson, key, keyLength, milliseconds)
        case let .binary(subtype, bytes):
            _ = bytes.withUnsafeBufferPointer {
                bson_append_binary(bson, key, keyLength, bson_subtype_t(UInt32(subtype)), $0.baseAddress, UInt32(bytes.count))
            }
        case let .json(text): appendStrictJSON(text, key: key, to: bson)
        case let .array(items):
            let child = bson_new()!
            defer { bson_destroy(child) }
            for (index, item) in items.enumerated() {
                append(item, key: String(index), to: child)
            }
            bson_append_array(bson, key, keyLength, child)
        case let .document(document):
            let child = make(document)
            defer { bson_destroy(child) }
            bson_append_document(bson, key, keyLength, child)
        }
    }

    static func appendString(_ text: String, key: String, to bson: OpaquePointer) {
        _ = text.withCString { value in
            bson_append_utf8(bson, key, Int32(key.utf8.count), value, Int32(text.utf8.count))
        }
    }

    /// Runs `body` with a bson_t that libmongoc initializes (a reply).
    static func withReply<T>(_ body: (OpaquePointer) throws -> T) rethrows -> T {
        let reply = AlignedStorage()
        defer { bson_destroy(reply.pointer) }
        return try body(reply.pointer)
    }

    /// The message of a bson_error_t.
    static func message(_ error: bson_error_t) -> String {
        var error = error
        return withUnsafeBytes(of: &error.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

/// Zeroed, 128-byte aligned storage for a bson_t or bson_iter_t: libbson
/// aligns both to 128 bytes, which Swift cannot declare, so they come through
/// as opaque pointers.
final class AlignedStorage {
    let pointer: OpaquePointer
    private let raw: UnsafeMutableRawPointer

    init() {
        raw = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: 128)
        pointer = OpaquePointer(raw)
    }

    deinit { raw.deallocate() }
}
