import QNSP
import QNSPCrypto

/// The only data this agent signs: a QNSP ClientAuth signing input (docs/protocol.md §7.3).
///
/// The agent's SIGN_REQUEST `data` is `vector8(context) || message`, where `context` is the
/// ML-DSA context string and `message` what is signed under it. The agent signs only when
/// `context` is "qnsp1 client auth" and `message` is `transcript hash (32) ||
/// vector8(user name) || vector16(public key)` with the public key of the key asked for (or a
/// user certificate for it) —
/// so a process that can reach the socket cannot get a signature usable anywhere else
/// (a certificate, a host key announcement, another protocol).
public struct ClientAuthSigningInput: Sendable, Equatable {
    public var transcriptHash: [UInt8]
    public var username: String
    public var publicKey: [UInt8]

    public init(transcriptHash: [UInt8], username: String, publicKey: [UInt8]) {
        self.transcriptHash = transcriptHash
        self.username = username
        self.publicKey = publicKey
    }

    /// The ML-DSA message (without the context): H(transcript through ServerHello) || ClientAuth signed part.
    public var message: [UInt8] {
        var w = ByteWriter(capacity: 40 + publicKey.count + username.utf8.count)
        w.write(bytes: transcriptHash)
        w.writeVector8(Array(username.utf8))
        w.writeVector16(publicKey)
        return w.bytes
    }

    /// The agent's SIGN_REQUEST data for a signature of `message` under `context`.
    public static func agentData(message: [UInt8], context: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: message.count + context.count + 1)
        w.writeVector8(context)
        w.write(bytes: message)
        return w.bytes
    }

    public var agentData: [UInt8] { Self.agentData(message: message, context: KeySchedule.clientAuthContext) }

    /// Parses and checks SIGN_REQUEST data; anything but a ClientAuth input is refused.
    public init(agentData data: [UInt8]) throws(AgentError) {
        var r = ByteReader(data)
        do {
            let context = try r.readVector8("context")
            guard ConstantTime.equals(context, KeySchedule.clientAuthContext) else {
                throw AgentError.notLoginData("the signature context is not 'qnsp1 client auth'")
            }
            let hash = try r.readBytes(KeySchedule.hashSize, "transcript hash")
            let name = try r.readVector8("user name")
            guard let username = String(validating: name, as: UTF8.self), !username.isEmpty,
                !PrintableText.containsControlCharacters(username)
            else {
                throw AgentError.notLoginData("the user name is empty, not UTF-8 or has control characters")
            }
            let key = try r.readVector16("public key")
            guard r.isAtEnd else { throw AgentError.notLoginData("trailing bytes after the public key") }
            self.init(transcriptHash: hash, username: username, publicKey: key)
        } catch let e as AgentError {
            throw e
        } catch {
            throw .notLoginData("truncated")
        }
    }
}
