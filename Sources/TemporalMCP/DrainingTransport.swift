import Foundation
import Logging
import MCP

/// Stdio, answering every request it read before it ends. The SDK's server
/// handles each request in a task of its own and stops reading at the end of
/// stdin; a client that writes its requests and closes stdin at once (a
/// script, a pipe) would lose the answers still being computed when the
/// process exits. This transport ends its stream of messages only once every
/// request read has been answered.
actor DrainingTransport: Transport {
    private let inner: StdioTransport
    private var unanswered: Set<String> = []
    private var drained: CheckedContinuation<Void, Never>?

    init() { inner = StdioTransport() }

    nonisolated var logger: Logger { Logger(label: "temporal.mcp.transport") }

    func connect() async throws { try await inner.connect() }

    func disconnect() async { await inner.disconnect() }

    func send(_ data: Data) async throws {
        try await inner.send(data)
        if let id = Self.id(of: data, requests: false) { answered(id) }
    }

    nonisolated func receive() -> AsyncThrowingStream<Data, Swift.Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await data in await inner.receive() {
                        if let id = Self.id(of: data, requests: true) { await self.read(id) }
                        continuation.yield(data)
                    }
                    await self.waitUntilAnswered()
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    private func read(_ id: String) { unanswered.insert(id) }

    private func answered(_ id: String) {
        unanswered.remove(id)
        if unanswered.isEmpty, let drained {
            self.drained = nil
            drained.resume()
        }
    }

    private func waitUntilAnswered() async {
        guard !unanswered.isEmpty else { return }
        await withCheckedContinuation { drained = $0 }
    }

    /// The id of a request (with a method) or of a response (without one).
    private static func id(of data: Data, requests: Bool) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let id = object["id"] else { return nil }
        guard (object["method"] != nil) == requests else { return nil }
        return "\(id)"
    }
}
