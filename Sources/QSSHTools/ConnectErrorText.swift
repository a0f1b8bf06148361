import Foundation
import NIOCore
import NIOPosix

/// Turns socket-level connect failures into the short text ssh users know
/// ("Connection refused", "Connection timed out") instead of NIO's debug dump.
enum ConnectErrorText {
    static func describe(_ error: any Error) -> String {
        if let e = error as? NIOConnectionError {
            if let first = e.connectionErrors.first { return describe(first.error) }
            if let dns = e.dnsAAAAError ?? e.dnsAError { return "Could not resolve hostname: \(dns)" }
            return "no address to connect to"
        }
        if let e = error as? IOError { return strerrorText(e.errnoCode) }
        if error is ChannelError, case .connectTimeout = error as? ChannelError { return "Connection timed out" }
        return "\(error)"
    }

    static func strerrorText(_ code: Int32) -> String {
        guard let c = strerror(code) else { return "error \(code)" }
        return String(cString: c)
    }
}
