/// Parses lifetimes as OpenSSH writes them: seconds, or numbers with s/m/h/d/w suffixes
/// run together ("90", "10m", "1h30m").
package enum AgentLifetime {
    package static func parse(_ text: String) -> UInt32? {
        guard !text.isEmpty else { return nil }
        var total: UInt64 = 0
        var number: UInt64?
        for c in text {
            if let d = c.wholeNumberValue, c.isASCII {
                number = (number ?? 0) * 10 + UInt64(d)
                guard number! <= UInt64(UInt32.max) else { return nil }
                continue
            }
            let unit: UInt64
            switch c {
            case "s", "S": unit = 1
            case "m", "M": unit = 60
            case "h", "H": unit = 3600
            case "d", "D": unit = 86400
            case "w", "W": unit = 604800
            default: return nil
            }
            guard let n = number else { return nil }
            total += n * unit
            number = nil
            guard total <= UInt64(UInt32.max) else { return nil }
        }
        if let n = number { total += n }
        guard total > 0, total <= UInt64(UInt32.max) else { return nil }
        return UInt32(total)
    }
}
