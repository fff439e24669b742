import Foundation
import Postgres
import TestSupport
import Testing

@Suite("libpq connection")
struct ConnectionTests {
    @Test("connects with PG* environment variables and a conninfo string")
    func connectsWithConninfo() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        #expect(try connection.value("SELECT current_database()") == database.name)
        #expect(connection.serverVersion >= 150000)
        #expect(connection.safeDescription.hasSuffix("/\(database.name)"))
    }

    @Test("connects with a postgresql:// URI")
    func connectsWithURI() throws {
        let database = try TestDatabase()
        let port = ProcessInfo.processInfo.environment["PGPORT"] ?? "5432"
        let connection = try Connection(conninfo: "postgresql://postgres@127.0.0.1:\(port)/\(database.name)")
        #expect(try connection.value("SELECT current_database()") == database.name)
        #expect(try connection.value("SELECT inet_client_addr()::text") == "127.0.0.1/32")
    }

    @Test("a password comes from a .pgpass file, and is never in an error")
    func passwordFromPgpass() throws {
        let database = try TestDatabase()
        // scripts/pg-start creates this role; pg_hba.conf makes it use scram-sha-256 over TCP.
        let role = "temporal_pw"
        let port = ProcessInfo.processInfo.environment["PGPORT"] ?? "5432"
        let passfile = FileManager.default.temporaryDirectory.appendingPathComponent("pgpass-\(database.name)")
        try "127.0.0.1:\(port):*:\(role):temporal-test-password\n".write(to: passfile, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: passfile.path)
        defer { try? FileManager.default.removeItem(at: passfile) }

        let connection = try Connection(
            conninfo: "host=127.0.0.1 port=\(port) user=\(role) dbname=\(database.name) passfile=\(passfile.path)")
        #expect(try connection.value("SELECT current_user") == role)

        // A wrong password fails with PostgreSQL's message, which never repeats the password.
        let error = #expect(throws: PostgresError.self) {
            try Connection(conninfo: "postgresql://\(role):wrong-pw-value@127.0.0.1:\(port)/\(database.name)")
        }
        #expect(error?.kind == .connection)
        #expect(error?.message.contains("password authentication failed") == true)
        #expect(error?.message.contains("wrong-pw-value") == false)
    }

    @Test("a service file names the connection")
    func serviceFile() throws {
        let database = try TestDatabase()
        let port = ProcessInfo.processInfo.environment["PGPORT"] ?? "5432"
        let serviceFile = FileManager.default.temporaryDirectory.appendingPathComponent("pg_service-\(database.name).conf")
        try "[temporal_test]\nhost=127.0.0.1\nport=\(port)\nuser=postgres\ndbname=\(database.name)\n"
            .write(to: serviceFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: serviceFile) }
        setenv("PGSERVICEFILE", serviceFile.path, 1)
        defer { unsetenv("PGSERVICEFILE") }
        let connection = try Connection(conninfo: "service=temporal_test")
        #expect(try connection.value("SELECT current_database()") == database.name)
    }

    @Test("a server that is not there is a connection error")
    func unreachableServer() throws {
        let error = #expect(throws: PostgresError.self) {
            try Connection(conninfo: "host=127.0.0.1 port=1 connect_timeout=2")
        }
        #expect(error?.kind == .connection)
        #expect(error?.message.contains("127.0.0.1") == true)
    }

    @Test("errors keep SQLSTATE, detail and hint")
    func errorFields() throws {
        let connection = try TestDatabase().connect()
        let error = #expect(throws: PostgresError.self) {
            try connection.execute("""
                DO $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = 'check_violation',
                    DETAIL = 'the detail', HINT = 'the hint'; END $$
                """)
        }
        #expect(error?.sqlState == "23514")
        #expect(error?.message == "boom")
        #expect(error?.detail == "the detail")
        #expect(error?.hint == "the hint")
        #expect(error?.psqlDescription == "ERROR:  boom\nDETAIL:  the detail\nHINT:  the hint")

        let missing = #expect(throws: PostgresError.self) { try connection.query("SELECT * FROM no_such_table") }
        #expect(missing?.sqlState == SQLState.undefinedTable)
    }

    @Test("values travel as parameters, never as SQL")
    func parameters() throws {
        let connection = try TestDatabase().connect()
        try connection.execute("CREATE TABLE t (v text)")
        let hostile = "x'); DROP TABLE t; --"
        try connection.query("INSERT INTO t VALUES ($1)", [hostile])
        #expect(try connection.value("SELECT v FROM t") == hostile)
        #expect(try connection.value("SELECT $1::text[]", [["a", "b \"c\"", "d\\e", "NULL"]]) == #"{a,"b \"c\"","d\\e","NULL"}"#)
        #expect(try connection.value("SELECT $1::int + $2::int", [40, 2]) == "42")
        #expect(try connection.value("SELECT $1::boolean", [true]) == "t")
        #expect(try connection.value("SELECT $1::text IS NULL", [nil]) == "t")
    }

    @Test("notices reach the notice handler")
    func notices() throws {
        let connection = try TestDatabase().connect()
        var received: [PostgresError] = []
        connection.noticeHandler = { received.append($0) }
        try connection.execute("DO $$ BEGIN RAISE WARNING 'careful' USING HINT = 'look'; END $$")
        #expect(received.count == 1)
        #expect(received.first?.severity == "WARNING")
        #expect(received.first?.hint == "look")
    }

    @Test("a transaction commits, or rolls back when its body throws")
    func transactions() throws {
        let connection = try TestDatabase().connect()
        try connection.execute("CREATE TABLE t (v int)")
        try connection.transaction { _ = try connection.query("INSERT INTO t VALUES (1)") }
        struct Failure: Error {}
        #expect(throws: Failure.self) {
            try connection.transaction {
                try connection.query("INSERT INTO t VALUES (2)")
                throw Failure()
            }
        }
        #expect(try connection.column("SELECT v FROM t") == ["1"])
    }

    @Test("COPY FROM STDIN sends its data")
    func copyIn() throws {
        let connection = try TestDatabase().connect()
        try connection.execute("CREATE TABLE t (id int, name text)")
        let rows = try connection.copyIn("COPY t FROM STDIN", data: "1\tone\n2\t\\N\n")
        #expect(rows == 2)
        #expect(try connection.column("SELECT coalesce(name, 'null') FROM t ORDER BY id") == ["one", "null"])
        #expect(throws: PostgresError.self) { try connection.copyIn("COPY t FROM STDIN", data: "x\ty\n") }
        #expect(try connection.count("SELECT count(*) FROM t") == 2)
    }
}
