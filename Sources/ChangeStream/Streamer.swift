import Foundation
import Logging
import Metrics
import Postgres
import Synchronization

/// What `temporal stream run` reads and how it delivers.
public struct StreamConfiguration: Sendable {
    public var conninfo: String
    public var slot: String
    public var publication: String
    /// Events per sink write, at most: memory is bounded by this, whatever a transaction's size.
    public var batchSize = 1000
    /// How long an incomplete batch may wait for more events.
    public var batchDelayMilliseconds = 20
    /// How often the position is reported to the server when nothing else reports it.
    public var statusIntervalSeconds = 10.0
    /// How often a heartbeat message is written while the published tables are idle (0: never).
    public var heartbeatIntervalSeconds = 10.0
    /// Stop once everything up to this position is written (like pg_recvlogical -E).
    public var endLSN: LSN?
    /// Where transactions PostgreSQL streams while still in progress wait on
    /// disk for their commit (a directory per slot is made in it).
    public var spoolDirectory = FileManager.default.temporaryDirectory
    /// Longest wait between two attempts to write to a failing sink.
    public var maximumBackoffSeconds = 30.0

    public init(conninfo: String, slot: String, publication: String) {
        self.conninfo = conninfo
        self.slot = slot
        self.publication = publication
    }
}

/// Asks a running stream to stop, from a signal handler or another thread:
/// it finishes the current batch, confirms it and returns.
public final class StopRequest: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public func request() { flag.store(true, ordering: .relaxed) }

    public var isRequested: Bool { flag.load(ordering: .relaxed) }
}

/// Progress, reported about once a second.
public struct StreamProgress: Sendable {
    public var eventsWritten: Int
    public var eventsPerSecond: Double
    /// Bytes of WAL the server has sent beyond what is confirmed written.
    public var lagBytes: UInt64
    public var flushed: LSN
}

public enum StreamError: Error, CustomStringConvertible {
    case stoppedBeforeWriting(events: Int, sink: String)
    case sinkRefused(SinkError)

    public var description: String {
        switch self {
        case let .stoppedBeforeWriting(events, sink):
            "stopped before \(events) events reached \(sink); they were not confirmed and will be sent again"
        case let .sinkRefused(error):
            "\(error.message) (not retried: writing it again cannot succeed)"
        }
    }
}

/// Reads a logical replication slot with pgoutput and writes every change,
/// as a change event, to a sink. The slot's position is confirmed to
/// PostgreSQL only up to the end of the last transaction whose events the
/// sink has durably written, so a crash at any point loses nothing; events
/// written but not confirmed come again and the sink skips them by _id.
public final class Streamer {
    private let configuration: StreamConfiguration
    private let sink: EventSink
    private let stop: StopRequest
    private let logger: Logger
    private let onProgress: ((StreamProgress) -> Void)?

    private let eventsWritten = Counter(label: "temporal_stream_events_written_total")
    private let lagGauge = Gauge(label: "temporal_stream_lag_bytes")
    private let retainedGauge = Gauge(label: "temporal_stream_retained_wal_bytes")
    private let batchTimer = Metrics.Timer(label: "temporal_stream_batch_duration_seconds", preferredDisplayUnit: .seconds)
    private let startedFlag = Atomic<Bool>(false)

    /// Whether the server accepted START_REPLICATION: the slot and the
    /// publication were there, so a later failure is the connection's.
    public var started: Bool { startedFlag.load(ordering: .relaxed) }

    public init(configuration: StreamConfiguration, sink: EventSink, stop: StopRequest,
                logger: Logger = Logger(label: "temporal.stream"), onProgress: ((StreamProgress) -> Void)? = nil) {
        self.configuration = configuration
        self.sink = sink
        self.stop = stop
        self.logger = logger
        self.onProgress = onProgress
    }

