import Crypto
import Foundation
import QNSPCrypto
import QPQProtocol

/// Sending and receiving files (docs/messaging.md §6.4): the file is encrypted chunk by chunk with a
/// fresh AES-256-GCM key, uploaded to qpqd as a blob, and the key travels inside the MLS message.
/// Both directions resume: an upload from the server's received offset, a download from the local
/// partial file.
package enum QPQFileTransfer {
    /// Plaintext bytes per chunk.
    package static let chunkSize: UInt32 = 256 * 1024

    /// How far a transfer is; `stall` is a test hook (stop making progress once this many bytes are done).
    package struct Progress: Sendable {
        package var report: @Sendable (_ done: UInt64, _ total: UInt64) -> Void
        package var stallAfter: UInt64?
        package init(stallAfter: UInt64? = nil, report: @escaping @Sendable (UInt64, UInt64) -> Void = { _, _ in }) {
            self.report = report
            self.stallAfter = stallAfter
        }
        func check(_ done: UInt64, _ total: UInt64) async {
            report(done, total)
            guard let stallAfter, done >= stallAfter, done < total else { return }
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }  // a cancelled stall ends
        }
    }

    static func nonce(_ index: UInt64) -> [UInt8] {
        Array("qpqf".utf8) + (0..<8).map { UInt8(truncatingIfNeeded: index >> (56 - 8 * UInt64($0))) }
    }

    /// Chunk `index` encrypted (the blob id, file size, chunk size and whether it is the last chunk are authenticated).
    static func seal(_ plain: [UInt8], index: UInt64, offer: QPQFileOffer) throws(QPQClientError) -> [UInt8] {
        do {
            let box = try AES.GCM.seal(plain, using: SymmetricKey(data: offer.key), nonce: try AES.GCM.Nonce(data: nonce(index)),
                                       authenticating: aad(index, offer))
            return Array(box.ciphertext) + Array(box.tag)
        } catch {
            throw .crypto("file chunk \(index): \(error)")
        }
    }

    static func open(_ sealed: [UInt8], index: UInt64, offer: QPQFileOffer) throws(QPQClientError) -> [UInt8] {
        guard sealed.count >= 16 else { throw .file("chunk \(index) of \(offer.name) is too short: refused") }
        do {
            let box = try AES.GCM.SealedBox(nonce: try AES.GCM.Nonce(data: nonce(index)), ciphertext: sealed.dropLast(16), tag: sealed.suffix(16))
            return Array(try AES.GCM.open(box, using: SymmetricKey(data: offer.key), authenticating: aad(index, offer)))
        } catch {
            throw .file("chunk \(index) of the file \(PrintableText.escaped(offer.name)) fails authentication (tampered or corrupt): refused")
        }
    }

    static func aad(_ index: UInt64, _ offer: QPQFileOffer) -> [UInt8] {
        var out = Array("qpq/1 file chunk".utf8) + offer.blobId
        for v in [offer.size, UInt64(offer.chunkSize)] { out += (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64($0))) } }
        out.append(index + 1 == offer.chunkCount ? 1 : 0)
        return out
    }

    /// Plaintext size of chunk `index`.
    static func plainLength(_ index: UInt64, _ offer: QPQFileOffer) -> Int {
        let start = index * UInt64(offer.chunkSize)
        return Int(min(UInt64(offer.chunkSize), offer.size - min(offer.size, start)))
    }

    /// SHA-256 and size of a file, read in chunks.
    static func hashFile(_ path: String) throws(QPQClientError) -> (sha256: [UInt8], size: UInt64) {
        guard let h = FileHandle(forReadingAtPath: path) else { throw .file("cannot read \(path)") }
        defer { try? h.close() }
        var hasher = SHA256()
        var size: UInt64 = 0
        while true {
            let data: Data
            do { data = try h.read(upToCount: 1 << 20) ?? Data() } catch { throw .file("cannot read \(path): \(error)") }
            if data.isEmpty { break }
            hasher.update(data: data)
            size += UInt64(data.count)
        }
        return (Array(hasher.finalize()), size)
    }

    /// The name a received file is saved under: the last path component of what the sender said,
    /// without control characters; never empty, ".", ".." or hidden.
    package static func safeName(_ sent: String) -> String {
        let last = sent.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        var name = String(String.UnicodeScalarView(last.unicodeScalars.filter { !($0.properties.generalCategory == .control
            || $0.properties.generalCategory == .format || $0.value == 0x7F) }))
        while name.hasPrefix(".") { name.removeFirst() }
        if name.isEmpty { name = "file" }
        while name.utf8.count > 200 { name.removeLast() }
        return name
    }
}

