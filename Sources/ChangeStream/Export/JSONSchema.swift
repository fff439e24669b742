import Postgres
import TemporalKit

/// A table's current shape as a MongoDB `$jsonSchema` validator, with each
/// column's BSON type as the change events and exports write it: int2 and
/// int4 to int, int8 to long, numeric to decimal (or a string, for a value
/// Decimal128 cannot hold), float to double, timestamps and dates to date,
/// json and jsonb to any JSON value, bytea and uuid to binData, arrays to
/// array; NOT NULL columns are required, the others may be null.
public enum JSONSchema {
    public static func validator(for table: TableName, on connection: Connection) throws -> String {
        let columns = try connection.query("""
            SELECT a.attname::text, a.atttypid::pg_catalog.int8, a.attnotnull, pg_catalog.format_type(a.atttypid, a.atttypmod)
            FROM pg_catalog.pg_attribute a
            WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1) AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """, [table.qualified]).rows
        let decoder = ValueDecoder(types: try TypeCatalog(connection: connection))
        var properties: [String] = []
        var required: [String] = []
        for column in columns {
            let name = column[0] ?? "", oid = UInt32(column[1] ?? "") ?? 0, notNull = column[2] == "t"
            let parts = try schemaOf(plan: decoder.plan(for: oid), nullable: !notNull)
                + ["\"description\": \(JSON.string("PostgreSQL \(column[3] ?? "")"))"]
            properties.append("\(JSON.string(name)): {\(parts.joined(separator: ", "))}")
            if notNull { required.append(JSON.string(name)) }
        }
        // MongoDB refuses an empty "required".
        let requiredPart = required.isEmpty ? "" : "\"required\": [\(required.joined(separator: ", "))], "
        return """
            {"$jsonSchema": {"bsonType": "object", "title": \(JSON.string(table.qualified)), \
            \(requiredPart)"properties": {\(properties.joined(separator: ", "))}}}
            """
    }

    private static func schemaOf(plan: ValueDecoder.Plan, nullable: Bool) throws -> [String] {
        switch plan {
        case let .array(element):
            return ["\"bsonType\": \(types(["array"], nullable))", "\"items\": {\(scalar(element, nullable: true).joined(separator: ", "))}"]
        case let .scalar(oid):
            return scalar(oid, nullable: nullable)
        }
    }

    private static func scalar(_ oid: UInt32, nullable: Bool) -> [String] {
        switch oid {
        case TypeOID.json, TypeOID.jsonb:
            // Any JSON value (object, array, string, number, bool, null): no type to hold it to.
            return []
        default:
            return ["\"bsonType\": \(types(bsonTypes(oid), nullable))"]
        }
    }

    static func bsonTypes(_ oid: UInt32) -> [String] {
        switch oid {
        case TypeOID.bool: return ["bool"]
        case TypeOID.int2, TypeOID.int4: return ["int"]
        case TypeOID.int8, TypeOID.oid: return ["long"]
        case TypeOID.float4, TypeOID.float8: return ["double"]
        case TypeOID.numeric: return ["decimal", "string"]
        case TypeOID.timestamptz, TypeOID.timestamp, TypeOID.date: return ["date"]
        case TypeOID.bytea, TypeOID.uuid: return ["binData"]
        default: return ["string"]
        }
    }

    private static func types(_ names: [String], _ nullable: Bool) -> String {
        let all = names + (nullable ? ["null"] : [])
        return all.count == 1 ? JSON.string(all[0]) : "[" + all.map(JSON.string).joined(separator: ", ") + "]"
    }
}
