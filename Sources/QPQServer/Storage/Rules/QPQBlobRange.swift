import QPQProtocol

/// The bytes `offset..<end` a `BlobDownload` reads of a complete blob (docs/messaging.md §6.4),
/// and how they are cut from the stored parts (one per upload, each at most
/// ``QPQLimits/maxBlobPiece`` bytes).
package struct QPQBlobRange: Sendable, Equatable {
    package let offset: UInt64
    /// The end, cut at the blob's size.
    package let end: UInt64

    /// Checks that the blob is complete and `offset` lies inside it; `length` is cut at the end.
    package init(_ info: QPQBlobInfo, offset: UInt64, length: Int) throws(QPQServiceError) {
        guard info.received == info.size else {
            throw QPQServiceError(.blobIncomplete, "the blob has \(info.received) of \(info.size) bytes", detail: info.received)
        }
        guard offset < info.size else { throw QPQServiceError(.malformed, "offset: \(offset) is not below the blob's size \(info.size)") }
        self.offset = offset
        let (sum, overflow) = offset.addingReportingOverflow(UInt64(clamping: length))
        end = overflow ? info.size : min(info.size, sum)
    }

    /// The lowest part offset to read: a part that covers `offset` starts at most one piece before it.
    package var firstPart: UInt64 {
        offset >= UInt64(QPQLimits.maxBlobPiece) ? offset - UInt64(QPQLimits.maxBlobPiece) : 0
    }

    /// The range's bytes from the parts with offsets in `firstPart..<end`, ascending. Parts that
    /// leave a gap or stop short are a storage fault (`internal`), not a short answer.
    package func splice(_ parts: [(offset: UInt64, data: [UInt8])]) throws(QPQServiceError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Int(clamping: end - offset))
        var at = offset
        for part in parts where at < end {
            let partEnd = part.offset.addingReportingOverflow(UInt64(part.data.count))
            guard !partEnd.overflow, partEnd.partialValue > at else { continue }
            guard part.offset <= at else { break }
            let stop = min(partEnd.partialValue, end)
            out += part.data[Int(at - part.offset)..<Int(stop - part.offset)]
            at = stop
        }
        guard at == end else { throw QPQServiceError(.internal, "storage: the blob's parts do not cover the range") }
        return out
    }
}
