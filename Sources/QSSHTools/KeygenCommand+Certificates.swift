import Foundation
import QNSPCrypto

extension KeygenCommand {
    /// `-s CA -I ID -n PRINCIPALS [-V] [-z] [-O]... [-h] KEY.pub...`: writes KEY-cert.pub for each.
    func signCertificates() throws {
        guard let caKey else { return }
        guard !certify.isEmpty else { throw ToolError("-s needs the public key files to certify") }
        guard let keyID, !keyID.isEmpty else { throw ToolError("-s needs a key id (-I)") }
        guard let principals, !principals.isEmpty else { throw ToolError("-s needs principals (-n)") }
        let names = principals.split(separator: ",").map(String.init)
        let now = UInt64(Date().timeIntervalSince1970)
        guard let (after, before) = CertificateValidity.parse(validity, now: now) else {
            throw ToolError("invalid validity interval '\(validity)'")
        }
        let options = try certificateOptions.map { text -> QNSPCertificate.Option in
            let parts = text.split(separator: "=", maxSplits: 1)
            let option = QNSPCertificate.Option(
                name: String(parts[0]).lowercased(),
                value: parts.count > 1 ? String(parts[1]) : ""
            )
            if option.name == QNSPCertificate.Option.sourceAddress {
                for cidr in option.value.split(separator: ",") where CertificateSourceAddress.parse(String(cidr)) == nil
                {
                    throw ToolError("source-address: '\(cidr)' is not an address or CIDR block")
                }
            }
            return option
        }
        let ca = try ClientIdentity.load(path: caKey, interactive: true)
        for path in certify {
            let text = try KeyFileIO.readText(path: path, limit: 1 << 16)
            guard let first = text.split(whereSeparator: \.isNewline).first else {
                throw ToolError("\(path): no key found")
            }
            let line = try PublicKeyLine(parsing: String(first))
            let subject: QNSPCertificate.Subject
            switch line {
            case .user(let key, _):
                guard !hostCertificate else { throw ToolError("\(path) is a user key; -h certifies host keys") }
                subject = .user(key)
            case .host(let key, _):
                guard hostCertificate else { throw ToolError("\(path) is a host key; add -h for a host certificate") }
                subject = .host(key)
            }
            let cert = try QNSPCertificate.sign(
                subject: subject,
                serial: serial,
                keyID: keyID,
                principals: names,
                validAfter: after,
                validBefore: before,
                options: options,
                ca: ca.signingKey
            )
            let out = (path.hasSuffix(".pub") ? String(path.dropLast(4)) : path) + "-cert.pub"
            try KeyFileIO.writePublicKey(cert.line(comment: line.comment) + "\n", path: out)
            if !quiet {
                Terminal.warn(
                    "Signed \(hostCertificate ? "host" : "user") key \(out): id \"\(keyID)\" serial \(serial) for \(names.joined(separator: ",")) "
                        + "valid \(CertificateValidity.describe(after: after, before: before))"
                )
            }
        }
    }

    /// `-L -f FILE`: prints a certificate (and whether its CA signature verifies).
    func showCertificate() throws {
        guard let file else { throw ToolError("-L needs -f FILE") }
        let text = try KeyFileIO.readText(path: file, limit: 1 << 16)
        guard let first = text.split(whereSeparator: \.isNewline).first else {
            throw ToolError("\(file): no certificate found")
        }
        let cert = try QNSPCertificate(line: String(first))
        let signed = cert.caKey.isValidSignature(
            cert.signature,
            for: cert.signedBytes,
            context: QNSPCertificate.signatureContext
        )
        var out = "\(file):\n"
        out += "        Type: \(cert.keyType) \(cert.kind == .user ? "user" : "host") certificate\n"
        out +=
            "        Public key: \(cert.kind == .user ? "ML-DSA-65" : "X-WING+ML-DSA-65") \(cert.subject.fingerprint)\n"
        out +=
            "        Signing CA: ML-DSA-65 \(Fingerprint.sha256(cert.caKey.rawRepresentation)) (\(signed ? "signature valid" : "SIGNATURE INVALID"))\n"
        out += "        Key ID: \"\(cert.keyID)\"\n"
        out += "        Serial: \(cert.serial)\n"
        out += "        Valid: \(CertificateValidity.describe(after: cert.validAfter, before: cert.validBefore))\n"
        out += "        Principals:\n" + cert.principals.map { "                \($0)\n" }.joined()
        out += "        Options:" + (cert.options.isEmpty ? " (none)\n" : "\n")
        out += cert.options.map { "                \($0.name)\($0.value.isEmpty ? "" : " " + $0.value)\n" }.joined()
        print(out, terminator: "")
    }
}

