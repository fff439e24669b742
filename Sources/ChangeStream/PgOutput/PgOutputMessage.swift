import Postgres

/// One message of the pgoutput plugin (PostgreSQL's built-in logical
/// decoding output), decoded from the bytes of an XLogData message. Each kind
/// is a small type that decodes itself; `decode` dispatches on the first byte.
public enum PgOutputMessage: Equatable, Sendable {
    case begin(Begin)
    case commit(Commit)
    case origin(Origin)
    case relation(Relation)
    case type(TypeMessage)
    case insert(Insert)
    case update(Update)
    case delete(Delete)
    case truncate(Truncate)
    case message(LogicalMessage)
    case streamStart(StreamStart)
    case streamStop
    case streamCommit(StreamCommit)
    case streamAbort(StreamAbort)

    /// Decodes one message. Inside a streamed block (between Stream Start and
    /// Stream Stop, protocol 2), data messages carry their transaction's xid
    /// first; `streaming` says whether we are in such a block.
    public static func decode(_ bytes: ArraySlice<UInt8>, streaming: Bool = false) throws -> PgOutputMessage {
        var reader = ByteReader(bytes)
        let tag = try reader.uint8("message type")
        func xid() throws -> UInt32? { streaming ? try reader.uint32("xid") : nil }
        let message: PgOutputMessage
        switch tag {
        case UInt8(ascii: "B"): message = .begin(try Begin(&reader))
        case UInt8(ascii: "C"): message = .commit(try Commit(&reader))
        case UInt8(ascii: "O"): message = .origin(try Origin(&reader))
        case UInt8(ascii: "R"): message = .relation(try Relation(&reader, xid: xid()))
        case UInt8(ascii: "Y"): message = .type(try TypeMessage(&reader, xid: xid()))
        case UInt8(ascii: "I"): message = .insert(try Insert(&reader, xid: xid()))
        case UInt8(ascii: "U"): message = .update(try Update(&reader, xid: xid()))
        case UInt8(ascii: "D"): message = .delete(try Delete(&reader, xid: xid()))
        case UInt8(ascii: "T"): message = .truncate(try Truncate(&reader, xid: xid()))
        case UInt8(ascii: "M"): message = .message(try LogicalMessage(&reader, xid: xid()))
        case UInt8(ascii: "S"): message = .streamStart(try StreamStart(&reader))
        case UInt8(ascii: "E"): message = .streamStop
        case UInt8(ascii: "c"): message = .streamCommit(try StreamCommit(&reader))
        case UInt8(ascii: "A"): message = .streamAbort(try StreamAbort(&reader))
        default: throw ProtocolError.unknownMessage(tag)
        }
        if !reader.isAtEnd {
            throw ProtocolError.invalid("\(reader.remaining) unexpected bytes after message '\(Character(UnicodeScalar(tag)))'")
        }
        return message
    }
}

/// 'B': a transaction begins. Its final LSN is the LSN of its commit record,
/// known from the start, so every change can be named before the commit arrives.
public struct Begin: Equatable, Sendable {
    public var finalLSN: LSN
    public var commitTime: PostgresTimestamp
    public var xid: UInt32

    public init(finalLSN: LSN, commitTime: PostgresTimestamp, xid: UInt32) {
        self.finalLSN = finalLSN
        self.commitTime = commitTime
        self.xid = xid
    }

    init(_ reader: inout ByteReader) throws {
        finalLSN = LSN(try reader.uint64("final LSN"))
        commitTime = try reader.int64("commit time")
        xid = try reader.uint32("xid")
    }
}

/// 'C': the transaction committed; `endLSN` is where the next one starts.
public struct Commit: Equatable, Sendable {
    public var flags: UInt8
    public var commitLSN: LSN
    public var endLSN: LSN
    public var commitTime: PostgresTimestamp

    public init(flags: UInt8 = 0, commitLSN: LSN, endLSN: LSN, commitTime: PostgresTimestamp) {
        self.flags = flags
        self.commitLSN = commitLSN
        self.endLSN = endLSN
        self.commitTime = commitTime
    }

    init(_ reader: inout ByteReader) throws {
        flags = try reader.uint8("commit flags")
        commitLSN = LSN(try reader.uint64("commit LSN"))
        endLSN = LSN(try reader.uint64("end LSN"))
        commitTime = try reader.int64("commit time")
    }
}

