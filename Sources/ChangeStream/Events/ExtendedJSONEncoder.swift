import Postgres

/// The JSON of one row of a change, reused from event to event: each
/// column's value as Extended JSON, and where it lies. State behind a
/// pointer, like JSONBuffer's, so that the hot path pays no exclusivity checks.
final class EncodedRow {
    private struct State {
        var present = false
        var columns = 0
        /// The range of each column's value in `bytes`; start -1 when the row lacks the column.
        var starts: UnsafeMutablePointer<Int> = .allocate(capacity: 0)
        var ends: UnsafeMutablePointer<Int> = .allocate(capacity: 0)
        var capacity = 0
        /// Columns whose JSON loses precision, with their text (for metadata.exact).
        var lossy: [(column: Int, text: ArraySlice<UInt8>)] = []
    }

    let bytes = JSONBuffer()
    private let state: UnsafeMutablePointer<State>

    init() {
        state = .allocate(capacity: 1)
        state.initialize(to: State())
    }

    deinit {
        state.pointee.starts.deallocate()
        state.pointee.ends.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    /// Whether the change has this row at all (an insert has no old row).
    var present: Bool {
        get { state.pointee.present }
        set { state.pointee.present = newValue }
    }

    var columns: Int { state.pointee.columns }

    var lossy: [(column: Int, text: ArraySlice<UInt8>)] { state.pointee.lossy }

    var hasLossy: Bool { state.pointee.present && !state.pointee.lossy.isEmpty }

    func reset(columns: Int) {
        bytes.removeAll()
        if columns > state.pointee.capacity {
            state.pointee.starts.deallocate()
            state.pointee.ends.deallocate()
            state.pointee.starts = .allocate(capacity: columns)
            state.pointee.ends = .allocate(capacity: columns)
            state.pointee.capacity = columns
        }
        state.pointee.starts.update(repeating: -1, count: columns)
        state.pointee.columns = columns
        if !state.pointee.lossy.isEmpty { state.pointee.lossy.removeAll(keepingCapacity: true) }
        state.pointee.present = true
    }

    /// Records that `column`'s value is the bytes from `start` to the end so far.
    func setValue(_ column: Int, from start: Int) {
        state.pointee.starts[column] = start
        state.pointee.ends[column] = bytes.count
    }

    func addLossy(_ column: Int, _ text: ArraySlice<UInt8>) {
        state.pointee.lossy.append((column, text))
    }

    func has(_ column: Int) -> Bool { state.pointee.present && state.pointee.starts[column] >= 0 }

    func appendValue(_ column: Int, to output: JSONBuffer) {
        guard has(column) else {
            output.append(static: JSONBytes.null)
            return
        }
        output.append(from: bytes, state.pointee.starts[column]..<state.pointee.ends[column])
    }
}

/// Fixed pieces of an event's JSON.
enum JSONBytes {
    static let null: StaticString = "null"
    static let separator: StaticString = ", "
    static let id: StaticString = #"{"_id": "#
    static let entityType: StaticString = #", "entityType": "#
    static let entityID: StaticString = #", "entityId": "#
    static let changesetID: StaticString = #", "changesetId": "#
    static let txID: StaticString = #", "txId": "#
    static let timestamp: StaticString = #", "timestamp": "#
    static let userID: StaticString = #", "userId": "#
    static let operation: StaticString = #", "operation": "#
    static let changes: StaticString = #", "changes": "#
    static let from: StaticString = #"{"from": "#
    static let to: StaticString = #", "to": "#
    static let before: StaticString = #", "before": "#
    static let after: StaticString = #", "after": "#
    static let metadata: StaticString = #", "metadata": {"lsn": ""#
    static let commitLSN: StaticString = #"", "commitLsn": "#
    static let slot: StaticString = #", "slot": "#
    static let table: StaticString = #", "table": "#
    static let exact: StaticString = #", "exact": {"#
    static let decimal: StaticString = #"{"$numberDecimal": "#
    static let trueBytes: StaticString = "true"
    static let falseBytes: StaticString = "false"

    /// `"key": `, escaped.
    static func key(_ name: String) -> [UInt8] {
        var bytes: [UInt8] = []
        ExtendedJSON.appendString(name, to: &bytes)
        bytes.append(contentsOf: ": ".utf8)
        return bytes
    }

