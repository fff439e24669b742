/// Microseconds since 2000-01-01 00:00:00 UTC, the replication protocol's clock.
public typealias PostgresTimestamp = Int64

public enum PostgresClock {
    /// Seconds from the Unix epoch to PostgreSQL's epoch (2000-01-01).
    public static let unixEpochOffset: Int64 = 946_684_800

    public static func fromUnix(microseconds: Int64) -> PostgresTimestamp {
        microseconds - unixEpochOffset * 1_000_000
    }

    public static func toUnixMilliseconds(_ timestamp: PostgresTimestamp) -> Int64 {
        (timestamp + unixEpochOffset * 1_000_000) / 1000
    }
}

/// What the server sends inside CopyData during logical replication.
public enum ReplicationMessage: Equatable, Sendable {
    /// 'w': WAL data; for logical replication, one output plugin message.
    case xlogData(XLogData)
    /// 'k': the server's keepalive, possibly asking for an immediate reply.
    case keepalive(PrimaryKeepalive)

    public static func decode(_ bytes: ArraySlice<UInt8>) throws -> ReplicationMessage {
        var reader = ByteReader(bytes)
        switch try reader.uint8("message type") {
        case UInt8(ascii: "w"): return .xlogData(try XLogData(&reader))
        case UInt8(ascii: "k"): return .keepalive(try PrimaryKeepalive(&reader))
        case let tag: throw ProtocolError.unknownMessage(tag)
        }
    }
}

public struct XLogData: Equatable, Sendable {
    public var walStart: LSN
    public var walEnd: LSN
    public var sendTime: PostgresTimestamp
    public var data: ArraySlice<UInt8>

    public init(walStart: LSN, walEnd: LSN, sendTime: PostgresTimestamp, data: ArraySlice<UInt8>) {
        self.walStart = walStart
        self.walEnd = walEnd
        self.sendTime = sendTime
        self.data = data
    }

    init(_ reader: inout ByteReader) throws {
        walStart = LSN(try reader.uint64("XLogData start"))
        walEnd = LSN(try reader.uint64("XLogData end"))
        sendTime = try reader.int64("XLogData send time")
        data = try reader.bytes(reader.remaining)
    }
}

public struct PrimaryKeepalive: Equatable, Sendable {
    public var walEnd: LSN
    public var sendTime: PostgresTimestamp
    public var replyRequested: Bool

    public init(walEnd: LSN, sendTime: PostgresTimestamp, replyRequested: Bool) {
        self.walEnd = walEnd
        self.sendTime = sendTime
        self.replyRequested = replyRequested
    }

    init(_ reader: inout ByteReader) throws {
        walEnd = LSN(try reader.uint64("keepalive end"))
        sendTime = try reader.int64("keepalive send time")
        replyRequested = try reader.uint8("keepalive reply flag") != 0
    }
}

/// 'r': the client's position report. `flush` is what the server may forget:
/// everything before it has been durably written by the client.
public struct StandbyStatusUpdate: Equatable, Sendable {
    public var written: LSN
    public var flushed: LSN
    public var applied: LSN
    public var clock: PostgresTimestamp
    public var replyRequested: Bool

    public init(written: LSN, flushed: LSN, applied: LSN, clock: PostgresTimestamp, replyRequested: Bool = false) {
        self.written = written
        self.flushed = flushed
        self.applied = applied
        self.clock = clock
        self.replyRequested = replyRequested
    }

    public var encoded: [UInt8] {
        var writer = ByteWriter()
        writer.uint8(UInt8(ascii: "r"))
        writer.uint64(written.value)
        writer.uint64(flushed.value)
        writer.uint64(applied.value)
        writer.int64(clock)
        writer.uint8(replyRequested ? 1 : 0)
        return writer.bytes
    }
}
