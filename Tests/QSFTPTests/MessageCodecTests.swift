import Testing
@testable import QSFTP

@Suite struct MessageCodecTests {
    static let fullAttrs = SFTPAttributes(size: 1 << 40, uid: 1000, gid: 100, permissions: 0o100644,
                                          atime: 1_700_000_000, mtime: 1_700_000_123,
                                          extensions: [.init(type: "x@example.com", data: [1, 2, 3])])
    static let h: [UInt8] = Array("17".utf8)

    static let allMessages: [SFTPMessage] = [
        .initialize(version: 3, extensions: []),
        .initialize(version: 3, extensions: [.init(name: "a@b", data: "1")]),
        .version(version: 3, extensions: SFTPServer.extensions),
        .open(id: 1, path: "/tmp/x y", flags: [.read, .write, .create, .truncate, .exclusive, .append], attributes: fullAttrs),
        .open(id: 2, path: "", flags: .read, attributes: SFTPAttributes()),
        .close(id: 3, handle: h),
        .read(id: 4, handle: h, offset: UInt64.max, length: 32768),
        .write(id: 5, handle: h, offset: 12345, data: [0, 1, 2, 255]),
        .write(id: 5, handle: h, offset: 0, data: []),
        .lstat(id: 6, path: "ü/ß"),
        .fstat(id: 7, handle: h),
        .setstat(id: 8, path: "p", attributes: SFTPAttributes(permissions: 0o755)),
        .fsetstat(id: 9, handle: h, attributes: SFTPAttributes(atime: 1, mtime: 2)),
        .opendir(id: 10, path: "."),
        .readdir(id: 11, handle: h),
        .remove(id: 12, path: "f"),
        .mkdir(id: 13, path: "d", attributes: SFTPAttributes(permissions: 0o700)),
        .rmdir(id: 14, path: "d"),
        .realpath(id: 15, path: ".."),
        .stat(id: 16, path: "/"),
        .rename(id: 17, oldPath: "a", newPath: "b"),
        .readlink(id: 18, path: "l"),
        .symlink(id: 19, target: "t", linkPath: "l"),
        .status(id: 20, code: .noSuchFile, message: "No such file", language: "en"),
        .status(id: 20, code: SFTPStatus(rawValue: 99), message: "", language: ""),
        .handle(id: 21, handle: h),
        .data(id: 22, data: Array(repeating: 7, count: 40)),
        .name(id: 23, entries: [
            SFTPNameEntry(filename: "a", longname: "-rw-r--r-- 1 u g 0 Jan 1 00:00 a", attributes: fullAttrs),
            SFTPNameEntry(filename: "b c", longname: "", attributes: SFTPAttributes()),
        ]),
        .name(id: 23, entries: []),
        .attrs(id: 24, attributes: fullAttrs),
        .attrs(id: 24, attributes: SFTPAttributes(size: 0)),
        .extended(id: 25, name: "limits@openssh.com", data: []),
        .extended(id: 26, name: "posix-rename@openssh.com", data: [0, 0, 0, 1, 0x61, 0, 0, 0, 1, 0x62]),
        .extendedReply(id: 27, data: [1, 2, 3, 4]),
    ]

    @Test("every message type round-trips", arguments: allMessages)
    func roundTrip(_ m: SFTPMessage) throws {
        let packet = m.encode()
        let decoded = try decodePacket(packet)
        #expect(decoded == m)
        #expect(decoded.encode() == packet)
    }

    @Test func coversEveryPacketType() {
        let covered = Set(Self.allMessages.map { $0.type.rawValue })
        let all: [UInt8] = Array(1...20) + Array(101...105) + [200, 201]
        #expect(covered == Set(all))
    }

