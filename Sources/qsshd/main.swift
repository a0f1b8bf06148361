import QSSHTools

// -f FILE: the file's options go in front of the command line's, which therefore win.
do {
    let arguments = try QSSHDConfigFile.expand(Array(CommandLine.arguments.dropFirst()))
    ToolMain.run(QSSHDCommand.self, name: "qsshd", arguments: arguments)
} catch {
    ToolMain.fail(name: "qsshd", "\(error)")
}