    /// Streams until stopped (or past the end LSN). Returns the position confirmed last.
    @discardableResult
    public func run() throws -> LSN {
        let catalog = try Connection(conninfo: configuration.conninfo, applicationName: "temporal stream")
        try catalog.pinSearchPath()
        let start = try StreamAdmin(connection: catalog).checkReady(slot: configuration.slot, publication: configuration.publication)
        let builder = try EventBuilder(slot: configuration.slot, types: try TypeCatalog(connection: catalog),
                                       makeEncoder: sink.makeEncoder, spoolDirectory: configuration.spoolDirectory)
        builder.shapeStore = try shapeStore(slot: configuration.slot)

        let replication = try ReplicationConnection(conninfo: configuration.conninfo)
        // pgoutput prints values with the walsender's settings; ValueDecoder reads these.
        for setting in ["search_path = pg_catalog, pg_temp", "TimeZone = 'UTC'", "DateStyle = 'ISO, YMD'", "bytea_output = 'hex'",
                        "extra_float_digits = 3", "IntervalStyle = 'postgres'"] {
            try replication.command("SET \(setting)")
        }
        // Report at least four times per wal_sender_timeout of this walsender
        // (it may be set per role, per database or in PGOPTIONS), so that a
        // sink that is down for longer never gets the stream cut off.
        var interval = configuration.statusIntervalSeconds
        if let timeout = try? replication.command("SELECT setting::float8 / 1000 FROM pg_settings WHERE name = 'wal_sender_timeout'")
            .rows.first?.first ?? nil, let seconds = Double(timeout), seconds > 0 {
            interval = max(0.2, min(interval, seconds / 4))
        }
        var options = [
            ("proto_version", catalog.serverVersion >= 140000 ? "2" : "1"),
            ("publication_names", try replication.quoteIdentifier(configuration.publication)),
            ("messages", "true"),
        ]
        if catalog.serverVersion >= 140000 { options.append(("streaming", "on")) }
        try replication.startLogicalReplication(slot: configuration.slot, start: .zero, options: options)
        startedFlag.store(true, ordering: .relaxed)
        logger.info("streaming slot \(configuration.slot) from \(start) to \(sink.description)")

        let reporter = PositionReporter(replication: replication, flushed: start, interval: interval, logger: logger)
        reporter.start()
        defer {
            reporter.stopReporting()
            replication.finish()
        }

        let writer = BatchWriter(sink: sink, stop: stop, reporter: reporter, logger: logger,
                                 maximumBackoff: configuration.maximumBackoffSeconds,
                                 eventsWritten: eventsWritten, batchTimer: batchTimer)
        writer.start()
        defer { writer.close() }
        var session = Session(configuration: configuration, writer: writer, reporter: reporter, builder: builder)
        session.backfills = try Backfiller.pending(slot: configuration.slot, on: catalog)
        session.writeBackfill = { [configuration, sink, stop, logger] id in
            let backfiller = Backfiller(conninfo: configuration.conninfo, slot: configuration.slot, sink: sink, stop: stop,
                                        logger: logger, batchSize: configuration.batchSize)
            // nil: stopped part way; the next run goes on from its checkpoint.
            return try backfiller.run(upToSlotPosition: false, only: id) != nil
        }
        session.awaitBackfills = { [configuration, catalog] in
            // stream backfill holds this lock from its announcement until its copy is committed.
            try catalog.query("SELECT pg_catalog.pg_advisory_lock_shared(pg_catalog.hashtext($1))",
                              [StreamAdmin.backfillSetupLock(slot: configuration.slot)])
            try catalog.query("SELECT pg_catalog.pg_advisory_unlock_shared(pg_catalog.hashtext($1))",
                              [StreamAdmin.backfillSetupLock(slot: configuration.slot)])
            return try Backfiller.pending(slot: configuration.slot, on: catalog)
        }
        var lastHeartbeat = Date()
        var lastProgress = Date()
        var lastSlotCheck = Date.distantPast
        var writtenAtLastProgress = 0

        while !stop.isRequested && !session.finished {
            let message = try replication.receive(timeoutMilliseconds: Int32(configuration.batchDelayMilliseconds))
            switch message {
            case let .xlogData(data)?:
                session.serverEnd = max(session.serverEnd, data.walEnd)
                try builder.consume(data.data, lsn: data.walStart) { output in
                    try session.handle(output, inTransaction: builder.inTransaction)
                }
            case let .keepalive(keepalive)?:
                session.serverEnd = max(session.serverEnd, keepalive.walEnd)
                if !builder.inTransaction {
                    try session.idle(at: keepalive.walEnd)
                }
                if keepalive.replyRequested { try reporter.report() }
            case nil:
                try session.flushIfDue(force: true)
            }
            try session.flushIfDue(force: false)

            let now = Date()
            if configuration.heartbeatIntervalSeconds > 0, !builder.inTransaction,
               now.timeIntervalSince(lastHeartbeat) >= configuration.heartbeatIntervalSeconds {
                // A non-transactional message moves the stream on while the published tables are idle.
                try catalog.query("SELECT pg_logical_emit_message(false, $1, now()::text)", [EventBuilder.heartbeatPrefix])
                lastHeartbeat = now
            }
                        if now.timeIntervalSince(lastSlotCheck) >= 10 {
                if let retained = try catalog.query("""
                    SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1
                    """, [configuration.slot]).scalar.flatMap(Int64.init) {
                    retainedGauge.record(retained)
                }
                lastSlotCheck = now
            }
            let lag = session.serverEnd > reporter.flushed ? session.serverEnd.value - reporter.flushed.value : 0
            lagGauge.record(Int64(lag))
            if now.timeIntervalSince(lastProgress) >= 1 {
                let rate = Double(session.written - writtenAtLastProgress) / now.timeIntervalSince(lastProgress)
                onProgress?(StreamProgress(eventsWritten: session.written, eventsPerSecond: rate, lagBytes: lag, flushed: reporter.flushed))
                writtenAtLastProgress = session.written
                lastProgress = now
            }
        }
        // Stopping: write what is pending, confirm it, and leave.
        try session.drain()
        try reporter.report()
        logger.info("stopped at \(reporter.flushed) after \(session.written) events")
        return reporter.flushed
    }
}