    static func string(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        ExtendedJSON.appendString(text, to: &bytes)
        return bytes
    }
}

/// Events as lines of relaxed Extended JSON, written straight from the row's
/// bytes without building a document first: the JSON-lines sink's encoder.
/// Byte for byte what `ExtendedJSON` writes for the document `DocumentEncoder`
/// makes of the same change (a test holds the two together).
public final class ExtendedJSONEncoder: EventEncoder {
    private let decoder: ValueDecoder
    private let slotJSON: [UInt8]
    /// Reused by every event.
    private let beforeRow = EncodedRow()
    private let afterRow = EncodedRow()
    /// Where the events go, one line each: the current batch's buffer.
    private var chunk = JSONBuffer(capacity: 64 * 1024)

    public init(_ context: EncoderContext) {
        decoder = context.decoder
        slotJSON = JSONBytes.string(context.slot)
    }

    /// A new buffer for the events from now on: the one before belongs to the batch handed to the sink.
    public func startBatch() {
        chunk = JSONBuffer(capacity: max(64 * 1024, chunk.count + chunk.count / 8))
    }

    private static let operations: [RowChange.Operation: [UInt8]] = [
        .insert: JSONBytes.string("insert"), .update: JSONBytes.string("update"),
        .delete: JSONBytes.string("delete"), .truncate: JSONBytes.string("truncate"),
    ]

    /// One change as a line of Extended JSON: the same fields, in the same
    /// order and with the same values, as `DocumentEncoder` builds as a document.
    public func encode(_ change: RowChange) -> ChangeEvent {
        let info = change.info, lsn = change.lsn, before = change.before, after = change.after, old = change.old
        let current = change.transaction, position = change.position
        let operation = Self.operations[change.operation]!
        let columns = info.relation.columns.count

        beforeRow.present = false
        afterRow.present = false
        if let before { encode(info, before, old: nil, into: beforeRow, columns: columns) }
        if let after { encode(info, after, old: old, into: afterRow, columns: columns) }

        var output = chunk
        let start = output.count
        output.append(static: JSONBytes.id)
        output.append(UInt8(ascii: "\""))
        var prefix = current.idPrefix
        prefix.withUTF8 { ExtendedJSON.appendEscaped(bytes: $0, to: &output) }
        ChangeEvent.appendPosition(position, to: &output)
        output.append(UInt8(ascii: "\""))

        output.append(static: JSONBytes.entityType)
        output.append(bytes: info.tableJSON)
        output.append(static: JSONBytes.entityID)
        let source = after != nil ? afterRow : beforeRow
        if !source.present || info.keyColumns.isEmpty {
            output.append(static: JSONBytes.null)
        } else if info.keyColumns.count == 1 {
            source.appendValue(info.keyColumns[0], to: output)
        } else {
            output.append(UInt8(ascii: "{"))
            for (index, column) in info.keyColumns.enumerated() {
                if index > 0 { output.append(static: JSONBytes.separator) }
                output.append(bytes: info.jsonKeys[column])
                source.appendValue(column, to: output)
            }
            output.append(UInt8(ascii: "}"))
        }
        // changesetId, txId, timestamp and userId: the same for every event
        // of the transaction until its context is set again.
        if let context = current.contextJSON {
            output.append(bytes: context)
        } else {
            var context: [UInt8] = []
            context.append(static: JSONBytes.changesetID)
            ExtendedJSON.appendString(current.changesetID ?? current.xidText, to: &context)
            context.append(static: JSONBytes.txID)
            ExtendedJSON.appendInteger(Int64(current.xid), to: &context)
            context.append(static: JSONBytes.timestamp)
            ExtendedJSON.append(.date(current.commitMilliseconds), to: &context)
            context.append(static: JSONBytes.userID)
            if let user = current.userID { ExtendedJSON.appendString(user, to: &context) } else { context.append(static: JSONBytes.null) }
            current.contextJSON = context
            output.append(bytes: context)
        }
        output.append(static: JSONBytes.operation)
        output.append(bytes: operation)

        output.append(static: JSONBytes.changes)
        if let old, let after {
            output.append(UInt8(ascii: "{"))
            var first = true
            EventBuilder.forEachChangedColumn(old: old, new: after, columns: columns) { column in
                if !first { output.append(static: JSONBytes.separator) }
                first = false
                output.append(bytes: info.jsonKeys[column])
                output.append(static: JSONBytes.from)
                beforeRow.appendValue(column, to: output)
                output.append(static: JSONBytes.to)
                afterRow.appendValue(column, to: output)
                output.append(UInt8(ascii: "}"))
            }
            output.append(UInt8(ascii: "}"))
        } else {
            output.append(static: JSONBytes.null)
        }
        output.append(static: JSONBytes.before)
        appendRow(beforeRow, info, to: &output)
        output.append(static: JSONBytes.after)
        appendRow(afterRow, info, to: &output)

        output.append(static: JSONBytes.metadata)
        appendLSN(lsn, to: &output)
        if let metadata = current.metadataJSON {
            output.append(bytes: metadata)
        } else {
            var metadata: [UInt8] = []
            metadata.append(static: JSONBytes.commitLSN)
            metadata.append(UInt8(ascii: "\""))
            appendLSN(current.commitLSN, to: &metadata)
            metadata.append(UInt8(ascii: "\""))
            metadata.append(static: JSONBytes.txID)
            ExtendedJSON.appendInteger(Int64(current.xid), to: &metadata)
            metadata.append(static: JSONBytes.slot)
            metadata.append(bytes: slotJSON)
            current.metadataJSON = metadata
            output.append(bytes: metadata)
        }
        output.append(static: JSONBytes.table)
        output.append(bytes: info.tableJSON)
        if beforeRow.hasLossy || afterRow.hasLossy {
            output.append(static: JSONBytes.exact)
            var first = true
            if beforeRow.present { appendExact(beforeRow, keys: info.exactBeforeKeys, first: &first, to: &output) }
            if afterRow.present { appendExact(afterRow, keys: info.exactAfterKeys, first: &first, to: &output) }
            output.append(UInt8(ascii: "}"))
        }
        output.append(static: "}}")
        let end = output.count
        output.append(UInt8(ascii: "\n"))
        return ChangeEvent(commitLSN: current.commitLSN, position: position, idPrefix: current.idPrefix,
                           chunk: output, range: start..<end)
    }

