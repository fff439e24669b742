import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing

private let customers = """
    CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text);
    INSERT INTO customers VALUES (1, 'Alice', 'a@x'), (2, 'Bob', 'b@x');
    """

@Suite("capture")
struct CaptureTests {
    @Test("multi-row INSERT, UPDATE and DELETE keep one history row per changed row")
    func multiRowStatements() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("INSERT INTO customers VALUES (3, 'Carol', NULL), (4, 'Dan', 'd@x')")
        try connection.execute("UPDATE customers SET email = upper(email) WHERE id IN (1, 4)")
        try connection.execute("DELETE FROM customers WHERE id IN (2, 3)")
        #expect(try historyLines(connection, columns: ["id", "name", "email"]) == [
            "I:3,∅,∅", "I:4,∅,∅",
            "U:1,Alice,a@x", "U:4,Dan,d@x",
            "D:2,Bob,b@x", "D:3,Carol,∅",
        ])
    }

    @Test("rows from before enable are kept by their first change")
    func preexistingRows() throws {
        let (_, connection) = try versionedTable(customers)
        #expect(try connection.count("SELECT count(*) FROM temporal_versioning.customers_history") == 0)
        try connection.execute("UPDATE customers SET name = 'Alicia' WHERE id = 1")
        #expect(try historyLines(connection, columns: ["id", "name"]) == ["U:1,Alice"])
    }

    @Test("an UPDATE that changes nothing is not recorded")
    func noOpUpdate() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("UPDATE customers SET name = name, email = email")
        try connection.execute("UPDATE customers SET name = 'Bob' WHERE id = 2")
        #expect(try connection.count("SELECT count(*) FROM temporal_versioning.customers_history") == 0)
        #expect(try connection.count("SELECT count(*) FROM temporal_versioning.transactions") == 0)
        // A statement where some rows change and some do not records only the changed ones.
        try connection.execute("UPDATE customers SET name = 'Bob' WHERE id IN (1, 2)")
        #expect(try historyLines(connection, columns: ["id", "name"]) == ["U:1,Alice"])
    }

    @Test("an update that changes only the representation is recorded (byte comparison)")
    func representationChange() throws {
        let (_, connection) = try versionedTable("CREATE TABLE customers (id int PRIMARY KEY, amount numeric, doc json)")
        try connection.execute("INSERT INTO customers VALUES (1, 1.0, '{\"a\":1}')")
        try connection.execute("UPDATE customers SET amount = 1.00")            // 1.0 = 1.00, but prints differently
        try connection.execute("UPDATE customers SET doc = '{\"a\": 1}'")      // json has no equality operator at all
        try connection.execute("UPDATE customers SET doc = '{\"a\": 1}'")      // same bytes: nothing
        #expect(try historyLines(connection, columns: ["id", "amount", "doc"]) == [
            "I:1,∅,∅", "U:1,1.0,{\"a\":1}", "U:1,1.00,{\"a\":1}",
        ])
    }

    @Test("INSERT ... ON CONFLICT DO UPDATE records each row once, as what happened to it")
    func upsert() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("""
            INSERT INTO customers VALUES (2, 'Bobby', 'b@x'), (5, 'Eve', 'e@x')
            ON CONFLICT (id) DO UPDATE SET name = excluded.name
            """)
        try connection.execute("INSERT INTO customers VALUES (1, 'Alice', 'a@x') ON CONFLICT (id) DO UPDATE SET name = excluded.name")
        try connection.execute("INSERT INTO customers VALUES (1, 'x', 'x') ON CONFLICT DO NOTHING")
        // Statement triggers fire for the UPDATE part before the INSERT part.
        #expect(try historyLines(connection, columns: ["id", "name"]) == ["U:2,Bob", "I:5,∅"])
    }

    @Test("several changes to one row in one transaction are all kept, in order")
    func severalChangesInOneTransaction() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("""
            BEGIN;
            UPDATE customers SET name = 'A1' WHERE id = 1;
            UPDATE customers SET name = 'A2' WHERE id = 1;
            DELETE FROM customers WHERE id = 1;
            INSERT INTO customers VALUES (1, 'A3', NULL);
            COMMIT;
            """)
        #expect(try historyLines(connection, columns: ["id", "name"]) == ["U:1,Alice", "U:1,A1", "D:1,A2", "I:1,∅"])
        #expect(try connection.count("SELECT count(DISTINCT temporal_tx_id) FROM temporal_versioning.customers_history") == 1)
        #expect(try connection.count("SELECT count(*) FROM temporal_versioning.transactions") == 1)
    }

    @Test("changes rolled back to a savepoint leave no history; the rest stays")
    func savepoints() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("""
            BEGIN;
            UPDATE customers SET name = 'kept' WHERE id = 1;
            SAVEPOINT s;
            UPDATE customers SET name = 'gone' WHERE id = 2;
            INSERT INTO customers VALUES (9, 'gone', NULL);
            ROLLBACK TO SAVEPOINT s;
            DELETE FROM customers WHERE id = 2;
            COMMIT;
            BEGIN;
            UPDATE customers SET name = 'never' WHERE id = 1;
            ROLLBACK;
            """)
        #expect(try historyLines(connection, columns: ["id", "name"]) == ["U:1,Alice", "D:2,Bob"])
    }

    @Test("COPY FROM STDIN is captured like INSERT")
    func copy() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.copyIn("COPY customers FROM STDIN", data: "10\tTen\t\\N\n11\tEleven\te@x\n")
        #expect(try historyLines(connection, columns: ["id"]) == ["I:10", "I:11"])
    }

    @Test("TRUNCATE keeps every row it removed")
    func truncate() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("TRUNCATE customers")
        #expect(try historyLines(connection, columns: ["id", "name"]) == ["T:1,Alice", "T:2,Bob"])
        try connection.execute("TRUNCATE customers")
        #expect(try connection.count("SELECT count(*) FROM temporal_versioning.customers_history") == 2)
    }

    @Test("changing a key is the DELETE of the old key and the INSERT of the new one")
    func keyUpdate() throws {
        let (_, connection) = try versionedTable(customers.replacingOccurrences(
            of: "id int PRIMARY KEY", with: "id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED"))
        try connection.execute("UPDATE customers SET id = id + 10")
        #expect(try historyLines(connection, columns: ["id", "name"]).sorted() == ["D:1,Alice", "D:2,Bob", "I:11,∅", "I:12,∅"])
        // Swapping two keys in one statement: both keys still exist, both changed.
        try connection.execute("UPDATE customers SET id = CASE id WHEN 11 THEN 12 ELSE 11 END")
        #expect(try historyLines(connection, columns: ["id", "name"]).suffix(2).sorted() == ["U:11,Alice", "U:12,Bob"])
    }

    @Test("composite keys and a key given with --key")
    func compositeKey() throws {
        let (_, connection) = try installedDatabase()
        try connection.execute("""
            CREATE TABLE lines (order_id int NOT NULL, line int NOT NULL, qty int);
            CREATE UNIQUE INDEX ON lines (order_id, line);
            INSERT INTO lines VALUES (1, 1, 5), (1, 2, 6);
            """)
        let table = try TableResolver.resolve("lines", on: connection)
        try Versioning(connection: connection).enable(table, keyColumns: ["order_id", "line"])
        try connection.execute("UPDATE lines SET qty = qty + 1 WHERE line = 2; UPDATE lines SET line = 3 WHERE line = 1")
        #expect(try historyLines(connection, "lines_history", columns: ["order_id", "line", "qty"]) == [
            "U:1,2,6", "D:1,1,5", "I:1,3,∅",
        ])
        #expect(try connection.value("SELECT key_columns::text FROM temporal_versioning.versioned_tables") == "{order_id,line}")
    }

    @Test("each transaction's context: time, role, application, client address, user and changeset")
    func transactionContext() throws {
        let (database, connection) = try versionedTable(customers)
        let role = try database.createRole("writer")
        defer { database.dropRoles([role]) }
        try connection.execute("GRANT ALL ON customers TO \(role)")
        let port = ProcessInfo.processInfo.environment["PGPORT"] ?? "5432"

        // Over TCP, as another role, with application settings.
        let app = try database.connect("host=127.0.0.1 port=\(port) user=\(role)", applicationName: "billing-job")
        try app.execute("""
            BEGIN;
            SET LOCAL temporal.user_id = 'user-17';
            SET LOCAL temporal.changeset_id = 'cs-789';
            UPDATE customers SET name = 'A' WHERE id = 1;
            UPDATE customers SET name = 'B' WHERE id = 2;
            COMMIT;
            """)
        // Over the socket, as the superuser under SET ROLE, without settings.
        try connection.execute("SET ROLE \(role); DELETE FROM customers WHERE id = 1; RESET ROLE;")

        let rows = try connection.query("""
            SELECT t.db_user, t.application_name, coalesce(host(t.client_addr), '-'), coalesce(t.user_id, '-'),
                   coalesce(t.changeset_id, '-'), (t.valid_from <= now())::text, count(*)::text
            FROM temporal_versioning.customers_history h
            JOIN temporal_versioning.transactions t ON t.tx_id = h.temporal_tx_id
            GROUP BY 1, 2, 3, 4, 5, 6, t.tx_id ORDER BY t.tx_id
            """).rows
        #expect(rows == [
            [role, "billing-job", "127.0.0.1", "user-17", "cs-789", "true", "2"],
            [role, "temporal-tests", "-", "-", "-", "true", "1"],
        ])
    }

    @Test("all changes of a transaction share its timestamp")
    func oneTimestampPerTransaction() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("""
            BEGIN;
            UPDATE customers SET name = 'x' WHERE id = 1;
            SELECT pg_sleep(0.05);
            UPDATE customers SET name = 'y' WHERE id = 2;
            COMMIT;
            """)
        #expect(try connection.count("SELECT count(DISTINCT temporal_tx_id) FROM temporal_versioning.customers_history") == 1)
        #expect(try connection.value("""
            SELECT t.valid_from = (SELECT max(valid_from) FROM temporal_versioning.transactions)
            FROM temporal_versioning.transactions t
            """) == "t")
    }

    @Test("changes applied with session_replication_role = replica are captured too")
    func replicaRole() throws {
        let (_, connection) = try versionedTable(customers)
        try connection.execute("SET session_replication_role = replica; UPDATE customers SET name = 'r' WHERE id = 1; RESET session_replication_role;")
        #expect(try historyLines(connection, columns: ["id", "name"]) == ["U:1,Alice"])
    }

    @Test("a domain with NOT NULL and every common type are kept")
    func typesAndDomains() throws {
        let (_, connection) = try versionedTable("""
            CREATE DOMAIN positive AS int NOT NULL CHECK (VALUE > 0);
            CREATE TYPE mood AS ENUM ('ok', 'sad');
            CREATE TABLE customers (
                id bigint PRIMARY KEY, score positive, doc jsonb, tags text[], amount numeric(12, 2),
                raw bytea, at timestamptz, uid uuid, m mood, r int4range, d date);
            INSERT INTO customers VALUES (1, 5, '{"a": [1, 2]}', '{x,y}', 12.50, '\\xdeadbeef',
                '2026-01-15 10:30:00.123456+00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ok', '[1,5)', '2026-01-15');
            """)
        try connection.execute("UPDATE customers SET score = 6")
        try connection.execute("INSERT INTO customers (id, score) VALUES (2, 1)")
        #expect(try connection.value("""
            SELECT row(score, doc, tags, amount, raw, at, uid, m, r, d)::text
            FROM temporal_versioning.customers_history WHERE temporal_operation = 'U'
            """) == #"(5,"{""a"": [1, 2]}","{x,y}",12.50,"\\xdeadbeef","2026-01-15 10:30:00.123456+00",a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,ok,"[1,5)",2026-01-15)"#)
        // The history column of a NOT NULL domain is its base type: an INSERT's row holds NULL there.
        #expect(try connection.value("""
            SELECT format_type(atttypid, atttypmod) FROM pg_attribute
            WHERE attrelid = 'temporal_versioning.customers_history'::regclass AND attname = 'score'
            """) == "integer")
    }

    @Test("values of types with a length are compared whole: bit strings and char arrays")
    func typmodValues() throws {
        let (_, connection) = try versionedTable("""
            CREATE TABLE customers (id int PRIMARY KEY, b bit(3), c char(2)[], v varchar(4));
            INSERT INTO customers VALUES (1, B'100', '{ab,cd}', 'abcd');
            """)
        try connection.execute("UPDATE customers SET b = B'101'")
        try connection.execute("UPDATE customers SET c = '{ab,ce}'")
        try connection.execute("UPDATE customers SET v = 'abce'")
        try connection.execute("UPDATE customers SET v = 'abce'")
        #expect(try historyLines(connection, columns: ["id", "b", "c", "v"]) == [
            "U:1,100,{ab,cd},abcd", "U:1,101,{ab,cd},abcd", "U:1,101,{ab,ce},abcd",
        ])
    }
}
