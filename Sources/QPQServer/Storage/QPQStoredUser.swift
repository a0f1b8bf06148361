/// An account row: id, name and the 192-byte OPAQUE registration record (no password equivalent).
package struct QPQStoredUser: Sendable, Equatable {
    package var id: UInt64
    package var name: String
    package var record: [UInt8]

    package init(id: UInt64, name: String, record: [UInt8]) {
        self.id = id
        self.name = name
        self.record = record
    }
}
