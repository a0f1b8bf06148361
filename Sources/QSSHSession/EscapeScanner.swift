/// The client's escape sequences, as ssh has them: after a newline (or at the start),
/// `~.` disconnects and `~~` sends one `~`; any other byte after `~` is sent with it.
/// A sans-I/O filter over the bytes typed into an interactive session.
public struct EscapeScanner: Sendable {
    /// What the typed bytes ask for.
    public enum Action: Sendable, Equatable {
        case none
        case disconnect
    }

    private var atLineStart = true
    private var sawTilde = false

    public init() {}

    /// Filters typed bytes: returns what to send and whether to disconnect (bytes after `~.` are dropped).
    public mutating func feed(_ input: some Sequence<UInt8>) -> (send: [UInt8], action: Action) {
        var out: [UInt8] = []
        for byte in input {
            if sawTilde {
                sawTilde = false
                switch byte {
                case UInt8(ascii: "."): return (out, .disconnect)
                case UInt8(ascii: "~"): out.append(byte)
                default: out += [UInt8(ascii: "~"), byte]
                }
                atLineStart = byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
                continue
            }
            if atLineStart && byte == UInt8(ascii: "~") {
                sawTilde = true
                continue
            }
            out.append(byte)
            atLineStart = byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
        }
        return (out, .none)
    }
}
