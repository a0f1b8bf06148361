// MARK: - PSK store

/// PSK secrets a joiner makes available: external PSKs by ID, and resumption PSKs of other
/// groups (for reinitialization and branching).
public struct PSKStore: Sendable {
    var entries: [[UInt8]: [UInt8]] = [:]

    public init() {}

    public mutating func addExternal(id: [UInt8], secret: [UInt8]) {
        entries[PreSharedKeyID.Kind.external(pskID: id).storeKey] = secret
    }

    public mutating func addResumption(groupID: [UInt8], epoch: UInt64, secret: [UInt8]) {
        entries[PreSharedKeyID.Kind.resumption(usage: .application, groupID: groupID, epoch: epoch).storeKey] = secret
    }
}
