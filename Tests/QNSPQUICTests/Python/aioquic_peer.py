#!/usr/bin/env python3
"""aioquic (an independent QUIC stack) as a peer of QNSPQUIC's endpoint, for QNSPQUICTests.

server CERT KEY ALPN   listen on 127.0.0.1 (a free port, printed as "PORT n"); every bidirectional
                       stream is echoed back; at the stream's end "RECV <sha256> <bytes>" is printed.
client PORT ALPN SIZE  connect to 127.0.0.1:PORT offering ALPN, open one stream, send SIZE random
                       bytes and FIN, read the echo; prints one JSON line: sent/received SHA-256 and
                       sizes, or {"error_code": n} when the connection was refused.
"""
import asyncio
import hashlib
import json
import os
import ssl
import sys

from aioquic.asyncio import connect, serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated

WINDOW = 16 << 20


class Recorder(QuicConnectionProtocol):
    terminated = None

    def quic_event_received(self, event):
        if isinstance(event, ConnectionTerminated):
            Recorder.terminated = event
        super().quic_event_received(event)


async def run_server(cert, key, alpn):
    config = QuicConfiguration(is_client=False, alpn_protocols=[alpn], max_data=WINDOW, max_stream_data=WINDOW)
    config.load_cert_chain(cert, key)

    def handler(reader, writer):
        async def echo():
            h = hashlib.sha256()
            n = 0
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
                writer.write(chunk)
            writer.write_eof()
            print(f"RECV {h.hexdigest()} {n}", flush=True)

        asyncio.ensure_future(echo())

    server = await serve("127.0.0.1", 0, configuration=config, stream_handler=handler)
    port = server._transport.get_extra_info("sockname")[1]
    print(f"PORT {port}", flush=True)
    await asyncio.Future()


async def run_client(port, alpn, size):
    config = QuicConfiguration(is_client=True, alpn_protocols=[alpn], max_data=WINDOW, max_stream_data=WINDOW)
    config.verify_mode = ssl.CERT_NONE  # QNSP inside the stream authenticates the server, not QUIC's TLS
    try:
        async with connect("127.0.0.1", port, configuration=config, create_protocol=Recorder, wait_connected=True) as proto:
            reader, writer = await proto.create_stream()
            data = os.urandom(size)
            sent = hashlib.sha256(data).hexdigest()

            async def send():
                step = 256 * 1024
                for i in range(0, size, step):
                    writer.write(data[i:i + step])
                    await writer.drain()
                writer.write_eof()

            sender = asyncio.ensure_future(send())
            h = hashlib.sha256()
            n = 0
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
            await sender
            print(json.dumps({"sent": sent, "sent_bytes": size, "received": h.hexdigest(), "received_bytes": n}), flush=True)
    except ConnectionError:
        t = Recorder.terminated
        print(json.dumps({"error_code": t.error_code if t else -1, "reason": t.reason_phrase if t else ""}), flush=True)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "server":
        asyncio.run(run_server(sys.argv[2], sys.argv[3], sys.argv[4]))
    elif len(sys.argv) == 5 and sys.argv[1] == "client":
        asyncio.run(asyncio.wait_for(run_client(int(sys.argv[2]), sys.argv[3], int(sys.argv[4])), 120))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
