import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing

/// The `temporal` binary as a user runs it: arguments, environment, stdout,
/// stderr and exit status.
@Suite("temporal command line")
struct CLITests {
    private func temporal(_ arguments: [String], _ database: TestDatabase, environment: [String: String] = [:]) throws -> TemporalCommand.Output {
        try TemporalCommand.run(arguments, environment: ["PGDATABASE": database.name].merging(environment) { $1 })
    }

    @Test("install, enable, list, status and disable, as a DBA runs them")
    func session() throws {
        let database = try TestDatabase()
        try database.connect().execute("CREATE TABLE customers (id int PRIMARY KEY, name text); INSERT INTO customers VALUES (1, 'a')")

        let install = try temporal(["install"], database)
        #expect(install.status == 0, "\(install)")
        #expect(install.stdout.hasPrefix("pg-temporal \(Installer.bundledVersion) installed in database \"\(database.name)\""))
        #expect(install.stderr.isEmpty, "\(install)")
        #expect(try temporal(["install"], database).stdout.contains("is up to date"))

        let enable = try temporal(["enable", "customers"], database)
        #expect(enable.status == 0, "\(enable)")
        #expect(enable.stdout == "versioning public.customers into temporal_versioning.customers_history\n")

        try database.connect().execute("UPDATE customers SET name = 'b'; INSERT INTO customers VALUES (2, 'c'); DELETE FROM customers WHERE id = 1")

        let list = try temporal(["list"], database)
        #expect(list.stdout.contains(" public      | customers  | temporal_versioning.customers_history |"), "\(list)")
        #expect(list.stdout.hasSuffix("(1 row)\n"))

        let status = try temporal(["status", "public.customers", "--format", "json"], database)
        let object = try #require(try parseJSON(status.stdout) as? [String: Any], "\(status)")
        #expect(object["inserts"] as? Int == 1)
        #expect(object["updates"] as? Int == 1)
        #expect(object["deletes"] as? Int == 1)
        #expect(object["enabled"] as? Bool == true)
        #expect(object["key_columns"] as? [String] == ["id"])

        let table = try temporal(["status", "customers"], database)
        #expect(table.stdout.contains("total_changes    | 3"), "\(table)")

        let csv = try temporal(["list", "--format", "csv"], database)
        #expect(csv.stdout.split(separator: "\n").first == "schema_name,table_name,history_table,enabled,capture,key_columns,versioning_since,created_at,history_rows,history_bytes,history_floor,changes_7d")

        let disable = try temporal(["disable", "customers"], database)
        #expect(disable.stdout.contains("kept in temporal_versioning.customers_history"), "\(disable)")
        let drop = try temporal(["disable", "customers", "--drop-history", "--yes"], database)
        #expect(drop.status == 0, "\(drop)")
        #expect(try temporal(["list", "--format", "json"], database).stdout == "[]\n")
    }

