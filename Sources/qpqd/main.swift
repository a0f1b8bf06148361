import QPQTools
import QSSHTools

ToolMain.run(QPQDCommand.self, name: "qpqd")
