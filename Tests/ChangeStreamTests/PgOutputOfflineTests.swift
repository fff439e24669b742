import Foundation
import Testing
@testable import ChangeStream

/// The decoder, the Extended JSON fast path and the fuzz, on pgoutput bytes a
/// PostgreSQL 15 server sent, saved in Fixtures/: no server, no install,
/// seconds (`swift test --filter offline`). The server tier
/// (PgOutputDecoderTests) runs the same checks on bytes captured afresh.
@Suite("pgoutput from saved bytes (offline)")
struct PgOutputOfflineTests {
    static let fixtures = ["every-kind-v1", "every-kind-v2", "streamed-transactions-v2", "fast-path-v1"]

    @Test("every kind of message, field by field, protocols 1 and 2")
    func everyKind() throws {
        for name in ["every-kind-v1", "every-kind-v2"] {
            try PgOutputDecoderTests.checkEveryKind(try PgOutputFixture.load(name), live: false)
        }
    }

    @Test("a transaction streamed in blocks while in progress, with an aborted subtransaction and an aborted transaction")
    func streamedTransactions() throws {
        try PgOutputDecoderTests.checkStreamedTransactions(try PgOutputFixture.load("streamed-transactions-v2"))
    }

    @Test("the Extended JSON fast path equals the document path byte for byte: every type, TOAST, composite keys, context, truncate")
    func fastPath() throws {
        try PgOutputDecoderTests.checkFastPath(try PgOutputFixture.load("fast-path-v1"))
    }

    @Test("every saved message cut short or corrupted is an error, never a crash")
    func malformed() throws {
        for name in Self.fixtures {
            let fixture = try PgOutputFixture.load(name)
            // The large streamed transaction has thousands of messages: a sample of each kind is enough here.
            var seen: [UInt8: Int] = [:]
            let sample = fixture.messages.filter { message in
                let tag = message.1.first ?? 0
                seen[tag, default: 0] += 1
                return seen[tag]! <= 20
            }
            try PgOutputDecoderTests.checkMalformed(sample)
        }
    }
}
