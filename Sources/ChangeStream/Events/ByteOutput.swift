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
/// events as Extended JSON.
final class JSONBuffer: ByteOutput {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }

    @inline(__always)
    func append(_ byte: UInt8) {
        if count == capacity { grow(to: count + 1) }
        base[count] = byte
        count += 1
    }

    @inline(__always)
    func append(contentsOf bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        if count + bytes.count > capacity { grow(to: count + bytes.count) }
        (base + count).update(from: source, count: bytes.count)
        count += bytes.count
    }

    /// Appends bytes of another buffer (`range` must lie within it).
    func append(from other: JSONBuffer, _ range: Range<Int>) {
        append(contentsOf: UnsafeBufferPointer(start: other.base + range.lowerBound, count: range.count))
    }

    @inline(__always)
    func append(static piece: StaticString) {
        piece.withUTF8Buffer { append(contentsOf: $0) }
    }

    func append(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append(contentsOf: $0) }
    }

    func removeAll() { count = 0 }

    var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }

    private func grow(to needed: Int) {
        let newCapacity = max(capacity * 2, needed)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }
}
