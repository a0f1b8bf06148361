import ArgumentParser
import Foundation
import QMLS

/// `qmls-bench`: QMLS group operation costs at several group sizes, as a table.
package struct MLSBenchCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "qmls-bench",
        abstract: "Measure MLS group operations (QMLS) at several group sizes.",
        discussion: """
            Build with '-c release'. For each suite and size N: create a group; add N-1 members in one
            commit; then, as in mls-rs's benchmark (benches/group_commit.rs), two clients join by external
            commit ("sender" and "receiver"), and the sender's empty commit (with UpdatePath) is created and
            processed by the receiver. "empty commit, sparse" is the creator's empty commit right after the
            add-all commit: its UpdatePath is encrypted to all N-1 other leaves (the worst case), and "process
            sparse commit" is member 1 processing it; scripts/mls_rs_bench.py times the same two operations
            for mls-rs on this machine. Key package generation is not timed. Times are medians; messages/s
            count encrypt + decrypt pairs of 100 bytes.
            """
    )

    @Option(name: .long, help: "Group sizes, comma separated.") var sizes = "16,64,128,1000"
    @Option(name: .long, help: "Suites: 1, 2, 3, 5, 7 or pq, comma separated.") var suites = "1,pq"
    @Option(name: .long, help: "Minimum seconds spent on each cheap measurement.") var seconds = 0.5

    package init() {}

    package func run() throws {
        #if DEBUG
        print("warning: this is a debug build; run 'swift run -c release qmls-bench' for real figures\n")
        #endif
        let sizeList = sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let suiteList = try suites.split(separator: ",").map { try Self.suite(String($0)) }
        var rows: [[String]] = []
        for suite in suiteList {
            for size in sizeList {
                let result = try GroupBench(suite: suite, size: size, minimumSeconds: seconds).run()
                rows.append(result.row)
                print("  done: \(suite) N=\(size)")
                fflush(nil)
            }
        }
        print("")
        print(Self.table(header: GroupBench.Result.header, rows: rows))
        print(
            "\nmls-rs figures quoted in issue 12 (its benchmark, another machine): empty commit 2.74 / 7.46 / 13.89 ms"
        )
        print("at 16 / 64 / 128 members. Same machine: python3 scripts/mls_rs_bench.py")
        print("(mls-rs 0.55 through its Python binding).")
    }

    static func suite(_ name: String) throws -> CipherSuite {
        switch name.lowercased() {
        case "pq", "xwing", "f001":
            return .xwingAes256Sha384MLDSA65
        default:
            guard let value = UInt16(name), CipherSuite(rawValue: value).isSupported else {
                throw ValidationError("unknown suite \(name)")
            }
            return CipherSuite(rawValue: value)
        }
    }

    static func table(header: [String], rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() {
                widths[i] = max(widths[i], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            "| "
                + cells.enumerated().map { i, cell in cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: " | ") + " |"
        }
        let rule = "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }
}
