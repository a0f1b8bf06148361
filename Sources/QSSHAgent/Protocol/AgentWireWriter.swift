/// Writes the SSH wire encoding (RFC 4251 §5) used by the agent protocol.
public struct AgentWireWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(byte: UInt8) { bytes.append(byte) }

    public mutating func write(uint32 v: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: v >> 24))
        bytes.append(UInt8(truncatingIfNeeded: v >> 16))
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    public mutating func write<C: Collection<UInt8>>(string: C) {
        write(uint32: UInt32(string.count))
        bytes.append(contentsOf: string)
    }

    public mutating func write(text: String) { write(string: Array(text.utf8)) }

    /// Wipes the buffer (it may have held a private key).
    public mutating func wipe() {
        for i in bytes.indices { bytes[i] = 0 }
        bytes.removeAll()
    }
}