    /// `"before.column": "exact text"` of each column whose JSON loses precision.
    private func appendExact(_ row: EncodedRow, keys: [[UInt8]], first: inout Bool, to output: inout JSONBuffer) {
        for (column, text) in row.lossy {
            if !first { output.append(static: JSONBytes.separator) }
            first = false
            output.append(bytes: keys[column])
            appendText(text, to: &output)
        }
    }

    /// `{"column": value, ...}` of the columns the row has, or null without a row.
    private func appendRow(_ row: EncodedRow, _ info: EventBuilder.RelationInfo, to output: inout JSONBuffer) {
        guard row.present else {
            output.append(static: JSONBytes.null)
            return
        }
        output.append(UInt8(ascii: "{"))
        var first = true
        for column in 0..<row.columns where row.has(column) {
            if !first { output.append(static: JSONBytes.separator) }
            first = false
            output.append(bytes: info.jsonKeys[column])
            row.appendValue(column, to: output)
        }
        output.append(UInt8(ascii: "}"))
    }

    /// Each column's value as JSON; TOAST values the change did not touch come from the old row.
    private func encode(_ info: EventBuilder.RelationInfo, _ tuple: TupleData, old: TupleData?, into row: EncodedRow, columns: Int) {
        row.reset(columns: columns)
        var output = row.bytes
        for index in 0..<min(columns, tuple.values.count) {
            var value = tuple.values[index]
            if case .unchangedToast = value, let old, index < old.values.count { value = old.values[index] }
            let start = output.count
            switch value {
            case .unchangedToast: continue
            case .null: output.append(static: JSONBytes.null)
            case let .binary(bytes):
                ExtendedJSON.append(.binary(subtype: BinarySubtype.generic, bytes: Array(bytes)), to: &output)
            case let .text(bytes):
                if appendJSON(bytes, plan: info.plans[index], to: &output) { row.addLossy(index, bytes) }
            }
            row.setValue(index, from: start)
        }
    }

    /// Appends one value as Extended JSON; true when the JSON loses precision
    /// (its text then goes into metadata.exact). Common types are written
    /// from their bytes; the rest, and anything unusual, go through ValueDecoder.
    private func appendJSON(_ bytes: ArraySlice<UInt8>, plan: ValueDecoder.Plan, to output: inout JSONBuffer) -> Bool {
        bytes.withUnsafeBufferPointer { Self.appendJSON($0, plan: plan, decoder: decoder, to: &output) }
    }

