/// What a successful login gives a device: its ids, the session token for `Resume`, and OPAQUE's
/// export key (a password-derived key the server never learns, for local encryption).
package struct QPQSessionCredentials: Sendable {
    package var userId: UInt64
    package var deviceId: UInt64
    package var token: [UInt8]
    package var exportKey: [UInt8]
}
