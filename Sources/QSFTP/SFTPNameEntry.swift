/// One entry of an `SSH_FXP_NAME` response.
public struct SFTPNameEntry: Hashable, Sendable {
    /// The bare file name (READDIR) or absolute path (REALPATH).
    public var filename: String
    /// An `ls -l` style line; informational only, clients must not parse it.
    public var longname: String
    public var attributes: SFTPAttributes

    public init(filename: String, longname: String, attributes: SFTPAttributes) {
        self.filename = filename
        self.longname = longname
        self.attributes = attributes
    }
}
