import Foundation
import QSSHFuzz

#if FUZZING
/// libFuzzer's entry: the target is chosen by QSSH_FUZZ_TARGET (scripts/fuzz.sh sets it).
private let selected: FuzzTargets.Target = {
    let name = ProcessInfo.processInfo.environment["QSSH_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTargets.target(named: name) else {
        FileHandle.standardError.write(
            Data("qssh-fuzz: set QSSH_FUZZ_TARGET to one of \(FuzzTargets.all.map(\.name))\n".utf8)
        )
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    selected(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

/// libFuzzer's driver, called from the entry point SwiftPM gives this executable.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("qssh_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    let arguments = CommandLine.arguments
    if arguments.count == 2 && arguments[1] == "--list" {
        print(FuzzTargets.all.map(\.name).joined(separator: "\n"))
        return 0
    }
    if arguments.count == 3 && arguments[1] == "--write-seeds" { return FuzzSeeds.write(to: arguments[2]) ? 0 : 1 }
    var count = argc
    var vector = argv
    return runDriver(&count, &vector, fuzzOneInput)
}
#else
/// Without the fuzzer: `qssh-fuzz TARGET FILE...` runs the target on each file (to replay a
/// finding); `qssh-fuzz --list` names the targets; `--write-seeds DIR` writes valid inputs.
@main
struct FuzzReplay {
    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        if args.count == 2 && args[0] == "--write-seeds" { exit(FuzzSeeds.write(to: args[1]) ? 0 : 1) }
        guard let name = args.first, name != "--list", let target = FuzzTargets.target(named: name) else {
            print(FuzzTargets.all.map(\.name).joined(separator: "\n"))
            exit(args.first == "--list" ? 0 : 2)
        }
        for path in args.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("qssh-fuzz: cannot read \(path)\n".utf8))
                exit(1)
            }
            target(Array(data))
            print("\(name): \(path): ok")
        }
    }
}
#endif
