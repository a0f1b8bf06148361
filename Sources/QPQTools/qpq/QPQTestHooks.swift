import Foundation

/// Environment hooks the tests use to interrupt the real binary. Read in debug builds only (the
/// tests run debug builds): a release `qpq` ignores them.
enum QPQTestHooks {
    /// `QPQ_TEST_STALL_AFTER_BYTES`: a file transfer stops making progress after this many bytes
    /// (FileTransferTests kills the process there to test resuming).
    static var stallAfterBytes: UInt64? {
        #if DEBUG
        return ProcessInfo.processInfo.environment["QPQ_TEST_STALL_AFTER_BYTES"].flatMap { UInt64($0) }
        #else
        return nil
        #endif
    }
}
