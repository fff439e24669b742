import Foundation

/// Runs the real `temporal` binary, as a user would, and captures its output.
public struct TemporalCommand {
    public struct Output: CustomStringConvertible {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var description: String { "exit \(status)\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }
    }

    /// The built binary: $TEMPORAL_BIN, or `temporal` beside the test bundle.
    public static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["TEMPORAL_BIN"] {
            return URL(fileURLWithPath: path)
        }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<4 {
            directory.deleteLastPathComponent()
            let candidate = directory.appendingPathComponent("temporal")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath + "/.build/debug/temporal")
    }

    /// Runs `temporal arguments...` with the test's environment plus `environment`.
    public static func run(
        _ arguments: [String], environment: [String: String] = [:], input: String? = nil
    ) throws -> Output {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        process.environment = env
        let stdout = Pipe(), stderr = Pipe(), stdin = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus,
            stdout: String(decoding: out, as: UTF8.self),
            stderr: String(decoding: err, as: UTF8.self))
    }
}

/// Parses JSON output into Foundation values for assertions.
public func parseJSON(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
}

/// Runs a program and returns its exit status with its stdout and stderr together.
public enum Program {
    public static func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// Runs a Python script with the project's venv (scripts/install-deps puts
/// pymongo there), for checks made with tools nobody here wrote.
public enum PythonScript {
    public static func run(_ script: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let venv = ProcessInfo.processInfo.environment["TEMPORAL_VENV"]
            ?? FileManager.default.currentDirectoryPath + "/.venv"
        return try Program.run(venv + "/bin/python", [script] + arguments)
    }
}
