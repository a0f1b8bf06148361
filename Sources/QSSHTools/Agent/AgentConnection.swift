import CQSSHAgentPosix
import QSSHAgent

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One blocking connection to or from an agent socket: whole frames in and out.
/// Owns the descriptor and closes it in ``close()``.
package struct AgentConnection {
    package let fd: CInt
    private var framer = AgentFramer()

    package init(fd: CInt) { self.fd = fd }

    /// Connects to the agent socket at `path`.
    package static func connect(path: String) throws(AgentError) -> AgentConnection {
        let fd = qssh_agent_connect_unix(path)
        guard fd >= 0 else { throw .transport("connect to \(path): \(String(cString: strerror(errno)))") }
        return AgentConnection(fd: fd)
    }

    /// Sends one message (the framing is added here).
    package func send(_ message: [UInt8]) throws(AgentError) {
        let frame = AgentFramer.frame(message)
        var off = 0
        while off < frame.count {
            let n = frame.withUnsafeBytes { raw in socketSend(fd, raw.baseAddress! + off, raw.count - off) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .transport("write: \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    /// The next whole frame; nil at a clean end of stream between frames.
    package mutating func receive() throws(AgentError) -> [UInt8]? {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            if let frame = try framer.nextFrame() { return frame }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .transport("read: \(String(cString: strerror(errno)))") }
            if n == 0 { return nil }
            framer.feed(chunk[0..<n])
        }
    }

    /// Sends a request and reads its reply.
    package mutating func roundTrip(_ request: AgentRequest) throws(AgentError) -> AgentResponse {
        try send(request.encoded())
        guard let frame = try receive() else { throw .transport("the agent closed the connection") }
        return try AgentResponse(frame: frame)
    }

    package func close() { closeDescriptor(fd) }
}

/// send(2) without SIGPIPE when the peer has gone (Linux: MSG_NOSIGNAL; elsewhere the
/// tools ignore SIGPIPE).
private func socketSend(_ fd: CInt, _ base: UnsafeRawPointer, _ count: Int) -> Int {
    #if os(Linux)
    return send(fd, base, count, Int32(MSG_NOSIGNAL))
    #else
    return send(fd, base, count, 0)
    #endif
}

/// close(2) (the connection's `close()` hides the C function inside the type).
private func closeDescriptor(_ fd: CInt) { _ = close(fd) }