/// The delivery state of one run: the batch being filled, and the position
/// that may be confirmed once it and everything before it are written.
///
/// Batches are written by a `BatchWriter` on a thread of its own, so that
/// decoding the next batch overlaps with writing this one; at most two
/// batches exist at a time (one filling, one being written).
private struct Session {
    let configuration: StreamConfiguration
    /// Backfills added to the running stream (stream backfill), written when
    /// the stream reaches their consistent points, and how to write one.
    var backfills: [Backfiller.Waiting] = []
    var writeBackfill: ((Int) throws -> Bool)?
    /// Waits until a backfill being added is copied; returns the pending ones.
    var awaitBackfills: (() throws -> [Backfiller.Waiting])?
    let writer: BatchWriter
    let reporter: PositionReporter
    let builder: EventBuilder

    var pending: [ChangeEvent] = []
    var batchStarted = Date()
    /// A position up to which every transaction has been received whole:
    /// confirmable once pending (and the batch being written) are written.
    var committedEnd: LSN?
    var serverEnd = LSN.zero
    var finished = false

    init(configuration: StreamConfiguration, writer: BatchWriter, reporter: PositionReporter, builder: EventBuilder) {
        self.configuration = configuration
        self.writer = writer
        self.reporter = reporter
        self.builder = builder
        pending.reserveCapacity(configuration.batchSize)
    }

    var written: Int { writer.written }

