/// The only data this agent signs with an `ssh-ed25519` key: an SSH public-key user
/// authentication request (RFC 4252 §7) for that key, as ssh and qssh's bridge login send it:
/// `string session id || byte 50 || string user || string service || string "publickey" ||
/// bool TRUE || string algorithm || string key blob`, or OpenSSH's host-bound form with method
/// `publickey-hostbound-v00@openssh.com` and `string server host key` after the key blob.
public struct SSHUserauthSigningInput: Sendable, Equatable {
    public var sessionIdentifier: [UInt8]
    public var username: String
    public var service: String
    public var algorithm: String
    public var keyBlob: [UInt8]
    /// The server's host key blob, for OpenSSH's `publickey-hostbound-v00@openssh.com`.
    public var serverHostKey: [UInt8]?

    public static let hostBound = "publickey-hostbound-v00@openssh.com"

    public init(data: [UInt8]) throws(AgentError) {
        var r = AgentWireReader(data)
        sessionIdentifier = try r.readString("session identifier")
        // SHA-256 .. SHA-512 exchange hashes.
        guard (16...64).contains(sessionIdentifier.count) else {
            throw .notLoginData("session identifier of \(sessionIdentifier.count) bytes")
        }
        guard try r.readByte("message type") == 50 else { throw .notLoginData("not a USERAUTH_REQUEST") }
        username = try r.readText("user name")
        service = try r.readText("service")
        let method = try r.readText("method")
        guard method == "publickey" || method == Self.hostBound else { throw .notLoginData("method is not publickey") }
        guard try r.readByte("has signature") == 1 else { throw .notLoginData("signature flag not set") }
        algorithm = try r.readText("algorithm")
        keyBlob = try r.readString("key blob")
        // OpenSSH 8.9+ binds the request to the server's host key.
        serverHostKey = method == Self.hostBound ? try r.readString("server host key") : nil
        try r.expectEnd("the userauth request")
        guard !username.isEmpty else { throw .notLoginData("empty user name") }
    }
}
