import QPQTools
import QSSHTools

ToolMain.run(QPQBenchCommand.self, name: "qpq-bench")
