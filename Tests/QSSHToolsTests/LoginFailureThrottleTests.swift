import Foundation
import NIOCore
import Testing

@testable import QSSHSession
@testable import QSSHTools

@Suite("Password login: failure throttle and PAM service names")
struct LoginFailureThrottleTests {
    @Test("the first failures are free, then the delay doubles up to the cap; a success or a quiet spell resets; sources are separate")
    func schedule() {
        var policy = LoginFailureThrottle.Policy()
        policy.freeFailures = 3
        policy.baseDelay = .seconds(1)
        policy.maxDelay = .seconds(30)
        policy.forgetAfter = .minutes(10)
        let throttle = LoginFailureThrottle(policy: policy)
        let a: [UInt8] = [127, 0, 0, 1], b: [UInt8] = [10, 0, 0, 2]
        let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
        let delays = (0..<10).map { throttle.failed(source: a, now: t0 + .seconds(Int64($0))).nanoseconds / 1_000_000_000 }
        #expect(delays == [0, 0, 0, 1, 2, 4, 8, 16, 30, 30])
        #expect(throttle.failed(source: b, now: t0) == .zero)
        #expect(throttle.failures(source: a, now: t0 + .seconds(10)) == 10)
        // Ten minutes without a failure: forgotten.
        #expect(throttle.failures(source: a, now: t0 + .seconds(9) + .minutes(10)) == 0)
        #expect(throttle.failed(source: a, now: t0 + .seconds(9) + .minutes(10)) == .zero)
        throttle.succeeded(source: b)
        #expect(throttle.failures(source: b, now: t0) == 0)
    }