extension QPQMessenger {
    /// Encrypts and uploads the file at `path`, then sends its offer to the group. A pending upload
    /// of the same file to the same group (same path, size and SHA-256) is resumed from the server's
    /// offset (`resumedAt`: the plaintext offset it continued from). `checkpoint` is called with the state once the blob exists (so a killed upload can resume).
    package func sendFile(path: String, name: String, to groupName: String, progress: QPQFileTransfer.Progress = QPQFileTransfer.Progress(),
                          checkpoint: (QPQClientState) throws(QPQClientError) -> Void) async throws(QPQClientError)
        -> (offer: QPQFileOffer, resumedAt: UInt64) {
        let group = try self.group(groupName)
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        let (sha, size) = try QPQFileTransfer.hashFile(absolute)
        guard name.utf8.count <= QPQFileOffer.maxName else { throw .file("a file name has at most \(QPQFileOffer.maxName) bytes") }
        var offer: QPQFileOffer
        var resumed = false
        if let up = state.uploads.first(where: { $0.group == groupName && $0.path == absolute && $0.size == size && $0.sha256 == Data(sha)
                                                  && $0.name == name }) {
            offer = QPQFileOffer(blobId: Array(up.blobId), key: Array(up.key), size: size, chunkSize: up.chunkSize, sha256: sha, name: name)
            resumed = true
        } else {
            offer = QPQFileOffer(blobId: [], key: SecureRandom.systemBytes(QPQFileOffer.keySize), size: size,
                                 chunkSize: QPQFileTransfer.chunkSize, sha256: sha, name: name)
            let answer = try await transport.expect(.blobCreate(groupId: group.groupID, size: offer.blobSize))
            guard case .blobCreated(let blobId, _) = answer else { throw .unexpectedResponse("\(answer) to BlobCreate") }
            offer.blobId = blobId
            state.uploads.removeAll { $0.group == groupName && $0.path == absolute }
            state.uploads.append(QPQClientState.Upload(group: groupName, path: absolute, name: name, size: size, sha256: Data(sha),
                                                       blobId: Data(blobId), key: Data(offer.key), chunkSize: offer.chunkSize))
            try checkpoint(state)
        }
        var received: UInt64 = 0
        if resumed {
            let answer = try await transport.call(.blobStatus(blobId: offer.blobId))
            switch answer {
            case .blobState(_, let r, _): received = r
            case .error(.unknownBlob, _, _):
                // Expired meanwhile: start again with a new blob.
                state.uploads.removeAll { $0.blobId == Data(offer.blobId) }
                return try await sendFile(path: path, name: name, to: groupName, progress: progress, checkpoint: checkpoint)
            case .error(let code, let detail, let message): throw .server(code: code, detail: detail, message: message)
            default: throw .unexpectedResponse("\(answer) to BlobStatus")
            }
        }
        let sealedChunk = UInt64(offer.chunkSize) + 16
        guard received % sealedChunk == 0 || received == offer.blobSize else {
            throw .unexpectedResponse("the server holds \(received) bytes, not a whole number of chunks")
        }
        guard let file = FileHandle(forReadingAtPath: absolute) else { throw .file("cannot read \(absolute)") }
        defer { try? file.close() }
        var index = received / sealedChunk
        var offset = received
        await progress.check(min(offer.size, index * UInt64(offer.chunkSize)), offer.size)
        while offset < offer.blobSize {
            let plain: [UInt8]
            do {
                try file.seek(toOffset: index * UInt64(offer.chunkSize))
                plain = Array(try file.read(upToCount: QPQFileTransfer.plainLength(index, offer)) ?? Data())
            } catch {
                throw .file("cannot read \(absolute): \(error)")
            }
            guard plain.count == QPQFileTransfer.plainLength(index, offer) else { throw .file("\(absolute) changed while it was sent") }
            let sealed = try QPQFileTransfer.seal(plain, index: index, offer: offer)
            let answer = try await transport.expect(.blobUpload(blobId: offer.blobId, offset: offset, data: sealed))
            guard case .blobState(_, let now, _) = answer, now == offset + UInt64(sealed.count) else {
                throw .unexpectedResponse("\(answer) to BlobUpload")
            }
            offset = now
            index += 1
            await progress.check(min(offer.size, index * UInt64(offer.chunkSize)), offer.size)
        }
        // The file must not have changed under us (the hash in the offer is of what was read first).
        guard try QPQFileTransfer.hashFile(absolute).sha256 == sha else { throw .file("\(absolute) changed while it was sent") }
        let id = try await sendData(try encodedOffer(offer), to: groupName)
        state.uploads.removeAll { $0.blobId == Data(offer.blobId) }
        state.messages.append(QPQClientState.Message(messageId: id, group: groupName, sender: state.user,
                                                     text: "[file] \(name) (\(size) bytes)", serverTime: QPQLocalStore.wallClockMilliseconds(),
                                                     file: QPQClientState.FileInfo(name: name, size: size, savedAs: absolute), own: true))
        return (offer, resumed ? min(offer.size, received / sealedChunk * UInt64(offer.chunkSize)) : 0)
    }

