#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Resolves client paths inside a root directory, component by component.
///
/// The root plays the role of `/`: `..` at the top stays at the top, and
/// symbolic links met on the way are read and their targets resolved again
/// inside the root (absolute targets restart at the root). Every component of
/// the returned path except possibly the last (when `followFinal` is false) is
/// a real directory, so the kernel never follows a link out of the root —
/// barring concurrent modification of the tree by the same user (TOCTOU), which
/// this userspace confinement does not defend against.
struct SFTPPathResolver: Sendable {
    /// Canonical host path of the root ("/" for an unconfined server).
    let root: String
    static let maxSymlinks = 40

    static func components(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    /// Host path for components relative to the root.
    func hostPath(_ comps: [String]) -> String {
        if comps.isEmpty { return root }
        return (root == "/" ? "" : root) + "/" + comps.joined(separator: "/")
    }

    /// Resolves `path` (absolute, or relative to `start`) to components below the root.
    func resolve(_ path: String, start: [String] = [], followFinal: Bool) throws(SFTPError) -> [String] {
        if path.utf8.contains(0) { throw .status(.badMessage, "path contains NUL byte") }
        var stack = path.hasPrefix("/") ? [] : start
        var pending = Array(Self.components(path).reversed())
        var links = 0
        while let comp = pending.popLast() {
            if comp == "." { continue }
            if comp == ".." { _ = stack.popLast(); continue }
            let candidate = stack + [comp]
            let isLast = pending.allSatisfy { $0 == "." }
            if isLast && !followFinal { stack = candidate; continue }
            var st = stat()
            if lstat(hostPath(candidate), &st) != 0 {
                let e = errno
                // A missing last component is fine (it may be about to be created).
                if isLast && e == ENOENT { stack = candidate; continue }
                throw .io(e, "lstat")
            }
            switch st.st_mode & S_IFMT {
            case S_IFLNK:
                links += 1
                if links > Self.maxSymlinks { throw .io(ELOOP, "resolve") }
                let target = try readLink(hostPath(candidate))
                if target.hasPrefix("/") { stack = [] }
                pending.append(contentsOf: Self.components(target).reversed())
            case S_IFDIR:
                stack = candidate
            default:
                if !isLast { throw .io(ENOTDIR, "resolve") }
                stack = candidate
            }
        }
        return stack
    }

    func readLink(_ host: String) throws(SFTPError) -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = buf.withUnsafeMutableBufferPointer { b in b.baseAddress.map { readlink(host, $0, b.count) } ?? -1 }
        if n < 0 { throw .io(errno, "readlink") }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// True if `target`, interpreted lexically relative to `directory` (components below the root), stays inside the root.
    static func relativeTargetStaysInside(_ target: String, directory: [String]) -> Bool {
        if target.hasPrefix("/") { return false }
        var depth = directory.count
        for c in components(target) {
            if c == "." { continue }
            depth += c == ".." ? -1 : 1
            if depth < 0 { return false }
        }
        return true
    }
}
