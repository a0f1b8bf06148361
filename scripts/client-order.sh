#!/bin/sh
# Writes scripts/client.order, the link order of the client executables (qssh, qscp, qsftp; see the
# "Client executables: link layout" block at the end of Package.swift): every function of the
# binary that a qscp upload and download, a qsftp batch and a qssh exec run (over TCP and QUIC),
# as callgrind sees them. lld places the code sections holding these functions together, so a
# copy touches (and the kernel's fault-around maps) about 1.5 MB of code fewer than with the
# default layout, where the hot functions are spread over the whole 7.5 MB .text.
#
# Needs a release build (swift build -c release) and valgrind. Run it again after large changes
# to the client path; names that no longer exist are ignored by the linker, new ones simply land
# outside the hot block (more pages touched, nothing else).
#
#   scripts/client-order.sh [BUILD_DIR]    (default .build/release)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/.build/release}
command -v valgrind >/dev/null || { echo "client-order.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM

"$bin/qssh-keygen" -q -t host -f "$work/host" -N ''
"$bin/qssh-keygen" -q -t user -f "$work/id" -N ''
cp "$work/id.pub" "$work/auth"
"$bin/qsshd" -p 0 -l 127.0.0.1 -h "$work/host" --authorized-keys "$work/auth" >"$work/qsshd.out" 2>&1 </dev/null &
server=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/qsshd.out")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "client-order.sh: qsshd did not start: $(cat "$work/qsshd.out")" >&2; exit 1; }

head -c 4194304 /dev/urandom >"$work/payload"
printf 'put %s %s\nget %s %s\n' "$work/payload" "$work/sftp-up" "$work/sftp-up" "$work/sftp-down" >"$work/batch"
common="-i $work/id --known-hosts $work/kh -o StrictHostKeyChecking=accept-new"
n=0
# valgrind cannot read the DWARF of Swift 6 binaries: it traces copies without debug sections.
run() {
    tool=$1; shift
    n=$((n + 1))
    [ -x "$work/$tool" ] || objcopy --strip-debug "$bin/$tool" "$work/$tool"
    valgrind -q --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.$n" "$work/$tool" "$@" >/dev/null
    nm --defined-only "$bin/$tool" | awk '$2 ~ /^[tTwW]$/ { print $3 }' >>"$work/defined"
}
for transport in tcp quic; do
    run qscp -q -P "$port" $common -o Transport=$transport "$work/payload" "127.0.0.1:$work/up-$transport"
    run qscp -q -P "$port" $common -o Transport=$transport "127.0.0.1:$work/up-$transport" "$work/down-$transport"
    run qsftp -P "$port" $common -o Transport=$transport -b "$work/batch" 127.0.0.1
    run qssh -p "$port" $common -o Transport=$transport 127.0.0.1 true
done
cmp -s "$work/payload" "$work/down-quic" || { echo "client-order.sh: the traced copies differ" >&2; exit 1; }

# callgrind names a function on its first fn=/cfn= line: "fn=(id) name".
sed -n 's/^c\{0,1\}fn=([0-9]*) \(.*\)$/\1/p' "$work"/cg.* | sort -u >"$work/run"
sort -u "$work/defined" >"$work/defined.sorted"
# valgrind's virtual CPU has no AVX-512, VAES, VPCLMULQDQ or ADX: add BoringSSL's variants for
# them (and its other CPU-specific code), which a real copy runs instead of the ones traced.
grep -E 'avx512|vaes|vpclmul|_adx|_hw$|avx2|shaext|_avx' "$work/defined.sorted" >>"$work/run" || true
sort -u -o "$work/run" "$work/run"
comm -12 "$work/run" "$work/defined.sorted" >"$root/scripts/client.order"
echo "client-order.sh: $(wc -l <"$root/scripts/client.order") functions in scripts/client.order"
# SwiftPM does not track the order file as a link input: relink the clients by removing them.
echo "client-order.sh: relink with: rm -f $bin/qssh $bin/qscp $bin/qsftp && swift build -c release"