    private func encodedOffer(_ offer: QPQFileOffer) throws(QPQClientError) -> [UInt8] {
        do { return try offer.encoded() } catch { throw .file("file offer: \(error)") }
    }

    /// The outcome of one pending download.
    package enum DownloadResult: Sendable, Equatable {
        case saved(messageId: UInt64, path: String, resumedAt: UInt64)
        case refused(messageId: UInt64, reason: String)
        /// Not downloaded, still pending (a later run may fetch it): over the size limit, or more
        /// than the free space in the download directory.
        case held(messageId: UInt64, name: String, size: UInt64, reason: HeldReason)
    }

    /// Why a download was held back.
    package enum HeldReason: Sendable, Equatable {
        /// Larger than the limit given (`qpq recv --max-download`).
        case overLimit(UInt64)
        /// Larger than the space free in the download directory.
        case noSpace(available: UInt64)
    }

    /// Bytes free for an unprivileged user on the file system holding `path` (nil if unknown).
    package static func freeSpace(_ path: String) -> UInt64? {
        var fs = statvfs()
        guard statvfs(path, &fs) == 0 else { return nil }
        return UInt64(fs.f_bavail).multipliedReportingOverflow(by: UInt64(fs.f_frsize)).partialValue
    }

    /// Downloads every pending file into `directory` (partial files `.qpq-<blob id>.part` there),
    /// checks each against its SHA-256 and saves it under its sanitized name, never over an existing file.
    /// A file larger than `maxSize` (nil: no limit) and not in `accept` (message ids), or larger than
    /// the free space, is not downloaded and stays pending (``DownloadResult/held(messageId:name:size:reason:)``).
    /// `only` (message ids; nil: all) limits the run to those pending files (`qpq chat`'s `/get N`).
    package func downloadFiles(into directory: String, maxSize: UInt64? = nil, accept: Set<UInt64> = [], only: Set<UInt64>? = nil,
                               progress: QPQFileTransfer.Progress = QPQFileTransfer.Progress())
        async throws(QPQClientError) -> [DownloadResult] {
        var results: [DownloadResult] = []
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .file("cannot create \(directory): \(error)")
        }
        for pending in state.downloads where only?.contains(pending.messageId) ?? true {
            if let offer = try? QPQFileOffer(decoding: Array(pending.offer)) {
                if let maxSize, offer.size > maxSize, !accept.contains(pending.messageId) {
                    results.append(.held(messageId: pending.messageId, name: offer.name, size: offer.size, reason: .overLimit(maxSize)))
                    continue
                }
                // A partial file's bytes are already on disk: only the rest must fit.
                let partial = directory + "/.qpq-" + offer.blobId.map { String(format: "%02x", $0) }.joined() + ".part"
                let have = (try? FileManager.default.attributesOfItem(atPath: partial)[.size] as? UInt64) ?? 0
                if let free = Self.freeSpace(directory), offer.size > have, offer.size - have > free {
                    results.append(.held(messageId: pending.messageId, name: offer.name, size: offer.size, reason: .noSpace(available: free)))
                    continue
                }
            }
            let result: DownloadResult
            do throws(QPQClientError) {
                result = try await download(pending, into: directory, progress: progress)
            } catch {
                if case .connection = error { throw error }
                if case .timeout = error { throw error }
                result = .refused(messageId: pending.messageId, reason: error.description)
            }
            state.downloads.removeAll { $0.messageId == pending.messageId }
            if case .saved(let id, let path, _) = result, let i = state.messages.lastIndex(where: { $0.messageId == id }) {
                state.messages[i].file?.savedAs = path
            }
            results.append(result)
        }
        return results
    }

    private func download(_ pending: QPQClientState.Download, into directory: String, progress: QPQFileTransfer.Progress)
        async throws(QPQClientError) -> DownloadResult {
        let offer: QPQFileOffer
        do { offer = try QPQFileOffer(decoding: Array(pending.offer)) } catch { throw .file("file offer: \(error)") }
        let partial = directory + "/.qpq-" + offer.blobId.map { String(format: "%02x", $0) }.joined() + ".part"
        let fd = Foundation.open(partial, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw .file("cannot open \(partial): \(String(cString: strerror(errno)))") }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var keep = false
        defer {
            try? handle.close()
            if !keep { unlink(partial) }
        }
        // Whole chunks already written are kept; a torn last one is cut off.
        let have: UInt64
        do { have = try handle.seekToEnd() } catch { throw .file("cannot read \(partial): \(error)") }
        var index = min(have / UInt64(offer.chunkSize), offer.chunkCount)
        if index == offer.chunkCount, have != offer.size { index -= 1 }
        let resumedAt = index * UInt64(offer.chunkSize)
        do {
            try handle.truncate(atOffset: resumedAt)
            try handle.seek(toOffset: resumedAt)
        } catch {
            throw .file("cannot write \(partial): \(error)")
        }
        let sealedChunk = UInt64(offer.chunkSize) + 16
        keep = true  // an interrupted download keeps its partial file
        await progress.check(resumedAt, offer.size)
        while index < offer.chunkCount {
            let length = QPQFileTransfer.plainLength(index, offer) + 16
            let answer = try await transport.call(.blobDownload(blobId: offer.blobId, offset: index * sealedChunk, length: UInt32(length)))
            let data: [UInt8]
            switch answer {
            case .blobData(let d): data = d
            case .error(.blobIncomplete, let detail, _):
                keep = false
                throw .file("the sender has not finished uploading \(PrintableText.escaped(offer.name)) (\(detail) of \(offer.blobSize) bytes)")
            case .error(let code, let detail, let message):
                keep = false
                throw .server(code: code, detail: detail, message: message)
            default: throw .unexpectedResponse("\(answer) to BlobDownload")
            }
            guard data.count == length else {
                keep = false
                throw .file("chunk \(index) of \(PrintableText.escaped(offer.name)) has \(data.count) bytes, not \(length): refused")
            }
            let plain: [UInt8]
            do { plain = try QPQFileTransfer.open(data, index: index, offer: offer) } catch { keep = false; throw error }
            do { try handle.write(contentsOf: plain) } catch { throw .file("cannot write \(partial): \(error)") }
            index += 1
            await progress.check(min(offer.size, index * UInt64(offer.chunkSize)), offer.size)
        }
        try? handle.synchronize()
        keep = false
        guard try QPQFileTransfer.hashFile(partial).sha256 == offer.sha256 else {
            throw .file("\(PrintableText.escaped(offer.name)): the SHA-256 of the received file does not match the sender's: refused")
        }
        // Never over an existing file: link() fails if the name is taken.
        let base = QPQFileTransfer.safeName(offer.name)
        let ext = (base as NSString).pathExtension, stem = (base as NSString).deletingPathExtension
        for n in 0..<1000 {
            let candidate = n == 0 ? base : (ext.isEmpty || stem.isEmpty ? "\(base) (\(n))" : "\(stem) (\(n)).\(ext)")
            let target = directory + "/" + candidate
            if link(partial, target) == 0 { return .saved(messageId: pending.messageId, path: target, resumedAt: resumedAt) }
            guard errno == EEXIST else { throw .file("cannot save \(target): \(String(cString: strerror(errno)))") }
        }
        throw .file("no free name for \(base) in \(directory)")
    }
}
