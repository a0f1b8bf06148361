#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Unix account a session runs as: name, home, shell and groups (from the password and
/// group databases). Looked up once, off the event loop, when the user is authorized; sessions
/// use the looked-up value (no database access on an event loop).
public struct SessionUser: Sendable, Equatable {
    public var name: String
    public var uid: UInt32
    public var gid: UInt32
    public var home: String
    public var shell: String
    /// Supplementary groups (getgrouplist), primary group included.
    public var groups: [UInt32]
    /// What this login may not do (certificate options); nothing by default.
    public var restrictions = SessionRestrictions()

    public init(name: String, uid: UInt32, gid: UInt32, home: String, shell: String, groups: [UInt32]? = nil) {
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home
        self.shell = shell
        self.groups = groups ?? Self.groupList(name: name, gid: gid)
    }

    /// Looks a user up by name (may block on NSS: call it off the event loop); nil when there is no such account.
    public static func lookup(_ name: String) -> SessionUser? {
        guard !name.isEmpty, !name.utf8.contains(0) else { return nil }
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

    /// The gid of a group by name (e.g. "tty"), or nil.
    public static func groupID(_ name: String) -> UInt32? {
        var group = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(name, &group, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return group.gr_gid
    }

    static func groupList(name: String, gid: UInt32) -> [UInt32] {
        var count: CInt = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, gid, &groups, &count)
        }
        return groups.prefix(Int(max(0, count))).map { UInt32($0) }
    }

    /// The group terminals belong to ("tty"), looked up once when the server starts.
    public var terminalGroup: UInt32?

    /// The account's uid, primary gid and supplementary groups, for starting its processes.
    public var credentials: ChildProcess.Credentials {
        var credentials = ChildProcess.Credentials(uid: uid, gid: gid, groups: groups, terminalGroup: terminalGroup)
        credentials.limits = loginLimits
        return credentials
    }

    /// Variables the login added (a PAM session's environment: pam_env and the like); they may
    /// replace PATH but never HOME, USER, LOGNAME or SHELL.
    public var loginEnvironment: [String: String] = [:]

    /// Resource limits the login set (a PAM session's pam_limits), for the session's processes.
    public var loginLimits: [ResourceLimit] = []

    /// The login environment (before allow-listed client variables are added).
    public var environment: [String: String] {
        var env = ["HOME": home, "USER": name, "LOGNAME": name, "SHELL": shell,
                   "PATH": uid == 0 ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" : "/usr/local/bin:/usr/bin:/bin"]
        for (key, value) in loginEnvironment where !["HOME", "USER", "LOGNAME", "SHELL"].contains(key) { env[key] = value }
        return env
    }
}
