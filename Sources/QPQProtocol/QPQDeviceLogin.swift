/// What a device signs at login (docs/messaging.md §4.2): the ML-DSA-65 context string and message.
public enum QPQDeviceLogin {
    /// The ML-DSA context string (and the message's prefix).
    public static let context: [UInt8] = Array("qpq/1 device-login".utf8)

    /// `"qpq/1 device-login" || challenge || transcriptHash || u8(len(user)) || user || u64(deviceId)`,
    /// where `transcriptHash` = SHA-256(KE1 || KE2).
    public static func signedMessage(challenge: [UInt8], transcriptHash: [UInt8], user: String, deviceId: UInt64) -> [UInt8] {
        let name = Array(user.utf8.prefix(255))
        var m = context + challenge + transcriptHash
        m.append(UInt8(name.count))
        m += name
        for i in stride(from: 56, through: 0, by: -8) { m.append(UInt8(truncatingIfNeeded: deviceId >> UInt64(i))) }
        return m
    }
}
