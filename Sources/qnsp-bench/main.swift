import QNSPBench
import QSSHTools

ToolMain.run(BenchCommand.self, name: "qnsp-bench")
