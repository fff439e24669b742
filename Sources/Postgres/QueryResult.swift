import CLibPQ

/// The rows of one statement, in PostgreSQL's text format.
public struct QueryResult: Sendable {
    public struct Column: Sendable, Equatable {
        public var name: String
        /// The type's OID (pg_type.oid), to render values by their type.
        public var typeOID: UInt32

        public init(name: String, typeOID: UInt32) {
            self.name = name
            self.typeOID = typeOID
        }
    }

    public var columns: [Column]
    public var rows: [[String?]]
    /// The command tag, such as `UPDATE 3`.
    public var commandTag: String

    public init(columns: [Column], rows: [[String?]], commandTag: String = "") {
        self.columns = columns
        self.rows = rows
        self.commandTag = commandTag
    }

    init(result: OpaquePointer) {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        columns = (0..<columnCount).map { index in
            Column(name: String(cString: PQfname(result, Int32(index))), typeOID: PQftype(result, Int32(index)))
        }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(row), Int32(column))))
                }
            }
            rows.append(values)
        }
        self.rows = rows
        commandTag = PQcmdStatus(result).map { String(cString: $0) } ?? ""
    }

    /// Rows affected by an INSERT, UPDATE, DELETE (the number in the command tag).
    public var affectedRows: Int? {
        commandTag.split(separator: " ").last.flatMap { Int($0) }
    }

    public func index(of column: String) -> Int? {
        columns.firstIndex { $0.name == column }
    }

    /// The rows as dictionaries keyed by column name.
    public var namedRows: [Row] {
        rows.map { Row(columns: columns, values: $0) }
    }

    public var first: Row? {
        rows.first.map { Row(columns: columns, values: $0) }
    }

    /// The first column of the first row, the result of `SELECT f(...)`.
    public var scalar: String? {
        rows.first?.first ?? nil
    }
}

/// One row with access by column name.
public struct Row: Sendable {
    public let columns: [QueryResult.Column]
    public let values: [String?]

    public subscript(_ name: String) -> String? {
        guard let index = columns.firstIndex(where: { $0.name == name }) else { return nil }
        return values[index]
    }

    public func int(_ name: String) -> Int? { self[name].flatMap { Int($0) } }

    public func bool(_ name: String) -> Bool? { self[name].map { $0 == "t" || $0 == "true" } }
}
