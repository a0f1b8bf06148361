import CNGTCP2
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SocketAddress {
    /// A NIO address from a C `sockaddr_storage` (IPv4 or IPv6; nil for other families).
    static func from(storage: sockaddr_storage, length: socklen_t) -> SocketAddress? {
        let family = Int32(storage.ss_family)
        return withUnsafeBytes(of: storage) { raw -> SocketAddress? in
            switch family {
            case AF_INET where Int(length) >= MemoryLayout<sockaddr_in>.size:
                let sin = raw.load(as: sockaddr_in.self)
                return SocketAddress(sin, host: "")
            case AF_INET6 where Int(length) >= MemoryLayout<sockaddr_in6>.size:
                let sin6 = raw.load(as: sockaddr_in6.self)
                return SocketAddress(sin6, host: "")
            default:
                return nil
            }
        }
    }
}
