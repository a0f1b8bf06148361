import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// sshd's StrictModes for a file that decides who may log in (authorized_keys): the file and
/// every directory on its real path up to `/` must belong to root or to the account, and none
/// may be writable by group or others. Otherwise another local user could replace the keys.
///
/// One exception, as on every Unix system's `/tmp`: a directory that is world-writable but
/// sticky and owned by root is accepted, because in it nobody but an entry's owner (or root)
/// can rename or remove that entry, and the entry below it is checked in turn.
public enum StrictModes {
    /// Why `path` must not be trusted for `uid`, or nil when it may. A missing path is nil
    /// (reading it reports that).
    public static func problem(path: String, uid: UInt32) -> String? {
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard realpath(path, &resolved) != nil else { return nil }
        let real = String(decoding: resolved.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var current = real
        while true {
            var st = stat()
            guard lstat(current, &st) == 0 else {
                return "cannot check \(current): \(String(cString: strerror(errno)))"
            }
            if st.st_uid != uid && st.st_uid != 0 { return "\(current) belongs to uid \(st.st_uid)" }
            let writableByOthers = st.st_mode & 0o022 != 0
            let stickyRootDirectory = (st.st_mode & S_IFMT) == S_IFDIR && st.st_mode & S_ISVTX != 0 && st.st_uid == 0
            if writableByOthers && !(current != real && stickyRootDirectory) {
                return "\(current) is writable by group or others"
            }
            if current == "/" { return nil }
            let parent = (current as NSString).deletingLastPathComponent
            current = parent.isEmpty ? "/" : parent
        }
    }
}
