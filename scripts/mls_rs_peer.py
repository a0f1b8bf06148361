#!/usr/bin/env python3
"""mls-rs interop peer: a long-running process that drives real mls-rs clients.

Reads one JSON request per line on stdin and writes exactly one JSON response
per request line on stdout (blank lines are ignored). Byte strings are
lowercase hex. Wraps mls-rs 0.55 through PyPI `agentvault-mls-rs-uniffi==0.1.1`
(module `mls_rs_uniffi`), cipher suite 1 only. The protocol, the wire-format
notes and the binding's limits are in docs/mls-rs-peer.md.
"""

import json
import re
import sys

try:
    import mls_rs_uniffi as mls
except ImportError as error:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"mls_rs_peer: cannot import mls_rs_uniffi ({error}); "
        "pip install agentvault-mls-rs-uniffi==0.1.1\n"
    )
    sys.exit(2)

SUITE = mls.CipherSuite.CURVE25519_AES128
SUITE_ID = 1
WIRE_FORMATS = {
    1: "public_message",
    2: "private_message",
    3: "welcome",
    4: "group_info",
    5: "key_package",
}
HEX = re.compile(r"\A(?:[0-9a-fA-F]{2})*\Z")


class RequestError(Exception):
    """A request that fails; becomes an error response, never a crash."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


# MARK: - RFC 9420 decoding (only what the binding does not expose)


class Reader:
    """TLS presentation-language reader with MLS variable-length vectors."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, count):
        if count < 0 or self.pos + count > len(self.data):
            raise ValueError("truncated structure")
        chunk = self.data[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def uint(self, size):
        return int.from_bytes(self.take(size), "big")

    def varint(self):
        first = self.uint(1)
        prefix = first >> 6
        if prefix == 3:
            raise ValueError("invalid varint prefix")
        value = first & 0x3F
        for _ in range((1 << prefix) - 1):
            value = (value << 8) | self.uint(1)
        return value

    def vector(self):
        return self.take(self.varint())

    def optional(self):
        present = self.uint(1)
        if present > 1:
            raise ValueError("invalid optional flag")
        return present == 1

    def at_end(self):
        return self.pos == len(self.data)


def parse_snapshot_context(snapshot):
    """The GroupContext at the start of an mls-rs 0.55 group-state snapshot.

    mls-rs `Snapshot` (version 1) is `u16 version` then `RawGroupState`, whose
    first field is the GroupContext in its RFC 9420 encoding.
    """
    reader = Reader(snapshot)
    if reader.uint(2) != 1:
        raise ValueError("unknown mls-rs snapshot version")
    start = reader.pos
    if reader.uint(2) != 1:
        raise ValueError("snapshot protocol version is not mls10")
    suite = reader.uint(2)
    group_id = reader.vector()
    epoch = reader.uint(8)
    tree_hash = reader.vector()
    transcript_hash = reader.vector()
    reader.vector()  # extensions
    return {
        "cipher_suite": suite,
        "group_id": group_id.hex(),
        "epoch": epoch,
        "tree_hash": tree_hash.hex(),
        "confirmed_transcript_hash": transcript_hash.hex(),
        "group_context": snapshot[start:reader.pos].hex(),
    }


def parse_leaf_node(reader):
    """Fields of an RFC 9420 LeafNode that the roster reports."""
    encryption_key = reader.vector()
    signature_key = reader.vector()
    credential_type = reader.uint(2)
    identity = reader.vector()  # basic: identity; x509: certificate chain
    for _ in range(5):  # capabilities
        reader.vector()
    source = reader.uint(1)
    if source == 1:
        reader.take(16)  # lifetime
    elif source == 3:
        reader.vector()  # parent_hash
    elif source != 2:
        raise ValueError("invalid leaf_node_source")
    reader.vector()  # extensions
    reader.vector()  # signature
    return {
        "identity": identity.hex() if credential_type == 1 else None,
        "credential_type": credential_type,
        "signature_key": signature_key.hex(),
        "encryption_key": encryption_key.hex(),
    }


def parse_roster(tree_bytes):
    """Non-blank leaves of a serialized ratchet tree (optional<Node> list)."""
    outer = Reader(tree_bytes)
    reader = Reader(outer.vector())
    if not outer.at_end():
        raise ValueError("trailing bytes after ratchet tree")
    roster = []
    node_index = 0
    while not reader.at_end():
        if reader.optional():
            node_type = reader.uint(1)
            if node_type == 1:
                if node_index % 2 != 0:
                    raise ValueError("leaf at a parent position")
                entry = {"leaf_index": node_index // 2}
                entry.update(parse_leaf_node(reader))
                roster.append(entry)
            elif node_type == 2:
                reader.vector()  # encryption_key
                reader.vector()  # parent_hash
                reader.vector()  # unmerged_leaves
            else:
                raise ValueError("invalid node type")
        node_index += 1
    return roster


def wire_format_of(message_bytes):
    if len(message_bytes) < 4:
        return None
    return WIRE_FORMATS.get(int.from_bytes(message_bytes[2:4], "big"))


# MARK: - State


class MemoryStorage(mls.GroupStateStorage):
    """In-memory GroupStateStorage; lets the peer read mls-rs group snapshots."""

    def __init__(self):
        self.states = {}
        self.epochs = {}
        self.last_written = None

    def state(self, group_id):
        return self.states.get(bytes(group_id))

    def epoch(self, group_id, epoch_id):
        return self.epochs.get((bytes(group_id), epoch_id))

    def write(self, group_id, group_state, epoch_inserts, epoch_updates):
        group_id = bytes(group_id)
        self.states[group_id] = bytes(group_state)
        self.last_written = group_id
        for record in list(epoch_inserts) + list(epoch_updates):
            self.epochs[(group_id, record.id)] = bytes(record.data)

    def max_epoch_id(self, group_id):
        ids = [epoch for (gid, epoch) in self.epochs if gid == bytes(group_id)]
        return max(ids) if ids else None


class PeerGroup:
    def __init__(self, group, group_id):
        self.group = group
        self.group_id = group_id
        self.pending_commit = None
        self.removed = False


class PeerClient:
    def __init__(self, name, ratchet_tree_extension):
        self.identity = name.encode("utf-8")
        self.keypair = mls.generate_signature_keypair(SUITE)
        self.storage = MemoryStorage()
        config = mls.ClientConfig(
            group_state_storage=self.storage,
            use_ratchet_tree_extension=ratchet_tree_extension,
        )
        self.client = mls.Client(self.identity, self.keypair, config)
        self.groups = {}


# MARK: - Request fields


def field_str(req, key):
    value = req.get(key)
    if not isinstance(value, str) or not value:
        raise RequestError("bad_request", f"'{key}' must be a non-empty string")
    return value


def field_hex(req, key, optional=False):
    value = req.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not HEX.match(value):
        raise RequestError("bad_request", f"'{key}' must be a hex string")
    return bytes.fromhex(value)


def field_hex_list(req, key, optional=False):
    value = req.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, list):
        raise RequestError("bad_request", f"'{key}' must be a list of hex strings")
    return [field_hex({key: item}, key) for item in value]


def field_uint(req, key, bits=32, optional=False):
    value = req.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise RequestError("bad_request", f"'{key}' must be an unsigned {bits}-bit integer")
    return value


def field_bool(req, key, default):
    value = req.get(key, default)
    if not isinstance(value, bool):
        raise RequestError("bad_request", f"'{key}' must be a boolean")
    return value


def parse_message(data, what):
    """An MLSMessage from bytes; refuses bytes mls-rs would not re-encode identically."""
    message = mls.Message.from_bytes(data)
    if message.to_bytes() != data:
        raise RequestError(
            "not_canonical",
            f"{what}: mls-rs re-encodes these bytes differently "
            "(trailing bytes, non-minimal varint or unknown field value)",
        )
    return message


# MARK: - Peer


class Peer:
    def __init__(self):
        self.clients = {}
        self.probes = {}
        self.stopping = False
        self.ops = {
            "ping": self.op_ping,
            "shutdown": self.op_shutdown,
            "create_client": self.op_create_client,
            "key_package": self.op_key_package,
            "create_group": self.op_create_group,
            "join": self.op_join,
            "add": self.op_add,
            "remove": self.op_remove,
            "commit": self.op_commit,
            "propose_add": self.op_propose_add,
            "propose_remove": self.op_propose_remove,
            "apply_pending": self.op_apply_pending,
            "process": self.op_process,
            "encrypt": self.op_encrypt,
            "export_secret": self.op_export_secret,
            "state": self.op_state,
        }

    def handle(self, line):
        request_id = None
        try:
            try:
                req = json.loads(line)
            except (ValueError, UnicodeDecodeError) as error:
                raise RequestError("bad_request", f"not JSON: {error}")
            if not isinstance(req, dict):
                raise RequestError("bad_request", "request must be a JSON object")
            request_id = req.get("id")
            op = req.get("op")
            handler = self.ops.get(op) if isinstance(op, str) else None
            if handler is None:
                raise RequestError("unknown_op", f"unknown op {op!r}")
            response = {"id": request_id, "ok": True}
            response.update(handler(req))
            return response
        except RequestError as error:
            return self.error(request_id, error.kind, str(error))
        except mls.Error as error:
            response = self.error(request_id, "mls", str(error))
            response["mls_error"] = type(error).__name__
            return response
        except Exception as error:  # noqa: BLE001 - a bad request must never end the process
            return self.error(request_id, "internal", f"{type(error).__name__}: {error}")

    @staticmethod
    def error(request_id, kind, message):
        return {"id": request_id, "ok": False, "error": kind, "message": message}

    # MARK: Lookup and helpers

    def client(self, req):
        name = field_str(req, "client")
        peer_client = self.clients.get(name)
        if peer_client is None:
            raise RequestError("unknown_client", f"no client {name!r}")
        return peer_client

    def group(self, req):
        peer_client = self.client(req)
        group_id = field_hex(req, "group_id")
        peer_group = peer_client.groups.get(group_id)
        if peer_group is None:
            raise RequestError("unknown_group", f"client has no group {group_id.hex()}")
        if peer_group.removed:
            raise RequestError("group_removed", "this member was removed from the group")
        return peer_client, peer_group

    def group_context(self, peer_client, peer_group):
        peer_group.group.write_to_storage()
        snapshot = peer_client.storage.states.get(peer_group.group_id)
        if snapshot is None:
            raise RequestError("internal", "mls-rs wrote no state for this group")
        context = parse_snapshot_context(snapshot)
        if context["group_id"] != peer_group.group_id.hex():
            raise RequestError("internal", "snapshot group id does not match")
        return context

    def probe(self, identity, signature_key):
        """An mls-rs SigningIdentity (basic credential) to compare or to remove by.

        The binding cannot build a SigningIdentity from bytes, so the peer
        makes a throwaway Client whose basic credential and public key match;
        its secret key is never used.
        """
        key = (identity, signature_key)
        if key not in self.probes:
            keypair = mls.SignatureKeypair(
                cipher_suite=SUITE,
                public_key=mls.SignaturePublicKey(bytes=signature_key),
                secret_key=mls.SignatureSecretKey(bytes=bytes(64)),
            )
            probe_client = mls.Client(identity, keypair, mls.client_config_default())
            self.probes[key] = probe_client.signing_identity()
        return self.probes[key]

    @staticmethod
    def roster(peer_group):
        return parse_roster(peer_group.group.export_tree().bytes)

    def sender(self, peer_group, signing_identity):
        """The roster entry whose credential and key equal mls-rs's reported sender."""
        for entry in self.roster(peer_group):
            if entry["identity"] is None:
                continue
            probe = self.probe(bytes.fromhex(entry["identity"]), bytes.fromhex(entry["signature_key"]))
            if probe == signing_identity:
                return {"leaf_index": entry["leaf_index"], "identity": entry["identity"]}
        return None

    def sender_or_none(self, peer_group, signing_identity):
        try:
            return self.sender(peer_group, signing_identity)
        except (mls.Error, ValueError):
            return None

    def targets(self, req, peer_group):
        """SigningIdentities for `leaf_indices` and/or `identities` of a remove."""
        leaf_indices = req.get("leaf_indices")
        identities = field_hex_list(req, "identities", optional=True) or []
        if leaf_indices is None and not identities:
            raise RequestError("bad_request", "give 'leaf_indices' or 'identities'")
        if leaf_indices is not None and not isinstance(leaf_indices, list):
            raise RequestError("bad_request", "'leaf_indices' must be a list")
        roster = {entry["leaf_index"]: entry for entry in self.roster(peer_group)}
        for position in range(len(leaf_indices or [])):
            index = field_uint({"leaf_index": leaf_indices[position]}, "leaf_index")
            entry = roster.get(index)
            if entry is None or entry["identity"] is None:
                raise RequestError("bad_request", f"leaf {index} is blank or has no basic credential")
            identities.append(bytes.fromhex(entry["identity"]))
        by_identity = [entry for entry in roster.values() if entry["identity"] is not None]
        result = []
        for identity in identities:
            matches = [entry for entry in by_identity if entry["identity"] == identity.hex()]
            if len(matches) != 1:
                raise RequestError("bad_request", f"identity {identity.hex()} matches {len(matches)} members")
            result.append(self.probe(identity, bytes.fromhex(matches[0]["signature_key"])))
        return result

    def finish_commit(self, req, peer_client, peer_group, output):
        apply = field_bool(req, "apply", True)
        commit = output.commit_message.to_bytes()
        if apply:
            peer_group.group.process_incoming_message(output.commit_message)
            peer_group.pending_commit = None
        else:
            peer_group.pending_commit = commit
        response = {
            "commit": commit.hex(),
            "welcome": output.welcome_message.to_bytes().hex() if output.welcome_message else None,
            "ratchet_tree": output.ratchet_tree.bytes.hex() if output.ratchet_tree else None,
            "group_info": output.group_info.to_bytes().hex() if output.group_info else None,
            "pending": not apply,
        }
        response["epoch"] = self.group_context(peer_client, peer_group)["epoch"]
        return response

    # MARK: Operations

    def op_ping(self, req):
        return {"binding": "agentvault-mls-rs-uniffi 0.1.1", "cipher_suite": SUITE_ID}

    def op_shutdown(self, req):
        self.stopping = True
        return {}

    def op_create_client(self, req):
        name = field_str(req, "name")
        ratchet_tree_extension = field_bool(req, "ratchet_tree_extension", True)
        if name in self.clients:
            raise RequestError("exists", f"client {name!r} exists")
        peer_client = PeerClient(name, ratchet_tree_extension)
        self.clients[name] = peer_client
        return {
            "client": name,
            "identity": peer_client.identity.hex(),
            "signature_public_key": peer_client.keypair.public_key.bytes.hex(),
            "cipher_suite": SUITE_ID,
        }

    def op_key_package(self, req):
        message = self.client(req).client.generate_key_package_message()
        return {"key_package": message.to_bytes().hex()}

    def op_create_group(self, req):
        peer_client = self.client(req)
        group_id = field_hex(req, "group_id")
        if not group_id:
            raise RequestError("bad_request", "'group_id' must not be empty")
        if group_id in peer_client.groups and not peer_client.groups[group_id].removed:
            raise RequestError("exists", "client already has this group")
        peer_group = PeerGroup(peer_client.client.create_group(group_id), group_id)
        peer_client.groups[group_id] = peer_group
        return self.group_context(peer_client, peer_group)

    def op_join(self, req):
        peer_client = self.client(req)
        welcome = parse_message(field_hex(req, "welcome"), "welcome")
        tree_bytes = field_hex(req, "ratchet_tree", optional=True)
        tree = mls.RatchetTree(bytes=tree_bytes) if tree_bytes is not None else None
        group = peer_client.client.join_group(tree, welcome).group
        peer_client.storage.last_written = None
        group.write_to_storage()
        group_id = peer_client.storage.last_written
        if group_id is None:
            raise RequestError("internal", "mls-rs wrote no state for the joined group")
        existing = peer_client.groups.get(group_id)
        if existing is not None and not existing.removed:
            raise RequestError("exists", "client is already a member of this group")
        peer_group = PeerGroup(group, group_id)
        peer_client.groups[group_id] = peer_group
        return self.group_context(peer_client, peer_group)

    def op_add(self, req):
        peer_client, peer_group = self.group(req)
        packages = [parse_message(kp, "key package") for kp in field_hex_list(req, "key_packages")]
        if not packages:
            raise RequestError("bad_request", "'key_packages' must not be empty")
        output = peer_group.group.add_members(packages)
        return self.finish_commit(req, peer_client, peer_group, output)

    def op_remove(self, req):
        peer_client, peer_group = self.group(req)
        output = peer_group.group.remove_members(self.targets(req, peer_group))
        return self.finish_commit(req, peer_client, peer_group, output)

    def op_commit(self, req):
        peer_client, peer_group = self.group(req)
        output = peer_group.group.commit()
        return self.finish_commit(req, peer_client, peer_group, output)

    def op_propose_add(self, req):
        _, peer_group = self.group(req)
        packages = [parse_message(kp, "key package") for kp in field_hex_list(req, "key_packages")]
        proposals = peer_group.group.propose_add_members(packages)
        return {"proposals": [proposal.to_bytes().hex() for proposal in proposals]}

    def op_propose_remove(self, req):
        _, peer_group = self.group(req)
        proposals = peer_group.group.propose_remove_members(self.targets(req, peer_group))
        return {"proposals": [proposal.to_bytes().hex() for proposal in proposals]}

    def op_apply_pending(self, req):
        peer_client, peer_group = self.group(req)
        if peer_group.pending_commit is None:
            raise RequestError("no_pending_commit", "no commit of this peer is pending")
        commit = mls.Message.from_bytes(peer_group.pending_commit)
        peer_group.group.process_incoming_message(commit)
        peer_group.pending_commit = None
        return {"epoch": self.group_context(peer_client, peer_group)["epoch"]}

    def op_process(self, req):
        peer_client, peer_group = self.group(req)
        data = field_hex(req, "message")
        message = parse_message(data, "message")
        before = self.group_context(peer_client, peer_group)["epoch"]
        received = peer_group.group.process_incoming_message(message)
        response = {"wire_format": wire_format_of(data)}
        if isinstance(received, mls.ReceivedMessage.APPLICATION_MESSAGE):
            response["kind"] = "application"
            response["data"] = bytes(received.data).hex()
            response["sender"] = self.sender(peer_group, received.sender)
        elif isinstance(received, mls.ReceivedMessage.COMMIT):
            response["kind"] = "commit"
            effect = received.effect
            if isinstance(effect, mls.CommitEffect.REMOVED):
                response["effect"] = "removed"
                peer_group.removed = True
                peer_group.pending_commit = None
                response["sender"] = self.sender_or_none(peer_group, received.committer)
                response["epoch"] = before + 1
                return response
            if isinstance(effect, mls.CommitEffect.RE_INIT):
                response["effect"] = "reinit"
            else:
                response["effect"] = "new_epoch"
                response["applied_proposals"] = len(effect.applied_proposals)
                response["unused_proposals"] = len(effect.unused_proposals)
            response["sender"] = self.sender(peer_group, received.committer)
            peer_group.pending_commit = None  # applied, or discarded by mls-rs
        elif isinstance(received, mls.ReceivedMessage.RECEIVED_PROPOSAL):
            response["kind"] = "proposal"
            response["sender"] = self.sender(peer_group, received.sender)
        elif isinstance(received, mls.ReceivedMessage.KEY_PACKAGE):
            response["kind"] = "key_package"
        elif isinstance(received, mls.ReceivedMessage.WELCOME):
            response["kind"] = "welcome"
        else:
            response["kind"] = "group_info"
        response["epoch"] = self.group_context(peer_client, peer_group)["epoch"]
        return response

    def op_encrypt(self, req):
        _, peer_group = self.group(req)
        message = peer_group.group.encrypt_application_message(field_hex(req, "data"))
        return {"message": message.to_bytes().hex()}

    def op_export_secret(self, req):
        _, peer_group = self.group(req)
        label = field_hex(req, "label")
        context = field_hex(req, "context")
        length = field_uint(req, "length", bits=16)
        secret = peer_group.group.export_secret(label, context, length)
        return {"secret": bytes(secret).hex()}

    def op_state(self, req):
        peer_client, peer_group = self.group(req)
        response = self.group_context(peer_client, peer_group)
        tree = peer_group.group.export_tree().bytes
        roster = parse_roster(tree)
        own_key = peer_client.keypair.public_key.bytes.hex()
        own = [entry["leaf_index"] for entry in roster if entry["signature_key"] == own_key]
        response.update({
            "own_leaf_index": own[0] if len(own) == 1 else None,
            "roster": roster,
            "ratchet_tree": tree.hex(),
            "pending_commit": peer_group.pending_commit is not None,
        })
        return response


# MARK: - Main loop


def main():
    protocol_out = sys.stdout
    sys.stdout = sys.stderr  # nothing but responses may reach the protocol stream
    peer = Peer()
    for raw in sys.stdin.buffer:
        line = raw.strip()
        if not line:
            continue
        response = peer.handle(line)
        try:
            protocol_out.write(json.dumps(response, separators=(",", ":")) + "\n")
            protocol_out.flush()
        except BrokenPipeError:
            return 0
        if peer.stopping:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
