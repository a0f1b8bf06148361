import Foundation

/// Everything a qpq device keeps locally: its session, identity seed, unused KeyPackages, MLS
/// groups, seen message ids and received messages. It holds private keys: it only ever reaches
/// the disk through ``QPQLocalStore`` (encrypted).
package struct QPQClientState: Codable, Sendable {
    package struct Bundle: Codable, Sendable {
        package var keyPackage: Data
        package var initPrivateKey: Data
        package var encryptionPrivateKey: Data
    }

    package struct Group: Codable, Sendable {
        package var groupId: Data
        /// `MLSGroup.serialized()`.
        package var state: Data
    }

    /// A file a message carried (docs/messaging.md §6.4).
    package struct FileInfo: Codable, Sendable, Equatable {
        package var name: String
        package var size: UInt64
        /// Where it was saved (nil until the download is complete and checked).
        package var savedAs: String?
    }

    /// A file upload not finished yet (`qpq send-file` run again continues it).
    package struct Upload: Codable, Sendable, Equatable {
        package var group: String
        package var path: String
        package var name: String
        package var size: UInt64
        package var sha256: Data
        package var blobId: Data
        package var key: Data
        package var chunkSize: UInt32
    }

    /// A received file not downloaded yet (the next `qpq recv` continues it).
    package struct Download: Codable, Sendable, Equatable {
        package var messageId: UInt64
        package var group: String
        package var sender: String
        /// `QPQFileOffer.encoded()`.
        package var offer: Data
    }

    /// A member that proposed its own removal; this device commits it (docs/messaging.md §6.5).
    package struct Leave: Codable, Sendable, Equatable {
        package var group: String
        /// The leaver's leaf signature key (its device identity key).
        package var signatureKey: Data
    }

    package struct Message: Codable, Sendable, Equatable {
        package var messageId: UInt64
        package var group: String
        package var sender: String
        package var text: String
        package var serverTime: UInt64
        /// Unix ms after which the message is deleted here too (0: never).
        package var expiresAt: UInt64 = 0
        /// Set for a file message.
        package var file: FileInfo?
        /// Sent by this device (kept so the history shows both sides).
        package var own: Bool?

        package init(messageId: UInt64, group: String, sender: String, text: String, serverTime: UInt64, expiresAt: UInt64 = 0,
                     file: FileInfo? = nil, own: Bool = false) {
            self.expiresAt = expiresAt
            self.file = file
            self.own = own ? true : nil
            self.messageId = messageId
            self.group = group
            self.sender = sender
            self.text = text
            self.serverTime = serverTime
        }
    }

    package var host: String
    package var port: Int
    /// The server's host public key line (pinned at the first login).
    package var hostKey: String
    package var user: String = ""
    package var userId: UInt64 = 0
    package var deviceId: UInt64 = 0
    package var token = Data()
    /// The ML-DSA-65 seed of the device identity key (also the MLS signing key).
    package var identitySeed = Data()
    package var bundles: [Bundle] = []
    /// By group name (the group id as UTF-8).
    package var groups: [String: Group] = [:]
    /// Ids already processed (dedupe of at-least-once delivery), newest last, capped.
    package var seen: [UInt64] = []
    package var messages: [Message] = []
    // Optional in the file so stores written before file transfer still load.
    private var pendingUploads: [Upload]?
    private var pendingDownloads: [Download]?
    private var pendingLeaves: [Leave]?
    package var leaves: [Leave] {
        get { pendingLeaves ?? [] }
        set { pendingLeaves = newValue }
    }
    package var uploads: [Upload] {
        get { pendingUploads ?? [] }
        set { pendingUploads = newValue }
    }
    package var downloads: [Download] {
        get { pendingDownloads ?? [] }
        set { pendingDownloads = newValue }
    }

    package init(host: String, port: Int, hostKey: String) {
        self.host = host
        self.port = port
        self.hostKey = hostKey
    }

    static let maxSeen = 10_000

    /// Deletes the messages whose disappearing timer has run out.
    package mutating func prune(now: UInt64) {
        messages.removeAll { $0.expiresAt != 0 && $0.expiresAt <= now }
    }

    package mutating func markSeen(_ id: UInt64) {
        seen.append(id)
        if seen.count > Self.maxSeen { seen.removeFirst(seen.count - Self.maxSeen) }
    }
}