    mutating func handle(_ output: EventBuilder.Output, inTransaction: Bool) throws {
        switch output {
        case let .began(commitLSN):
            try writeBackfills(before: commitLSN)
            // A transaction committed before a history backfill's consistent
            // point is in that history: its changes of the table come from there.
            let skipping = Set(backfills.lazy.filter(\.history).map(\.table))
            if builder.skipping != skipping { builder.skipping = skipping }
            if let end = configuration.endLSN, commitLSN > end {
                try flush()
                finished = true
            }
        case let .event(event):
            guard !finished else { return }
            if pending.isEmpty { batchStarted = Date() }
            pending.append(event)
            if pending.count >= configuration.batchSize { try flush() }
        case let .committed(commitLSN, endLSN):
            guard !finished else { return }
            confirmable(endLSN)
            if let end = configuration.endLSN, commitLSN >= end {
                try flush()
                finished = true
            }
        case let .heartbeat(lsn):
            if !inTransaction { try idle(at: lsn) }
        case let .backfillAnnounced(slot) where slot == configuration.slot:
            if let awaitBackfills { backfills = try awaitBackfills() }
        case .backfillAnnounced:
            break
        }
    }

    /// Nothing is in progress up to `lsn`: once what was received before is
    /// written, it may be confirmed.
    mutating func idle(at lsn: LSN) throws {
        try writeBackfills(before: lsn)
        confirmable(lsn)
        // Everything up to the end has been received: write what is pending
        // and stop (the server may send no further keepalive to wait for).
        if let end = configuration.endLSN, lsn >= end, !finished {
            try flush()
            finished = true
        }
    }

    /// Writes the backfills whose consistent point lies before `lsn`, after
    /// everything before them is written: their rows are the state at that
    /// point, between the changes committed before it and those after.
    mutating func writeBackfills(before lsn: LSN) throws {
        guard let first = backfills.first, first.lsn < lsn, let writeBackfill else { return }
        try drain()
        while let next = backfills.first, next.lsn < lsn {
            guard try writeBackfill(next.id) else {
                finished = true   // stopped: nothing after the backfill may be written before it
                return
            }
            backfills.removeFirst()
        }
    }

        private mutating func confirmable(_ lsn: LSN) {
        if lsn > (committedEnd ?? reporter.flushed) { committedEnd = lsn }
    }

    /// Hands the batch to the writer when it is full or old enough; confirms
    /// a position at once when nothing before it is waiting to be written.
    mutating func flushIfDue(force: Bool) throws {
        try writer.check()
        if pending.isEmpty {
            if let end = committedEnd, writer.isIdle {
                try writer.confirmNow(end)
                committedEnd = nil
            }
            return
        }
        if force || Date().timeIntervalSince(batchStarted) * 1000 >= Double(configuration.batchDelayMilliseconds) {
            try flush()
        }
    }

    /// Hands pending events, and the position to confirm after them, to the
    /// writer (waiting while it still writes the batch before).
    mutating func flush() throws {
        guard !pending.isEmpty || committedEnd != nil else { return }
        try writer.submit(pending, confirm: committedEnd)
        builder.startBatch()   // the batch's JSON buffer is the writer's now
        pending = []
        pending.reserveCapacity(configuration.batchSize)
        committedEnd = nil
    }

    /// Hands over what is pending and waits until all of it is written and confirmed.
    mutating func drain() throws {
        try flush()
        try writer.waitUntilIdle()
    }
}

/// Writes batches to the sink on its own thread, one at a time and in order,
/// retrying with backoff while the sink fails; after each batch it confirms
/// the position handed over with it. Nothing is confirmed before the events
/// received ahead of it are durably written.
final class BatchWriter: @unchecked Sendable {
    private struct Job {
        var events: [ChangeEvent]
        var confirm: LSN?
    }

    private let sink: EventSink
    private let stop: StopRequest
    private let reporter: PositionReporter
    private let logger: Logger
    private let maximumBackoff: Double
    private let eventsWritten: Counter
    private let batchTimer: Metrics.Timer

    private let condition = NSCondition()
    private var job: Job?
    private var busy = false          // a job is waiting or being written
    private var failure: Error?
    private var running = true
    private var writtenCount = 0
    private var spent: [[ChangeEvent]] = []
    private let finished = DispatchSemaphore(value: 0)

