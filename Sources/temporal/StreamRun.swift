import ArgumentParser
import ChangeStream
import Foundation
import Logging
import Postgres

#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGTERM and SIGINT: the stream finishes its batch, confirms it and exits.
let streamStop = StopRequest()

struct StreamRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Stream changes from a slot into MongoDB, a JSON-lines file, or stdout.",
        discussion: """
            Reads the slot with pgoutput and writes one document per row change, shaped \
            {_id, entityType, entityId, changesetId, txId, timestamp, userId, operation, \
            changes, before, after, metadata}. Without --mongodb or --output, documents go \
            to stdout as MongoDB Extended JSON lines. A file is fsynced before anything is \
            confirmed to PostgreSQL.

            If the slot was set up with --snapshot, what existed at its start (the rows of \
            every table, and with --history-since the changes pg-temporal kept) is written \
            first, in chunks, each checkpointed: a run stopped or killed meanwhile goes on \
            where it stopped. Then it streams.

            Runs until SIGTERM or SIGINT (it then writes and confirms the current batch and \
            exits 0), or until everything up to --end-lsn is written. While MongoDB is down \
            it retries with backoff and confirms nothing. If the PostgreSQL connection is lost \
            once streaming has begun, it connects again with backoff and resumes from the \
            slot's confirmed position. userId and changesetId come from \
            temporal_versioning.set_change_context(user_id, changeset_id), called at the \
            start of the writing transaction; otherwise changesetId is the transaction id.

            Examples:
              temporal stream run --publication app_pub --slot app_slot
              temporal stream run --publication app_pub --slot app_slot --output events.jsonl
              temporal stream run --publication app_pub --slot app_slot \\
                  --mongodb 'mongodb://db1/?replicaSet=rs0' --database audit --write-concern majority --metrics-port 9187
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "The publication to read.")
    var publication: String

    @Option(help: "The slot to read (see temporal stream setup).")
    var slot: String

    @Option(help: ArgumentHelp("Append events to this file as JSON lines (fsynced).", valueName: "path"))
    var output: String?

    @Option(help: ArgumentHelp("Write events to MongoDB at this URI.", valueName: "uri"))
    var mongodb: String?

    @Option(help: "MongoDB database (with --mongodb).")
    var database: String?

    @Option(help: "MongoDB collection.")
    var collection: String = "changeEvents"

    @Option(name: .customLong("shape"), help: ArgumentHelp(
        "What to write into MongoDB (repeat for several): events (one document per change, the default), current (one document per row, in a collection named after the table), history (<collection>History, one document per version), embedded (current, with the last versions in _history).",
        valueName: "shape"))
    var shapes: [String] = []

    @Option(name: .customLong("collection-map"), help: ArgumentHelp(
        "The current-state collection of a table, instead of its name in camelCase (repeatable).", valueName: "schema.table=collection"))
    var collectionMap: [String] = []

    @Flag(help: "With --shape current: keep a deleted row's document, with deletedAt.")
    var softDelete = false

    @Option(help: ArgumentHelp("With --shape embedded: the versions each document keeps (1-1000).", valueName: "n"))
    var embedLast: Int = 20

    @Option(help: "MongoDB write concern: majority, or a number of nodes (always journaled).")
    var writeConcern: String = "majority"

    @Option(help: ArgumentHelp("Stop once everything up to this WAL position is written.", valueName: "lsn"))
    var endLSN: String?

    @Option(help: "Events per write, at most (memory stays bounded by it).")
    var batchSize: Int = 1000

    @Option(help: "Seconds between heartbeats that keep the slot moving while the published tables are idle (0: none).")
    var heartbeat: Double = 10

    @Option(help: "Serve Prometheus metrics on 127.0.0.1:PORT/metrics.")
    var metricsPort: UInt16?

    @Option(help: ArgumentHelp(
        "Where transactions still in progress wait for their commit, in a directory named after the slot (default: $TMPDIR). Spools of killed runs are removed at start.",
        valueName: "path"))
    var spoolDir: String?

    func validate() throws {
        guard StreamAdmin.validSlotName(slot) else {
            throw ValidationError("slot names contain only lower case letters, digits and underscores.")
        }
        if mongodb != nil && output != nil { throw ValidationError("give --mongodb or --output, not both.") }
        if mongodb != nil && database == nil { throw ValidationError("--mongodb needs --database, such as --database audit.") }
        if let endLSN, LSN(endLSN) == nil { throw ValidationError("--end-lsn takes a WAL position such as 0/5A000000.") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1.") }
        if mongodb == nil && (!shapes.isEmpty || !collectionMap.isEmpty || softDelete) {
            throw ValidationError("--shape, --collection-map and --soft-delete write into MongoDB: add --mongodb URI --database NAME.")
        }
        _ = try shapeOptions()
        if writeConcern != "majority" && Int(writeConcern).map({ $0 < 1 }) ?? true {
            throw ValidationError("--write-concern is majority or a number of nodes, such as 1.")
        }
    }

    /// The shapes the options ask for.
    func shapeOptions() throws -> ShapeOptions {
        var options = ShapeOptions()
        options.eventsCollection = collection
        if !shapes.isEmpty {
            options.shapes = []
            for name in shapes {
                guard let shape = Shape(rawValue: name) else {
                    throw ValidationError("unknown shape \(name): the shapes are \(Shape.allCases.map(\.rawValue).joined(separator: ", ")).")
                }
                options.shapes.insert(shape)
            }
        }
        do {
            for mapping in collectionMap { try options.addMapping(mapping) }
        } catch let error as ShapeError {
            throw ValidationError(error.description + ".")
        }
        options.softDelete = softDelete
        options.embedLast = embedLast
        if !ShapeOptions.embedLastRange.contains(embedLast) {
            throw ValidationError("--embed-last must be between 1 and 1000, not \(embedLast): each document keeps that many versions, and MongoDB limits a document to 16 MB.")
        }
        return options
    }

    func run() throws {
        LogSetup.bootstrap(verbosity: max(connection.verbose, 1))
        let logger = Logger(label: "temporal.stream")
        do {
            if let metricsPort { _ = try MetricsServer(port: metricsPort) }
            let sink: EventSink
            if let mongodb, let database {
                let options = try shapeOptions()
                let postgres = try connection.connect()
                let published = try StreamAdmin(connection: postgres).publishedTables(publication)
                try options.validate(publishedTables: published)
                let problems = try options.keyProblems(on: postgres, publication: publication)
                if !problems.isEmpty {
                    throw ShapeError(problems.joined(separator: "\n") + "\nHINT:  Write these tables as events only (a publication of their own), or change them.")
                }
                let mongo = try MongoSink(uri: mongodb, database: database, options: options, writeConcern: writeConcern)
                try mongo.ping()
                try mongo.register(slot: slot, publication: publication)
                sink = mongo
            } else if let output {
                sink = try JSONLinesSink(path: output)
            } else {
                sink = JSONLinesSink()
            }
            var configuration = StreamConfiguration(conninfo: connection.db, slot: slot, publication: publication)
            configuration.batchSize = batchSize
            configuration.heartbeatIntervalSeconds = heartbeat
            configuration.endLSN = endLSN.flatMap(LSN.init)
            if let spoolDir { configuration.spoolDirectory = URL(fileURLWithPath: spoolDir, isDirectory: true) }
            // A parent may hand down a mask that blocks these; a service must hear them.
            var stopSignals = sigset_t()
            sigemptyset(&stopSignals)
            for signalNumber in [SIGTERM, SIGINT] {
                sigaddset(&stopSignals, signalNumber)
                signal(signalNumber) { _ in streamStop.request() }
            }
            pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
            let showProgress = isatty(STDERR_FILENO) == 1
            let supervisor = StreamSupervisor(configuration: configuration, sink: sink, stop: streamStop, logger: logger) { progress in
                guard showProgress else { return }
                // No Foundation formatters here: on Linux they leak a little at every call.
                let lag = progress.lagBytes < 1 << 20 ? "\(progress.lagBytes / 1024) KiB" : "\(progress.lagBytes >> 20) MiB"
                writeStandardError("\r\(progress.eventsWritten) events  \(Int(progress.eventsPerSecond))/s  lag \(lag)  at \(progress.flushed)   ")
            }
            supervisor.onReconnect = { _, _ in if showProgress { writeStandardError("\n") } }
            supervisor.onBackfillProgress = { progress in
                guard showProgress else { return }
                let remaining = progress.rowsPerSecond > 0 ? Int(Double(progress.rowsTotal - progress.rowsDone) / progress.rowsPerSecond) : 0
                writeStandardError("\rbackfill \(progress.table) (\(progress.kind)): \(progress.rowsDone)/\(progress.rowsTotal) rows  \(Int(progress.rowsPerSecond))/s  ETA \(remaining) s   ")
            }
            let position = try supervisor.run()
            if showProgress { writeStandardError("\n") }
            if let position { logger.info("confirmed up to \(position)") }
        } catch let error as PostgresError {
            printError(error.psqlDescription)
            throw ExitCode(error.kind == .connection ? 2 : 1)
        } catch let error as SinkError {
            printError("ERROR:  \(error.message)")
            throw ExitCode(1)
        } catch let error as StreamError {
            printError("ERROR:  \(error)")
            throw ExitCode(1)
        } catch let error as ProtocolError {
            printError("ERROR:  replication stream: \(error)")
            throw ExitCode(1)
        } catch let error as ShapeError {
            printError("ERROR:  \(error)")
            throw ExitCode(1)
        } catch let error as MetricsServerError {
            printError("ERROR:  \(error)")
            throw ExitCode(1)
        }
    }
}
