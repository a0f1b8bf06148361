#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer + AddressSanitizer) of every parser a peer or file reaches.
#
#   scripts/fuzz.sh [RUNS] [TARGET...]     RUNS executions per target (default 1000000), all targets by default
#
# Seeds come from Tests/FuzzCorpus/TARGET/ (kept in the repo: findings go there and are replayed
# by the test suite, FuzzRegressionTests). The growing corpus and any crash files are written to
# .build-fuzz/corpus/TARGET and .build-fuzz/crashes/TARGET. Exits non-zero when a target crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-1000000}"
shift || true
scratch=.build-fuzz
# Leak checking is off: swift-crypto and Foundation keep some allocations for the process lifetime.
export ASAN_OPTIONS=detect_leaks=0
swift build --scratch-path "$scratch" --product qssh-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING >&2
bin="$(swift build --scratch-path "$scratch" --show-bin-path)/qssh-fuzz"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then mapfile -t targets < <("$bin" --list); fi
# Valid inputs (real handshakes, packets, files) as starting points, besides the kept corpus.
"$bin" --write-seeds "$scratch/seeds"
status=0
for t in "${targets[@]}"; do
    mkdir -p "$scratch/corpus/$t" "$scratch/crashes/$t" "$scratch/seeds/$t" "Tests/FuzzCorpus/$t"
    start=$(date +%s)
    if QSSH_FUZZ_TARGET="$t" "$bin" -runs="$runs" -max_len=16384 -timeout=10 -rss_limit_mb=4096 -detect_leaks=0 \
        -artifact_prefix="$scratch/crashes/$t/" -print_final_stats=1 \
        "$scratch/corpus/$t" "Tests/FuzzCorpus/$t" "$scratch/seeds/$t" > "$scratch/$t.log" 2>&1; then
        execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$scratch/$t.log" | grep -Eo '[0-9]+$' || echo "?")
        cov=$(grep -Eo 'cov: [0-9]+' "$scratch/$t.log" | tail -1 | grep -Eo '[0-9]+' || echo "?")
        echo "$t: ok, $execs executions in $(( $(date +%s) - start )) s, coverage $cov edges, corpus $(ls "$scratch/corpus/$t" | wc -l) inputs"
    else
        echo "$t: FAILED (see $scratch/$t.log; the input is in $scratch/crashes/$t/)"
        tail -30 "$scratch/$t.log"
        status=1
    fi
done
exit $status
