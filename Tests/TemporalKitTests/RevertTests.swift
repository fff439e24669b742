import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing

@Suite("revert")
struct RevertTests {
    /// A versioned customers table with three rows, then a "migration" after the returned instant.
    private func migrated() throws -> (TestDatabase, Connection, String) {
        let (database, db) = try versionedTable("""
            CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, balance numeric(10,2));
            INSERT INTO customers VALUES (1, 'Alice', 10), (2, 'Bob', 20), (3, 'Carol', 30);
            """)
        let before = try db.value("SELECT clock_timestamp()")!
        try db.execute("""
            BEGIN; SET LOCAL temporal.changeset_id = 'migration-1';
            UPDATE customers SET balance = balance * 2;
            DELETE FROM customers WHERE id = 3;
            INSERT INTO customers VALUES (4, 'Dan', 40);
            COMMIT;
            """)
        return (database, db, before)
    }

    private func revert(_ db: Connection, to instant: String, dryRun: Bool) throws -> [[String?]] {
        try db.query("SELECT action, key::text FROM temporal_versioning.revert_table_data('public', 'customers', $1, $2)",
                     [instant, dryRun]).rows
    }

    private func contents(_ db: Connection) throws -> [String] {
        try db.column("SELECT format('%s %s %s', id, name, balance) FROM customers ORDER BY id").compactMap { $0 }
    }

    @Test("the dry run changes nothing; the real run does exactly what it showed, and is captured")
    func dryRunThenRevert() throws {
        let (_, db, before) = try migrated()
        let now = try contents(db)
        let plan = try revert(db, to: before, dryRun: true)
        #expect(plan == [["delete", #"{"id": 4}"#], ["update", #"{"id": 1}"#], ["update", #"{"id": 2}"#], ["insert", #"{"id": 3}"#]])
        #expect(try contents(db) == now)
        #expect(try revert(db, to: before, dryRun: false) == plan)
        #expect(try contents(db) == ["1 Alice 10.00", "2 Bob 20.00", "3 Carol 30.00"])
        let label = try db.value("""
            SELECT DISTINCT t.changeset_id FROM temporal_versioning.customers_history h
            JOIN temporal_versioning.transactions t ON t.tx_id = h.temporal_tx_id WHERE t.changeset_id LIKE 'revert:%'
            """)
        #expect(label?.hasPrefix("revert:public.customers:to:") == true)
        // The revert can be reverted.
        try db.query("SELECT * FROM temporal_versioning.revert_changeset($1, false)", [label])
        #expect(try contents(db) == now)
    }

    @Test("undo one changeset, or one transaction, leaves other changes alone")
    func undoChangeset() throws {
        let (_, db, _) = try migrated()
        try db.execute("INSERT INTO customers VALUES (5, 'Eve', 50)")   // not part of migration-1
        try db.query("SELECT * FROM temporal_versioning.revert_changeset('migration-1', false)")
        #expect(try contents(db) == ["1 Alice 10.00", "2 Bob 20.00", "3 Carol 30.00", "5 Eve 50.00"])

        try db.execute("UPDATE customers SET name = 'Bobby' WHERE id = 2")
        let tx = try db.value("SELECT max(temporal_tx_id) FROM temporal_versioning.customers_history")!
        try db.query("SELECT * FROM temporal_versioning.revert_transaction($1::bigint, false)", [tx])
        #expect(try contents(db).contains("2 Bob 20.00"))
    }

