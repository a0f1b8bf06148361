import QNSPCrypto
import QOPAQUE
import QPQProtocol

/// The client side of registration and login (docs/messaging.md §4) over any ``QPQTransport``.
package enum QPQAccount {
    /// OPAQUE registration: the password never leaves this function.
    package static func register(user: String, password: [UInt8], configuration: OPAQUEConfiguration = .qpqDefault,
                                 over transport: some QPQTransport) async throws(QPQClientError) {
        var registration: OPAQUEClientRegistration
        do { registration = try OPAQUEClientRegistration(password: password, configuration: configuration) } catch {
            throw .crypto("registration: \(error)")
        }
        let answer = try await transport.expect(.registerStart(user: user, request: registration.request.bytes))
        guard case .registerChallenge(let responseBytes) = answer else { throw .unexpectedResponse("\(answer) to RegisterStart") }
        let record: [UInt8]
        do {
            let response = try RegistrationResponse(bytes: responseBytes)
            record = try registration.finish(response: response).record.bytes
        } catch {
            throw .crypto("registration: \(error)")
        }
        let done = try await transport.expect(.registerFinish(user: user, record: record))
        guard case .ok = done else { throw .unexpectedResponse("\(done) to RegisterFinish") }
    }

    /// OPAQUE login, then the device proves its identity key over the login challenge.
    /// `deviceId` 0 registers this key as a new device.
    package static func login(user: String, password: [UInt8], deviceId: UInt64, deviceName: String,
                              identity: SignatureScheme.PrivateKey, configuration: OPAQUEConfiguration = .qpqDefault,
                              over transport: some QPQTransport) async throws(QPQClientError) -> QPQSessionCredentials {
        var login: OPAQUEClientLogin
        do { login = try OPAQUEClientLogin(password: password, configuration: configuration) } catch {
            throw .crypto("login: \(error)")
        }
        let ke1 = login.ke1.bytes
        let answer = try await transport.expect(.loginStart(user: user, ke1: ke1))
        guard case .loginChallenge(let ke2Bytes, let challenge) = answer else { throw .unexpectedResponse("\(answer) to LoginStart") }
        let finished: OPAQUEClientLogin.Result
        do {
            finished = try login.finish(ke2: try KE2(bytes: ke2Bytes))
        } catch {
            // A wrong password (or an unknown user: same case) fails here, before KE3. Tell the server
            // with a KE3 that cannot verify, so both sides see the same failure and the same round trip.
            _ = try? await transport.call(.loginFinish(ke3: [UInt8](repeating: 0, count: QPQLimits.ke3Size), deviceId: deviceId,
                                                       deviceName: deviceName, identityKey: identity.publicKey.rawRepresentation,
                                                       signature: [UInt8](repeating: 0, count: QPQLimits.signatureSize)))
            throw .server(code: .authenticationFailed, detail: 0, message: "wrong user name or password")
        }
        let message = QPQDeviceLogin.signedMessage(challenge: challenge, transcriptHash: KeyDerivation.sha256(ke1 + ke2Bytes),
                                                   user: user, deviceId: deviceId)
        let signature: [UInt8]
        do { signature = try identity.sign(message, context: QPQDeviceLogin.context) } catch {
            throw .crypto("device signature: \(error)")
        }
        let done = try await transport.expect(.loginFinish(ke3: finished.ke3.bytes, deviceId: deviceId, deviceName: deviceName,
                                                           identityKey: identity.publicKey.rawRepresentation, signature: signature))
        guard case .loggedIn(let userId, let boundDevice, let token) = done else { throw .unexpectedResponse("\(done) to LoginFinish") }
        return QPQSessionCredentials(userId: userId, deviceId: boundDevice, token: token, exportKey: finished.exportKey.copiedBytes())
    }
}
