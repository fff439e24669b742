import Postgres

/// The shapes of seed 000 a stream writes into MongoDB.
public enum Shape: String, CaseIterable, Sendable, Codable {
    /// One document per change in the events collection (option 3).
    case events
    /// One document per row, in a collection named after the table (option 2's current state).
    case current
    /// One document per version, in `<collection>History` (option 2's history).
    case history
    /// The current document carries its last N versions in `_history` (option 1).
    case embedded
}

/// What a MongoDB stream writes, and where.
public struct ShapeOptions: Sendable, Equatable {
    public var shapes: Set<Shape> = [.events]
    /// The events collection.
    public var eventsCollection = "changeEvents"
    /// Tables (`schema.table`) to their current-state collections; the others
    /// take the camelCase of their name.
    public var collectionMap: [String: String] = [:]
    /// Keep a deleted row's document, with `deletedAt`.
    public var softDelete = false
    /// How many versions an embedded document keeps.
    public var embedLast = 20

    public static let embedLastRange = 1...1000

    public init() {}

    /// Whether one of the keyed shapes (current, history, embedded) is on.
    public var keyed: Bool { !shapes.isDisjoint(with: [.current, .history, .embedded]) }

    /// The current-state collection of a table (`schema.table`, as its
    /// qualified name; quotes are dropped).
    public func collection(for table: String) -> String {
        if let mapped = collectionMap[table] { return mapped }
        let bare = ShapeOptions.unquoted(table)
        if let mapped = collectionMap[bare.schema + "." + bare.name] { return mapped }
        return ShapeOptions.camelCase(bare.name)
    }

    public func historyCollection(for table: String) -> String { collection(for: table) + "History" }

    /// `media_platform_entities` → `mediaPlatformEntities`.
    public static func camelCase(_ name: String) -> String {
        let words = name.split(whereSeparator: { !($0.isLetter || $0.isNumber) })
        guard let first = words.first else { return name }
        return first.lowercased() + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    /// `public."Order Lines"` → (public, Order Lines).
    static func unquoted(_ qualified: String) -> (schema: String, name: String) {
        var parts: [String] = [], current = "", quoted = false
        var characters = Array(qualified)[...]
        while let character = characters.popFirst() {
            if character == "\"" {
                if quoted, characters.first == "\"" { current.append("\""); characters.removeFirst() } else { quoted.toggle() }
            } else if character == ".", !quoted {
                parts.append(current); current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        return parts.count >= 2 ? (parts[0], parts[1]) : ("public", parts[0])
    }

    /// Parses `--collection-map schema.table=collection` (a bare table is in public).
    public mutating func addMapping(_ text: String) throws {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex, text.index(after: equals) != text.endIndex else {
            throw ShapeError("--collection-map takes schema.table=collection, such as public.media_platform_entities=mediaPlatformEntities; not \(text)")
        }
        let table = ShapeOptions.unquoted(String(text[..<equals]))
        let collection = String(text[text.index(after: equals)...])
        try ShapeOptions.checkCollectionName(collection)
        collectionMap[table.schema + "." + table.name] = collection
    }

    static func checkCollectionName(_ name: String) throws {
        if name.isEmpty || name.contains("$") || name.contains("\0") || name.hasPrefix("system.") || name.utf8.count > 200 {
            throw ShapeError("\(name) is not a collection name MongoDB accepts (no $, no NUL, not system.*, at most 200 bytes)")
        }
    }

    /// Checks the options against the tables the publication holds
    /// (`schema.table`, unquoted): every mapped table is published, and no two
    /// tables, nor a table and the events, share a collection.
    public func validate(publishedTables: [String]) throws {
        if shapes.isEmpty { throw ShapeError("give at least one --shape: events, current, history or embedded") }
        if shapes.contains(.history) && shapes.isDisjoint(with: [.current, .embedded]) {
            throw ShapeError("--shape history numbers versions from the current-state documents: add --shape current (or embedded)")
        }
        if !ShapeOptions.embedLastRange.contains(embedLast) {
            throw ShapeError("--embed-last must be between \(ShapeOptions.embedLastRange.lowerBound) and \(ShapeOptions.embedLastRange.upperBound), not \(embedLast): each version is kept inside the document, which MongoDB limits to 16 MB")
        }
        let published = Set(publishedTables)
        for table in collectionMap.keys.sorted() where !published.contains(table) {
            throw ShapeError("--collection-map names \(table), which the publication does not hold (it holds \(publishedTables.sorted().joined(separator: ", ")))")
        }
        guard keyed else { return }
        var owners: [String: String] = [eventsCollection: "the events", "temporalTombstones": "the shapes' tombstones",
                                        "temporalStreams": "the streams' records"]
        for table in publishedTables.sorted() {
            for name in [collection(for: table)] + (shapes.contains(.history) ? [historyCollection(for: table)] : []) {
                if let owner = owners[name] {
                    throw ShapeError("\(table) and \(owner) would both write the collection \(name): give one of them another with --collection-map \(table)=NAME")
                }
                owners[name] = table
            }
        }
    }
}

/// A shape's options or state that cannot work.
public struct ShapeError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension ShapeOptions {
    /// The fields the keyed shapes add to a row's document.
    public static let shapeFields: Set<String> = ["_id", "currentVersion", "updatedAt", "lastEventId", "lastPosition", "deletedAt", "_history"]

    /// What the keyed shapes cannot keep of the publication's tables, each in
    /// a sentence: a table without a primary key (its rows would share one
    /// document), a key column whose BSON value rounds (a timestamp keeps
    /// milliseconds, so two rows could share a document), a column whose name
    /// MongoDB reads as a path or an operator, or that is one of the shape's own fields.
    public func keyProblems(on connection: Connection, publication: String) throws -> [String] {
        guard keyed else { return [] }
        var problems: [String] = []
        let tables = try connection.query("""
            SELECT t.schemaname || '.' || t.tablename, c.oid::int8
              FROM pg_catalog.pg_publication_tables t
              JOIN pg_catalog.pg_namespace n ON n.nspname = t.schemaname
              JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename
             WHERE t.pubname = $1 ORDER BY 1
            """, [publication]).rows
        for row in tables {
            guard let table = row[0], let oid = row[1] else { continue }
            let columns = try connection.query("""
                SELECT a.attname, pg_catalog.format_type(a.atttypid, NULL),
                       EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary
                                                                 AND a.attnum = ANY (i.indkey))
                  FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = $1::int8::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
                """, [oid]).rows
            if !columns.contains(where: { $0[2] == "t" }) {
                problems.append("\(table) has no primary key: the keyed shapes keep one document per key")
            }
            for column in columns {
                let name = column[0] ?? "", type = column[1] ?? ""
                if column[2] == "t", type.hasPrefix("timestamp") || type.hasPrefix("time ") || type == "time" || type == "interval" {
                    problems.append("\(table)'s key column \(name) is \(type): as a BSON date it keeps milliseconds, so two rows could share a document")
                }
                if name.contains(".") || name.hasPrefix("$") {
                    problems.append("\(table)'s column \"\(name)\" would be read by MongoDB as a path or an operator")
                }
                if Self.shapeFields.contains(name) {
                    problems.append("\(table)'s column \(name) is a field the shapes write themselves")
                }
            }
        }
        return problems
    }
}
