/// Where change events go. `write` returns only when the events are durably
/// stored; an event the sink already holds (same _id) is skipped, so the
/// stream may send a batch again after a crash without duplicating anything.
public protocol EventSink: AnyObject {
    /// Returns how many of the events it stored now: those it already held
    /// are not counted (the stream's counts and metrics say what was written).
    @discardableResult
    func write(_ events: [ChangeEvent]) throws -> Int
    /// Where the events go, without credentials, for logs.
    var description: String { get }
    /// The sink's encoder, which writes each change in the sink's form: a
    /// JSON-lines sink takes Extended JSON made straight from the rows' bytes,
    /// MongoDB documents.
    func makeEncoder(_ context: EncoderContext) -> EventEncoder
    /// Called before a stream starts again on the same sink (after a lost
    /// connection): events written but not confirmed will come again.
    func resume() throws
}

extension EventSink {
    public func makeEncoder(_ context: EncoderContext) -> EventEncoder { DocumentEncoder(context) }
    /// A sink that recognises events it holds by _id needs nothing more.
    public func resume() throws {}
}

/// A sink failure, in the sink's own words.
public struct SinkError: Error, CustomStringConvertible {
    public var message: String
    /// False when retrying cannot help (a document MongoDB refuses, say).
    public var retryable: Bool

    public init(_ message: String, retryable: Bool = true) {
        self.message = message
        self.retryable = retryable
    }

    public var description: String { message }
}
