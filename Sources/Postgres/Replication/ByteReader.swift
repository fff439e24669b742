/// Reads the big-endian fields of PostgreSQL's protocols from bytes. Every
/// read checks the length first: a truncated message is an error, never a
/// crash.
public struct ByteReader {
    public let bytes: ArraySlice<UInt8>
    public private(set) var offset: Int

    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        offset = bytes.startIndex
    }

    public init(_ bytes: [UInt8]) {
        self.init(bytes[...])
    }

    public var remaining: Int { bytes.endIndex - offset }
    public var isAtEnd: Bool { offset >= bytes.endIndex }

    public mutating func uint8(_ field: StaticString = "byte") throws -> UInt8 {
        try need(1, field)
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func int16(_ field: StaticString = "int16") throws -> Int16 {
        Int16(bitPattern: UInt16(try unsigned(2, field)))
    }

    public mutating func int32(_ field: StaticString = "int32") throws -> Int32 {
        Int32(bitPattern: UInt32(try unsigned(4, field)))
    }

    public mutating func uint32(_ field: StaticString = "uint32") throws -> UInt32 {
        UInt32(try unsigned(4, field))
    }

    public mutating func int64(_ field: StaticString = "int64") throws -> Int64 {
        Int64(bitPattern: try unsigned(8, field))
    }

    public mutating func uint64(_ field: StaticString = "uint64") throws -> UInt64 {
        try unsigned(8, field)
    }

    /// A NUL-terminated string.
    public mutating func cString(_ field: StaticString = "string") throws -> String {
        guard let end = bytes[offset...].firstIndex(of: 0) else {
            throw ProtocolError.truncated(field: "\(field)", at: offset - bytes.startIndex)
        }
        defer { offset = end + 1 }
        return String(decoding: bytes[offset..<end], as: UTF8.self)
    }

    public mutating func bytes(_ count: Int, _ field: StaticString = "bytes") throws -> ArraySlice<UInt8> {
        guard count >= 0 else { throw ProtocolError.invalid("negative length \(count) for \(field)") }
        try need(count, field)
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    private mutating func unsigned(_ size: Int, _ field: StaticString) throws -> UInt64 {
        try need(size, field)
        var value: UInt64 = 0
        for index in offset..<(offset + size) {
            value = value << 8 | UInt64(bytes[index])
        }
        offset += size
        return value
    }

    private func need(_ count: Int, _ field: StaticString) throws {
        if remaining < count {
            throw ProtocolError.truncated(field: "\(field)", at: offset - bytes.startIndex)
        }
    }
}

/// Appends big-endian fields, for the messages a client sends.
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func uint8(_ value: UInt8) { bytes.append(value) }

    public mutating func int64(_ value: Int64) { uint64(UInt64(bitPattern: value)) }

    public mutating func uint64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }
}

/// A message that does not follow the protocol.
public enum ProtocolError: Error, Equatable, CustomStringConvertible {
    case truncated(field: String, at: Int)
    case unknownMessage(UInt8)
    case invalid(String)

    public var description: String {
        switch self {
        case let .truncated(field, at): "truncated message: \(field) missing at byte \(at)"
        case let .unknownMessage(tag): "unknown message type \(tag < 128 && tag >= 32 ? "'\(Character(UnicodeScalar(tag)))'" : "\(tag)")"
        case let .invalid(reason): "invalid message: \(reason)"
        }
    }
}
