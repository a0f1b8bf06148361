#!/usr/bin/env python3
"""opaque-ke peer for QOPAQUE's interoperability tests (Tests/QOPAQUETests/InteropTests.swift).

Wraps opaque-ke 4.0.1 through its Python bindings, PyPI `opaque-ke-py` 0.1.0 (pip install
opaque-ke-py==0.1.0). Its suite is fixed: OPRF ristretto255-SHA512, TripleDh<Ristretto255, Sha512>,
KSF `argon2::Argon2::default()` (Argon2id v0x13, m=19456 KiB, t=2, p=1, 16 zero-byte salt), empty context,
identities = the public keys. Nothing of it is configurable from Python.

Protocol: one JSON object per line on stdin, one per line on stdout. Bytes are hex strings. Every request
has "op"; every reply has "ok" (true/false) and, on false, "error". Client and server states are the
library's own serializations, handed back to the caller, so the helper keeps only the server setup.

  {"op": "info"}                                          -> {"ok", "library", "version"}
  {"op": "server_setup"}                                  -> {"ok"}   (new random ServerSetup)
  {"op": "server_registration_start", "request", "username"}   -> {"ok", "response"}
  {"op": "server_registration_finish", "upload"}          -> {"ok", "password_file"}
  {"op": "server_login_start", "password_file", "ke1", "username"} -> {"ok", "ke2", "state"}
  {"op": "server_login_finish", "state", "ke3"}           -> {"ok", "session_key"}
  {"op": "client_registration_start", "password"}         -> {"ok", "request", "state"}
  {"op": "client_registration_finish", "password", "state", "response"} -> {"ok", "upload", "export_key"}
  {"op": "client_login_start", "password"}                -> {"ok", "ke1", "state"}
  {"op": "client_login_finish", "password", "state", "ke2"} -> {"ok", "ke3", "session_key", "export_key"}
  {"op": "quit"}                                          -> {"ok"} and exit
"""
import json
import sys

try:
    import opaque_ke_py as ok
except ImportError as error:  # reported as the first line so that the test can say what is missing
    print(json.dumps({"ok": False, "error": f"opaque_ke_py not importable ({error}); pip install opaque-ke-py==0.1.0"}),
          flush=True)
    sys.exit(2)

try:
    from importlib.metadata import version as _version
    VERSION = _version("opaque-ke-py")
except Exception:  # noqa: BLE001
    VERSION = "unknown"

setup = None


def b(request, key):
    return bytes.fromhex(request[key])


def handle(request):
    global setup
    op = request.get("op")
    if op == "info":
        return {"library": "opaque-ke-py (opaque-ke 4.0.1)", "version": VERSION}
    if op == "server_setup":
        setup = ok.server_setup()
        return {}
    if op == "server_registration_start":
        r = ok.server_registration_start(setup, b(request, "request"), b(request, "username"))
        return {"response": r.get_message().hex()}
    if op == "server_registration_finish":
        r = ok.server_registration_finish(b(request, "upload"))
        return {"password_file": r.get_password_file().hex()}
    if op == "server_login_start":
        r = ok.server_login_start(setup, b(request, "password_file"), b(request, "ke1"), b(request, "username"))
        return {"ke2": r.get_message().hex(), "state": r.get_state().hex()}
    if op == "server_login_finish":
        r = ok.server_login_finish(b(request, "state"), b(request, "ke3"))
        return {"session_key": r.get_session_key().hex()}
    if op == "client_registration_start":
        r = ok.client_registration_start(b(request, "password"))
        return {"request": r.get_message().hex(), "state": r.get_state().hex()}
    if op == "client_registration_finish":
        r = ok.client_registration_finish(b(request, "password"), b(request, "state"), b(request, "response"))
        return {"upload": r.get_message().hex(), "export_key": r.get_export_key().hex()}
    if op == "client_login_start":
        r = ok.client_login_start(b(request, "password"))
        return {"ke1": r.get_message().hex(), "state": r.get_state().hex()}
    if op == "client_login_finish":
        r = ok.client_login_finish(b(request, "password"), b(request, "state"), b(request, "ke2"))
        return {"ke3": r.get_message().hex(), "session_key": r.get_session_key().hex(),
                "export_key": r.get_export_key().hex()}
    raise ValueError(f"unknown op {op!r}")


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
            if request.get("op") == "quit":
                print(json.dumps({"ok": True}), flush=True)
                return
            reply = handle(request)
            reply["ok"] = True
        except Exception as error:  # noqa: BLE001 - every failure is a reply, not a crash
            reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