    init(sink: EventSink, stop: StopRequest, reporter: PositionReporter, logger: Logger, maximumBackoff: Double,
         eventsWritten: Counter, batchTimer: Metrics.Timer) {
        self.sink = sink
        self.stop = stop
        self.reporter = reporter
        self.logger = logger
        self.maximumBackoff = maximumBackoff
        self.eventsWritten = eventsWritten
        self.batchTimer = batchTimer
    }

    var written: Int { condition.withLock { writtenCount } }

    var isIdle: Bool { condition.withLock { !busy } }

    /// Throws the writer's failure, if it has failed.
    func check() throws {
        if let failure = condition.withLock({ failure }) { throw failure }
    }

    /// Queues a batch, after waiting for the one before to be written.
    func submit(_ events: [ChangeEvent], confirm: LSN?) throws {
        condition.lock()
        defer { condition.unlock() }
        while busy && failure == nil { condition.wait() }
        _ = takeSpent()   // freed here, by the thread that allocated them
        if let failure { throw failure }
        job = Job(events: events, confirm: confirm)
        busy = true
        condition.broadcast()
    }

    /// Waits until every batch handed over is written and confirmed.
    func waitUntilIdle() throws {
        condition.lock()
        defer { condition.unlock() }
        while busy && failure == nil { condition.wait() }
        _ = takeSpent()
        if let failure { throw failure }
    }

    /// Confirms a position while nothing is being written (called by the
    /// thread that hands over batches, so nothing can start meanwhile).
    func confirmNow(_ lsn: LSN) throws {
        precondition(isIdle)
        if reporter.advance(to: lsn) { try reporter.report() }
    }

    func start() {
        let thread = Thread { [self] in
            defer { finished.signal() }
            while var next = nextJob() {
                var failed: Error?
                var count = 0
                do { count = try write(next) } catch { failed = error }
                var events: [ChangeEvent] = []
                swap(&events, &next.events)
                condition.lock()
                // The written events go back to the thread that made them, to
                // be freed there: freeing them here makes both threads contend
                // for malloc's arena lock.
                spent.append(consume events)
                if let failed { failure = failed } else { writtenCount += count }
                busy = false
                condition.broadcast()
                condition.unlock()
                if failed != nil { return }
            }
        }
        thread.name = "temporal-stream-writer"
        thread.start()
    }

    /// Stops the thread and waits for it: at once when idle; a batch still
    /// being written is finished, or abandoned unconfirmed if the sink fails.
    func close() {
        condition.withLock {
            running = false
            condition.broadcast()
        }
        finished.wait()
    }

    /// The batches written since last asked, for the caller to free (with the lock held).
    private func takeSpent() -> [[ChangeEvent]] {
        defer { spent = [] }
        return spent
    }

    private func nextJob() -> Job? {
        condition.lock()
        defer { condition.unlock() }
        while job == nil && running { condition.wait() }
        guard let next = job else { return nil }
        job = nil
        return next
    }

    /// Writes a job's events and confirms its position; returns how many
    /// events the sink stored (not those it already held).
    private func write(_ job: Job) throws -> Int {
        var stored = 0
        if !job.events.isEmpty {
            let started = DispatchTime.now()
            var backoff = 0.1
            while true {
                do {
                    stored = try sink.write(job.events)
                    break
                } catch let error as SinkError {
                    guard error.retryable else { throw StreamError.sinkRefused(error) }
                    logger.warning("\(error.message); retrying in \((backoff * 10).rounded() / 10) s, nothing confirmed meanwhile")
                    let deadline = Date().addingTimeInterval(backoff)
                    while Date() < deadline {
                        // Stopped, or closed because the stream failed: the batch stays unconfirmed.
                        if stop.isRequested || !condition.withLock({ running }) {
                            throw StreamError.stoppedBeforeWriting(events: job.events.count, sink: sink.description)
                        }
                        Thread.sleep(forTimeInterval: 0.05)
                    }
                    backoff = min(backoff * 2, maximumBackoff)
                }
            }
            batchTimer.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds))
            eventsWritten.increment(by: stored)
        }
        if let lsn = job.confirm, reporter.advance(to: lsn) {
            try reporter.report()
        }
        return stored
    }
}

