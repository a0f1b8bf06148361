/// A device row: its account, name, identity key, and whether it was revoked.
package struct QPQStoredDevice: Sendable, Equatable {
    package var id: UInt64
    package var userId: UInt64
    package var name: String
    package var identityKey: [UInt8]
    package var createdAt: UInt64
    package var revoked: Bool

    package init(id: UInt64, userId: UInt64, name: String, identityKey: [UInt8], createdAt: UInt64, revoked: Bool) {
        self.id = id
        self.userId = userId
        self.name = name
        self.identityKey = identityKey
        self.createdAt = createdAt
        self.revoked = revoked
    }
}
