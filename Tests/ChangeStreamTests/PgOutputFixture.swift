import Foundation
import Postgres
@testable import ChangeStream

/// pgoutput bytes a real server sent, with what the checks need to know
/// about them (OIDs, a transaction id) and what the type catalog knew, saved
/// under Fixtures/ so that the decoder, fast-path and fuzz tests run offline
/// in seconds. The server tier captures the same scenarios afresh and runs
/// the same checks on them; with TEMPORAL_RECORD_FIXTURES=1 it also writes
/// them over the saved ones (scripts/record-fixtures).
struct PgOutputFixture {
    var name: String
    var serverVersion: String
    var facts: [String: String]
    var catalog: TypeCatalog.Snapshot
    var messages: [(LSN, [UInt8])]

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static var recording: Bool { ProcessInfo.processInfo.environment["TEMPORAL_RECORD_FIXTURES"] != nil }

    /// The saved fixture of this name.
    static func load(_ name: String) throws -> PgOutputFixture {
        let data = try Data(contentsOf: directory.appendingPathComponent("\(name).json"))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let facts = object["facts"] as? [String: String],
              let catalog = object["catalog"] as? [String: Any],
              let messages = object["messages"] as? [[String]] else {
            throw FixtureError("fixture \(name) is not in the expected shape")
        }
        func oids(_ key: String) -> [UInt32: UInt32] {
            var result: [UInt32: UInt32] = [:]
            for (oid, value) in catalog[key] as? [String: Int] ?? [:] { result[UInt32(oid)!] = UInt32(value) }
            return result
        }
        var snapshot = TypeCatalog.Snapshot()
        snapshot.arrayElements = oids("arrays")
        snapshot.domainBases = oids("domains")
        for (oid, key) in catalog["primary_keys"] as? [String: [String]] ?? [:] { snapshot.primaryKeys[UInt32(oid)!] = key }
        snapshot.quotedKeywords = Set(catalog["quoted_keywords"] as? [String] ?? [])
        return PgOutputFixture(
            name: name, serverVersion: object["server_version"] as? String ?? "", facts: facts, catalog: snapshot,
            messages: try messages.map { pair in
                guard pair.count == 2, let lsn = LSN(pair[0]) else { throw FixtureError("fixture \(name): bad message \(pair)") }
                return (lsn, hexBytes(pair[1]))
            })
    }

    /// Writes the fixture over the saved one, when recording.
    func saveIfRecording() throws {
        guard Self.recording else { return }
        var arrays: [String: Int] = [:], domains: [String: Int] = [:], keys: [String: [String]] = [:]
        for (oid, element) in catalog.arrayElements { arrays[String(oid)] = Int(element) }
        for (oid, base) in catalog.domainBases { domains[String(oid)] = Int(base) }
        for (oid, key) in catalog.primaryKeys { keys[String(oid)] = key }
        let object: [String: Any] = [
            "name": name,
            "server_version": serverVersion,
            "facts": facts,
            "catalog": ["arrays": arrays, "domains": domains, "primary_keys": keys,
                        "quoted_keywords": catalog.quotedKeywords.sorted()],
            "messages": messages.map { [$0.0.description, Self.hex($0.1)] },
        ]
        try FileManager.default.createDirectory(at: Self.directory, withIntermediateDirectories: true)
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: Self.directory.appendingPathComponent("\(name).json"))
    }

    /// A type catalog that knows what the server's did.
    var types: TypeCatalog { TypeCatalog(snapshot: catalog) }

    static func hexBytes(_ hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
