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
        defer { if let id = Self.id(of: data, requests: false) { answered(id) } }
        try await inner.send(data)
    }

    nonisolated func receive() -> AsyncThrowingStream<Data, Swift.Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await data in await inner.receive() {
                        if let id = Self.id(of: data, requests: true) { await self.read(id) }
                        if let id = Self.cancelled(in: data) { await self.answered(id) }   // the SDK does not answer it
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

    /// Waits for the answers, at most a minute (an answer the SDK never sends must not hold the process).
    private func waitUntilAnswered() async {
        guard !unanswered.isEmpty else { return }
        let timeout = Task { [weak self] in
            try? await Task.sleep(for: .seconds(60))
            await self?.giveUp()
        }
        await withCheckedContinuation { drained = $0 }
        timeout.cancel()
    }

    private func giveUp() {
        unanswered = []
        drained?.resume()
        drained = nil
    }

    /// What the transport reads of a message: its id (a string or an
    /// integer, the ids the SDK answers), its method, and a cancellation's request.
    private struct Envelope: Decodable {
        enum ID: Decodable {
            case text(String), number(Int64)
            init(from decoder: Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let text = try? container.decode(String.self) { self = .text(text); return }
                self = .number(try container.decode(Int64.self))
            }
            var key: String {
                switch self {
                case let .text(text): "s:" + text
                case let .number(number): "n:\(number)"
                }
            }
        }
        struct Parameters: Decodable { var requestId: ID? }
        var id: ID?
        var method: String?
        var params: Parameters?

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try? container.decodeIfPresent(ID.self, forKey: .id)
            method = try? container.decodeIfPresent(String.self, forKey: .method)
            params = try? container.decodeIfPresent(Parameters.self, forKey: .params)
        }
        enum CodingKeys: String, CodingKey { case id, method, params }
    }

    /// The id of a request (with a method) or of a response (without one).
    private static func id(of data: Data, requests: Bool) -> String? {
        guard let envelope = try? JSONDecoder().decode(Envelope.self, from: data),
              (envelope.method != nil) == requests else { return nil }
        return envelope.id?.key
    }

    /// The request a notifications/cancelled names.
    private static func cancelled(in data: Data) -> String? {
        guard let envelope = try? JSONDecoder().decode(Envelope.self, from: data),
              envelope.method == "notifications/cancelled" else { return nil }
        return envelope.params?.requestId?.key
    }
}
