import Foundation
import Postgres
import TemporalKit
import TestSupport
import Testing

/// temporal schema-changes and temporal schema --json-schema, as the ETL
/// that feeds MongoDB runs them.
@Suite("temporal schema-changes and schema")
struct SchemaReportCLITests {
    @Test("schema-changes classifies each change like the migration guide's impact matrix; --since and a table narrow it")
    func classified() throws {
        let database = try TestDatabase()
        let db = try database.connect()
        _ = try Installer.install(on: db)
        func run(_ arguments: [String]) throws -> TemporalCommand.Output {
            try TemporalCommand.run(arguments, environment: ["PGDATABASE": database.name])
        }
        try db.execute("""
            CREATE TABLE users (id bigint PRIMARY KEY, name text, age int);
            CREATE TABLE other (id int PRIMARY KEY);
            SELECT temporal_versioning.enable_temporal_versioning('public', 'users');
            SELECT temporal_versioning.enable_temporal_versioning('public', 'other');
            ALTER TABLE users ADD COLUMN nickname text;
            ALTER TABLE users ADD COLUMN tenant int NOT NULL;
            ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true;
            """)
        let middle = try db.value("SELECT clock_timestamp()::text")!
        try db.execute("""
            ALTER TABLE users ALTER COLUMN age TYPE bigint;
            ALTER TABLE users RENAME COLUMN name TO full_name;
            ALTER TABLE users DROP COLUMN nickname;
            ALTER TABLE users RENAME TO people;
            """)
        let all = try run(["schema-changes", "people", "--format", "json"])
        #expect(all.status == 0, "\(all)")
        let rows = try parseJSON(all.stdout) as? [[String: Any]] ?? []
        let kinds = rows.map { "\($0["kind"]!) \($0["column"] as? String ?? "-") \($0["category"]!)" }
        #expect(kinds == ["new table - safe", "new optional field nickname safe", "new required field tenant review",
                          "new optional field active safe", "type change age migration", "field rename full_name breaking",
                          "field drop nickname breaking", "collection rename - breaking"], "\(kinds)")
        let typeChange = rows.first { $0["kind"] as? String == "type change" }
        #expect(typeChange?["from_type"] as? String == "integer" && typeChange?["to_type"] as? String == "bigint", "\(String(describing: typeChange))")

        let later = try run(["schema-changes", "--since", middle, "--format", "json"])
        let laterRows = try parseJSON(later.stdout) as? [[String: Any]] ?? []
        #expect(laterRows.count == 4, "\(later)")
        let everything = try run(["schema-changes", "--format", "json"])
        #expect((try parseJSON(everything.stdout) as? [Any])?.count == 9, "both tables: \(everything)")
        let readable = try run(["schema-changes", "people"])
        #expect(readable.status == 0 && readable.stdout.contains("new required field"), "\(readable)")
        let bad = try run(["schema-changes", "--since", "not a time"])
        #expect(bad.status != 0 && bad.stderr.contains("invalid input syntax"), "\(bad)")
    }

    @Test("schema --json-schema gives the BSON types the events write, and NOT NULL columns as required")
    func jsonSchema() throws {
        let database = try TestDatabase()
        let db = try database.connect()
        _ = try Installer.install(on: db)
        try db.execute("""
            CREATE DOMAIN positive AS int CHECK (VALUE > 0);
            CREATE TABLE things (id bigint PRIMARY KEY, n int NOT NULL, small smallint, price numeric(10,2), ratio float8,
                                 at timestamptz, day date, doc jsonb, raw bytea, uid uuid, tags text[] NOT NULL, ok boolean,
                                 p positive, label varchar(20));
            """)
        let result = try TemporalCommand.run(["schema", "things", "--json-schema"], environment: ["PGDATABASE": database.name])
        #expect(result.status == 0, "\(result)")
        let schema = (try parseJSON(result.stdout) as? [String: Any])?["$jsonSchema"] as? [String: Any] ?? [:]
        #expect(schema["required"] as? [String] == ["id", "n", "tags"], "\(schema)")
        let properties = schema["properties"] as? [String: [String: Any]] ?? [:]
        func type(_ column: String) -> String { "\(properties[column]?["bsonType"] ?? "any")" }
        #expect(properties["id"]?["bsonType"] as? String == "long")
        #expect(properties["n"]?["bsonType"] as? String == "int")
        #expect(properties["small"]?["bsonType"] as? [String] == ["int", "null"])
        #expect(properties["price"]?["bsonType"] as? [String] == ["decimal", "string", "null"])
        #expect(properties["ratio"]?["bsonType"] as? [String] == ["double", "null"])
        #expect(properties["at"]?["bsonType"] as? [String] == ["date", "null"] && properties["day"]?["bsonType"] as? [String] == ["date", "null"])
        #expect(properties["doc"]?["bsonType"] == nil, "jsonb may be any JSON value")
        #expect(properties["raw"]?["bsonType"] as? [String] == ["binData", "null"] && properties["uid"]?["bsonType"] as? [String] == ["binData", "null"])
        #expect(properties["tags"]?["bsonType"] as? String == "array" && (properties["tags"]?["items"] as? [String: Any])?["bsonType"] as? [String] == ["string", "null"])
        #expect(properties["ok"]?["bsonType"] as? [String] == ["bool", "null"])
        #expect(properties["p"]?["bsonType"] as? [String] == ["int", "null"], "a domain is its base type")
        #expect(properties["label"]?["bsonType"] as? [String] == ["string", "null"])
        #expect((properties["price"]?["description"] as? String)?.contains("numeric(10,2)") == true)
    }
}
