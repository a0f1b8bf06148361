import CSodium

/// One-time libsodium start-up shared by every QOPAQUE entry point.
package enum Sodium {
    private static let initialized: Bool = csodium_init() == 0

    /// Starts libsodium once; a library that cannot start (no entropy source) is a fatal
    /// environment problem, reported the same way the OS CSPRNG failing would be.
    package static func ensureInitialized() {
        precondition(initialized, "libsodium could not be initialized (sodium_init failed)")
    }
}
