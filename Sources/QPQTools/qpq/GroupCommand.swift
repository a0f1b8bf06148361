import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QSSHTools

struct GroupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "group", abstract: "Create, extend and list groups.",
                                                    subcommands: [Create.self, Add.self, Remove.self, Leave.self, List.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a group (its name is its id on the server).")
        @OptionGroup var options: QPQOptions
        @Argument var name: String
        func run() throws {
            let name = self.name
            try withMessenger(options) { m, _ in try await m.createGroup(name) }
            print("created \(name)")
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add every device of a user to a group.")
        @OptionGroup var options: QPQOptions
        @Argument var name: String
        @Argument var user: String
        func run() throws {
            let (name, user) = (self.name, self.user)
            let epoch = try withMessenger(options) { m, _ in
                _ = try await m.receive()
                try await m.add(user: user, to: name)
                return try m.epoch(of: name)
            }
            print("added \(user) to \(name) (epoch \(epoch))")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove every device of a user from a group.")
        @OptionGroup var options: QPQOptions
        @Argument var name: String
        @Argument var user: String
        func run() throws {
            let (name, user) = (self.name, self.user)
            let epoch = try withMessenger(options) { m, _ in
                _ = try await m.receive()
                try await m.remove(user: user, from: name)
                return try m.epoch(of: name)
            }
            print("removed \(user) from \(name) (epoch \(epoch))")
        }
    }

    struct Leave: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Leave a group: this device proposes its own removal, which the next member online commits; the local group state is deleted.")
        @OptionGroup var options: QPQOptions
        @Argument var name: String
        func run() throws {
            let name = self.name
            try withMessenger(options) { m, _ in
                _ = try await m.receive()
                try await m.leave(name)
            }
            print("left \(name)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List this device's groups and their members.")
        @OptionGroup var options: QPQOptions
        func run() throws {
            let lines = try withMessenger(options) { m, _ -> [String] in
                _ = try await m.receive()
                return try m.state.groups.keys.sorted().map { name in
                    "\(name)\tepoch \(try m.epoch(of: name))\t\(try m.members(of: name).joined(separator: ","))"
                }
            }
            for l in lines { print(l) }
        }
    }
}
