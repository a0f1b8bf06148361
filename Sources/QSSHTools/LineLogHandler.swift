import Foundation
import QNSPCrypto
import Logging
import NIOConcurrencyHelpers

/// A swift-log handler that writes one line per message ("2026-11-27T18:00:00Z qsshd[123]: INFO
/// message key=value") to stderr or to a file, for qsshd's log. Control characters in the
/// message and the fields are escaped (``PrintableText``), so that text a peer chose (a user
/// name, a reason) can never start a line of its own or move the terminal's cursor.
public struct LineLogHandler: LogHandler {
    /// Where the lines go (shared by copies of the handler).
    public final class Sink: Sendable {
        private let fd: NIOLockedValueBox<CInt>
        public init(fd: CInt) { self.fd = NIOLockedValueBox(fd) }

        /// Opens (creates, appends to) a log file, 0600.
        public static func file(_ path: String) throws -> Sink {
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw ToolError("cannot open log file \(path): \(String(cString: strerror(errno)))") }
            return Sink(fd: fd)
        }

        /// Points the sink at another descriptor (e.g. after daemonizing).
        public func redirect(to newFD: CInt) { fd.withLockedValue { $0 = newFD } }

        func write(_ line: String) {
            fd.withLockedValue { fd in
                var bytes = Array(line.utf8)
                bytes.append(0x0A)
                var off = 0
                while off < bytes.count {
                    let n = bytes[off...].withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { return }
                    off += n
                }
            }
        }
    }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let sink: Sink

    public init(label: String, sink: Sink, level: Logger.Level) {
        self.label = label; self.sink = sink; self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let fields = all.sorted { $0.key < $1.key }.map { " \(PrintableText.escaped($0.key))=\(PrintableText.escaped("\($0.value)"))" }.joined()
        let stamp = ISO8601DateFormatter().string(from: Date())
        sink.write("\(stamp) \(label)[\(getpid())]: \(event.level.rawValue.uppercased()) \(PrintableText.escaped("\(event.message)"))\(fields)")
    }
}
