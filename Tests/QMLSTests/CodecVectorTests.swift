import QMLS
import Testing

/// tree-math.json, deserialization.json and messages.json: structure without cryptography.
@Suite("MLS vectors: codec and tree math")
struct CodecVectorTests {
    @Test("tree-math.json: root, children, parent and sibling of every node")
    func treeMath() throws {
        var tally = VectorTally("tree-math.json")
        for vector in try TestVectors.load("tree-math.json") {
            let leaves = UInt32(try vector.int("n_leaves"))
            let check = CaseCheck("n_leaves=\(leaves)")
            check.expect(TreeMath.nodeWidth(leaves) == UInt32(try vector.int("n_nodes")), "n_nodes")
            check.expect(TreeMath.root(leaves).value == UInt32(try vector.int("root")), "root")
            let left = vector["left"] as? [Any] ?? []
            let right = vector["right"] as? [Any] ?? []
            let parent = vector["parent"] as? [Any] ?? []
            let sibling = vector["sibling"] as? [Any] ?? []
            let root = TreeMath.root(leaves)
            for i in 0..<Int(TreeMath.nodeWidth(leaves)) {
                let node = NodeIndex(UInt32(i))
                let expectedLeft = left[i] as? Int
                let expectedRight = right[i] as? Int
                let expectedParent = parent[i] as? Int
                let expectedSibling = sibling[i] as? Int
                let gotLeft = node.isLeaf ? nil : Int(TreeMath.left(node).value)
                let gotRight = node.isLeaf ? nil : Int(TreeMath.right(node).value)
                let gotParent = node == root ? nil : Int(TreeMath.parent(node, leafCount: leaves).value)
                let gotSibling = node == root ? nil : Int(TreeMath.sibling(node, leafCount: leaves).value)
                check.expect(gotLeft == expectedLeft, "left(\(i))")
                check.expect(gotRight == expectedRight, "right(\(i))")
                check.expect(gotParent == expectedParent, "parent(\(i))")
                check.expect(gotSibling == expectedSibling, "sibling(\(i))")
            }
            tally.record(check)
        }
        tally.report()
    }

    @Test("deserialization.json: every vector length header decodes to its length")
    func deserialization() throws {
        var tally = VectorTally("deserialization.json")
        for vector in try TestVectors.load("deserialization.json") {
            let header = try vector.hex("vlbytes_header")
            let check = CaseCheck("header \(header.hex)")
            var reader = MLSReader(header)
            check.run("readVarint") {
                let length = try reader.readVarint()
                check.expect(length == (try vector.int("length")), "decoded length")
                check.expect(reader.isAtEnd, "header fully consumed")
                var writer = MLSWriter()
                writer.writeVarint(length)
                check.expect(writer.bytes == header, "re-encoding is minimal and identical")
            }
            tally.record(check)
        }
        tally.report()
    }

    @Test("varints: the RFC examples, the 0b11 prefix and non-minimal forms")
    func varintEdgeCases() throws {
        var reader = MLSReader([0x9d, 0x7f, 0x3e, 0x7d])
        #expect(try reader.readVarint() == 494_878_333)
        var two = MLSReader([0x7b, 0xbd])
        #expect(try two.readVarint() == 15293)
        var bad = MLSReader([0xc0, 0, 0, 0, 0, 0, 0, 0])
        #expect(throws: MLSCodecError.invalidVarintPrefix) {
            try bad.readVarint()
        }
        var nonMinimal = MLSReader([0x40, 0x25])
        #expect(throws: MLSCodecError.nonMinimalVarint) {
            try nonMinimal.readVarint()
        }
        var nonMinimal4 = MLSReader([0x80, 0x00, 0x3f, 0xff])
        #expect(throws: MLSCodecError.nonMinimalVarint) {
            try nonMinimal4.readVarint()
        }
        var short = MLSReader([0x80, 0x01])
        #expect(throws: MLSCodecError.truncated) {
            try short.readVarint()
        }
    }

    @Test("messages.json: every structure decodes and re-encodes to the same bytes")
    func messages() throws {
        var tally = VectorTally("messages.json")
        for (index, vector) in try TestVectors.load("messages.json").enumerated() {
            let check = CaseCheck("messages[\(index)]")
            func roundTrip<T: MLSCodable>(_ key: String, _ type: T.Type) {
                check.run(key) {
                    let bytes = try vector.hex(key)
                    let value = try T(mlsDecoding: bytes)
                    check.expect(value.mlsEncoded == bytes, "\(key) re-encodes identically")
                }
            }
            roundTrip("mls_welcome", MLSMessage.self)
            roundTrip("mls_group_info", MLSMessage.self)
            roundTrip("mls_key_package", MLSMessage.self)
            roundTrip("ratchet_tree", RatchetTreeNodes.self)
            roundTrip("group_secrets", GroupSecrets.self)
            roundTrip("add_proposal", KeyPackage.self)
            roundTrip("update_proposal", LeafNode.self)
            roundTrip("remove_proposal", LeafIndex.self)
            roundTrip("pre_shared_key_proposal", PreSharedKeyID.self)
            roundTrip("re_init_proposal", ReInit.self)
            roundTrip("external_init_proposal", OpaqueBytes.self)
            roundTrip("group_context_extensions_proposal", ExtensionList.self)
            roundTrip("commit", Commit.self)
            roundTrip("public_message_application", MLSMessage.self)
            roundTrip("public_message_proposal", MLSMessage.self)
            roundTrip("public_message_commit", MLSMessage.self)
            roundTrip("private_message", MLSMessage.self)
            tally.record(check)
        }
        tally.report()
    }
}

/// `opaque data<V>` as a standalone codable (the ExternalInit proposal body).
struct OpaqueBytes: MLSCodable {
    var bytes: [UInt8]

    func encode(to writer: inout MLSWriter) {
        writer.writeOpaque(bytes)
    }

    init(from reader: inout MLSReader) throws(MLSCodecError) {
        bytes = try reader.readOpaque()
    }
}

/// `Extension extensions<V>` as a standalone codable (the GroupContextExtensions body).
struct ExtensionList: MLSCodable {
    var extensions: [Extension]

    func encode(to writer: inout MLSWriter) {
        writer.writeVector(extensions)
    }

    init(from reader: inout MLSReader) throws(MLSCodecError) {
        extensions = try reader.readVector()
    }
}
