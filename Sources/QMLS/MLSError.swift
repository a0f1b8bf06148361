// MARK: - Protocol errors

/// Why QMLS refused an input or an operation. Peer-supplied data that fails a check of
/// RFC 9420 ends in one of these; the group state is left as it was before the call.
public enum MLSError: Error, Equatable, Sendable {
    /// The bytes do not decode.
    case codec(MLSCodecError)
    /// A cryptographic operation failed (for received data: usually tampering).
    case crypto(MLSCryptoError)
    /// The message is for another group.
    case wrongGroup
    /// The message is for another epoch than the one it can be processed in.
    case wrongEpoch(expected: UInt64, received: UInt64)
    /// The message's wire format or content type is not allowed here.
    case unexpectedMessage(String)
    /// A signature does not verify.
    case invalidSignature(String)
    /// The membership tag of a PublicMessage does not verify.
    case invalidMembershipTag
    /// The confirmation tag of a commit or group info does not verify.
    case invalidConfirmationTag
    /// A PrivateMessage does not decrypt or its sender data is inconsistent.
    case decryptionFailed(String)
    /// The sender does not exist or may not send this.
    case invalidSender(String)
    /// The generation of a PrivateMessage is outside the ratchet window, or its key was used.
    case ratchetWindow(String)
    /// A proposal or proposal list breaks a rule of RFC 9420 §12.
    case invalidProposal(String)
    /// A commit breaks a rule of RFC 9420 §12.4.
    case invalidCommit(String)
    /// A leaf node breaks a rule of RFC 9420 §7.3.
    case invalidLeafNode(String)
    /// A key package breaks a rule of RFC 9420 §10.1.
    case invalidKeyPackage(String)
    /// A ratchet tree fails validation (hashes, parent hashes, structure).
    case invalidTree(String)
    /// A welcome or group info cannot be used to join.
    case invalidWelcome(String)
    /// A PSK named by a proposal or welcome is not available.
    case missingPSK(String)
    /// The credential was refused by the application's validator.
    case credentialRejected(String)
    /// A feature or parameter QMLS does not support.
    case unsupported(String)
    /// The group cannot send: it was removed, or is waiting for a reinitialization.
    case inactiveGroup(String)
    /// Stored group state does not decode or has an unknown version.
    case invalidState(String)
}

extension MLSError {
    init(_ error: MLSCodecError) {
        self = .codec(error)
    }

    init(_ error: MLSCryptoError) {
        self = .crypto(error)
    }
}
