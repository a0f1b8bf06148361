#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Unix account a session runs as: name, home, shell (from the password database).
public struct SessionUser: Sendable, Equatable {
    public var name: String
    public var uid: UInt32
    public var gid: UInt32
    public var home: String
    public var shell: String

    public init(name: String, uid: UInt32, gid: UInt32, home: String, shell: String) {
        self.name = name; self.uid = uid; self.gid = gid; self.home = home; self.shell = shell
    }

    /// Looks a user up by name; nil when there is no such account.
    public static func lookup(_ name: String) -> SessionUser? {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwnam_r(name, &pwd, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        let shell = pwd.pw_shell.map { String(cString: $0) } ?? ""
        return SessionUser(
            name: name, uid: pwd.pw_uid, gid: pwd.pw_gid, home: pwd.pw_dir.map { String(cString: $0) } ?? "/",
            shell: shell.isEmpty ? "/bin/sh" : shell)
    }

    /// The account this process runs as.
    public static func current() -> SessionUser? {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwuid_r(getuid(), &pwd, &buffer, buffer.count, &result) == 0, result != nil, let name = pwd.pw_name else { return nil }
        return lookup(String(cString: name))
    }

    /// The account's uid, primary gid and supplementary groups (getgrouplist), for starting its processes.
    public var credentials: ChildProcess.Credentials {
        var count: CInt = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, gid, &groups, &count)
        }
        return ChildProcess.Credentials(uid: uid, gid: gid, groups: groups.prefix(Int(max(0, count))).map { UInt32($0) })
    }

    /// The login environment (before allow-listed client variables are added).
    public var environment: [String: String] {
        ["HOME": home, "USER": name, "LOGNAME": name, "SHELL": shell,
         "PATH": uid == 0 ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" : "/usr/local/bin:/usr/bin:/bin"]
    }
}
