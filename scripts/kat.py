#!/usr/bin/env python3
"""Independent re-implementation of the QNSP v1 key schedule and cell encryption
(docs/protocol.md), used to produce the known-answer values in
Tests/QNSPTests/KeyScheduleTests.swift and CellTests.swift.
Needs the 'cryptography' package only."""
import hashlib, hmac, struct
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()

def expand(prk, info, length):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]

def expand_label(secret, label, context, length):
    full = b"qnsp1 " + label.encode()
    info = struct.pack(">H", length) + bytes([len(full)]) + full + bytes([len(context)]) + context
    return expand(secret, info, length)

H = lambda b: hashlib.sha256(b).digest()

es = extract(b"qnsp1 early", bytes([1] * 32))
ch = H(b"client hello")
out = {
    "ch key": expand_label(es, "ch key", ch, 32),
    "ch iv": expand_label(es, "ch iv", ch, 12),
}
hs = extract(expand_label(es, "derived", ch, 32), bytes([2] * 32))
sh = H(b"client hello|server hello")
out["sh key"] = expand_label(hs, "sh key", sh, 32)
out["c hs"] = expand_label(hs, "c hs traffic", sh, 32)
out["s hs"] = expand_label(hs, "s hs traffic", sh, 32)
ms = extract(expand_label(hs, "derived", sh, 32), bytes(32))
ca = H(b"...|client auth")
out["c ap"] = expand_label(ms, "c ap traffic", ca, 32)
out["s ap"] = expand_label(ms, "s ap traffic", ca, 32)
out["exporter"] = expand_label(ms, "exporter", ca, 32)
out["c ap key"] = expand_label(out["c ap"], "key", b"", 32)
out["c ap iv"] = expand_label(out["c ap"], "iv", b"", 12)
out["c ap next"] = expand_label(out["c ap"], "ku", b"", 32)
for k, v in out.items():
    print(f'"{k}": "{v.hex()}",')

# One data cell: secret 0x42*32, sequence 0, payload "qnsp", cell size 768.
secret = bytes([0x42] * 32)
key, iv = expand_label(secret, "key", b"", 32), expand_label(secret, "iv", b"", 12)
nonce = iv[:4] + bytes(a ^ b for a, b in zip(iv[4:], struct.pack(">Q", 0)))
inner = bytes([1]) + struct.pack(">H", 4) + b"qnsp"
inner += bytes(768 - 16 - len(inner))
cell = AESGCM(key).encrypt(nonce, inner, None)
print("cell prefix", cell[:8].hex(), "tag", cell[-16:].hex())
