#!/usr/bin/env python3
"""Drives qsshd through `qssh tunnel` with an independent SSH library (asyncssh or paramiko)
and prints one JSON object with the result of each check. Used by HardeningTests; every
check can fail (the value is what was observed, not a constant).

usage: ssh_library_checks.py asyncssh|paramiko --proxy CMD --user NAME --echo-port PORT --dir DIR
"""
import argparse
import json
import os
import sys


def run_asyncssh(args):
    import asyncio
    import asyncssh

    async def main():
        out = {}
        async with asyncssh.connect("127.0.0.1", username=args.user, proxy_command=args.proxy,
                                    known_hosts=None, client_keys=None, agent_path=None,
                                    preferred_auth="none") as conn:
            out["banner"] = conn.get_extra_info("server_version")
            result = await conn.run("echo hi", check=False)
            out["exec"] = result.stdout
            # A long-lived session on the same connection.
            proc = await conn.create_process("cat")
            proc.stdin.write("before\n")
            out["session_before"] = await asyncio.wait_for(proc.stdout.readline(), 10)
            # direct-tcpip with asyncssh's default (empty) originator.
            try:
                reader, writer = await asyncio.wait_for(conn.open_connection("127.0.0.1", args.echo_port), 10)
                writer.write(b"ping")
                out["direct_tcpip"] = (await asyncio.wait_for(reader.readexactly(4), 10)).decode()
                writer.close()
            except Exception as e:  # the check reports what happened
                out["direct_tcpip"] = "error: %r" % (e,)
            try:
                proc.stdin.write("after\n")
                out["session_after"] = await asyncio.wait_for(proc.stdout.readline(), 10)
            except Exception as e:
                out["session_after"] = "error: %r" % (e,)
            proc.stdin.write_eof()
            # SFTP symlink(target, link).
            async with conn.start_sftp_client() as sftp:
                link = os.path.join(args.dir, "asyncssh-link")
                await sftp.symlink("asyncssh-target", link)
                out["symlink_remote"] = await sftp.readlink(link)
                out["symlink_local"] = os.readlink(link)
        return out

    return asyncio.run(main())


def run_paramiko(args):
    import socket
    import paramiko

    out = {}
    sock = paramiko.ProxyCommand(args.proxy)
    transport = paramiko.Transport(sock)
    transport.start_client(timeout=20)
    out["banner"] = transport.remote_version
    transport.auth_none(args.user)
    chan = transport.open_session()
    chan.exec_command("echo hi")
    out["exec"] = chan.makefile("rb").read().decode()
    session = transport.open_session()
    session.exec_command("cat")
    session.sendall(b"before\n")
    session.settimeout(10)
    out["session_before"] = session.recv(64).decode()
    try:
        tcp = transport.open_channel("direct-tcpip", ("127.0.0.1", args.echo_port), ("", 0), timeout=10)
        tcp.sendall(b"ping")
        tcp.settimeout(10)
        got = b""
        while len(got) < 4:
            chunk = tcp.recv(4 - len(got))
            if not chunk:
                break
            got += chunk
        out["direct_tcpip"] = got.decode()
        tcp.close()
    except Exception as e:
        out["direct_tcpip"] = "error: %r" % (e,)
    try:
        session.sendall(b"after\n")
        out["session_after"] = session.recv(64).decode()
    except Exception as e:
        out["session_after"] = "error: %r" % (e,)
    session.shutdown_write()
    sftp = paramiko.SFTPClient.from_transport(transport)
    link = os.path.join(args.dir, "paramiko-link")
    sftp.symlink("paramiko-target", link)  # symlink(source, dest): dest points to source
    out["symlink_remote"] = sftp.readlink(link)
    out["symlink_local"] = os.readlink(link)
    sftp.close()
    transport.close()
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("library", choices=["asyncssh", "paramiko"])
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--echo-port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    try:
        out = run_asyncssh(args) if args.library == "asyncssh" else run_paramiko(args)
    except Exception as e:
        out = {"fatal": "%s: %r" % (type(e).__name__, e)}
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
