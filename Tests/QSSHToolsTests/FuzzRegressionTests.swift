import Foundation
import QSSHFuzz
import Testing

@Suite("Fuzz targets: the kept corpus and the generated seeds run without a trap")
struct FuzzRegressionTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus").path

    @Test("every file in Tests/FuzzCorpus/TARGET/ replays through its target", arguments: FuzzTargets.all.map(\.name))
    func corpus(_ target: String) throws {
        let run = try #require(FuzzTargets.target(named: target))
        let dir = Self.corpus + "/" + target
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        for file in files.sorted() {
            let data = try #require(FileManager.default.contents(atPath: dir + "/" + file))
            run(Array(data))
        }
    }

    @Test("the generated seeds (real handshakes, packets and files) run through their targets")
    func seeds() throws {
        let all = FuzzSeeds.all()
        #expect(Set(all.keys) == Set(FuzzTargets.all.map(\.name)))
        for (target, inputs) in all {
            let run = try #require(FuzzTargets.target(named: target))
            for input in inputs { run(input) }
        }
    }
}
