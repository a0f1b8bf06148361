/// An opaque file or directory handle issued by an SFTP server.
public struct SFTPHandle: Hashable, Sendable {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
}
