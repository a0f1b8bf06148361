import QPQTools
import QSSHTools

ToolMain.run(QPQCommand.self, name: "qpq")
