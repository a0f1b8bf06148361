import QOPAQUE

/// Which OPAQUE configuration a client logs in with: qpq's default, or a cheaper KSF for tests
/// (the server does not see the difference: the KSF runs on the client).
package struct QOPAQUEConfigurationChoice: Sendable {
    package let configuration: OPAQUEConfiguration
    package init(_ configuration: OPAQUEConfiguration) { self.configuration = configuration }
    package static let qpqDefault = QOPAQUEConfigurationChoice(.qpqDefault)
}
