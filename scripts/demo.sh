#!/usr/bin/env bash
# Builds qssh, makes throwaway keys, starts a QNSP echo server on a local port and
# connects to it twice: first contact (trust on first use), then pinned with 16 MiB
# whose SHA-256 must come back unchanged. Everything stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product qnsp >&2
swift build -c release --product qssh-keygen >&2
swift build -c release --product qsshd >&2
swift build -c release --product qssh >&2
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d)
server=""
sshd_pid=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

"$bin/qssh-keygen" -t host -f "$dir/host_key" -N '' -C demo-host
"$bin/qssh-keygen" -t user -f "$dir/id" -N '' -C demo-user
cp "$dir/id.pub" "$dir/authorized_keys"

"$bin/qnsp" serve -p 0 -h "$dir/host_key" --authorized-keys "$dir/authorized_keys" --echo -v 2>"$dir/server.log" &
server=$!
for _ in $(seq 200); do grep -q "listening on" "$dir/server.log" && break; sleep 0.05; done
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/server.log")
[ -n "$port" ] || { cat "$dir/server.log" >&2; echo "demo: server did not start" >&2; exit 1; }
echo "== qnsp serve is listening on 127.0.0.1:$port"

echo "== first contact (host key is recorded in $dir/known_hosts):"
echo "hello through a post-quantum tunnel" |
    "$bin/qnsp" connect -p "$port" -i "$dir/id" --known-hosts "$dir/known_hosts" --accept-new -v 127.0.0.1

echo "== pinned host, 16 MiB round trip:"
head -c 16777216 /dev/urandom > "$dir/blob"
sent=$(sha256sum < "$dir/blob" | cut -d' ' -f1)
got=$("$bin/qnsp" connect -p "$port" -i "$dir/id" --known-hosts "$dir/known_hosts" --batch 127.0.0.1 < "$dir/blob" | sha256sum | cut -d' ' -f1)
echo "sent     $sent"
echo "received $got"
[ "$sent" = "$got" ] || { echo "demo: MISMATCH" >&2; exit 1; }
echo "== server log:"
cat "$dir/server.log"

echo "== qsshd (SSH-2 sessions inside QNSP) and a remote command with its exit status:"
"$bin/qsshd" -p 0 -l 127.0.0.1 -h "$dir/host_key" --authorized-keys "$dir/authorized_keys" 2>"$dir/qsshd.log" &
sshd_pid=$!
for _ in $(seq 200); do grep -q "listening on" "$dir/qsshd.log" && break; sleep 0.05; done
sport=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/qsshd.log")
[ -n "$sport" ] || { cat "$dir/qsshd.log" >&2; echo "demo: qsshd did not start" >&2; exit 1; }
set +e
"$bin/qssh" -p "$sport" -i "$dir/id" --known-hosts "$dir/known_hosts" -o StrictHostKeyChecking=accept-new 127.0.0.1 \
    'echo "hello from $(uname -n) as $(id -un)"; exit 3'
status=$?
set -e
echo "remote exit status: $status"
[ "$status" = 3 ] || { echo "demo: expected exit status 3" >&2; exit 1; }
echo "demo: OK"
