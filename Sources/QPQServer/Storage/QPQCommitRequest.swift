import QPQProtocol

/// What a `Commit` asks the store to do atomically (docs/messaging.md §6.1).
package struct QPQCommitRequest: Sendable {
    package var groupId: [UInt8]
    package var epoch: UInt64
    package var tokenHash: [UInt8]
    package var nextTokenHash: [UInt8]
    package var add: [UInt64]
    package var remove: [UInt64]
    package var commit: [UInt8]
    package var welcomes: [QPQWelcome]

    package init(groupId: [UInt8], epoch: UInt64, tokenHash: [UInt8], nextTokenHash: [UInt8], add: [UInt64], remove: [UInt64],
                 commit: [UInt8], welcomes: [QPQWelcome]) {
        self.groupId = groupId
        self.epoch = epoch
        self.tokenHash = tokenHash
        self.nextTokenHash = nextTokenHash
        self.add = add
        self.remove = remove
        self.commit = commit
        self.welcomes = welcomes
    }
}
