import Postgres

/// What a revert changes, one entry per key, and a fingerprint of it: the
/// result of `TimeTravel.planRevert` (nothing changed yet) and of
/// `applyRevert` (carried out). Every front end (the CLI, the MCP server)
/// previews with the first and applies with the second, so the guard that
/// the table has not changed since the preview is one piece of code.
public struct RevertPlan: Sendable {
    public struct Change: Sendable {
        /// The table, as `format('%I.%I')` names it.
        public var table: String
        /// insert, update or delete.
        public var action: String
        /// The row's key, and its whole row before and after, as JSON.
        public var key: String
        public var before: String?
        public var after: String?
    }

    public var changes: [Change]
    public var applied: Bool
    /// A fingerprint of the target and of every change: the preview's is
    /// handed back to `applyRevert`, which refuses a plan with another.
    public var planID: String
    /// Carried out: the changeset the revert was recorded under (each revert
    /// has one of its own, so that it can be undone).
    public var changeset: String?

    public var inserts: Int { changes.filter { $0.action == "insert" }.count }
    public var updates: Int { changes.filter { $0.action == "update" }.count }
    public var deletes: Int { changes.filter { $0.action == "delete" }.count }

    /// From the rows of revert_table_data / revert_changeset / revert_transaction.
    public init(_ result: QueryResult, applied: Bool, target: TimeTravel.RevertTarget) {
        changes = result.namedRows.map { row in
            Change(table: row["source_table"] ?? "", action: row["action"] ?? "", key: row["key"] ?? "null",
                   before: row["before"] ?? nil, after: row["after"] ?? nil)
        }
        self.applied = applied
        var text = target.fingerprintText
        for change in changes {
            for part in [change.table, change.action, change.key, change.before ?? "\u{0}", change.after ?? "\u{0}"] {
                text += "\u{1}" + part
            }
        }
        planID = RevertPlan.fingerprint(text)
    }

    /// The plan as JSON: what `temporal revert --format json` prints and the MCP tools return.
    public var json: String {
        let rows = changes.map { change in
            "{\"table\": \(JSON.string(change.table)), \"action\": \(JSON.string(change.action)), "
                + "\"key\": \(change.key), \"before\": \(change.before ?? "null"), \"after\": \(change.after ?? "null")}"
        }
        return "{\"applied\": \(applied), \"inserts\": \(inserts), \"updates\": \(updates), \"deletes\": \(deletes),\n"
            + " \"plan_id\": \(JSON.string(planID)),\n"
            + (changeset.map { " \"changeset\": \(JSON.string($0)),\n" } ?? "")
            + " \"rows\": [" + rows.joined(separator: ",\n  ") + "]}"
    }

    /// Two FNV-1a hashes (64 bits each, different offsets) of the text, in hex.
    static func fingerprint(_ text: String) -> String {
        var first: UInt64 = 0xcbf2_9ce4_8422_2325, second: UInt64 = 0x8422_2325_cbf2_9ce4
        for byte in text.utf8 {
            first = (first ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            second = (second ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            second = second &+ (second >> 29)
        }
        func hex(_ value: UInt64) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
        return hex(first) + hex(second)
    }
}

extension TimeTravel.RevertTarget {
    var fingerprintText: String {
        switch self {
        case let .instant(table, instant): "instant\u{1}\(table.qualified)\u{1}\(instant)"
        case let .changeset(id, table): "changeset\u{1}\(id)\u{1}\(table?.qualified ?? "")"
        case let .transaction(id, table): "transaction\u{1}\(id)\u{1}\(table?.qualified ?? "")"
        }
    }
}

extension TimeTravel {
    /// What a revert would change; nothing is changed.
    public func planRevert(_ target: RevertTarget) throws -> RevertPlan {
        RevertPlan(try revert(target, dryRun: true), applied: false, target: target)
    }

    /// Carries out a revert in one transaction. With `planID` (a preview's),
    /// only if it changes exactly what the preview said: otherwise nothing is
    /// changed (SQLSTATE 40001, as for a serialization failure).
    public func applyRevert(_ target: RevertTarget, expecting planID: String?) throws -> RevertPlan {
        try connection.transaction {
            let done = RevertPlan(try revert(target, dryRun: false), applied: true, target: target)
            if let planID, done.planID != planID {
                throw PostgresError(
                    kind: .server, sqlState: "40001",
                    message: "the table changed since the preview; nothing was reverted",
                    hint: "Preview the revert again (a dry run) and apply the plan it gives.")
            }
            var recorded = done
            if !done.changes.isEmpty {
                recorded.changeset = try connection.query("""
                    SELECT t.changeset_id FROM temporal_versioning.transactions t
                    WHERE t.tx_id OPERATOR(pg_catalog.=) pg_catalog.txid_current_if_assigned()
                    """).scalar
            }
            return recorded
        }
    }
}
