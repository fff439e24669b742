import Foundation
import Metrics
import Prometheus

#if canImport(Glibc)
import Glibc
#endif

/// Serves Prometheus metrics over HTTP on 127.0.0.1 (GET /metrics), from a
/// thread of its own: enough for a scraper, nothing else is served.
final class MetricsServer: @unchecked Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let socketDescriptor: Int32

    /// Binds the port and makes swift-metrics report into this server.
    init(port: UInt16) throws {
        socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketDescriptor >= 0 else { throw MetricsServerError("cannot open a socket for metrics") }
        var yes: Int32 = 1
        setsockopt(socketDescriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(socketDescriptor, 16) == 0 else {
            close(socketDescriptor)
            throw MetricsServerError("cannot listen on 127.0.0.1:\(port) for metrics: \(String(cString: strerror(errno)))")
        }
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let thread = Thread { [self] in serve() }
        thread.name = "temporal-metrics"
        thread.start()
    }

    private func serve() {
        while true {
            let client = accept(socketDescriptor, nil, nil)
            guard client >= 0 else { continue }
            var request = [UInt8](repeating: 0, count: 2048)
            let received = read(client, &request, request.count)
            let line = received > 0 ? String(decoding: request[..<received], as: UTF8.self) : ""
            let body: [UInt8]
            let status: String
            if line.hasPrefix("GET /metrics") {
                body = registry.emitToBuffer()
                status = "200 OK"
            } else {
                body = Array("GET /metrics\n".utf8)
                status = "404 Not Found"
            }
            let head = "HTTP/1.1 \(status)\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
            let response = Array(head.utf8) + body
            _ = response.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
            close(client)
        }
    }
}

struct MetricsServerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
