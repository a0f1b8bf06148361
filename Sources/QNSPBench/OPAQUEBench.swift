import Foundation
import QOPAQUE

/// `qnsp-bench --opaque`: the cost of an OPAQUE-3DH registration and login (QOPAQUE, ristretto255-SHA512),
/// each half timed on its own, in one thread: the client's (dominated by Argon2id) and the server's
/// (OPRF evaluation and 3DH; the server never runs the KSF), for a known user and for an unknown one.
enum OPAQUEBench {
    /// One measured step: its label and the seconds of each run.
    struct Step {
        let name: String
        var samples: [Double] = []
    }

    /// Runs `runs` registrations and logins with `configuration` and prints a table of medians and p90s.
    static func run(runs: Int, configuration: OPAQUEConfiguration, label: String) throws {
        let server = OPAQUEServer(setup: try OPAQUEServerSetup.generate(), configuration: configuration)
        let password = Array("correct horse battery staple".utf8)
        let identifier = Array("alice".utf8)
        var steps = [
            Step(name: "client: registration (request + finish, incl. Argon2id)"),
            Step(name: "server: registration response"),
            Step(name: "client: KE1"),
            Step(name: "server: KE2, registered user"),
            Step(name: "server: KE2, unknown user (fake record)"),
            Step(name: "client: KE3 (incl. Argon2id)"),
            Step(name: "server: finish (check KE3)"),
        ]
        func timed<T>(_ index: Int, _ body: () throws -> T) rethrows -> T {
            let start = DispatchTime.now().uptimeNanoseconds
            let value = try body()
            steps[index].samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            return value
        }
        for _ in 0..<runs {
            let record: RegistrationRecord = try timed(0) {
                var registration = try OPAQUEClientRegistration(password: password, configuration: configuration)
                let response = try server.registrationResponse(
                    to: registration.request,
                    credentialIdentifier: identifier
                )
                return try registration.finish(response: response).record
            }
            let request = try OPAQUEClientRegistration(password: password, configuration: configuration).request
            _ = try timed(1) { try server.registrationResponse(to: request, credentialIdentifier: identifier) }

            var client = try timed(2) { try OPAQUEClientLogin(password: password, configuration: configuration) }
            var (login, ke2) = try timed(3) {
                try server.startLogin(ke1: client.ke1, record: record, credentialIdentifier: identifier)
            }
            _ = try timed(4) {
                try server.startLogin(ke1: client.ke1, record: nil, credentialIdentifier: Array("mallory".utf8))
            }
            let finished = try timed(5) { try client.finish(ke2: ke2) }
            let key = try timed(6) { try login.finish(ke3: finished.ke3) }
            guard key.constantTimeEquals(finished.sessionKey) else { throw BenchError("session keys differ") }
        }
        print("OPAQUE-3DH ristretto255-SHA512, \(label): \(runs) registrations and logins, one thread")
        for step in steps {
            let (median, p90) = ProcessRunner.percentiles(step.samples)
            let name = step.name.padding(toLength: 58, withPad: " ", startingAt: 0)
            print("  \(name) \(format(median)) median, \(format(p90)) p90")
        }
        let median = { (index: Int) in ProcessRunner.percentiles(steps[index].samples).median }
        let clientLogin = median(2) + median(5)
        let serverLogin = median(3) + median(6)
        print(
            "  " + "login, client total (KE1 + KE3)".padding(toLength: 58, withPad: " ", startingAt: 0) + " "
                + format(clientLogin)
        )
        print(
            "  " + "login, server total (KE2 + finish)".padding(toLength: 58, withPad: " ", startingAt: 0) + " "
                + format(serverLogin)
        )
        print(
            String(format: "  server logins per second on one core (median-based):            %.0f /s", 1 / serverLogin)
        )
    }

    /// KE2 for a registered and for an unknown user, alternating, `runs` each: the server-side timing
    /// profile an observer of response times sees.
    static func knownVersusUnknown(runs: Int) throws {
        let configuration = OPAQUEConfiguration.opaqueKeDefault
        let server = OPAQUEServer(setup: try OPAQUEServerSetup.generate(), configuration: configuration)
        let password = Array("correct horse battery staple".utf8)
        var registration = try OPAQUEClientRegistration(password: password, configuration: configuration)
        let response = try server.registrationResponse(to: registration.request, credentialIdentifier: [1])
        let record = try registration.finish(response: response).record
        let ke1 = try OPAQUEClientLogin(password: password, configuration: configuration).ke1
        var known: [Double] = []
        var unknown: [Double] = []
        for index in 0..<(2 * runs) {
            let isKnown = index.isMultiple(of: 2)
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try server.startLogin(ke1: ke1, record: isKnown ? record : nil, credentialIdentifier: [1])
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if isKnown {
                known.append(seconds)
            } else {
                unknown.append(seconds)
            }
        }
        let (knownMedian, knownP90) = ProcessRunner.percentiles(known)
        let (unknownMedian, unknownP90) = ProcessRunner.percentiles(unknown)
        print("Server KE2, \(runs) registered and \(runs) unknown users, alternating:")
        print("  registered user: \(format(knownMedian)) median, \(format(knownP90)) p90")
        print("  unknown user:    \(format(unknownMedian)) median, \(format(unknownP90)) p90")
        print(String(format: "  difference of medians: %+.1f%%", (unknownMedian - knownMedian) / knownMedian * 100))
    }

    /// Argon2id alone (QOPAQUE's KSF call: 64-byte input and output, zero salt, one lane) at several costs.
    static func argon2idSweep(runs: Int) throws {
        print("Argon2id (libsodium crypto_pwhash, p=1) alone, \(runs) runs each:")
        let input = SecretBytes.random(count: 64)
        let costs: [(UInt32, UInt32)] = [
            (19 * 1024, 2), (64 * 1024, 2), (64 * 1024, 3), (128 * 1024, 3), (256 * 1024, 3),
        ]
        for (memoryKiB, iterations) in costs {
            let parameters = try Argon2idParameters(memoryKiB: memoryKiB, iterations: iterations)
            let stretching = KeyStretching.argon2id(parameters)
            var samples: [Double] = []
            for _ in 0..<runs {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try stretching.stretch(input)
                samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            let (median, p90) = ProcessRunner.percentiles(samples)
            var name = "m=\(memoryKiB / 1024) MiB, t=\(iterations)"
            if parameters == .qpqDefault {
                name += "  (qpq default)"
            }
            if parameters == .opaqueKeDefault {
                name += "  (opaque-ke default)"
            }
            print(
                "  \(name.padding(toLength: 58, withPad: " ", startingAt: 0)) "
                    + "\(format(median)) median, \(format(p90)) p90"
            )
        }
    }

    static func format(_ seconds: Double) -> String {
        seconds >= 0.01 ? String(format: "%7.1f ms", seconds * 1e3) : String(format: "%7.3f ms", seconds * 1e3)
    }
}