/// Reports the confirmed position to the server: at once when asked, and
/// from its own thread every few seconds, so that the server hears from us
/// within wal_sender_timeout even while a slow sink holds the main thread.
final class PositionReporter: @unchecked Sendable {
    private let replication: ReplicationConnection
    private let interval: Double
    private let logger: Logger
    private let mutex = Mutex()
    private var confirmed: LSN
    private var lastReport = Date.distantPast
    private var running = true
    private let finished = DispatchSemaphore(value: 0)

    init(replication: ReplicationConnection, flushed: LSN, interval: Double, logger: Logger) {
        self.replication = replication
        confirmed = flushed
        self.interval = interval
        self.logger = logger
    }

    var flushed: LSN { mutex.withLock { confirmed } }

    /// Moves the confirmed position forward (never back); true when it moved.
    func advance(to lsn: LSN) -> Bool {
        mutex.withLock {
            guard lsn > confirmed else { return false }
            confirmed = lsn
            return true
        }
    }

    func report() throws {
        let position = flushed
        let clock = PostgresClock.fromUnix(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000))
        try replication.send(StandbyStatusUpdate(written: position, flushed: position, applied: position, clock: clock))
        mutex.withLock { lastReport = Date() }
    }

    func start() {
        let thread = Thread { [self] in
            defer { finished.signal() }
            while mutex.withLock({ running }) {
                Thread.sleep(forTimeInterval: 0.1)
                let due = mutex.withLock { running && Date().timeIntervalSince(lastReport) >= interval }
                if due {
                    do { try report() } catch { logger.warning("cannot report the stream's position: \(error)") }
                }
            }
        }
        thread.name = "temporal-stream-reporter"
        thread.start()
    }

    /// Stops the thread and waits for it, so that nothing uses the connection after.
    func stopReporting() {
        mutex.withLock { running = false }
        finished.wait()
    }
}

extension Streamer {
    /// Where the stream keeps the table shapes it saw, for its schema events:
    /// temporal_versioning.stream_shapes, on a connection of its own. Without
    /// pg-temporal installed (or the rights to it), no schema events.
    func shapeStore(slot: String) throws -> ((Relation, String, LSN, Int) throws -> [(String, String?, String?)]?)? {
        let shapes = try Connection(conninfo: configuration.conninfo, applicationName: "temporal stream")
        try shapes.pinSearchPath()
        let usable = try shapes.query("""
            SELECT pg_catalog.to_regprocedure('temporal_versioning._stream_shape(text, oid, text, text[], oid[], integer[], pg_lsn, integer)') IS NOT NULL
               AND pg_catalog.has_function_privilege('temporal_versioning._stream_shape(text, oid, text, text[], oid[], integer[], pg_lsn, integer)', 'EXECUTE')
            """).scalar == "t"
        guard usable else {
            logger.warning("schema events are off: pg-temporal's catalog is not installed in this database, or this role may not use it")
            return nil
        }
        return { relation, name, lsn, position in
            let json = try shapes.query("""
                SELECT temporal_versioning._stream_shape($1, $2::pg_catalog.oid, $3, $4::pg_catalog.text[],
                                                         $5::pg_catalog.text::pg_catalog.oid[], $6::pg_catalog.text::pg_catalog.int4[],
                                                         $7::pg_catalog.pg_lsn, $8::pg_catalog.int4)::pg_catalog.text
                """, [slot, Int64(relation.oid), name, relation.columns.map(\.name),
                      "{" + relation.columns.map { String($0.typeOID) }.joined(separator: ",") + "}",
                      "{" + relation.columns.map { String($0.typeModifier) }.joined(separator: ",") + "}",
                      lsn.description, position]).scalar
            guard let json, let array = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[Any]] else { return nil }
            return array.map { ($0.first as? String ?? "", $0.count > 1 ? $0[1] as? String : nil, $0.count > 2 ? $0[2] as? String : nil) }
        }
    }
}