    @Test("randomized: the delay never decreases within a run, never exceeds the cap, and the table stays within capacity")
    func randomized() {
        var policy = LoginFailureThrottle.Policy()
        policy.capacity = 16
        policy.freeFailures = Int.random(in: 0...5)
        policy.baseDelay = .milliseconds(Int64.random(in: 1...2000))
        policy.maxDelay = .seconds(Int64.random(in: 1...60))
        let throttle = LoginFailureThrottle(policy: policy)
        var last: [[UInt8]: TimeAmount] = [:]
        var now = NIODeadline.uptimeNanoseconds(1)
        for _ in 0..<2000 {
            now = now + .milliseconds(Int64.random(in: 0...50))
            let source: [UInt8] = [10, 0, 0, UInt8.random(in: 0...40)]
            if Int.random(in: 0..<20) == 0 {
                throttle.succeeded(source: source)
                last[source] = nil
                continue
            }
            let known = throttle.failures(source: source, now: now) > 0
            let delay = throttle.failed(source: source, now: now)
            #expect(delay <= policy.maxDelay)
            #expect(delay >= .zero)
            if known, let previous = last[source] { #expect(delay >= previous) }
            last[source] = delay
            #expect(throttle.trackedSources <= policy.capacity)
        }
        // Far beyond the doublings an Int64 can hold: the cap, not an overflow.
        #expect(LoginFailureThrottle.delay(afterFailures: 500, policy: policy) == policy.maxDelay)
        #expect(LoginFailureThrottle.delay(afterFailures: policy.freeFailures, policy: policy) == .zero)
    }

    @Test("PAM service names: file names in /etc/pam.d only")
    func serviceNames() {
        for good in ["qsshd", "qsshd-test-1a2b", "sshd", "my_service.v2"] {
            #expect(PasswordLoginService.isValidServiceName(good), "\(good)")
        }
        for bad in ["", ".", "..", "../passwd", "a/b", "qsshd\n", "q sshd", String(repeating: "x", count: 65), "ç"] {
            #expect(!PasswordLoginService.isValidServiceName(bad), "\(bad)")
        }
    }

    @Test("root (uid 0) is refused a password login unless --permit-root-password (PermitRootLogin yes); other accounts are not")
    func rootRefusal() throws {
        #expect(PasswordLoginService.accountRefusal(uid: 0, permitRoot: false)?.contains("--permit-root-password") == true)
        #expect(PasswordLoginService.accountRefusal(uid: 0, permitRoot: true) == nil)
        for uid in [UInt32(1), 1000, UInt32.random(in: 1...UInt32.max)] {
            #expect(PasswordLoginService.accountRefusal(uid: uid, permitRoot: false) == nil, "\(uid)")
        }
        #expect(try QSSHDConfigFile.arguments(from: "PermitRootLogin yes\n", path: "f") == ["--permit-root-password"])
        #expect(try QSSHDConfigFile.arguments(from: "PermitRootLogin no\n", path: "f") == ["--no-root-login"])
        #expect(try QSSHDConfigFile.arguments(from: "PermitRootLogin prohibit-password\n", path: "f") == [])
        #expect(try QSSHDConfigFile.arguments(from: "PermitRootLogin without-password\n", path: "f") == [])
        for bad in ["forced-commands-only", "maybe"] {
            #expect(throws: QSSHDConfigFile.ConfigError.self) { try QSSHDConfigFile.arguments(from: "PermitRootLogin \(bad)\n", path: "f") }
        }
        // --no-root-login is refused in the account lookup every method (key, certificate, password) shares.
        if let root = SessionUser.lookup("root") {
            let deny = AccountAuthorizer(isRoot: true, serverAccount: root, keysPattern: "%h/.qssh/authorized_keys", terminalGroup: nil, denyRoot: true)
            guard case .failure(let why) = deny.lookupAccount("root") else { Issue.record("root not refused"); return }
            #expect(why.description.contains("--no-root-login"))
            let allow = AccountAuthorizer(isRoot: true, serverAccount: root, keysPattern: "%h/.qssh/authorized_keys", terminalGroup: nil)
            #expect((try? allow.lookupAccount("root").get())?.uid == 0)
        }
        let command = try QSSHDCommand.parse(["--password-auth"])
        #expect(!command.permitRootPassword)
        #expect(try QSSHDCommand.parse(["--password-auth", "--permit-root-password"]).permitRootPassword)
    }

    @Test("the PAM session helper's report ends only at a whole 'ok' or 'error' line, not at an env line ending in ok")
    func reportEnd() {
        #expect(PAMSessionHelper.isCompleteReport("ok\n"))
        #expect(PAMSessionHelper.isCompleteReport("env A=b\nlimit 7 1 2\nok\n"))
        #expect(PAMSessionHelper.isCompleteReport("error no session\n"))
        #expect(PAMSessionHelper.isCompleteReport("env A=b\nerror no session\n"))
        for partial in ["", "ok", "env FOO=ok\n", "env FOO=bar ok\n", "env A=b\nenv FOO=ok\n", "env FOO=error x\n", "limit 1 2 ok\n", "okok\n"] {
            #expect(!PAMSessionHelper.isCompleteReport(partial), "\(partial)")
        }
    }

    @Test("reading the helper's report stops at the deadline when the helper hangs, and at a whole report otherwise")
    func reportDeadline() throws {
        var fds: [CInt] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let partial = "env FOO=ok\n"
        _ = partial.withCString { write(fds[1], $0, strlen($0)) }
        let start = NIODeadline.now()
        let hung = PAMSessionHelper.readReport(fds[0], timeout: .milliseconds(300))
        #expect(hung.timedOut)
        #expect(hung.text == partial)
        #expect(NIODeadline.now() - start >= .milliseconds(300))
        _ = "ok\n".withCString { write(fds[1], $0, strlen($0)) }
        let done = PAMSessionHelper.readReport(fds[0], timeout: .seconds(10))
        #expect(!done.timedOut)
        #expect(done.text == "ok\n")
    }

    @Test("a password with a NUL byte is refused before PAM (PAM would cut it short); others are passed on")
    func nulPassword() {
        for bad in ["\u{0}", "right\u{0}", "\u{0}anything", "ri\u{0}ght"] {
            #expect(PasswordLoginService.passwordRefusal(bad) != nil, "\(Array(bad.utf8))")
        }
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 0...40)).map { _ in UInt8.random(in: 1...0x7f) }
            let good = String(decoding: bytes, as: UTF8.self)
            #expect(PasswordLoginService.passwordRefusal(good) == nil, "\(bytes)")
            let at = Int.random(in: 0...bytes.count)
            var withNul = bytes
            withNul.insert(0, at: at)
            #expect(PasswordLoginService.passwordRefusal(String(decoding: withNul, as: UTF8.self)) != nil, "\(withNul)")
        }
        #expect(PasswordLoginService.passwordRefusal("") == nil)
        #expect(PasswordLoginService.passwordRefusal("pässwörd") == nil)
    }
}
