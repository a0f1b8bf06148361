import Foundation
import QNSPCrypto
import Testing

@Suite("qpqd --database postgres://...: help and refusals (no PostgreSQL server needed)")
struct QPQDPostgresOptionTests {
    @Test("--help explains the PostgreSQL URL; a URL without a user and an unreachable server are refused with their reason, exit 1",
          .timeLimit(.minutes(2)))
    func option() async throws {
        let help = try await ToolRun.run("qpqd", ["--help"])
        #expect(help.stdout.contains("postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"), "\(help.stdout)")
        #expect(help.stdout.contains("qpq_delivery"), "\(help.stdout)")
        let dir = TempDir()
        defer { dir.cleanup() }
        let host = try HostKeyPair.generate(comment: "qpqd option test")
        try KeyFileIO.writePrivateKey(try PrivateKeyFile.encode(.host(host)), path: dir.path + "/host_key")
        let common = ["-p", "0", "-h", dir.path + "/host_key", "--opaque-setup", dir.path + "/opaque", "--no-quic"]
        let noUser = try await ToolRun.run("qpqd", common + ["--database", "postgres://127.0.0.1:5432/qpq"])
        #expect(noUser.status == 1 && noUser.stderr.contains("names no user"), "\(noUser.stderr)")
        let noDatabase = try await ToolRun.run("qpqd", common + ["--database", "postgres://qpq@127.0.0.1:5432"])
        #expect(noDatabase.status == 1 && noDatabase.stderr.contains("names no database"), "\(noDatabase.stderr)")
        // Port 1 on loopback: nothing listens there.
        let refused = try await ToolRun.run("qpqd", common + ["--database", "postgres://qpq@127.0.0.1:1/qpq"])
        #expect(refused.status == 1 && refused.stderr.contains("PostgreSQL qpq@127.0.0.1:1/qpq") && refused.stderr.contains("refused"),
                "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "postgres:"), "a URL is never taken for a SQLite file name")
    }
}
