// MARK: - Codec errors

/// Why a byte string does not decode as the MLS structure it should hold.
///
/// Every decoder in QMLS reads through ``MLSReader``, which checks each length against the bytes
/// that remain; a malformed or truncated input ends in one of these errors, never in a trap.
public enum MLSCodecError: Error, Equatable, Sendable {
    /// The input ended before the structure did.
    case truncated
    /// A variable-length integer starts with the reserved prefix `0b11`.
    case invalidVarintPrefix
    /// A variable-length integer does not use the shortest encoding (RFC 9420 §2.1.2).
    case nonMinimalVarint
    /// An `optional<T>` presence octet other than 0 or 1.
    case invalidOptionalFlag(UInt8)
    /// An enumerated field holds a value this implementation does not define.
    case invalidEnumValue(field: String, value: UInt64)
    /// Bytes remain after the outermost structure.
    case trailingBytes(Int)
    /// A field's value is out of its allowed range.
    case invalidValue(String)
}
