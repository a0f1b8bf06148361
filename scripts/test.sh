#!/usr/bin/env bash
# The test command (README, .ci/run): build, then every test.
# The QUIC carrier's in-process suites (QNSPQUICTests: 16 MiB transfers driven from the test process)
# run in a pass of their own: in one process with the ~400 other tests their awaits waited minutes
# for the 2-core machine's shared concurrency pool and passed their time limits, while the same
# transfers finish in 20-30 s alone. Everything else, QUIC tool tests included, runs in the first pass.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build --skip QNSPQUICTests "$@"
swift test --skip-build --filter QNSPQUICTests "$@"