    @Test("errors print PostgreSQL's message and hint, exit non-zero and change nothing")
    func errors() throws {
        let database = try TestDatabase()
        let notInstalled = try temporal(["enable", "customers"], database)
        #expect(notInstalled.status == 1)
        #expect(notInstalled.stderr == "ERROR:  pg-temporal is not installed in database \"\(database.name)\"\nHINT:  Install it with: temporal install\n")

        _ = try temporal(["install"], database)
        try database.connect().execute("CREATE TABLE nokey (a int); CREATE TABLE customers (id int PRIMARY KEY)")

        let unknown = try temporal(["enable", "nope"], database)
        #expect(unknown.status == 1)
        #expect(unknown.stderr == "ERROR:  relation \"nope\" does not exist\n")

        let noKey = try temporal(["enable", "nokey"], database)
        #expect(noKey.status == 1)
        #expect(noKey.stderr.contains("ERROR:  table \"public.nokey\" has no primary key"))
        #expect(noKey.stderr.contains("HINT:  Add one"))

        let injection = try temporal(["enable", #"x"; drop table customers; --"#], database)
        #expect(injection.status == 1)
        #expect(try database.connect().value("SELECT to_regclass('customers') IS NOT NULL") == "t")

        let notVersioned = try temporal(["status", "customers"], database)
        #expect(notVersioned.stderr.contains("is not versioned"))
        #expect(notVersioned.stderr.contains("HINT:  Turn versioning on first: temporal enable public.customers"))

        _ = try temporal(["enable", "customers"], database)
        let twice = try temporal(["enable", "customers"], database)
        #expect(twice.status == 1)
        #expect(twice.stderr.hasPrefix("ERROR:  table \"public.customers\" is already versioned\nDETAIL:"))

        let dropWithoutYes = try temporal(["disable", "customers", "--drop-history"], database)
        #expect(dropWithoutYes.status != 0)
        #expect(dropWithoutYes.stderr.contains("--yes"))
        #expect(try database.connect().value("SELECT to_regclass('temporal_versioning.customers_history') IS NOT NULL") == "t")

        let badKey = try temporal(["enable", "nokey", "--key", ""], database)
        #expect(badKey.status == 64)
        #expect(badKey.stderr.contains("--key takes column names"))
    }

    @Test("read-only mode refuses commands that write, by flag or environment")
    func readOnly() throws {
        let database = try TestDatabase()
        _ = try temporal(["install"], database)
        try database.connect().execute("CREATE TABLE customers (id int PRIMARY KEY)")
        for (arguments, environment) in [
            (["enable", "customers", "--read-only"], [String: String]()),
            (["enable", "customers"], ["TEMPORAL_READ_ONLY": "1"]),
            (["install"], ["TEMPORAL_READ_ONLY": "true"]),
        ] {
            let refused = try temporal(arguments, database, environment: environment)
            #expect(refused.status == 64, "\(refused)")
            #expect(refused.stderr.contains("refused in read-only mode"), "\(refused)")
        }
        #expect(try temporal(["list", "--read-only"], database).status == 0)
        #expect(try database.connect().count("SELECT count(*) FROM temporal_versioning.versioned_tables") == 0)
    }

    @Test("connection settings come from libpq: URI, PGPASSWORD, and no password in any message")
    func connectionSettings() throws {
        let database = try TestDatabase()
        let port = ProcessInfo.processInfo.environment["PGPORT"] ?? "5432"
        let uri = "postgresql://postgres@127.0.0.1:\(port)/\(database.name)"
        #expect(try TemporalCommand.run(["install", "--db", uri]).status == 0)

        // temporal_pw authenticates with scram over TCP (scripts/pg-start).
        try database.connect().execute("GRANT USAGE ON SCHEMA temporal_versioning TO temporal_pw; GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA temporal_versioning TO temporal_pw; GRANT SELECT ON ALL TABLES IN SCHEMA temporal_versioning TO temporal_pw")
        let withPassword = try TemporalCommand.run(
            ["list", "--db", "host=127.0.0.1 port=\(port) user=temporal_pw dbname=\(database.name)"],
            environment: ["PGPASSWORD": "temporal-test-password"])
        #expect(withPassword.status == 0, "\(withPassword)")

        let wrong = try TemporalCommand.run(
            ["list", "--db", "postgresql://temporal_pw:hunter2-secret@127.0.0.1:\(port)/\(database.name)"])
        #expect(wrong.status == 2)
        #expect(wrong.stderr.contains("password authentication failed"))
        #expect(!wrong.stderr.contains("hunter2-secret") && !wrong.stdout.contains("hunter2-secret"))

        let down = try TemporalCommand.run(["list", "--db", "postgresql://u:topsecret@127.0.0.1:1/x?connect_timeout=2"])
        #expect(down.status == 2)
        #expect(down.stderr.hasPrefix("ERROR:  connection to server at \"127.0.0.1\", port 1 failed"))
        #expect(!down.stderr.contains("topsecret"))
    }

    @Test("every command has help with an example")
    func help() throws {
        for command in ["install", "enable", "disable", "list", "status"] {
            let help = try TemporalCommand.run(["help", command])
            #expect(help.status == 0)
            #expect(help.stdout.contains("OVERVIEW:"), "\(command)")
            #expect(help.stdout.contains("temporal \(command)"), "\(command) help has no example")
        }
        let root = try TemporalCommand.run(["--help"])
        #expect(root.stdout.contains("SUBCOMMANDS:"))
        #expect(try TemporalCommand.run(["--version"]).stdout == Installer.bundledVersion + "\n")
    }

    @Test("only a MongoDB sink loads the MongoDB driver: other commands leave no /dev/shm/mongoc-<pid> behind")
    func mongoDriverLoadedOnlyForMongoDB() throws {
        // The dynamic loader reports every library it loads (LD_DEBUG=files).
        let list = try TemporalCommand.run(["--version"], environment: ["LD_DEBUG": "files"])
        #expect(list.status == 0)
        #expect(list.stderr.contains("libpq.so"), "the loader's report is there: \(list.stderr.prefix(300))")
        #expect(!list.stderr.contains("libmongoc"), "libmongoc loaded by temporal --version")
        let database = try TestDatabase()
        let status = try TemporalCommand.run(["stream", "status"], environment: ["PGDATABASE": database.name, "LD_DEBUG": "files"])
        #expect(status.status == 0, "\(status.stdout)")
        #expect(!status.stderr.contains("libmongoc"))
    }
}
