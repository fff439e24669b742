import Foundation
import Postgres
import TestSupport
import Testing

@Suite("temporal as-of, history, log, diff, revert")
struct TimeTravelCLITests {
    /// A database with customers versioned, changed after the returned instant.
    private func setUp() throws -> (TestDatabase, String) {
        let database = try TestDatabase()
        let db = try database.connect()
        #expect(try TemporalCommand.run(["install"], environment: ["PGDATABASE": database.name]).status == 0)
        try db.execute("""
            CREATE TABLE customers (id int PRIMARY KEY, name text, balance numeric(10,2), tags text[]);
            INSERT INTO customers VALUES (1, 'Alice', 10, '{a}'), (2, 'Bob', 20, NULL);
            SELECT temporal_versioning.enable_temporal_versioning('public', 'customers');
            """)
        let before = try db.value("SELECT clock_timestamp()")!
        try db.execute("""
            BEGIN; SET LOCAL temporal.changeset_id = 'cs-1'; SET LOCAL temporal.user_id = 'ann';
            UPDATE customers SET balance = 15 WHERE id = 1;
            DELETE FROM customers WHERE id = 2;
            INSERT INTO customers VALUES (3, 'Carol', 30, '{x,y}');
            COMMIT;
            """)
        return (database, before)
    }

    private func temporal(_ arguments: [String], _ database: TestDatabase, environment: [String: String] = [:]) throws -> TemporalCommand.Output {
        try TemporalCommand.run(arguments, environment: ["PGDATABASE": database.name].merging(environment) { $1 })
    }

    @Test("as-of prints the table as it was, as a table, JSON or CSV")
    func asOf() throws {
        let (database, before) = try setUp()
        let table = try temporal(["as-of", "customers", "--at", before], database)
        #expect(table.status == 0, "\(table)")
        #expect(table.stdout.contains(" 1 | Alice |   10.00 | {a}"), "\(table)")
        #expect(table.stdout.contains("(2 rows)"))

        let json = try temporal(["as-of", "customers", "--at", before, "--format", "json"], database)
        let rows = try #require(try parseJSON(json.stdout) as? [[String: Any]], "\(json)")
        #expect(Set(rows.compactMap { $0["name"] as? String }) == ["Alice", "Bob"])
        let alice = try #require(rows.first { $0["id"] as? Int == 1 })
        #expect((alice["balance"] as? NSNumber)?.doubleValue == 10)
        #expect(alice["tags"] as? [String] == ["a"])

        let csv = try temporal(["as-of", "customers", "--at", before, "--format", "csv", "--limit", "1"], database)
        #expect(csv.stdout.split(separator: "\n").count == 2, "\(csv)")
        #expect(csv.stdout.hasPrefix("id,name,balance,tags\n"))
    }

    @Test("timestamps are read in the session's time zone and printed in UTC")
    func timeZones() throws {
        let (database, _) = try setUp()
        // 09:00 in Berlin (winter, +01) is 08:00 UTC: before versioning began in 2026-11, so it is refused
        // with the earliest instant printed in UTC.
        let early = try temporal(["as-of", "customers", "--at", "2026-01-15 09:00"], database, environment: ["PGTZ": "Europe/Berlin"])
        #expect(early.status == 1)
        #expect(early.stderr.contains("instant 2026-01-15 08:00:00+00 is before the history"), "\(early)")
        let log = try temporal(["log", "customers", "--format", "csv"], database, environment: ["PGTZ": "America/New_York"])
        #expect(log.stdout.contains("+00,"), "\(log)")
    }

