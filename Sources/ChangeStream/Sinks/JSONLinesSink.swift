import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Events as MongoDB Extended JSON, one per line, on stdout or in a file.
/// A file is fsynced before `write` returns. When a file is opened again it
/// is read back from the end: a line cut short by a crash is removed, and
/// events up to the last complete line are skipped when they come again.
public final class JSONLinesSink: EventSink {
    private let descriptor: Int32
    private let isFile: Bool
    /// The _id of the last line the file held when opened: events up to it
    /// are there already. Nil once the stream has gone past it.
    private var skipThrough: String?
    public let description: String

    /// Writes to standard output.
    public init() {
        descriptor = STDOUT_FILENO
        isFile = false
        description = "stdout"
    }

    /// Appends to `path`, creating it if needed.
    public init(path: String) throws {
        descriptor = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw SinkError("cannot open \(path): \(String(cString: strerror(errno)))", retryable: false)
        }
        isFile = true
        description = path
        skipThrough = try recoverTail()
    }

    deinit {
        if isFile { close(descriptor) }
    }

    public func makeEncoder(_ context: EncoderContext) -> EventEncoder { ExtendedJSONEncoder(context) }

    /// Reads the file's last line again, so that the events the stream sends
    /// again (written, not yet confirmed) are skipped. On stdout they appear twice.
    public func resume() throws {
        if isFile { skipThrough = try recoverTail() }
    }

    @discardableResult
    public func write(_ events: [ChangeEvent]) throws -> Int {
        // Events come in _id order: skip those the file already ends with.
        var first = 0
        if let written = skipThrough {
            while first < events.count && events[first].id <= written { first += 1 }
        }
        let batch = events[first...]
        guard let head = batch.first, let tail = batch.last else { return 0 }
        if let chunk = head.jsonChunk, Self.liesTogether(batch, in: chunk) {
            // The usual case: the batch's lines lie one after the other in its buffer.
            try writeAll(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: chunk.bytes[head.jsonRange.lowerBound...tail.jsonRange.upperBound])))
        } else {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(batch.count * 1024)
            for event in batch {
                if let chunk = event.jsonChunk {
                    bytes.append(contentsOf: UnsafeBufferPointer(rebasing: chunk.bytes[event.jsonRange]))
                } else {
                    ExtendedJSON.append(event.document, to: &bytes)
                }
                bytes.append(UInt8(ascii: "\n"))
            }
            try bytes.withUnsafeBytes { try writeAll($0) }
        }
        skipThrough = nil
        return batch.count
    }

    /// Whether every event's line is in `chunk`, each right after the one before.
    private static func liesTogether(_ batch: ArraySlice<ChangeEvent>, in chunk: JSONBuffer) -> Bool {
        var next = batch.first!.jsonRange.lowerBound
        for event in batch {
            guard event.jsonChunk === chunk, event.jsonRange.lowerBound == next else { return false }
            next = event.jsonRange.upperBound + 1
        }
        return true
    }

    /// Writes and fsyncs the whole batch, or, on a file, nothing: a write
    /// or fsync that fails part way (a full disk, say) is cut back off, so
    /// that the batch can be written again whole.
    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        let start = isFile ? lseek(descriptor, 0, SEEK_END) : -1
        do {
            try writeBytes(bytes)
            if isFile && fsync(descriptor) != 0 {
                throw SinkError("cannot fsync \(description): \(String(cString: strerror(errno)))")
            }
        } catch {
            if start >= 0 { _ = ftruncate(descriptor, start) }
            throw error
        }
    }

    private func writeBytes(_ buffer: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < buffer.count {
            let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw SinkError("cannot write to \(description): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// Truncates a partial last line and returns the _id of the last complete one.
    private func recoverTail() throws -> String? {
        let size = lseek(descriptor, 0, SEEK_END)
        guard size > 0 else { return nil }
        var end = size
        var tail: [UInt8] = []
        // Read backwards until the last two newlines (or the start) are in hand.
        while end > 0 {
            let chunk = min(Int(end), 65536)
            var buffer = [UInt8](repeating: 0, count: chunk)
            let read = pread(descriptor, &buffer, chunk, end - off_t(chunk))
            guard read == chunk else { throw SinkError("cannot read \(description)", retryable: false) }
            tail = buffer + tail
            end -= off_t(chunk)
            if tail.filter({ $0 == UInt8(ascii: "\n") }).count >= 2 { break }
        }
        var completeLength = tail.count
        if tail.last != UInt8(ascii: "\n") {
            completeLength = (tail.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? 0
            let keep = end + off_t(completeLength)
            guard ftruncate(descriptor, keep) == 0 else {
                throw SinkError("cannot truncate the partial last line of \(description)", retryable: false)
            }
        }
        let complete = tail[..<completeLength].dropLast()
        guard !complete.isEmpty else { return nil }
        let lastLine = complete.split(separator: UInt8(ascii: "\n")).last ?? complete
        guard let object = try? JSONSerialization.jsonObject(with: Data(lastLine)) as? [String: Any],
              let id = object["_id"] as? String else {
            throw SinkError("the last line of \(description) is not a change event; refusing to append to it", retryable: false)
        }
        return id
    }
}