/// 'O': the transaction came from another node (replication origin).
public struct Origin: Equatable, Sendable {
    public var lsn: LSN
    public var name: String

    init(_ reader: inout ByteReader) throws {
        lsn = LSN(try reader.uint64("origin LSN"))
        name = try reader.cString("origin name")
    }
}

/// 'R': a table's shape, sent before its first change and again after it changes.
public struct Relation: Equatable, Sendable {
    public struct Column: Equatable, Sendable {
        public var isKey: Bool
        public var name: String
        public var typeOID: UInt32
        public var typeModifier: Int32

        public init(isKey: Bool, name: String, typeOID: UInt32, typeModifier: Int32 = -1) {
            self.isKey = isKey
            self.name = name
            self.typeOID = typeOID
            self.typeModifier = typeModifier
        }
    }

    public var xid: UInt32?
    public var oid: UInt32
    public var namespace: String
    public var name: String
    /// REPLICA IDENTITY: d default (primary key), n nothing, f full, i index.
    public var replicaIdentity: UInt8
    public var columns: [Column]

    public init(xid: UInt32? = nil, oid: UInt32, namespace: String, name: String, replicaIdentity: UInt8, columns: [Column]) {
        self.xid = xid
        self.oid = oid
        self.namespace = namespace
        self.name = name
        self.replicaIdentity = replicaIdentity
        self.columns = columns
    }

    init(_ reader: inout ByteReader, xid: UInt32?) throws {
        self.xid = xid
        oid = try reader.uint32("relation OID")
        namespace = try reader.cString("namespace")
        name = try reader.cString("relation name")
        replicaIdentity = try reader.uint8("replica identity")
        let count = try reader.int16("column count")
        guard count >= 0 else { throw ProtocolError.invalid("negative column count \(count)") }
        columns = try (0..<Int(count)).map { _ in
            Column(isKey: try reader.uint8("column flags") & 1 == 1, name: try reader.cString("column name"),
                   typeOID: try reader.uint32("column type"), typeModifier: try reader.int32("column type modifier"))
        }
    }
}

/// 'Y': a data type that is not built in, named once before its first use.
public struct TypeMessage: Equatable, Sendable {
    public var xid: UInt32?
    public var oid: UInt32
    public var namespace: String
    public var name: String

    init(_ reader: inout ByteReader, xid: UInt32?) throws {
        self.xid = xid
        oid = try reader.uint32("type OID")
        namespace = try reader.cString("type namespace")
        name = try reader.cString("type name")
    }
}

/// One column's value in a tuple.
public enum TupleValue: Equatable, Sendable {
    case null
    /// A TOASTed value the change did not touch: not sent.
    case unchangedToast
    case text(ArraySlice<UInt8>)
    case binary(ArraySlice<UInt8>)

    public var text: String? {
        if case let .text(bytes) = self { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }
}

/// TupleData: the values of a row, in the relation's column order.
public struct TupleData: Equatable, Sendable {
    public var values: [TupleValue]

    public init(values: [TupleValue]) { self.values = values }

    init(_ reader: inout ByteReader) throws {
        let count = try reader.int16("tuple column count")
        guard count >= 0 else { throw ProtocolError.invalid("negative tuple column count \(count)") }
        var values: [TupleValue] = []
        values.reserveCapacity(Int(count))
        for _ in 0..<count {
            switch try reader.uint8("tuple value kind") {
            case UInt8(ascii: "n"): values.append(.null)
            case UInt8(ascii: "u"): values.append(.unchangedToast)
            case UInt8(ascii: "t"): values.append(.text(try reader.bytes(Int(try reader.int32("value length")), "value")))
            case UInt8(ascii: "b"): values.append(.binary(try reader.bytes(Int(try reader.int32("value length")), "value")))
            case let kind: throw ProtocolError.invalid("unknown tuple value kind \(kind)")
            }
        }
        self.values = values
    }
}

/// 'I': a row was inserted.
public struct Insert: Equatable, Sendable {
    public var xid: UInt32?
    public var relationOID: UInt32
    public var new: TupleData