    /// appendJSON for any caller with a decoder (the backfill writes snapshot rows this way too).
    static func appendJSON(_ text: UnsafeBufferPointer<UInt8>, plan: ValueDecoder.Plan, decoder: ValueDecoder,
                           to output: inout JSONBuffer) -> Bool {
        if case let .scalar(oid) = plan {
            let fast: Bool? = {
                switch oid {
                case TypeOID.bool:
                    output.append(static: text.count == 1 && text[0] == UInt8(ascii: "t") ? JSONBytes.trueBytes : JSONBytes.falseBytes)
                    return false
                case TypeOID.int2, TypeOID.int4:
                    guard let number = Self.integer(text), number >= Int64(Int32.min), number <= Int64(Int32.max) else { return nil }
                    ExtendedJSON.appendInteger(number, to: &output)
                    return false
                case TypeOID.int8, TypeOID.oid:
                    guard let number = Self.integer(text) else { return nil }
                    ExtendedJSON.appendInteger(number, to: &output)
                    return false
                case TypeOID.numeric:
                    guard Self.isASCII(text) else { return nil }
                    if Self.fitsDecimal128(text) {
                        output.append(static: JSONBytes.decimal)
                        ExtendedJSON.appendString(bytes: text, to: &output)
                        output.append(UInt8(ascii: "}"))
                    } else {
                        ExtendedJSON.appendString(bytes: text, to: &output)
                    }
                    return false
                case TypeOID.timestamptz, TypeOID.timestamp, TypeOID.date:
                    guard let (milliseconds, exact) = ValueDecoder.instant(utf8: text) else { return nil }
                    ExtendedJSON.append(.date(milliseconds), to: &output)
                    return !exact
                case TypeOID.json, TypeOID.jsonb:
                    guard Self.isASCII(text) else { return nil }
                    ExtendedJSON.appendJSONValue(bytes: text, to: &output)
                    return false
                case TypeOID.float4, TypeOID.float8, TypeOID.bytea, TypeOID.uuid:
                    return nil
                default:
                    guard Self.isASCII(text) else { return nil }
                    ExtendedJSON.appendString(bytes: text, to: &output)
                    return false
                }
            }()
            if let fast { return fast }
        }
        let decoded = decoder.decode(String(decoding: text, as: UTF8.self), plan: plan)
        ExtendedJSON.append(decoded.value, to: &output)
        return decoded.exactText != nil
    }

    /// The text of a value as a JSON string (what the document's exact text gives).
    private func appendText(_ bytes: ArraySlice<UInt8>, to output: inout some ByteOutput) {
        bytes.withUnsafeBufferPointer { text in
            if Self.isASCII(text) { ExtendedJSON.appendString(bytes: text, to: &output) }
            else { ExtendedJSON.appendString(String(decoding: text, as: UTF8.self), to: &output) }
        }
    }

    /// `X/Y` in uppercase hexadecimal, as LSN.description prints it.
    private func appendLSN(_ lsn: LSN, to output: inout some ByteOutput) {
        appendHex(lsn.value >> 32, to: &output)
        output.append(UInt8(ascii: "/"))
        appendHex(lsn.value & 0xFFFF_FFFF, to: &output)
    }

    private func appendHex(_ value: UInt64, to output: inout some ByteOutput) {
        var shift = 60
        while shift > 0 && (value >> UInt64(shift)) == 0 { shift -= 4 }
        while shift >= 0 {
            let nibble = UInt8((value >> UInt64(shift)) & 15)
            output.append(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "A") + nibble - 10)
            shift -= 4
        }
    }

    static func isASCII(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        for byte in text where byte >= 0x80 { return false }
        return true
    }

    /// A decimal integer as Swift's Int64(String) reads it, for the digits PostgreSQL prints; nil otherwise.
    static func integer(_ text: UnsafeBufferPointer<UInt8>) -> Int64? {
        var index = 0
        let negative = !text.isEmpty && text[0] == UInt8(ascii: "-")
        if negative { index = 1 }
        guard index < text.count, text.count - index <= 19 else { return nil }
        var magnitude: UInt64 = 0
        while index < text.count {
            let digit = text[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            magnitude = magnitude * 10 + UInt64(digit)
            index += 1
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return Int64(bitPattern: 0 &- magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// What ValueDecoder.decimal decides (Decimal128Text, one rule for both paths).
    static func fitsDecimal128(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        Decimal128Text.holds(text)
    }
}
