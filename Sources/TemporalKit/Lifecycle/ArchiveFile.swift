import CZlib
import Postgres

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An archive of pruned history: the rows as PostgreSQL's COPY text format
/// writes them (exact for every type, read back by COPY FROM), gzip
/// compressed. Each batch of a prune is appended as a gzip member of its own
/// and fsynced before the batch's delete commits; gzip readers (zcat, zlib's
/// gzread) read concatenated members as one stream.
public enum ArchiveFile {
    /// Opens (creating it if needed) the archive and cuts it back to `length`:
    /// the bytes of the batches whose delete committed. A batch written but
    /// not committed, by a prune that was killed, is cut off.
    public static func prepare(_ path: String, length: Int64) throws {
        let directory = parentDirectory(of: path)
        try makeDirectory(directory)
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw failure("could not open archive \"\(path)\"") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("could not stat archive \"\(path)\"") }
        if Int64(info.st_size) < length {
            throw PostgresError(
                kind: .server, sqlState: "58030",
                message: "archive \"\(path)\" is shorter (\(info.st_size) bytes) than the prune recorded (\(length) bytes)",
                detail: "Rows the prune deleted were written there; the file was cut or replaced since.",
                hint: "Put the archive back as it was before running the prune again.")
        }
        guard ftruncate(fd, off_t(length)) == 0, fsync(fd) == 0 else {
            throw failure("could not cut archive \"\(path)\" back to \(length) bytes")
        }
        try syncDirectory(directory)
    }

    /// Appends one gzip member to the archive: everything `write` hands to
    /// its sink, compressed. Returns the archive's new length once the data
    /// is on disk (fsynced); when `write` hands nothing, the file is untouched.
    public static func appendMember(_ path: String, _ write: (_ sink: (UnsafeBufferPointer<UInt8>) throws -> Void) throws -> Void) throws -> Int64 {
        var file: gzFile?
        defer { if let file { gzclose(file) } }
        try write { piece in
            guard piece.count > 0 else { return }
            if file == nil {
                file = gzopen(path, "ab1")
                guard file != nil else { throw failure("could not open archive \"\(path)\"") }
            }
            let written = gzwrite(file, piece.baseAddress, UInt32(piece.count))
            guard written == Int32(piece.count) else { throw failure("could not write archive \"\(path)\"") }
        }
        if let opened = file {
            file = nil
            guard gzclose(opened) == Z_OK else { throw failure("could not write archive \"\(path)\"") }
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("could not open archive \"\(path)\"") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("could not fsync archive \"\(path)\"") }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("could not stat archive \"\(path)\"") }
        return Int64(info.st_size)
    }

    /// Reads the archive decompressed, in pieces, handing each to `body`.
    public static func read(_ path: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        guard let file = gzopen(path, "rb") else { throw failure("could not open archive \"\(path)\"") }
        defer { gzclose(file) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if count < 0 {
                var code: Int32 = 0
                let message = gzerror(file, &code).map { String(cString: $0) } ?? "unknown error"
                throw PostgresError(kind: .server, sqlState: "XX001", message: "archive \"\(path)\" is damaged: \(message)")
            }
            if count == 0 { return }
            try buffer.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[0..<Int(count)])) }
        }
    }

    /// The sha256 of the file as stored (compressed), as sha256sum prints it.
    public static func sha256(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("could not open \"\(path)\"") }
        defer { close(fd) }
        var hash = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 { throw failure("could not read \"\(path)\"") }
            if count == 0 { break }
            buffer.withUnsafeBufferPointer { hash.update(UnsafeBufferPointer(rebasing: $0[0..<count])) }
        }
        return hash.finish()
    }

    /// Writes a small file so that it is there whole or not at all: to a
    /// temporary name, fsynced, renamed over `path`, the directory fsynced.
    public static func writeDurably(_ path: String, _ text: String) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw failure("could not create \"\(temporary)\"") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw failure("could not write \"\(path)\"")
        }
        try syncDirectory(parentDirectory(of: path))
    }

    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public static func size(_ path: String) -> Int64? {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : nil
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Makes the directory and its missing parents (mode 0750).
    static func makeDirectory(_ path: String) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw PostgresError(kind: .server, sqlState: "58030", message: "archive directory \"\(path)\" is not a directory")
            }
            return
        }
        let parent = parentDirectory(of: path)
        if parent != path && parent != "." && parent != "/" { try makeDirectory(parent) }
        guard mkdir(path, 0o750) == 0 || errno == EEXIST else { throw failure("could not create directory \"\(path)\"") }
    }

    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("could not open directory \"\(path)\"") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("could not fsync directory \"\(path)\"") }
    }

    static func failure(_ what: String) -> PostgresError {
        let reason = String(cString: strerror(errno))
        return PostgresError(kind: .server, sqlState: "58030", message: "\(what): \(reason)")
    }
}
