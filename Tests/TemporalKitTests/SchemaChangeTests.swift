import Postgres
import TemporalKit
import TestSupport
import Testing

private let customers = """
    CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text, balance numeric(10,2));
    INSERT INTO customers VALUES (1, 'Alice', 'a@x', 10), (2, 'Bob', 'b@x', 20);
    """

@Suite("schema changes")
struct SchemaChangeTests {
    private func journal(_ connection: Connection) throws -> [String] {
        try connection.column("""
            SELECT change || ' ' || details::text FROM temporal_versioning.schema_changes
            WHERE change NOT IN ('enable versioning') ORDER BY id
            """).map { $0 ?? "" }
    }

    private func historyColumns(_ connection: Connection) throws -> [String] {
        try connection.column("""
            SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute
            WHERE attrelid = 'temporal_versioning.customers_history'::regclass AND attnum > 0 AND NOT attisdropped
              AND attname NOT LIKE 'temporal\\_%' ORDER BY attnum
            """).map { $0 ?? "" }
    }

    @Test("ADD COLUMN adds it to the history; writes go on")
    func addColumn() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("ALTER TABLE customers ADD COLUMN phone text DEFAULT '555'")
        try connection.execute("UPDATE customers SET phone = '556' WHERE id = 1")
        #expect(try historyColumns(connection).last == "phone text")
        #expect(try historyLines(connection, columns: ["id", "phone"]) == ["U:1,555"])
        #expect(try journal(connection) == [#"add column {"type": "text", "attnum": 5, "column": "phone", "not_null": false, "has_default": true}"#])
    }

    @Test("DROP COLUMN keeps the column's history; writes go on")
    func dropColumn() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("UPDATE customers SET email = 'a2@x' WHERE id = 1")
        try connection.execute("ALTER TABLE customers DROP COLUMN email")
        try connection.execute("UPDATE customers SET name = 'Alicia' WHERE id = 1")
        #expect(try historyLines(connection, columns: ["id", "name", "email"]) == ["U:1,Alice,a@x", "U:1,Alice,∅"])
        #expect(try journal(connection) == [#"drop column {"attnum": 3, "column": "email", "history_kept_in": "email"}"#])
        // A new column of the same name gets its own history column; the old values stay.
        try connection.execute("ALTER TABLE customers ADD COLUMN email int")
        try connection.execute("UPDATE customers SET email = 7 WHERE id = 1")
        try connection.execute("UPDATE customers SET email = 8 WHERE id = 1")
        #expect(try historyLines(connection, columns: ["id", "email_old1", "email"]).last == "U:1,∅,7")
        #expect(try historyLines(connection, columns: ["email_old1"]).first == "U:a@x")
    }

    @Test("RENAME COLUMN renames it in the history, keeping its values")
    func renameColumn() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("UPDATE customers SET email = 'a2@x' WHERE id = 1")
        try connection.execute("ALTER TABLE customers RENAME COLUMN email TO mail")
        try connection.execute("UPDATE customers SET mail = 'a3@x' WHERE id = 1")
        #expect(try historyLines(connection, columns: ["id", "mail"]) == ["U:1,a@x", "U:1,a2@x"])
        #expect(try journal(connection) == [#"rename column {"to": "mail", "from": "email", "attnum": 3}"#])
    }

    @Test("renaming a key column follows the key")
    func renameKeyColumn() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("ALTER TABLE customers RENAME COLUMN id TO customer_id")
        try connection.execute("UPDATE customers SET name = 'x' WHERE customer_id = 2")
        #expect(try historyLines(connection, columns: ["customer_id", "name"]) == ["U:2,Bob"])
        #expect(try connection.value("SELECT key_columns::text FROM temporal_versioning.versioned_tables") == "{customer_id}")
    }

    @Test("ALTER COLUMN TYPE converts the history the same way, or keeps the old column when it cannot")
    func alterType() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("UPDATE customers SET balance = 11, email = 'a2@x' WHERE id = 1")
        try connection.execute("ALTER TABLE customers ALTER COLUMN balance TYPE numeric(12,3)")
        #expect(try historyLines(connection, columns: ["balance"]) == ["U:10.000"])
        // With USING, the conversion cannot be repeated on old values: they stay as they were.
        try connection.execute("ALTER TABLE customers ALTER COLUMN email TYPE int USING length(email)")
        try connection.execute("UPDATE customers SET email = 99 WHERE id = 1")
        #expect(try historyLines(connection, columns: ["email_old1", "email"]) == ["U:a@x,∅", "U:∅,4"])
        #expect(try historyColumns(connection) == [
            "id integer", "name text", "email_old1 text", "balance numeric(12,3)", "email integer",
        ])
        let changes = try journal(connection)
        #expect(changes.count == 2)
        #expect(changes[0].contains(#""history_converted": true"#))
        #expect(changes[1].contains(#""history_kept_in": "email_old1""#))
    }

    @Test("a type change whose old values do not convert keeps them; the ALTER still succeeds")
    func alterTypeUnconvertible() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("UPDATE customers SET email = 'not a number' WHERE id = 1")
        try connection.execute("UPDATE customers SET email = '42' WHERE id = 1")
        try connection.execute("UPDATE customers SET email = '43'")   // live values all convert; history's first does not
        try connection.execute("ALTER TABLE customers ALTER COLUMN email TYPE int USING email::int")
        #expect(try historyLines(connection, columns: ["email_old1"]).first == "U:a@x")
    }

    @Test("renaming or moving the table follows it")
    func renameTable() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("ALTER TABLE customers RENAME TO clients; CREATE SCHEMA crm; ALTER TABLE clients SET SCHEMA crm")
        try connection.execute("TRUNCATE crm.clients")
        #expect(try connection.value("SELECT schema_name || '.' || table_name FROM temporal_versioning.versioned_tables") == "crm.clients")
        #expect(try connection.count("SELECT count(*) FROM temporal_versioning.customers_history WHERE temporal_operation = 'T'") == 2)
        #expect(try journal(connection).map { $0.components(separatedBy: " ").first! } == ["rename", "set"])
    }

    @Test("DROP TABLE keeps the history and marks versioning off")
    func dropTable() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("UPDATE customers SET name = 'x' WHERE id = 1")
        try connection.execute("DROP TABLE customers")
        let row = try connection.query("SELECT enabled, table_oid FROM temporal_versioning.versioned_tables").rows.first
        #expect(row == ["f", nil])
        #expect(try historyLines(connection, columns: ["id", "name"]) == ["U:1,Alice"])
        #expect(try journal(connection).last?.hasPrefix("drop table") == true)
        #expect(try connection.count("SELECT count(*) FROM pg_proc WHERE proname = 'customers_history_capture'") == 0)
        // Its status is still readable by its last name.
        let table = try TableResolver.resolve("customers", on: connection, includingDropped: true)
        #expect(try Versioning(connection: connection).status(table).first?["updates"] == "1")
    }

    @Test("commands that would silently end capture are refused")
    func guards() throws {
        let (_, connection) = try versionedTable(customers)
        let dropKey = #expect(throws: PostgresError.self) { try connection.execute("ALTER TABLE customers DROP COLUMN id") }
        #expect(dropKey?.message.contains("versioning key") == true)
        let dropTrigger = #expect(throws: PostgresError.self) {
            try connection.execute("DROP TRIGGER temporal_capture_update ON customers")
        }
        #expect(dropTrigger?.sqlState == SQLState.dependentObjectsStillExist)
        let dropHistory = #expect(throws: PostgresError.self) {
            try connection.execute("DROP TABLE temporal_versioning.customers_history")
        }
        #expect(dropHistory?.hint?.contains("temporal disable public.customers --drop-history") == true)
        try connection.execute("UPDATE customers SET name = 'still captured' WHERE id = 1")
        #expect(try connection.count("SELECT count(*) FROM temporal_versioning.customers_history") == 1)
    }

    @Test("a column named like a history column is refused at enable, and by ALTER TABLE, changing nothing")
    func reservedColumnNames() throws {
        let (_, connection) = try installedDatabase()
        try connection.execute("CREATE TABLE clash (id int PRIMARY KEY, temporal_id int)")
        let table = try TableResolver.resolve("clash", on: connection)
        let refused = #expect(throws: PostgresError.self) { try Versioning(connection: connection).enable(table) }
        #expect(refused?.sqlState == SQLState.duplicateColumn)
        #expect(refused?.message.contains(#"column "temporal_id" of public.clash"#) == true)
        #expect(refused?.hint?.contains("give the column another name") == true)
        #expect(try connection.value("SELECT to_regclass('temporal_versioning.clash_history')::text") == nil)
        #expect(try connection.count("SELECT count(*) FROM temporal_versioning.versioned_tables") == 0)

        try connection.execute(customers)
        try Versioning(connection: connection).enable(try TableResolver.resolve("customers", on: connection))
        for ddl in ["ALTER TABLE customers ADD COLUMN temporal_tx_id bigint",
                    "ALTER TABLE customers RENAME COLUMN name TO temporal_operation"] {
            let error = #expect(throws: PostgresError.self, "\(ddl)") { try connection.execute(ddl) }
            #expect(error?.sqlState == SQLState.duplicateColumn, "\(ddl)")
        }
        #expect(try connection.column("""
            SELECT attname::text FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attnum > 0 AND NOT attisdropped
            ORDER BY attnum
            """).compactMap { $0 }.contains("name"))
        try connection.execute("UPDATE customers SET name = 'still captured' WHERE id = 1")
        #expect(try historyLines(connection, columns: ["id", "name"]) == ["U:1,Alice"])
    }

    @Test("disabling a capture trigger warns and is reported by status")
    func disabledTriggerIsReported() throws {
        let (_, connection) = try versionedTable(customers)
        var warnings: [PostgresError] = []
        connection.noticeHandler = { warnings.append($0) }
        try connection.execute("ALTER TABLE customers DISABLE TRIGGER temporal_capture_update")
        #expect(warnings.first?.severity == "WARNING")
        #expect(warnings.first?.message.contains("changes are not being recorded") == true)
        let table = try TableResolver.resolve("customers", on: connection)
        #expect(try Versioning(connection: connection).status(table).first?["capture"] == "disabled")
    }
}
