/// Where JSON is written: an array of bytes, or a `JSONBuffer`.
public protocol ByteOutput {
    mutating func append(_ byte: UInt8)
    mutating func append(contentsOf bytes: UnsafeBufferPointer<UInt8>)
}

extension ByteOutput {
    @inline(__always)
    mutating func append(static piece: StaticString) {
        piece.withUTF8Buffer { append(contentsOf: $0) }
    }

    mutating func append(utf8 text: String) {
        var text = text
        text.withUTF8 { append(contentsOf: $0) }
    }

    mutating func append(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append(contentsOf: $0) }
    }
}

extension Array: ByteOutput where Element == UInt8 {}

/// A growable run of bytes, reused from event to event, without an array's
/// uniqueness and capacity checks on every append: the hot path of building
/// events as Extended JSON. Its state sits behind a pointer held by a `let`,
/// so that reading and moving it costs no run-time exclusivity check (a
/// class's `var` would cost one on every append).
///
/// Unchecked Sendable: one thread writes a buffer, then hands it over whole
/// (a batch's events, to the writer thread), and nobody writes it again.
final class JSONBuffer: ByteOutput, @unchecked Sendable {
    private struct State {
        var base: UnsafeMutablePointer<UInt8>
        var count: Int
        var capacity: Int
    }

    private let state: UnsafeMutablePointer<State>

    init(capacity: Int = 4096) {
        state = .allocate(capacity: 1)
        state.initialize(to: State(base: .allocate(capacity: capacity), count: 0, capacity: capacity))
    }

    deinit {
        state.pointee.base.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    var count: Int { state.pointee.count }

    var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: state.pointee.base, count: state.pointee.count) }

    @inline(__always)
    func append(_ byte: UInt8) {
        if state.pointee.count == state.pointee.capacity { grow(to: state.pointee.count + 1) }
        state.pointee.base[state.pointee.count] = byte
        state.pointee.count += 1
    }

    @inline(__always)
    func append(contentsOf bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        let count = state.pointee.count
        if count + bytes.count > state.pointee.capacity { grow(to: count + bytes.count) }
        (state.pointee.base + count).update(from: source, count: bytes.count)
        state.pointee.count = count + bytes.count
    }

    /// Appends bytes of another buffer (`range` must lie within it).
    func append(from other: JSONBuffer, _ range: Range<Int>) {
        append(contentsOf: UnsafeBufferPointer(start: other.state.pointee.base + range.lowerBound, count: range.count))
    }

    @inline(__always)
    func append(static piece: StaticString) {
        piece.withUTF8Buffer { append(contentsOf: $0) }
    }

    func append(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append(contentsOf: $0) }
    }

    func removeAll() { state.pointee.count = 0 }

    private func grow(to needed: Int) {
        let capacity = max(state.pointee.capacity * 2, needed)
        let base = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        base.update(from: state.pointee.base, count: state.pointee.count)
        state.pointee.base.deallocate()
        state.pointee.base = base
        state.pointee.capacity = capacity
    }
}
