import QSSHTestSupport
import Foundation
import Testing

@testable import QMLS

/// Interop with mls-rs (an independent RFC 9420 implementation) through bytes only, suite 1.
/// Needs `pip install agentvault-mls-rs-uniffi==0.1.1` and `scripts/mls_rs_peer.py`; set
/// `QMLS_REQUIRE_MLSRS=1` to make a missing peer a failure instead of a skip.
@Suite("MLS interop with mls-rs", .serialized)
struct InteropTests {
    static let required = ProcessInfo.processInfo.environment["QMLS_REQUIRE_MLSRS"] == "1"
    static let available = MLSRSPeer.isAvailable

    @Test("the mls-rs peer is available when QMLS_REQUIRE_MLSRS=1", .enabled(if: required))
    func peerAvailable() {
        #expect(Self.available, "scripts/mls_rs_peer.py or the mls_rs_uniffi binding is missing")
    }

    static let suite = CipherSuite.x25519Aes128Sha256Ed25519
    static let exporterLabel = Array("qmls interop".utf8)
    static let exporterContext: [UInt8] = [0xc0, 0xff, 0xee]

    static func keyPackage(_ name: String) throws -> KeyPackageBundle {
        let provider = try CipherSuiteProvider(suite)
        return try KeyPackageBundle.create(
            suite: suite,
            credential: .basic(identity: Array(name.utf8)),
            signingKey: try provider.generateSignatureKey()
        )
    }

