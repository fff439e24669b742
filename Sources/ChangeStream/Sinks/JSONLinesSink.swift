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

    public var encoding: EventBuilder.Encoding { .extendedJSON }

    /// Reads the file's last line again, so that the events the stream sends
    /// again (written, not yet confirmed) are skipped. On stdout they appear twice.
    public func resume() throws {
        if isFile { skipThrough = try recoverTail() }
    }

    public func write(_ events: [ChangeEvent]) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(events.reduce(0) { $0 + ($1.extendedJSON?.count ?? 1024) + 1 })
        var last = skipThrough
        for event in events {
            // Events come in _id order: once one is past the last line
            // written, so are all after it, and ids need not be compared.
            if let written = last {
                let id = event.id
                if id <= written { continue }
                last = nil
            }
            if let json = event.extendedJSON { bytes.append(contentsOf: json) }
            else { ExtendedJSON.append(event.document, to: &bytes) }
            bytes.append(UInt8(ascii: "\n"))
        }
        guard !bytes.isEmpty else { return }
        try writeAll(bytes)
        skipThrough = last
    }

    /// Writes and fsyncs the whole batch, or, on a file, nothing: a write
    /// or fsync that fails part way (a full disk, say) is cut back off, so
    /// that the batch can be written again whole.
    private func writeAll(_ bytes: [UInt8]) throws {
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

    private func writeBytes(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buffer in
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
