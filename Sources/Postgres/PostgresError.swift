import CLibPQ

/// An error from PostgreSQL or from libpq, keeping the server's own words:
/// SQLSTATE, message, detail and hint, so that callers can print what
/// PostgreSQL said and tests can match on codes.
public struct PostgresError: Error, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The connection could not be made or was lost (libpq's message).
        case connection
        /// The server reported an error for a statement.
        case server
        /// The server or libpq did something this library does not expect.
        case protocolViolation
    }

    public var kind: Kind
    public var severity: String
    public var sqlState: String?
    public var message: String
    public var detail: String?
    public var hint: String?
    public var context: String?

    public init(
        kind: Kind, severity: String = "ERROR", sqlState: String? = nil, message: String,
        detail: String? = nil, hint: String? = nil, context: String? = nil
    ) {
        self.kind = kind
        self.severity = severity
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
        self.context = context
    }

    /// The fields of an error or notice result.
    init(result: OpaquePointer, kind: Kind = .server) {
        func field(_ code: Int32) -> String? {
            guard let value = PQresultErrorField(result, code) else { return nil }
            return String(cString: value)
        }
        let fallback = PQresultErrorMessage(result).map { String(cString: $0) } ?? "unknown error"
        self.init(
            kind: kind,
            severity: field(PQ_DIAG_SEVERITY_NONLOCALIZED) ?? field(PQ_DIAG_SEVERITY) ?? "ERROR",
            sqlState: field(PQ_DIAG_SQLSTATE),
            message: field(PQ_DIAG_MESSAGE_PRIMARY) ?? fallback.trimmingTrailingNewlines(),
            detail: field(PQ_DIAG_MESSAGE_DETAIL),
            hint: field(PQ_DIAG_MESSAGE_HINT),
            context: field(PQ_DIAG_CONTEXT)
        )
    }

    /// Whether the connection was lost, or the server is shutting down or
    /// not yet accepting connections (SQLSTATE classes 08 and 57P, but not
    /// 57P04, a dropped database, nor a refused login): trying again later can succeed.
    public var isTransient: Bool {
        // A refused login (28xxx) does not cure itself by waiting.
        if sqlState?.hasPrefix("28") == true { return false }
        if kind == .connection { return true }
        guard let sqlState else { return false }
        return sqlState.hasPrefix("08") || (sqlState.hasPrefix("57P") && sqlState != "57P04")
    }

    /// The error the way psql prints it: `ERROR:  message`, then DETAIL and HINT lines.
    public var psqlDescription: String {
        var lines = ["\(severity):  \(message)"]
        if let detail { lines.append("DETAIL:  \(detail)") }
        if let hint { lines.append("HINT:  \(hint)") }
        return lines.joined(separator: "\n")
    }
}

extension PostgresError: CustomStringConvertible {
    public var description: String { psqlDescription }
}

/// Well-known SQLSTATE codes this project checks for.
public enum SQLState {
    public static let undefinedTable = "42P01"
    public static let undefinedColumn = "42703"
    public static let undefinedObject = "42704"
    public static let duplicateObject = "42710"
    public static let duplicateTable = "42P07"
    public static let duplicateColumn = "42701"
    public static let insufficientPrivilege = "42501"
    public static let invalidTableDefinition = "42P16"
    public static let invalidParameterValue = "22023"
    public static let invalidDatetimeFormat = "22007"
    public static let datetimeFieldOverflow = "22008"
    public static let invalidTextRepresentation = "22P02"
    public static let objectNotInPrerequisiteState = "55000"
    public static let objectInUse = "55006"
    public static let invalidAuthorizationSpecification = "28000"
    public static let connectionFailure = "08001"
    public static let readOnlySQLTransaction = "25006"
    public static let foreignKeyViolation = "23503"
    public static let uniqueViolation = "23505"
    public static let invalidName = "42602"
    public static let featureNotSupported = "0A000"
    public static let wrongObjectType = "42809"
    public static let dependentObjectsStillExist = "2BP01"
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var result = self
        while result.last == "\n" || result.last == " " { result.removeLast() }
        return result
    }
}
