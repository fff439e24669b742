/// One SQL file compiled into the binary (see scripts/embed-sql).
struct SQLFile: Sendable {
    let name: String
    let text: String

    /// The migration number, from a name such as `0001_catalog.sql`.
    var migrationVersion: Int? {
        Int(name.prefix { $0.isNumber })
    }
}