/// `-V` intervals: `always:forever`, `+52w`, `-5m:+1h`, `20261203:20271203`, `20261203101500` (UTC).
enum CertificateValidity {
    static func parse(_ text: String, now: UInt64) -> (UInt64, UInt64)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        switch parts.count {
        case 1:
            guard let end = time(parts[0], now: now, isStart: false) else { return nil }
            return end > now ? (now, end) : nil
        case 2:
            guard let start = time(parts[0], now: now, isStart: true),
                let end = time(parts[1], now: now, isStart: false), start < end
            else {
                return nil
            }
            return (start, end)
        default:
            return nil
        }
    }

    private static func time(_ s: String, now: UInt64, isStart: Bool) -> UInt64? {
        if s == "always" { return isStart ? 0 : nil }
        if s == "forever" { return isStart ? nil : UInt64.max }
        if let sign = s.first, sign == "+" || sign == "-" {
            guard let offset = AgentLifetime.parse(String(s.dropFirst())) else { return nil }
            return sign == "+" ? now + UInt64(offset) : (now >= UInt64(offset) ? now - UInt64(offset) : 0)
        }
        guard s.count == 8 || s.count == 12 || s.count == 14, s.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            return nil
        }
        let digits = s + String(repeating: "0", count: 14 - s.count)
        func field(_ from: Int, _ n: Int) -> Int { Int(digits.dropFirst(from).prefix(n)) ?? -1 }
        var c = DateComponents()
        c.year = field(0, 4)
        c.month = field(4, 2)
        c.day = field(6, 2)
        c.hour = field(8, 2)
        c.minute = field(10, 2)
        c.second = field(12, 2)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        guard c.isValidDate(in: calendar), let date = calendar.date(from: c), date.timeIntervalSince1970 >= 0 else {
            return nil
        }
        return UInt64(date.timeIntervalSince1970)
    }

    static func describe(after: UInt64, before: UInt64) -> String {
        if after == 0 && before == UInt64.max { return "forever" }
        func iso(_ t: UInt64) -> String {
            let f = ISO8601DateFormatter()
            f.timeZone = TimeZone(identifier: "UTC")
            return f.string(from: Date(timeIntervalSince1970: TimeInterval(t)))
        }
        return "from \(after == 0 ? "always" : iso(after)) to \(before == UInt64.max ? "forever" : iso(before))"
    }
}

/// An address or CIDR block of a `source-address` option (IPv4 or IPv6).
struct CertificateSourceAddress: Equatable {
    var address: [UInt8]
    var prefix: Int

    static func parse(_ text: String) -> CertificateSourceAddress? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return nil }
        let host = String(parts[0])
        var bytes: [UInt8]
        if host.contains(":") {
            var a = in6_addr()
            guard inet_pton(AF_INET6, host, &a) == 1 else { return nil }
            bytes = withUnsafeBytes(of: &a) { Array($0) }
        } else {
            var a = in_addr()
            guard inet_pton(AF_INET, host, &a) == 1 else { return nil }
            bytes = withUnsafeBytes(of: &a) { Array($0) }
        }
        let bits = bytes.count * 8
        var prefix = bits
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...bits).contains(p) else { return nil }
            prefix = p
        }
        return CertificateSourceAddress(address: bytes, prefix: prefix)
    }

    /// Whether `peer` (the same family's bytes) lies in this block.
    func contains(_ peer: [UInt8]) -> Bool {
        guard peer.count == address.count else { return false }
        var left = prefix
        for i in 0..<address.count where left > 0 {
            let mask: UInt8 = left >= 8 ? 0xff : ~(0xff >> UInt8(left))
            guard peer[i] & mask == address[i] & mask else { return false }
            left -= 8
        }
        return true
    }
}