    init(_ reader: inout ByteReader, xid: UInt32?) throws {
        self.xid = xid
        relationOID = try reader.uint32("relation OID")
        guard try reader.uint8("new tuple marker") == UInt8(ascii: "N") else {
            throw ProtocolError.invalid("insert without a new tuple")
        }
        new = try TupleData(&reader)
    }
}

/// 'U': a row was updated. The old row comes whole with REPLICA IDENTITY
/// FULL ('O'), as its key when the key changed ('K'), or not at all.
public struct Update: Equatable, Sendable {
    public var xid: UInt32?
    public var relationOID: UInt32
    public var oldKey: TupleData?
    public var old: TupleData?
    public var new: TupleData

    init(_ reader: inout ByteReader, xid: UInt32?) throws {
        self.xid = xid
        relationOID = try reader.uint32("relation OID")
        var marker = try reader.uint8("update tuple marker")
        if marker == UInt8(ascii: "K") || marker == UInt8(ascii: "O") {
            let tuple = try TupleData(&reader)
            if marker == UInt8(ascii: "K") { oldKey = tuple } else { old = tuple }
            marker = try reader.uint8("new tuple marker")
        }
        guard marker == UInt8(ascii: "N") else { throw ProtocolError.invalid("update without a new tuple") }
        new = try TupleData(&reader)
    }
}

/// 'D': a row was deleted; the old row whole ('O') or its key ('K').
public struct Delete: Equatable, Sendable {
    public var xid: UInt32?
    public var relationOID: UInt32
    public var oldKey: TupleData?
    public var old: TupleData?

    init(_ reader: inout ByteReader, xid: UInt32?) throws {
        self.xid = xid
        relationOID = try reader.uint32("relation OID")
        switch try reader.uint8("delete tuple marker") {
        case UInt8(ascii: "K"): oldKey = try TupleData(&reader)
        case UInt8(ascii: "O"): old = try TupleData(&reader)
        case let marker: throw ProtocolError.invalid("delete with tuple marker \(marker)")
        }
    }
}

/// 'T': tables were truncated.
public struct Truncate: Equatable, Sendable {
    public var xid: UInt32?
    public var cascade: Bool
    public var restartIdentity: Bool
    public var relationOIDs: [UInt32]

    init(_ reader: inout ByteReader, xid: UInt32?) throws {
        self.xid = xid
        let count = try reader.int32("relation count")
        guard count >= 0 else { throw ProtocolError.invalid("negative relation count \(count)") }
        let options = try reader.uint8("truncate options")
        cascade = options & 1 != 0
        restartIdentity = options & 2 != 0
        relationOIDs = try (0..<Int(count)).map { _ in try reader.uint32("relation OID") }
    }
}

/// 'M': a message written with pg_logical_emit_message().
public struct LogicalMessage: Equatable, Sendable {
    public var xid: UInt32?
    public var transactional: Bool
    public var lsn: LSN
    public var prefix: String
    public var content: ArraySlice<UInt8>

    init(_ reader: inout ByteReader, xid: UInt32?) throws {
        self.xid = xid
        transactional = try reader.uint8("message flags") & 1 == 1
        lsn = LSN(try reader.uint64("message LSN"))
        prefix = try reader.cString("message prefix")
        content = try reader.bytes(Int(try reader.int32("message length")), "message content")
    }
}

/// 'S': a block of a large transaction still in progress (protocol 2).
public struct StreamStart: Equatable, Sendable {
    public var xid: UInt32
    public var firstSegment: Bool

    init(_ reader: inout ByteReader) throws {
        xid = try reader.uint32("xid")
        firstSegment = try reader.uint8("first segment") == 1
    }
}

/// 'c': a streamed transaction committed.
public struct StreamCommit: Equatable, Sendable {
    public var xid: UInt32
    public var flags: UInt8
    public var commitLSN: LSN
    public var endLSN: LSN
    public var commitTime: PostgresTimestamp

    init(_ reader: inout ByteReader) throws {
        xid = try reader.uint32("xid")
        flags = try reader.uint8("commit flags")
        commitLSN = LSN(try reader.uint64("commit LSN"))
        endLSN = LSN(try reader.uint64("end LSN"))
        commitTime = try reader.int64("commit time")
    }
}

/// 'A': a streamed transaction, or one of its subtransactions, aborted.
public struct StreamAbort: Equatable, Sendable {
    public var xid: UInt32
    public var subtransactionXid: UInt32

    init(_ reader: inout ByteReader) throws {
        xid = try reader.uint32("xid")
        subtransactionXid = try reader.uint32("subtransaction xid")
    }
}
