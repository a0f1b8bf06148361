import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Rewrites the few inbound SSH messages that swift-nio-ssh 0.15.1 would answer by dropping the
/// whole connection (and with it the user's other sessions), so that only the one channel is
/// affected. It runs on each decrypted packet payload, inside our transport protection, before
/// swift-nio-ssh parses it.
///
/// `SSH_MSG_CHANNEL_OPEN`:
/// - `direct-tcpip` / `forwarded-tcpip` whose originator address is not an IP literal (asyncssh
///   sends an empty one by default; RFC 4254 only says "originator IP address") get `0.0.0.0`;
///   an originator port above 65535 becomes 0. The channel then opens normally.
/// - Those whose target port is above 65535 or whose host is not UTF-8, and every channel type
///   swift-nio-ssh does not know (`x11`, `auth-agent@openssh.com`, `direct-streamlocal@openssh.com`,
///   …), become a `forwarded-tcpip` for port 0, which both our server (it never accepts
///   `forwarded-tcpip`) and our client (it never listens on port 0) refuse with
///   SSH_MSG_CHANNEL_OPEN_FAILURE: the peer learns the channel was refused, the connection lives.
///
/// Every other payload is returned unchanged, without a copy.
package enum SSHInboundRepair {
    static let channelOpen: UInt8 = 90

    /// The payload, repaired if needed.
    package static func repair(_ payload: ByteBuffer) -> ByteBuffer {
        guard payload.readableBytes > 1, payload.getInteger(at: payload.readerIndex, as: UInt8.self) == channelOpen
        else { return payload }
        var reader = payload
        reader.moveReaderIndex(forwardBy: 1)
        guard let type = reader.readSSHString(),
            let sender = reader.readInteger(as: UInt32.self),
            let window = reader.readInteger(as: UInt32.self),
            let maxPacket = reader.readInteger(as: UInt32.self)
        else { return payload }  // truncated: swift-nio-ssh reports it
        let typeName = String(decoding: type, as: UTF8.self)
        switch typeName {
        case "session":
            return payload
        case "direct-tcpip", "forwarded-tcpip":
            guard let host = reader.readSSHString(),
                let port = reader.readInteger(as: UInt32.self),
                let originator = reader.readSSHString(),
                let originatorPort = reader.readInteger(as: UInt32.self)
            else { return payload }
            guard port <= UInt16.max, String(validating: host, as: UTF8.self) != nil else {
                return refused(sender: sender, window: window, maxPacket: maxPacket)
            }
            let originatorText = String(validating: originator, as: UTF8.self)
            let originatorOK = originatorText.map(isIPLiteral) ?? false
            guard !originatorOK || originatorPort > UInt16.max else { return payload }
            var out = ByteBufferAllocator().buffer(capacity: payload.readableBytes + 16)
            out.writeInteger(channelOpen)
            out.writeSSHString(type)
            out.writeInteger(sender)
            out.writeInteger(window)
            out.writeInteger(maxPacket)
            out.writeSSHString(host)
            out.writeInteger(port)
            out.writeSSHString(originatorOK ? originator : Array("0.0.0.0".utf8))
            out.writeInteger(originatorPort <= UInt16.max ? originatorPort : 0)
            return out
        default:
            return refused(sender: sender, window: window, maxPacket: maxPacket)
        }
    }

    /// A channel open both our ends refuse cleanly (see the type's description).
    static func refused(sender: UInt32, window: UInt32, maxPacket: UInt32) -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: 64)
        out.writeInteger(channelOpen)
        out.writeSSHString(Array("forwarded-tcpip".utf8))
        out.writeInteger(sender)
        out.writeInteger(window)
        out.writeInteger(maxPacket)
        out.writeSSHString(Array("refused".utf8))
        out.writeInteger(UInt32(0))
        out.writeSSHString(Array("0.0.0.0".utf8))
        out.writeInteger(UInt32(0))
        return out
    }

    static func isIPLiteral(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}

extension ByteBuffer {
    fileprivate mutating func readSSHString() -> [UInt8]? {
        guard let length = getInteger(at: readerIndex, as: UInt32.self), Int(length) <= readableBytes - 4 else {
            return nil
        }
        moveReaderIndex(forwardBy: 4)
        return readBytes(length: Int(length))
    }

    fileprivate mutating func writeSSHString(_ bytes: [UInt8]) {
        writeInteger(UInt32(bytes.count))
        writeBytes(bytes)
    }
}
