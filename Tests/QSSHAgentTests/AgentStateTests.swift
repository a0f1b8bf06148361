import QNSP
import QNSPCrypto
import QSSHAgent
import Testing

@Suite("Agent state machine")
struct AgentStateTests {
    /// The reply of an action that must not ask the user.
    func reply(_ action: AgentAction, sourceLocation: SourceLocation = #_sourceLocation) -> AgentResponse? {
        guard case .reply(let r, _) = action else {
            Issue.record("expected a reply, got a confirmation", sourceLocation: sourceLocation)
            return nil
        }
        return r
    }

    func held(_ state: inout AgentState, now: UInt64) -> [AgentIdentity] {
        guard case .identities(let list)? = reply(state.handle(.requestIdentities, now: now)) else { return [] }
        return list
    }

    func add(
        _ state: inout AgentState,
        _ pair: UserKeyPair,
        _ c: AgentConstraints = AgentConstraints(),
        now: UInt64 = 0
    ) -> AgentResponse? {
        reply(state.handle(.add(AgentKeyMaterial(pair), constraints: c), now: now))
    }

    @Test("added keys are listed and sign ClientAuth inputs that verify under the client auth context")
    func addListSign() throws {
        var state = AgentState()
        #expect(add(&state, AgentKeys.alice) == .success)
        #expect(add(&state, AgentKeys.bob) == .success)
        let list = held(&state, now: 0)
        #expect(list.map(\.comment) == ["alice@laptop", "bob"])
        #expect(list.first?.keyBlob == AgentKeyFormat.keyBlob(AgentKeys.alice.publicKey))
        let input = AgentKeys.input(for: AgentKeys.alice)
        guard case .signature(let blob)? = reply(state.handle(AgentKeys.signRequest(AgentKeys.alice), now: 0)) else {
            Issue.record("no signature")
            return
        }
        let sig = try AgentKeyFormat.signature(fromBlob: blob)
        #expect(
            AgentKeys.alice.publicKey.signing.isValidSignature(
                sig,
                for: input.message,
                context: KeySchedule.clientAuthContext
            )
        )
        #expect(
            !AgentKeys.bob.publicKey.signing.isValidSignature(
                sig,
                for: input.message,
                context: KeySchedule.clientAuthContext
            )
        )
        // Adding the same key again replaces it rather than listing it twice.
        #expect(add(&state, AgentKeys.alice) == .success)
        #expect(held(&state, now: 0).count == 2)
    }

    @Test("refuses to sign anything but a ClientAuth input for the same key, with flags 0")
    func signPolicy() {
        var state = AgentState()
        #expect(add(&state, AgentKeys.alice) == .success)
        let blob = AgentKeyFormat.keyBlob(AgentKeys.alice.publicKey)
        let good = AgentKeys.input(for: AgentKeys.alice)
        let otherKey = AgentKeys.input(for: AgentKeys.bob)
        let raw = good.message
        let otherContext = ClientAuthSigningInput.agentData(
            message: good.message,
            context: Array("qnsp1 server announce".utf8)
        )
        for data in [otherKey.agentData, raw, otherContext, [], good.agentData + [1]] {
            #expect(reply(state.handle(.sign(keyBlob: blob, data: data, flags: 0), now: 0)) == .failure)
        }
        #expect(reply(state.handle(.sign(keyBlob: blob, data: good.agentData, flags: 2), now: 0)) == .failure)
        #expect(reply(state.handle(AgentKeys.signRequest(AgentKeys.bob), now: 0)) == .failure)
        #expect(reply(state.handle(.sign(keyBlob: blob, data: good.agentData, flags: 0), now: 0)) != .failure)
    }

    @Test("a key whose seed does not make its public key is refused")
    func mismatchedKey() {
        var state = AgentState()
        let wrong = AgentKeyMaterial(
            publicKey: AgentKeys.bob.publicKey,
            seed: AgentKeys.alice.signingKey.seed,
            comment: "x"
        )
        #expect(reply(state.handle(.add(wrong, constraints: AgentConstraints()), now: 0)) == .failure)
        #expect(state.count == 0)
    }

    @Test("keys with a lifetime expire on the clock; others stay", arguments: [UInt32(1), 60, 86400])
    func lifetime(_ seconds: UInt32) {
        var state = AgentState()
        let start: UInt64 = 1_000
        #expect(add(&state, AgentKeys.alice, AgentConstraints(lifetime: seconds), now: start) == .success)
        #expect(add(&state, AgentKeys.bob, now: start) == .success)
        #expect(state.nextExpiry == start + UInt64(seconds))
        #expect(held(&state, now: start + UInt64(seconds) - 1).count == 2)
        #expect(
            reply(state.handle(AgentKeys.signRequest(AgentKeys.alice), now: start + UInt64(seconds) - 1)) != .failure
        )
        #expect(reply(state.handle(AgentKeys.signRequest(AgentKeys.alice), now: start + UInt64(seconds))) == .failure)
        #expect(held(&state, now: start + UInt64(seconds)).map(\.comment) == ["bob"])
        #expect(state.nextExpiry == nil)
    }

    @Test("confirm-constrained keys ask; the sign is checked again after the answer")
    func confirm() {
        var state = AgentState()
        #expect(add(&state, AgentKeys.alice, AgentConstraints(confirm: true)) == .success)
        guard case .confirm(let c) = state.handle(AgentKeys.signRequest(AgentKeys.alice), now: 0) else {
            Issue.record("no confirmation asked")
            return
        }
        #expect(c.prompt.contains(AgentKeys.alice.publicKey.fingerprint))
        #expect(c.prompt.contains("as 'alice'"))
        guard case .signature = state.signConfirmed(c, now: 0) else {
            Issue.record("confirmed sign failed")
            return
        }
        // Locked or removed while the user was being asked: nothing is signed.
        #expect(reply(state.handle(.lock(passphrase: [1]), now: 0)) == .success)
        #expect(state.signConfirmed(c, now: 0) == .failure)
        #expect(reply(state.handle(.unlock(passphrase: [1]), now: 0)) == .success)
        #expect(reply(state.handle(.removeAll, now: 0)) == .success)
        #expect(state.signConfirmed(c, now: 0) == .failure)
    }

    @Test("a locked agent lists nothing, signs nothing, changes nothing; only the right password unlocks")
    func lock() {
        var state = AgentState()
        #expect(add(&state, AgentKeys.alice) == .success)
        let password = Array("correct horse".utf8)
        #expect(reply(state.handle(.lock(passphrase: password), now: 0)) == .success)
        #expect(state.isLocked)
        #expect(reply(state.handle(.lock(passphrase: password), now: 0)) == .failure)
        #expect(held(&state, now: 0).isEmpty)
        #expect(reply(state.handle(AgentKeys.signRequest(AgentKeys.alice), now: 0)) == .failure)
        #expect(add(&state, AgentKeys.bob) == .failure)
        #expect(
            reply(state.handle(.remove(keyBlob: AgentKeyFormat.keyBlob(AgentKeys.alice.publicKey)), now: 0)) == .failure
        )
        #expect(reply(state.handle(.removeAll, now: 0)) == .failure)
        for wrong in [Array("correct hors".utf8), Array("correct horsf".utf8), [], password + [0]] {
            #expect(reply(state.handle(.unlock(passphrase: wrong), now: 0)) == .failure)
        }
        #expect(state.failedUnlocks == 4)
        #expect(reply(state.handle(.unlock(passphrase: password), now: 0)) == .success)
        #expect(!state.isLocked)
        #expect(state.failedUnlocks == 0)
        #expect(reply(state.handle(.unlock(passphrase: password), now: 0)) == .failure)
        #expect(reply(state.handle(AgentKeys.signRequest(AgentKeys.alice), now: 0)) != .failure)
    }

    @Test("remove and remove all")
    func remove() {
        var state = AgentState()
        #expect(add(&state, AgentKeys.alice) == .success)
        #expect(add(&state, AgentKeys.bob) == .success)
        #expect(
            reply(state.handle(.remove(keyBlob: AgentKeyFormat.keyBlob(AgentKeys.alice.publicKey)), now: 0)) == .success
        )
        #expect(
            reply(state.handle(.remove(keyBlob: AgentKeyFormat.keyBlob(AgentKeys.alice.publicKey)), now: 0)) == .failure
        )
        #expect(held(&state, now: 0).map(\.comment) == ["bob"])
        #expect(reply(state.handle(.removeAll, now: 0)) == .success)
        #expect(state.count == 0)
    }

    @Test("seeds sit in memory the process could lock (RLIMIT_MEMLOCK permitting)")
    func lockedMemory() throws {
        var seed = AgentKeys.alice.signingKey.seed
        let secure = try SecureSeed(wiping: &seed)
        #expect(seed.isEmpty)
        // Root or a default 8 MiB limit: one page locks. Report, do not fail, where the limit is 0.
        if !secure.isLocked { print("note: mlock refused (RLIMIT_MEMLOCK)") }
    }
}
