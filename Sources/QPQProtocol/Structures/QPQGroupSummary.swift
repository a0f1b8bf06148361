/// A group the device is a member of, as `ListGroups` returns it.
public struct QPQGroupSummary: Sendable, Equatable {
    public var groupId: [UInt8]
    public var epoch: UInt64
    public var memberCount: UInt32
    public init(groupId: [UInt8], epoch: UInt64, memberCount: UInt32) {
        self.groupId = groupId
        self.epoch = epoch
        self.memberCount = memberCount
    }
}
