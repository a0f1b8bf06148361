/// The outcome of an accepted `Send` or `Commit`: the message id, the group's epoch after it, and
/// the devices that now have something queued (for push).
package struct QPQDelivery: Sendable, Equatable {
    package var messageId: UInt64
    package var epoch: UInt64
    package var recipients: [UInt64]

    package init(messageId: UInt64, epoch: UInt64, recipients: [UInt64]) {
        self.messageId = messageId
        self.epoch = epoch
        self.recipients = recipients
    }
}