    @Test("undoing a changeset whose rows changed again later is refused, naming the rows")
    func changesetConflict() throws {
        let (_, db, _) = try migrated()
        try db.execute("UPDATE customers SET name = 'Alicia' WHERE id = 1")
        let now = try contents(db)
        let error = #expect(throws: PostgresError.self) {
            try db.query("SELECT * FROM temporal_versioning.revert_changeset('migration-1', false)")
        }
        #expect(error?.message.contains("changed again afterwards") == true)
        #expect(error?.detail?.contains(#"{"id": 1}"#) == true)
        #expect(try contents(db) == now)
        let unknown = #expect(throws: PostgresError.self) {
            try db.query("SELECT * FROM temporal_versioning.revert_changeset('no-such-changeset', true)")
        }
        #expect(unknown?.sqlState == "P0002")
    }

    @Test("a changeset across tables with a foreign key is undone children first, parents last")
    func multiTableForeignKeys() throws {
        let (_, db) = try installedDatabase()
        try db.execute("""
            CREATE TABLE parents (id int PRIMARY KEY);
            CREATE TABLE children (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parents);
            SELECT temporal_versioning.enable_temporal_versioning('public', 'parents');
            SELECT temporal_versioning.enable_temporal_versioning('public', 'children');
            BEGIN; SET LOCAL temporal.changeset_id = 'import';
            INSERT INTO parents VALUES (1), (2);
            INSERT INTO children VALUES (10, 1), (20, 2);
            COMMIT;
            """)
        let plan = try db.query("SELECT source_table, action FROM temporal_versioning.revert_changeset('import', true)").rows
        #expect(plan.count == 4)
        try db.query("SELECT * FROM temporal_versioning.revert_changeset('import', false)")
        #expect(try db.count("SELECT count(*) FROM parents") + db.count("SELECT count(*) FROM children") == 0)
        // And back again, parents first.
        let label = try db.value("SELECT max(changeset_id) FROM temporal_versioning.transactions WHERE changeset_id LIKE 'revert:%'")
        try db.query("SELECT * FROM temporal_versioning.revert_changeset($1, false)", [label])
        #expect(try db.count("SELECT count(*) FROM children") == 2)
    }

    @Test("a revert that would break a foreign key fails with the constraint's name and changes nothing")
    func foreignKeyViolation() throws {
        let (_, db, before) = try migrated()
        try db.execute("CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers)")
        try db.execute("INSERT INTO orders VALUES (1, 4)")   // customer 4 did not exist before
        let now = try contents(db)
        let error = #expect(throws: PostgresError.self) { try revert(db, to: before, dryRun: false) }
        #expect(error?.sqlState == SQLState.foreignKeyViolation)
        #expect(error?.message.contains("orders_customer_id_fkey") == true)
        #expect(try contents(db) == now)
    }

    @Test("deferrable constraints are checked at commit; the user's own triggers fire")
    func deferredAndUserTriggers() throws {
        let (_, db, before) = try migrated()
        try db.execute("""
            CREATE TABLE audit (n int);
            CREATE FUNCTION count_writes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit VALUES (1); RETURN NULL; END $$;
            CREATE TRIGGER count_writes AFTER INSERT OR UPDATE OR DELETE ON customers FOR EACH ROW EXECUTE FUNCTION count_writes();
            CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers DEFERRABLE INITIALLY DEFERRED);
            INSERT INTO orders VALUES (1, 4);
            """)
        try db.execute("BEGIN")
        _ = try revert(db, to: before, dryRun: false)   // deletes customer 4: fine until commit
        #expect(try db.count("SELECT count(*) FROM audit") == 4)
        let commit = #expect(throws: PostgresError.self) { try db.execute("COMMIT") }
        #expect(commit?.sqlState == SQLState.foreignKeyViolation)
        #expect(try contents(db).contains("4 Dan 40.00"))
    }

    @Test("a revert locks the table against writers until it commits")
    func locksWriters() throws {
        let (database, db, before) = try migrated()
        try db.execute("BEGIN")
        _ = try revert(db, to: before, dryRun: false)
        let writer = try database.connect()
        try writer.execute("SET lock_timeout = '200ms'")
        let blocked = #expect(throws: PostgresError.self) { try writer.execute("UPDATE customers SET name = 'x' WHERE id = 1") }
        #expect(blocked?.sqlState == "55P03")
        #expect(try writer.count("SELECT count(*) FROM customers") == 3)   // readers go on
        try db.execute("COMMIT")
        try writer.execute("UPDATE customers SET name = 'x' WHERE id = 1")
    }

    @Test("a revert across a dropped column is refused, across an added one handled")
    func schemaChanges() throws {
        let (_, db, before) = try migrated()
        try db.execute("ALTER TABLE customers ADD COLUMN tier text NOT NULL DEFAULT 'gold'")
        try db.execute("UPDATE customers SET tier = 'silver' WHERE id = 1")
        _ = try revert(db, to: before, dryRun: false)
        #expect(try db.column("SELECT format('%s %s', id, tier) FROM customers ORDER BY id") == ["1 silver", "2 gold", "3 gold"])

        let later = try db.value("SELECT clock_timestamp()")!
        try db.execute("UPDATE customers SET balance = 0; ALTER TABLE customers DROP COLUMN balance")
        let refused = #expect(throws: PostgresError.self) { try revert(db, to: later, dryRun: true) }
        #expect(refused?.message.contains(#"column "balance" was dropped"#) == true)
        #expect(refused?.hint?.contains("Revert to an instant after") == true)
    }

    @Test("identity, generated and domain columns survive a revert")
    func specialColumns() throws {
        let (_, db) = try versionedTable("""
            CREATE DOMAIN positive AS int CHECK (VALUE > 0);
            CREATE TABLE customers (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, qty positive NOT NULL,
                                    double_qty int GENERATED ALWAYS AS (qty * 2) STORED);
            INSERT INTO customers (qty) VALUES (1), (2);
            """)
        let before = try db.value("SELECT clock_timestamp()")!
        try db.execute("DELETE FROM customers WHERE id = 1; UPDATE customers SET qty = 5 WHERE id = 2")
        _ = try db.query("SELECT * FROM temporal_versioning.revert_table_data('public', 'customers', $1, false)", [before])
        #expect(try db.column("SELECT format('%s %s %s', id, qty, double_qty) FROM customers ORDER BY id") == ["1 1 2", "2 2 4"])
    }

    @Test("bad requests say what is wrong and change nothing")
    func badRequests() throws {
        let (_, db, before) = try migrated()
        try db.execute("CREATE TABLE plain (id int PRIMARY KEY)")
        func failure(_ sql: String, _ parameters: [(any PostgresParameter)?] = []) -> PostgresError? {
            #expect(throws: PostgresError.self) { try db.query(sql, parameters) }
        }
        #expect(failure("SELECT * FROM temporal_versioning.revert_table_data('public', 'nope', now())")?.sqlState == SQLState.undefinedTable)
        #expect(failure("SELECT * FROM temporal_versioning.revert_table_data('public', 'plain', now())")?.message.contains("is not versioned") == true)
        let early = failure("SELECT * FROM temporal_versioning.revert_table_data('public', 'customers', '2001-01-01')")
        #expect(early?.message.contains("before the history") == true)
        #expect(early?.detail?.contains("earliest instant") == true)
        #expect(failure("SELECT * FROM temporal_versioning.revert_table_data('public', 'customers', now() + interval '1 day')")?
            .message.contains("in the future") == true)
        #expect(failure("SELECT * FROM temporal_versioning.revert_table_data('public', 'customers', 'not a time')")?
            .sqlState == SQLState.invalidDatetimeFormat)
        #expect(failure("SELECT * FROM temporal_versioning.compare_temporal_data('public', 'customers', now(), $1)", [before])?
            .message.contains("must be before") == true)
        #expect(failure("SELECT * FROM temporal_versioning.get_row_history('public', 'customers', 'name', 'x')")?
            .sqlState == SQLState.undefinedColumn)
        #expect(try contents(db) == ["1 Alice 20.00", "2 Bob 40.00", "4 Dan 40.00"])
    }

    @Test("row history and the change log show who did what, and survive DROP TABLE")
    func historyAndLog() throws {
        let (_, db, _) = try migrated()
        let versions = try db.query("""
            SELECT version, change_type, row_data::text, changed_columns::text, changeset
            FROM temporal_versioning.get_row_history('public', 'customers', 'id', '1')
            """).rows
        #expect(versions == [
            ["0", "EXISTING", #"{"id": 1, "name": "Alice", "balance": 10.00}"#, nil, nil],
            ["1", "UPDATE", #"{"id": 1, "name": "Alice", "balance": 20.00}"#, "{balance}", "migration-1"],
        ])
        let deletes = try db.query("""
            SELECT key::text, before->>'name' FROM temporal_versioning.get_change_history('public', 'customers', operation => 'delete')
            """).rows
        #expect(deletes == [[#"{"id": 3}"#, "Carol"]])
        #expect(try db.count("SELECT count(*) FROM temporal_versioning.get_change_history('public', 'customers', changeset_id => 'migration-1')") == 5)
        #expect(try db.count("SELECT count(*) FROM temporal_versioning.get_change_history('public', 'customers', \"limit\" => 2)") == 2)

        try db.execute("DROP TABLE customers")
        #expect(try db.count("SELECT count(*) FROM temporal_versioning.get_row_history('public', 'customers', 'id', '1')") == 2)
        #expect(try db.count("SELECT count(*) FROM temporal_versioning.get_change_history('public', 'customers')") == 5)
        let gone = #expect(throws: PostgresError.self) {
            try db.query("SELECT * FROM temporal_versioning.query_temporal_data('public', 'customers', now())")
        }
        #expect(gone?.message.contains("was dropped") == true)
    }
}
