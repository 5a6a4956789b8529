#!/usr/bin/env bash
# tests/bench/run.sh — looplab against python3 and node on programs/bench/.
#
# A thin front for tests/bench/bench.py, which does the work: for each
# benchmark it runs looplab and the runtime it is compared with ALTERNATELY
# (A B A B …, RUNS pairs; 21 for the quick ones, 3-7 for the slow), and
# reports the median of the per-pair wall-time ratios, the median wall time
# of each side, peak RSS (wait4 rusage) and whether every run printed the
# same stdout; then a table of the speed issue's targets, each marked
# met / not met.
#   seq benchmarks:   looplab run NAME.lab                 vs python3 -S NAME.py, node NAME.js
#   async benchmarks: looplab run NAME.lab --runtime asyncio vs python3 -S NAME.py
#                     looplab run NAME.lab --runtime js      vs node NAME.js
# python3 is resolved to its real executable (sys.executable, realpath: no
# pyenv shim start-up) and run with -S.
#
# Usage: tests/bench/run.sh [--only NAME[,NAME...]]... [--runs N] [--timeout SECS]
#                           [--no-node] [--json FILE] [--list] [--help]
#   --only NAME   only these benchmarks (repeatable, or comma-separated)
#   --runs N      pairs per comparison (default: per benchmark; --list shows them)
#   --timeout S   limit per run in seconds (default 300)
#   --no-node     skip the node comparisons
#   --json FILE   also write the figures as JSON
# Environment: LOOPLAB=path (default target/release/looplab), PYTHON=cmd
# (default python3), NODE=cmd (default node).
# The report (markdown) goes to stdout; progress goes to stderr.

set -eu
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case "${1:-}" in
    -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
esac
PY=$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')
exec "$(realpath "$PY")" -S "$HERE/bench.py" "$@"
