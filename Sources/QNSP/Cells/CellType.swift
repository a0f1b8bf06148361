/// The type byte inside an encrypted cell.
public enum CellType: UInt8, Sendable {
    /// Cover traffic: discarded by the receiver.
    case padding = 0x00
    /// Application bytes of the inner stream.
    case data = 0x01
    /// A fragment of an encrypted handshake message (client auth, auth result).
    case handshake = 0x02
    /// The sender switches to its next sending key after this cell.
    case keyUpdate = 0x03
    /// Orderly close with a code and a reason.
    case close = 0x04
    /// Keepalive request; answered by `.pong` with the same payload.
    case ping = 0x05
    case pong = 0x06
    /// The sender will send no more data (half-close); control cells may still follow.
    case endOfStream = 0x07
}

/// Layout of the plaintext inside a cell: `type(1) | length(2) | payload | zero padding`.
public enum CellLayout {
    public static let headerSize = 3
    public static let tagSize = 16

    /// Plaintext bytes inside a cell of `cellSize`.
    public static func innerSize(cellSize: Int) -> Int { cellSize - tagSize }
    /// Largest payload a cell of `cellSize` carries.
    public static func maxPayload(cellSize: Int) -> Int { cellSize - tagSize - headerSize }
}