    @Test func knownWireLayout() throws {
        // OPEN id=1 "a" READ, empty attrs
        #expect(SFTPMessage.open(id: 1, path: "a", flags: .read, attributes: SFTPAttributes()).encode() ==
                [0, 0, 0, 18, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0x61, 0, 0, 0, 1, 0, 0, 0, 0])
        // OpenSSH symlink order: target first, then link path.
        #expect(SFTPMessage.symlink(id: 2, target: "t", linkPath: "l").encode() ==
                [0, 0, 0, 15, 20, 0, 0, 0, 2, 0, 0, 0, 1, 0x74, 0, 0, 0, 1, 0x6c])
        #expect(SFTPMessage.initialize(version: 3, extensions: []).encode() == [0, 0, 0, 5, 1, 0, 0, 0, 3])
    }

    @Test func attributesFlags() {
        #expect(Self.fullAttrs.flags == 0x8000_000F)
        #expect(SFTPAttributes(uid: 1).flags == 0)           // uid without gid is not encodable
        #expect(SFTPAttributes(permissions: 0o40755).isDirectory)
        #expect(SFTPAttributes(permissions: 0o120777).isSymlink)
        #expect(SFTPAttributes(permissions: 0o100600).isRegularFile)
    }

    @Test func truncatedMessagesAreRejected() {
        for m in Self.allMessages {
            let body = Array(m.encode().dropFirst(4))
            for cut in 0..<body.count {
                do {
                    let d = try SFTPMessage.decode(body[0..<cut])
                    // Prefix may still decode when trailing fields are optional (STATUS text, VERSION extensions, EXTENDED data).
                    #expect([.status, .initialize, .version, .extended, .extendedReply].contains(d.type), "\(m.type) cut at \(cut)")
                } catch {
                    if case .malformedPacket = error {} else { Issue.record("unexpected error \(error)") }
                }
            }
        }
    }

    @Test func hugeCountsAreRejectedWithoutAllocation() {
        // NAME claiming 2^32-1 entries in a tiny packet.
        let body: [UInt8] = [104, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]
        #expect(throws: SFTPError.self) { try SFTPMessage.decode(body[...]) }
        // ATTRS with EXTENDED count 2^32-1.
        let a: [UInt8] = [105, 0, 0, 0, 1, 0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]
        #expect(throws: SFTPError.self) { try SFTPMessage.decode(a[...]) }
        // DATA string length beyond packet.
        let d: [UInt8] = [103, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 1]
        #expect(throws: SFTPError.self) { try SFTPMessage.decode(d[...]) }
    }

    @Test func unknownTypeIsRejected() {
        #expect(throws: SFTPError.malformedPacket("unknown packet type 99")) { try SFTPMessage.decode([99, 0, 0, 0, 1][...]) }
        #expect(throws: SFTPError.self) { try SFTPMessage.decode([][...]) }
    }

    @Test func errorDescriptionsAreReadable() {
        #expect(SFTPError.status(.noSuchFile, "gone").description.contains("No such file"))
        #expect(SFTPError.packetTooLarge(999_999).description.contains("999999"))
        #expect(SFTPError.io(2, "open").description.contains("No such file or directory"))
        #expect(SFTPError.connectionClosed.description == "SFTP connection closed by peer")
    }
}

@Suite struct PacketReaderTests {
    @Test func reassemblesPacketsFedByteByByte() throws {
        let msgs: [SFTPMessage] = [.stat(id: 1, path: "a"), .data(id: 2, data: Array(repeating: 1, count: 70000)),
                                   .readdir(id: 3, handle: [1])]
        let stream = msgs.flatMap { $0.encode() }
        var reader = SFTPPacketReader()
        var out: [SFTPMessage] = []
        for b in stream {
            reader.feed([b])
            while let body = try reader.next() { out.append(try SFTPMessage.decode(body)) }
        }
        #expect(out == msgs)
        #expect(reader.bufferedByteCount == 0)
    }

    @Test func manyPacketsInOneFeed() throws {
        var reader = SFTPPacketReader()
        let msgs = (0..<1000).map { SFTPMessage.remove(id: UInt32($0), path: "f\($0)") }
        reader.feed(msgs.flatMap { $0.encode() })
        var n = 0
        while let body = try reader.next() {
            #expect(try SFTPMessage.decode(body) == msgs[n])
            n += 1
        }
        #expect(n == 1000)
    }

    @Test func rejectsZeroLength() {
        var reader = SFTPPacketReader()
        reader.feed([0, 0, 0, 0, 1])
        #expect(throws: SFTPError.emptyPacket) { try reader.next() }
        #expect(throws: SFTPError.emptyPacket) { try reader.next() }  // sticky
    }

    @Test func rejectsOversizedLength() throws {
        var reader = SFTPPacketReader()
        let max = SFTPPacketReader.defaultMaxPacketLength
        #expect(max == 256 * 1024 + 1024)
        reader.feed([UInt8(truncatingIfNeeded: (max + 1) >> 24), UInt8(truncatingIfNeeded: (max + 1) >> 16),
                     UInt8(truncatingIfNeeded: (max + 1) >> 8), UInt8(truncatingIfNeeded: max + 1)])
        #expect(throws: SFTPError.packetTooLarge(max + 1)) { try reader.next() }

        var ok = SFTPPacketReader()
        ok.feed(SFTPMessage.data(id: 1, data: Array(repeating: 0, count: max - 9)).encode())
        #expect(try ok.next()?.count == max)
    }

    @Test func waitsForCompletePacket() throws {
        var reader = SFTPPacketReader()
        let p = SFTPMessage.stat(id: 9, path: "abc").encode()
        reader.feed(p.dropLast())
        #expect(try reader.next() == nil)
        reader.feed(p.suffix(1))
        #expect(try reader.next() != nil)
        #expect(try reader.next() == nil)
    }
}