    @Test("history shows every version of one row; log shows the changes with who and what")
    func historyAndLog() throws {
        let (database, _) = try setUp()
        let history = try temporal(["history", "customers", "--key", "id=1"], database)
        #expect(history.status == 0, "\(history)")
        #expect(history.stdout.contains("EXISTING"))
        #expect(history.stdout.contains("UPDATE"))
        #expect(history.stdout.contains("cs-1"))
        let json = try #require(try parseJSON(try temporal(["history", "customers", "--key", "id=1", "--format", "json"], database).stdout) as? [[String: Any]])
        #expect(json.count == 2)
        #expect((json[1]["row_data"] as? [String: Any])?["balance"] as? Double == 15)
        #expect(json[1]["changed_columns"] as? [String] == ["balance"])

        let log = try temporal(["log", "customers", "--op", "update"], database)
        #expect(log.stdout.contains("balance: 10.00 -> 15.00"), "\(log)")
        #expect(log.stdout.contains("(1 row)"))
        let byUser = try #require(try parseJSON(try temporal(["log", "customers", "--user", "ann", "--format", "json"], database).stdout) as? [[String: Any]])
        #expect(byUser.count == 3)
        #expect(Set(byUser.compactMap { $0["change_type"] as? String }) == ["UPDATE", "DELETE", "INSERT"])
        let limited = try temporal(["log", "customers", "--limit", "1"], database)
        #expect(limited.stderr.contains("the first 1 changes"))

        let badKey = try temporal(["history", "customers", "--key", "id"], database)
        #expect(badKey.status == 64)
        let wrongColumn = try temporal(["history", "customers", "--key", "name=Alice"], database)
        #expect(wrongColumn.stderr.contains(#"column name is not part of the key"#), "\(wrongColumn)")
    }

    @Test("diff --format json has added, deleted and modified")
    func diff() throws {
        let (database, before) = try setUp()
        let output = try temporal(["diff", "customers", "--from", before, "--format", "json"], database)
        let object = try #require(try parseJSON(output.stdout) as? [String: Any], "\(output)")
        #expect((object["added"] as? [[String: Any]])?.first?["name"] as? String == "Carol")
        #expect((object["deleted"] as? [[String: Any]])?.first?["name"] as? String == "Bob")
        let modified = try #require((object["modified"] as? [[String: Any]])?.first)
        #expect((modified["key"] as? [String: Any])?["id"] as? Int == 1)
        #expect(modified["changed"] as? [String] == ["balance"])
        let reversed = try temporal(["diff", "customers", "--from", "now", "--to", before], database)
        #expect(reversed.status == 1)
        #expect(reversed.stderr.contains("must be before"))
    }

    @Test("revert: dry run, --yes from scripts, the same counts, and read-only mode")
    func revert() throws {
        let (database, before) = try setUp()
        let dry = try temporal(["revert", "customers", "--to", before, "--dry-run", "--format", "json"], database)
        let plan = try #require(try parseJSON(dry.stdout) as? [String: Any], "\(dry)")
        #expect(plan["applied"] as? Bool == false)
        #expect(plan["inserts"] as? Int == 1 && plan["updates"] as? Int == 1 && plan["deletes"] as? Int == 1)
        #expect((plan["rows"] as? [[String: Any]])?.count == 3)

        let noYes = try temporal(["revert", "customers", "--to", before], database)
        #expect(noYes.status == 64)
        #expect(noYes.stderr.contains("--yes"))
        let readOnly = try temporal(["revert", "customers", "--to", before, "--yes"], database, environment: ["TEMPORAL_READ_ONLY": "1"])
        #expect(readOnly.status == 64)
        #expect(readOnly.stderr.contains("read-only"))
        #expect(try temporal(["revert", "customers", "--to", before, "--dry-run", "--read-only"], database).status == 0)

        let done = try temporal(["revert", "customers", "--to", before, "--yes", "--format", "json"], database)
        let result = try #require(try parseJSON(done.stdout) as? [String: Any], "\(done)")
        #expect(result["applied"] as? Bool == true)
        #expect(result["inserts"] as? Int == 1 && result["updates"] as? Int == 1 && result["deletes"] as? Int == 1)
        #expect(try database.connect().column("SELECT name FROM customers ORDER BY id") == ["Alice", "Bob"])

        let again = try temporal(["revert", "customers", "--to", before, "--dry-run"], database)
        #expect(again.stdout.contains("nothing to revert"))

        let undo = try temporal(["revert", "--changeset", "cs-1", "--yes"], database)
        #expect(undo.status == 1, "cs-1's rows were changed again by the revert")
        #expect(undo.stderr.contains("changed again afterwards"))

        let unknownTable = try temporal(["revert", "nope", "--to", before, "--yes"], database)
        #expect(unknownTable.stderr == "ERROR:  relation \"nope\" does not exist\n")
        let noTarget = try temporal(["revert", "customers", "--dry-run"], database)
        #expect(noTarget.status == 64)
    }

