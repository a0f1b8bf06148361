#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Formats `ls -l` style lines the way OpenSSH's `ls_file()` does.
struct SFTPLongName {
    private var users: [UInt32: String] = [:]
    private var groups: [UInt32: String] = [:]

    static func modeString(_ mode: UInt32) -> String {
        var s: [Character]
        switch mode & 0o170000 {
        case 0o040000: s = ["d"]
        case 0o120000: s = ["l"]
        case 0o020000: s = ["c"]
        case 0o060000: s = ["b"]
        case 0o010000: s = ["p"]
        case 0o140000: s = ["s"]
        case 0o100000: s = ["-"]
        default: s = ["?"]
        }
        let bits: [(UInt32, Character)] = [(0o400, "r"), (0o200, "w"), (0o100, "x"), (0o040, "r"), (0o020, "w"),
                                           (0o010, "x"), (0o004, "r"), (0o002, "w"), (0o001, "x")]
        for (bit, ch) in bits { s.append(mode & bit != 0 ? ch : "-") }
        func special(_ index: Int, _ flag: UInt32, _ set: Character, _ unset: Character) {
            if mode & flag != 0 { s[index] = s[index] == "x" ? set : unset }
        }
        special(3, 0o4000, "s", "S")
        special(6, 0o2000, "s", "S")
        special(9, 0o1000, "t", "T")
        return String(s)
    }

    private static func pad(_ s: String, _ width: Int, left: Bool) -> String {
        let n = s.count
        if n >= width { return s }
        let fill = String(repeating: " ", count: width - n)
        return left ? s + fill : fill + s
    }

    mutating func userName(_ uid: UInt32) -> String {
        if let n = users[uid] { return n }
        var name = String(uid)
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buf = [CChar](repeating: 0, count: 4096)
        buf.withUnsafeMutableBufferPointer { b in
            if let base = b.baseAddress, getpwuid_r(uid, &pwd, base, b.count, &result) == 0, result != nil, let p = pwd.pw_name {
                name = String(cString: p)
            }
        }
        users[uid] = name
        return name
    }

    mutating func groupName(_ gid: UInt32) -> String {
        if let n = groups[gid] { return n }
        var name = String(gid)
        var grp = group()
        var result: UnsafeMutablePointer<group>?
        var buf = [CChar](repeating: 0, count: 4096)
        buf.withUnsafeMutableBufferPointer { b in
            if let base = b.baseAddress, getgrgid_r(gid, &grp, base, b.count, &result) == 0, result != nil, let p = grp.gr_name {
                name = String(cString: p)
            }
        }
        groups[gid] = name
        return name
    }

    static func dateString(_ mtime: Int) -> String {
        var t = time_t(mtime)
        var parts = tm()
        guard localtime_r(&t, &parts) != nil else { return "?" }
        let now = Int(time(nil))
        let halfYear = 365 * 24 * 3600 / 2
        let fmt = (mtime > now - halfYear && mtime < now + halfYear) ? "%b %e %H:%M" : "%b %e  %Y"
        var buf = [CChar](repeating: 0, count: 64)
        let n = buf.withUnsafeMutableBufferPointer { b in b.baseAddress.map { strftime($0, b.count, fmt, &parts) } ?? 0 }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `drwxr-xr-x    2 user     group        4096 Jan  1 12:00 name`
    mutating func format(name: String, st: stat) -> String {
        let mode = UInt32(st.st_mode)
        let user = String(userName(UInt32(st.st_uid)).prefix(8))
        let group = String(groupName(UInt32(st.st_gid)).prefix(8))
        return [Self.pad(Self.modeString(mode), 10, left: true), Self.pad(String(UInt64(st.st_nlink)), 3, left: false),
                Self.pad(user, 8, left: true), Self.pad(group, 8, left: true),
                Self.pad(String(Int64(st.st_size)), 8, left: false), Self.dateString(Int(st.st_mtim.tv_sec)), name]
            .joined(separator: " ")
    }
}
