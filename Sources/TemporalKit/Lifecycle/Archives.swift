import Foundation
import Postgres

/// What a prune wrote beside its archive: enough to check the archive and to
/// read it back without the database that wrote it.
public struct ArchiveManifest: Codable, Sendable, Equatable {
    public static let currentFormat = "pg-temporal archive 1: PostgreSQL COPY text, gzip"

    public var format: String
    public var schema: String
    public var table: String
    public var historyTable: String
    /// The changes of the transactions in [rangeStart, rangeEnd).
    public var rangeStart: String
    public var rangeEnd: String
    public var rows: Int64
    public var bytes: Int64
    /// Of the archive as stored (compressed): `sha256sum FILE` prints it.
    public var sha256: String
    /// Each row's columns: the history's, then its transaction's (`transaction.*`).
    public var columns: [String]
    public var pruneID: Int64
    public var prunedBy: String
    public var startedAt: String
    public var serverVersion: String

    /// `X.manifest.json` beside the archive `X.copy.gz`.
    public static func path(forArchive archive: String) -> String {
        (archive.hasSuffix(".copy.gz") ? String(archive.dropLast(".copy.gz".count)) : archive) + ".manifest.json"
    }

    /// The archive a manifest describes.
    public static func archivePath(forManifest manifest: String) -> String {
        String(manifest.dropLast(".manifest.json".count)) + ".copy.gz"
    }

    public func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
    }

    public static func read(_ path: String) throws -> ArchiveManifest {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PostgresError(
                kind: .server, sqlState: "58P01", message: "could not read manifest \"\(path)\": no such file or not readable",
                hint: "Each archive X.copy.gz has its manifest X.manifest.json beside it.")
        }
        do {
            return try JSONDecoder().decode(ArchiveManifest.self, from: data)
        } catch {
            throw PostgresError(kind: .server, sqlState: "22P02", message: "manifest \"\(path)\" is not a pg-temporal archive manifest")
        }
    }
}

/// Reading archives back: listing a directory's, checking them, and
/// restoring one into the history or into a table of its own.
public struct Archives {
    public let connection: Connection

    public init(connection: Connection) {
        self.connection = connection
    }

    public struct Entry: Sendable, Equatable {
        public var archive: String
        public var manifest: ArchiveManifest
        /// The archive file is there with the manifest's length.
        public var present: Bool
        /// Its sha256 matches the manifest (only when checked).
        public var verified: Bool?
    }

    /// Every archive of `directory` (by its manifest), oldest range first.
    /// With `verify`, each file's sha256 is checked.
    public static func list(_ directory: String, verify: Bool) throws -> [Entry] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw PostgresError(kind: .server, sqlState: "58P01", message: "could not read archive directory \"\(directory)\": no such directory or not readable")
        }
        var entries: [Entry] = []
        for name in names.sorted() where name.hasSuffix(".manifest.json") {
            let manifestPath = directory + "/" + name
            let manifest = try ArchiveManifest.read(manifestPath)
            let archive = ArchiveManifest.archivePath(forManifest: manifestPath)
            let present = ArchiveFile.size(archive) == manifest.bytes
            let verified = verify ? (present ? (try? ArchiveFile.sha256(archive)) == manifest.sha256 : false) : nil
            entries.append(Entry(archive: archive, manifest: manifest, present: present, verified: verified))
        }
        return entries.sorted { ($0.manifest.schema, $0.manifest.table, $0.manifest.rangeStart) < ($1.manifest.schema, $1.manifest.table, $1.manifest.rangeStart) }
    }

    public enum RestoreTarget: Sendable, Equatable {
        /// Back into the history it came from; the floor moves back to the
        /// archive's start when the archive ends at it.
        case history
        /// Into a new table, its columns named as the archive names them.
        case table(TableName)
    }

    public struct RestoreResult: Sendable, Equatable {
        public var archive: String
        public var table: TableName
        public var target: String
        public var rowsRead: Int64
        public var rowsRestored: Int64
        /// The history's floor after the restore (nil: no floor).
        public var historyFloor: String?
    }

    /// Restores an archive (given by its file or its manifest), after
    /// checking its sha256, in one transaction: all of it or nothing.
    public func restore(_ path: String, into target: RestoreTarget) throws -> RestoreResult {
        let manifestPath = path.hasSuffix(".manifest.json") ? path : ArchiveManifest.path(forArchive: path)
        let archive = path.hasSuffix(".manifest.json") ? ArchiveManifest.archivePath(forManifest: path) : path
        let manifest = try ArchiveManifest.read(manifestPath)
        guard manifest.format == ArchiveManifest.currentFormat else {
            throw PostgresError(kind: .server, sqlState: "0A000", message: "archive format \"\(manifest.format)\" is not one this temporal reads")
        }
        guard ArchiveFile.exists(archive) else {
            throw PostgresError(kind: .server, sqlState: "58P01", message: "archive \"\(archive)\" does not exist")
        }
        let sha = try ArchiveFile.sha256(archive)
        guard sha == manifest.sha256 else {
            throw PostgresError(
                kind: .server, sqlState: "XX001",
                message: "archive \"\(archive)\" does not match its manifest: sha256 \(sha), the manifest says \(manifest.sha256)",
                hint: "The file was changed or damaged after the prune wrote it; nothing was restored.")
        }
        let table = try TableName.named(schema: manifest.schema, name: manifest.table, on: connection)
        return try connection.transaction {
            // Not while a prune of the table runs: it could archive and drop
            // rows this puts back (prunes hold the same lock).
            if target == .history {
                let locked = try connection.query("""
                    SELECT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('pg-temporal prune'),
                                                               (temporal_versioning.find_versioned_table($1, $2)).id)
                    """, [table.schema, table.name]).scalar
                guard locked == "t" else {
                    throw PostgresError(kind: .server, sqlState: "55P03", message: "a prune of \(table.qualified) is running",
                                        hint: "Restore once it is done.")
                }
            }
            let copy = try connection.query(
                "SELECT temporal_versioning._archive_restore_prepare($1, $2, $3)",
                [table.schema, table.name, manifest.columns]).scalar ?? ""
            let read = try connection.copyIn(copy) { send in try ArchiveFile.read(archive, send) }
            guard read == manifest.rows else {
                throw PostgresError(
                    kind: .server, sqlState: "XX001",
                    message: "archive \"\(archive)\" holds \(read) rows, its manifest says \(manifest.rows); nothing was restored")
            }
            switch target {
            case .history:
                let restored = try connection.query(
                    "SELECT temporal_versioning._archive_restore($1, $2, $3, $4::pg_catalog.timestamptz, $5::pg_catalog.timestamptz)",
                    [table.schema, table.name, manifest.columns, manifest.rangeStart, manifest.rangeEnd]).scalar ?? "0"
                let floor = try connection.query(
                    "SELECT (temporal_versioning.find_versioned_table($1, $2)).history_floor", [table.schema, table.name]).scalar
                return RestoreResult(
                    archive: archive, table: table, target: "temporal_versioning.\(manifest.historyTable)",
                    rowsRead: Int64(read), rowsRestored: Int64(restored) ?? 0, historyFloor: floor)
            case let .table(into):
                let restored = try connection.query(
                    "SELECT temporal_versioning._archive_restore_into($1, $2, $3)", [into.schema, into.name, manifest.columns]).scalar ?? "0"
                return RestoreResult(
                    archive: archive, table: table, target: into.qualified, rowsRead: Int64(read),
                    rowsRestored: Int64(restored) ?? 0, historyFloor: nil)
            }
        }
    }
}