    @Test("revert asks on a terminal and applies only what it showed")
    func confirmation() throws {
        let (database, before) = try setUp()
        // `script` gives temporal a terminal; the answer comes on its stdin.
        let command = "\(TemporalCommand.binary.path) revert customers --to '\(before)'"
        func onTerminal(_ answer: String) throws -> (Int32, String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
            process.arguments = ["-qec", command, "/dev/null"]
            process.environment = ProcessInfo.processInfo.environment.merging(["PGDATABASE": database.name]) { $1 }
            let input = Pipe(), output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            input.fileHandleForWriting.write(Data(answer.utf8))
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
        let (declined, declinedText) = try onTerminal("n\n")
        #expect(declined != 0)
        #expect(declinedText.contains("dry run: would delete 1, update 1, insert 1"), "\(declinedText)")
        #expect(try database.connect().count("SELECT count(*) FROM customers WHERE id = 3") == 1)
        let (accepted, acceptedText) = try onTerminal("y\n")
        #expect(accepted == 0, "\(acceptedText)")
        #expect(acceptedText.contains("reverted: 1 deleted, 1 updated, 1 inserted"))
        #expect(try database.connect().column("SELECT name FROM customers ORDER BY id") == ["Alice", "Bob"])
    }

    @Test("CSV tells NULL from an empty string as COPY does; bad limits and ids name their option")
    func csvAndArguments() throws {
        let (database, before) = try setUp()
        let db = try database.connect()
        try db.execute("UPDATE customers SET name = '' WHERE id = 1")
        let csv = try temporal(["as-of", "customers", "--at", "now", "--format", "csv"], database)
        #expect(csv.stdout.contains("\n1,\"\",15.00,{a}\n"), "\(csv)")
        #expect(csv.stdout.contains("\n3,Carol,30.00,\"{x,y}\"\n"), "\(csv)")
        // COPY reads it back exactly: the empty name stays empty, a NULL stays NULL.
        try db.execute("CREATE TABLE copy_back (id int, name text, balance numeric, tags text[])")
        _ = try db.copyIn("COPY copy_back FROM STDIN (FORMAT csv, HEADER true)", data: csv.stdout)
        #expect(try db.value("SELECT count(*) FROM copy_back WHERE name = '' AND id = 1") == "1")
        for (arguments, message) in [
            (["log", "customers", "--limit", "-1"], "--limit must be between 0 (all) and 2147483647, not -1"),
            (["log", "customers", "--limit", "3000000000"], "--limit must be between 0 (all) and 2147483647, not 3000000000"),
            (["as-of", "customers", "--at", before, "--limit", "-5"], "--limit must be between 0 and 2147483647, not -5"),
            (["revert", "--tx", "-1", "--dry-run"], "--tx takes a transaction id"),
        ] {
            let refused = try temporal(arguments, database)
            #expect(refused.status == 64, "\(refused)")
            #expect(refused.stderr.contains(message), "\(refused)")
        }
    }

    @Test("a dropped table's as-of says where its history is; a revert prints its own changeset, so a second one can be undone")
    func droppedTableAndRevertLabels() throws {
        let (database, before) = try setUp()
        let db = try database.connect()
        var labels: [String] = []
        for _ in 0..<2 {
            let revert = try temporal(["revert", "customers", "--to", before, "--yes"], database)
            #expect(revert.status == 0, "\(revert)")
            let label = try #require(revert.stderr.split(separator: "'").dropFirst().first.map(String.init), "\(revert)")
            labels.append(label)
            let undo = try temporal(["revert", "--changeset", label, "--yes"], database)
            #expect(undo.status == 0, "\(undo)")
        }
        #expect(Set(labels).count == 2, "each revert has its own changeset: \(labels)")
        try db.execute("DROP TABLE customers")
        let dropped = try temporal(["as-of", "customers", "--at", before], database)
        #expect(dropped.status == 1)
        #expect(dropped.stderr.contains(#"table "public.customers" was dropped"#), "\(dropped)")
        #expect(dropped.stderr.contains("temporal_versioning.customers_history"), "\(dropped)")
    }

    @Test("a role without pg-temporal's rights is told whose schema it is and what to GRANT")
    func withoutRights() throws {
        let (database, _) = try setUp()
        let role = try database.createRole("reader")
        defer { database.dropRoles([role]) }
        let refused = try temporal(["log", "customers"], database, environment: ["PGUSER": role])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("belongs to the role that installed it"), "\(refused)")
        #expect(refused.stderr.contains("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA temporal_versioning"), "\(refused)")
    }

}
