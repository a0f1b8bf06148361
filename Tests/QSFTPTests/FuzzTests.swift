import QSSHTestSupport
import Testing
@testable import QSFTP

@Suite struct FuzzTests {
    /// Valid requests used as mutation seeds (paths stay inside a confined temp root).
    static func corpus(handle: [UInt8]) -> [[UInt8]] {
        let a = SFTPAttributes(size: 10, uid: 0, gid: 0, permissions: 0o644, atime: 1, mtime: 2)
        var rename = SFTPWireWriter(); rename.string("f"); rename.string("g")
        var hv = SFTPWireWriter(); hv.data(handle)
        var pv = SFTPWireWriter(); pv.string("/")
        let msgs: [SFTPMessage] = [
            .initialize(version: 3, extensions: []),
            .open(id: 1, path: "f", flags: [.read, .write, .create], attributes: a),
            .close(id: 2, handle: handle), .read(id: 3, handle: handle, offset: 0, length: 100),
            .write(id: 4, handle: handle, offset: 0, data: [1, 2, 3]), .lstat(id: 5, path: "f"),
            .fstat(id: 6, handle: handle), .setstat(id: 7, path: "f", attributes: a),
            .fsetstat(id: 8, handle: handle, attributes: a), .opendir(id: 9, path: "."),
            .readdir(id: 10, handle: handle), .remove(id: 11, path: "g"), .mkdir(id: 12, path: "d", attributes: a),
            .rmdir(id: 13, path: "d"), .realpath(id: 14, path: "../x"), .stat(id: 15, path: "d/../f"),
            .rename(id: 16, oldPath: "f", newPath: "g"), .readlink(id: 17, path: "l"),
            .symlink(id: 18, target: "f", linkPath: "l"),
            .extended(id: 19, name: "posix-rename@openssh.com", data: rename.bytes),
            .extended(id: 20, name: "hardlink@openssh.com", data: rename.bytes),
            .extended(id: 21, name: "fsync@openssh.com", data: hv.bytes),
            .extended(id: 22, name: "statvfs@openssh.com", data: pv.bytes),
            .extended(id: 23, name: "fstatvfs@openssh.com", data: hv.bytes),
            .extended(id: 24, name: "limits@openssh.com", data: []),
            .status(id: 25, code: .ok, message: "", language: ""),
        ]
        return msgs.map { Array($0.encode().dropFirst(4)) }
    }

    static func mutate(_ body: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = body
        switch rng.next() % 6 {
        case 0:   // random bytes
            b = (0..<Int(rng.next() % 64 + 1)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        case 1:   // flip some bytes
            for _ in 0...(rng.next() % 4) where !b.isEmpty { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
        case 2:   // truncate
            b = Array(b.prefix(Int(rng.next() % UInt64(b.count + 1))))
        case 3:   // append junk
            b += (0..<Int(rng.next() % 16)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        case 4:   // corrupt a length field with a huge value
            if b.count > 9 { let i = 5 + Int(rng.next() % UInt64(b.count - 8)); for k in i..<min(i + 4, b.count) { b[k] = 0xff } }
        default:  // random type byte on a valid payload
            if !b.isEmpty { b[0] = UInt8(truncatingIfNeeded: rng.next()) }
        }
        return b.isEmpty ? [UInt8(truncatingIfNeeded: rng.next())] : b
    }

    @Test func tenThousandRandomAndMutatedPackets() throws {
        let dir = try TempDir()
        try dir.write("f", [1, 2, 3, 4])
        let server = SFTPServer(root: dir.path)
        let handle = try #require(handleBytes(try exchange(server, .open(id: 1, path: "f", flags: .read, attributes: SFTPAttributes()))))
        let seeds = Self.corpus(handle: handle)
        var rng = SplitMix64(seed: 0x5EED_F00D)
        var reader = SFTPPacketReader()
        var responses = 0, framingErrors = 0
        for i in 0..<10_000 {
            let body = Self.mutate(seeds[Int(rng.next() % UInt64(seeds.count))], &rng)
            var stream: [UInt8]
            if rng.next() % 50 == 0 {
                // Bogus framing: zero or oversized length. The reader must refuse it.
                let bogus: UInt32 = rng.next() % 2 == 0 ? 0 : UInt32(SFTPPacketReader.defaultMaxPacketLength + 1 + Int(rng.next() % 1000))
                var w = SFTPWireWriter(); w.u32(bogus); stream = w.bytes
            } else {
                var w = SFTPWireWriter(); w.raw(body); stream = w.packet()
            }
            // Feed in random pieces.
            var pos = 0
            feeding: while pos < stream.count {
                let n = min(stream.count - pos, Int(rng.next() % 7) + 1)
                reader.feed(stream[pos..<pos + n]); pos += n
                while true {
                    let next: ArraySlice<UInt8>?
                    do {
                        next = try reader.next()
                    } catch {
                        #expect(error == .emptyPacket || error == .packetTooLarge(error.tooLargeValue), "iteration \(i): \(error)")
                        framingErrors += 1
                        reader = SFTPPacketReader()   // framing is lost; a real session ends here
                        break feeding
                    }
                    guard let pkt = next else { break }
                    let decoded = try decodePacket(server.handle(pkt))
                    #expect(decoded.isResponse, "iteration \(i)")
                    if decoded.type == .version { #expect(pkt.first == 1) }
                    if pkt.count >= 5, pkt.first != 1, pkt.first != 2 {
                        #expect(decoded.requestID == pkt.dropFirst().prefix(4).reduce(0) { $0 << 8 | UInt32($1) }, "iteration \(i)")
                    }
                    responses += 1
                }
            }
        }
        #expect(responses > 9000 && framingErrors > 0)
        #expect(server.openHandleCount <= SFTPServer.maxHandles)
    }
}

extension SFTPError {
    var tooLargeValue: Int {
        if case .packetTooLarge(let n) = self { return n }
        return -1
    }
}