    /// The peer's client agrees with `group` on the group context and on an exported secret.
    static func expectAgreement(
        _ peer: MLSRSPeer,
        client: String,
        _ group: MLSGroup,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let state = try peer.call("state", ["client": client, "group_id": group.groupID.hex])
        #expect(
            try state.bytes("group_context") == group.context.mlsEncoded,
            "group context",
            sourceLocation: sourceLocation
        )
        let exported = try peer.call(
            "export_secret",
            [
                "client": client, "group_id": group.groupID.hex, "label": exporterLabel.hex,
                "context": exporterContext.hex, "length": 32,
            ]
        )
        let ours = KeySchedule.export(
            group.provider,
            exporterSecret: group.secrets.exporterSecret,
            label: exporterLabel,
            context: exporterContext,
            length: 32
        )
        #expect(
            try exported.bytes("secret") == ours,
            "exporter at epoch \(group.epoch)",
            sourceLocation: sourceLocation
        )
    }

    static func processCommit(_ group: inout MLSGroup, _ bytes: [UInt8]) throws {
        guard case .commit = try group.process(bytes) else {
            throw MLSRSPeer.PeerError(description: "expected a commit")
        }
    }

    @Test(
        "our group adds an mls-rs member from its KeyPackage; it joins from our Welcome; both commit, remove and talk",
        .enabled(if: available),
        .timeLimit(.minutes(2)),
        arguments: [WireFormat.privateMessage, .publicMessage]
    )
    func ourGroupAddsMLSRS(handshake: WireFormat) throws {
        let peer = try MLSRSPeer()
        defer {
            peer.shutdown()
        }
        try peer.call("create_client", ["name": "bob"])
        try peer.call("create_client", ["name": "dan"])
        var configuration = MLSGroupConfiguration()
        configuration.handshakeWireFormat = handshake
        let provider = try CipherSuiteProvider(Self.suite)
        var alice = try MLSGroup.create(
            suite: Self.suite,
            credential: .basic(identity: Array("alice".utf8)),
            signingKey: try provider.generateSignatureKey(),
            configuration: configuration
        )
        // Add bob (mls-rs) and carol (ours) in one commit.
        let bobKP = try peer.call("key_package", ["client": "bob"]).bytes("key_package")
        guard case .keyPackage(let bobPackage) = try MLSMessage(mlsDecoding: bobKP).body else {
            throw MLSRSPeer.PeerError(description: "not a key package")
        }
        let carolBundle = try Self.keyPackage("carol")
        var options = CommitOptions()
        options.adds = [bobPackage, carolBundle.keyPackage]
        let added = try alice.commit(options)
        try alice.mergePendingCommit()
        let welcome = try #require(added.welcome)
        try peer.call("join", ["client": "bob", "welcome": welcome.hex])
        var carol = try MLSGroup.join(welcome: welcome, keyPackage: carolBundle, configuration: configuration)
        try Self.expectAgreement(peer, client: "bob", alice)
        #expect(carol.epochAuthenticator == alice.epochAuthenticator)
        let gid = alice.groupID.hex

        // Application messages both ways.
        let hello = try alice.encrypt(Array("hello bob".utf8))
        let seen = try peer.call("process", ["client": "bob", "group_id": gid, "message": hello.hex])
        #expect(try seen.bytes("data") == Array("hello bob".utf8))
        _ = try carol.process(hello)
        let reply = try peer.call("encrypt", ["client": "bob", "group_id": gid, "data": Array("hi alice".utf8).hex])
            .bytes("message")
        #expect(
            try alice.process(reply)
                == .application(
                    ApplicationMessage(
                        sender: LeafIndex(1),
                        data: Array("hi alice".utf8),
                        authenticatedData: [],
                        epoch: alice.epoch
                    )
                )
        )
        _ = try carol.process(reply)

        // mls-rs commits (empty commit with an UpdatePath); we follow.
        let bobCommit = try peer.call("commit", ["client": "bob", "group_id": gid]).bytes("commit")
        try Self.processCommit(&alice, bobCommit)
        try Self.processCommit(&carol, bobCommit)
        try Self.expectAgreement(peer, client: "bob", alice)

        // We commit (empty, then an add of another mls-rs client); mls-rs follows.
        let ours = try carol.commit()
        try carol.mergePendingCommit()
        try peer.call("process", ["client": "bob", "group_id": gid, "message": ours.commit.hex])
        try Self.processCommit(&alice, ours.commit)
        try Self.expectAgreement(peer, client: "bob", carol)
        let danKP = try peer.call("key_package", ["client": "dan"]).bytes("key_package")
        guard case .keyPackage(let danPackage) = try MLSMessage(mlsDecoding: danKP).body else {
            throw MLSRSPeer.PeerError(description: "not a key package")
        }
        var addDan = CommitOptions()
        addDan.adds = [danPackage]
        let danAdded = try alice.commit(addDan)
        try alice.mergePendingCommit()
        try peer.call("process", ["client": "bob", "group_id": gid, "message": danAdded.commit.hex])
        try Self.processCommit(&carol, danAdded.commit)
        try peer.call("join", ["client": "dan", "welcome": try #require(danAdded.welcome).hex])
        try Self.expectAgreement(peer, client: "bob", alice)
        try Self.expectAgreement(peer, client: "dan", alice)

        // mls-rs removes carol; we process it (carol sees her removal).
        let removal = try peer.call(
            "remove",
            ["client": "bob", "group_id": gid, "identities": [Array("carol".utf8).hex]]
        )
        .bytes("commit")
        try peer.call("process", ["client": "dan", "group_id": gid, "message": removal.hex])
        try Self.processCommit(&alice, removal)
        guard case .removed = try carol.process(removal) else {
            Issue.record("carol did not see her removal")
            return
        }
        try Self.expectAgreement(peer, client: "bob", alice)

        // We remove dan; bob follows, dan is removed.
        var removeDan = CommitOptions()
        removeDan.removes = [LeafIndex(3)]
        let danRemoval = try alice.commit(removeDan)
        try alice.mergePendingCommit()
        try peer.call("process", ["client": "bob", "group_id": gid, "message": danRemoval.commit.hex])
        let danSeen = try peer.call("process", ["client": "dan", "group_id": gid, "message": danRemoval.commit.hex])
        #expect(danSeen["effect"] as? String == "removed")
        try Self.expectAgreement(peer, client: "bob", alice)
        let last = try alice.encrypt(Array("bye".utf8))
        #expect(
            try peer.call("process", ["client": "bob", "group_id": gid, "message": last.hex]).bytes("data")
                == Array("bye".utf8)
        )
    }

    @Test(
        "an mls-rs group adds our member; we commit, add, remove and talk inside it",
        .enabled(if: available),
        .timeLimit(.minutes(2))
    )
    func mlsrsGroupAddsUs() throws {
        let peer = try MLSRSPeer()
        defer {
            peer.shutdown()
        }
        try peer.call("create_client", ["name": "dave"])
        try peer.call("create_client", ["name": "frank"])
        let groupID: [UInt8] = Array("mls-rs group".utf8)
        try peer.call("create_group", ["client": "dave", "group_id": groupID.hex])
        let erinBundle = try Self.keyPackage("erin")
        let added = try peer.call(
            "add",
            [
                "client": "dave", "group_id": groupID.hex,
                "key_packages": [MLSMessage(body: .keyPackage(erinBundle.keyPackage)).mlsEncoded.hex],
            ]
        )
        var erin = try MLSGroup.join(welcome: try added.bytes("welcome"), keyPackage: erinBundle)
        try Self.expectAgreement(peer, client: "dave", erin)

        let greeting = try peer.call(
            "encrypt",
            ["client": "dave", "group_id": groupID.hex, "data": Array("welcome erin".utf8).hex]
        )
        .bytes("message")
        #expect(
            try erin.process(greeting)
                == .application(
                    ApplicationMessage(
                        sender: LeafIndex(0),
                        data: Array("welcome erin".utf8),
                        authenticatedData: [],
                        epoch: erin.epoch
                    )
                )
        )
        let answer = try erin.encrypt(Array("thanks dave".utf8))
        #expect(
            try peer.call("process", ["client": "dave", "group_id": groupID.hex, "message": answer.hex]).bytes("data")
                == Array("thanks dave".utf8)
        )

        // erin (ours) adds frank (mls-rs) and a second member of ours.
        let frankKP = try peer.call("key_package", ["client": "frank"]).bytes("key_package")
        guard case .keyPackage(let frankPackage) = try MLSMessage(mlsDecoding: frankKP).body else {
            throw MLSRSPeer.PeerError(description: "not a key package")
        }
        let ginaBundle = try Self.keyPackage("gina")
        var options = CommitOptions()
        options.adds = [frankPackage, ginaBundle.keyPackage]
        let erinAdd = try erin.commit(options)
        try erin.mergePendingCommit()
        try peer.call("process", ["client": "dave", "group_id": groupID.hex, "message": erinAdd.commit.hex])
        let welcome = try #require(erinAdd.welcome)
        try peer.call("join", ["client": "frank", "welcome": welcome.hex])
        var gina = try MLSGroup.join(welcome: welcome, keyPackage: ginaBundle)
        try Self.expectAgreement(peer, client: "dave", erin)
        try Self.expectAgreement(peer, client: "frank", gina)

        // frank (mls-rs) commits; dave, erin and gina follow.
        let frankCommit = try peer.call("commit", ["client": "frank", "group_id": groupID.hex]).bytes("commit")
        try peer.call("process", ["client": "dave", "group_id": groupID.hex, "message": frankCommit.hex])
        try Self.processCommit(&erin, frankCommit)
        try Self.processCommit(&gina, frankCommit)
        try Self.expectAgreement(peer, client: "dave", erin)

        // gina (ours) removes frank; dave removes gina; erin stays in step.
        var removeFrank = CommitOptions()
        removeFrank.removes = [
            try #require(gina.members.first { $0.leaf.credential == .basic(identity: Array("frank".utf8)) }).index
        ]
        let removal = try gina.commit(removeFrank)
        try gina.mergePendingCommit()
        try peer.call("process", ["client": "dave", "group_id": groupID.hex, "message": removal.commit.hex])
        let frankSeen = try peer.call(
            "process",
            ["client": "frank", "group_id": groupID.hex, "message": removal.commit.hex]
        )
        #expect(frankSeen["effect"] as? String == "removed")
        try Self.processCommit(&erin, removal.commit)
        try Self.expectAgreement(peer, client: "dave", erin)
        let daveRemoves = try peer.call(
            "remove",
            ["client": "dave", "group_id": groupID.hex, "identities": [Array("gina".utf8).hex]]
        ).bytes("commit")
        try Self.processCommit(&erin, daveRemoves)
        guard case .removed = try gina.process(daveRemoves) else {
            Issue.record("gina did not see her removal")
            return
        }
        try Self.expectAgreement(peer, client: "dave", erin)
        let final = try erin.commit()
        try erin.mergePendingCommit()
        try peer.call("process", ["client": "dave", "group_id": groupID.hex, "message": final.commit.hex])
        try Self.expectAgreement(peer, client: "dave", erin)
    }
}
