/// How members derive the group token of an epoch (docs/messaging.md §6.1): the MLS exporter with
/// this label, an empty context and this length. The server stores only SHA-256 of it.
public enum QPQGroupToken {
    public static let exporterLabel = "qpq/1 group token"
    public static let length = 32
}
