import Foundation
import Logging
import Postgres

/// Runs a stream for as long as it should, the way a service needs it: once
/// streaming has begun, a lost PostgreSQL connection (a restarted server, a
/// terminated walsender, a network cut) is waited out with backoff, in
/// whatever phase it hits (connecting again, checking the slot, starting
/// replication, streaming), and the stream goes on from the slot's confirmed
/// position while the sink skips what it already holds. Only errors that
/// cannot heal end it: the slot or publication gone, authentication, wal_level,
/// a sink that refuses the events. Before the first start, every error ends
/// it, so that a wrong setup is reported at once.
public final class StreamSupervisor {
    private let configuration: StreamConfiguration
    private let sink: EventSink
    private let stop: StopRequest
    private let logger: Logger
    private let onProgress: ((StreamProgress) -> Void)?
    /// Called when a connection was lost and the stream will start again.
    public var onReconnect: ((_ reason: String, _ delaySeconds: Double) -> Void)?
    /// Called after each chunk of a backfill (stream setup --snapshot) is written.
    public var onBackfillProgress: ((Backfiller.Progress) -> Void)?

    public init(configuration: StreamConfiguration, sink: EventSink, stop: StopRequest,
                logger: Logger = Logger(label: "temporal.stream"), onProgress: ((StreamProgress) -> Void)? = nil) {
        self.configuration = configuration
        self.sink = sink
        self.stop = stop
        self.logger = logger
        self.onProgress = onProgress
    }

    /// Streams until stopped or past the end LSN; returns the position confirmed last.
    @discardableResult
    public func run() throws -> LSN? {
        var streamed = false
        var backoff = 1.0
        // What stream setup --snapshot copied is written first, then the stream
        // goes on from the slot's consistent point.
        var backfillPending = true
        while true {
            let streamer = Streamer(configuration: configuration, sink: sink, stop: stop, logger: logger, onProgress: onProgress)
            let backfiller = Backfiller(conninfo: configuration.conninfo, slot: configuration.slot, sink: sink, stop: stop,
                                        logger: logger, batchSize: configuration.batchSize, onProgress: onBackfillProgress)
            do {
                if backfillPending {
                    guard try backfiller.run() != nil else { return nil }
                    backfillPending = false
                }
                return try streamer.run()
            } catch let error as PostgresError
                        where (streamed || streamer.started || backfiller.started) && Self.canHeal(error) {
                // A stream that got going means the last outage was over: start the backoff afresh.
                if streamer.started || backfiller.started { backoff = 1 }
                streamed = true
                let reason = error.message.split(whereSeparator: \.isNewline)
                    .map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
                onReconnect?(reason, backoff)
                logger.warning("\(reason); streaming again in \(Int(backoff)) s from the slot's confirmed position")
                let deadline = Date().addingTimeInterval(backoff)
                while Date() < deadline && !stop.isRequested { Thread.sleep(forTimeInterval: 0.05) }
                if stop.isRequested {
                    logger.info("stopped while waiting for PostgreSQL; nothing unconfirmed is lost, it will be sent again")
                    return nil
                }
                backoff = min(backoff * 2, configuration.maximumBackoffSeconds)
                try sink.resume()
            }
        }
    }

    /// Whether waiting can cure this error: the connection lost or the server
    /// shutting down or starting (08xxx, 57P01-57P03), or the slot still held
    /// by the walsender of the connection that was lost (55006).
    static func canHeal(_ error: PostgresError) -> Bool {
        error.isTransient || error.sqlState == SQLState.objectInUse
    }
}
