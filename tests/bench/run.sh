#!/usr/bin/env bash
# tests/bench/run.sh — looplab against python3 and node on programs/bench/.
#
# For each benchmark NAME (programs/bench/NAME.lab with twins NAME.py and
# NAME.js) it runs:
#   - looplab: `looplab run NAME.lab` for the sequential benchmarks, and
#     `looplab run NAME.lab --runtime js` and `--runtime asyncio` for the async
#     ones;
#   - `python3 NAME.py` and `node NAME.js`;
# each RUNS times, keeps the best (minimum) wall time and the peak RSS, checks
# that every command printed the same stdout, and prints a markdown table that
# can be pasted into tests/bench/RESULTS.md. Progress goes to stderr; the
# report goes to stdout.
#
# Usage: tests/bench/run.sh [--only NAME[,NAME...]]... [--runs N] [--list] [--help]
# Environment:
#   LOOPLAB=path   looplab binary (default: target/release/looplab in the repo)
#   RUNS=N         runs per command, best is kept (default 3)
#   TIMEOUT=secs   limit per run (default 300); a run over it shows `timeout`
#   PYTHON=cmd     (default python3; run as its sys.executable, so a pyenv
#                  shim's start-up is not counted)     NODE=cmd   (default node)
#
# A command that is missing or exits non-zero shows `fail` in its cells (and
# its stderr under "Notes"); the harness carries on with the next one.
# Wall time is measured around the whole command with `date +%s%N` (so it
# includes process start-up, which is part of what is measured); peak RSS comes
# from GNU `/usr/bin/time -f %M` or, if that is missing, from python's
# resource.getrusage(RUSAGE_CHILDREN).

set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR="$ROOT/programs/bench"
LOOPLAB=${LOOPLAB:-$ROOT/target/release/looplab}
RUNS=${RUNS:-3}
TIMEOUT=${TIMEOUT:-300}
PYTHON=${PYTHON:-python3}
NODE=${NODE:-node}

# name:kind — kind is `seq` (one looplab run, default runtime) or `async`
# (looplab under --runtime js and --runtime asyncio).
ALL_BENCHES=(
    fib:seq
    loop_sum:seq
    string_build:seq
    list_map:seq
    await_chain:async
    promise_chain:async
    spawn_gather:async
    timers:async
    sleeping_tasks:async
)

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

ONLY=()
while [ $# -gt 0 ]; do
    case "$1" in
        --only) [ $# -ge 2 ] || { echo "run.sh: --only needs a NAME" >&2; exit 2; }
                IFS=',' read -r -a names <<< "$2"; ONLY+=("${names[@]}"); shift 2 ;;
        --only=*) IFS=',' read -r -a names <<< "${1#--only=}"; ONLY+=("${names[@]}"); shift ;;
        --runs) [ $# -ge 2 ] || { echo "run.sh: --runs needs N" >&2; exit 2; }
                RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#--runs=}; shift ;;
        --list) for b in "${ALL_BENCHES[@]}"; do echo "${b%%:*} (${b##*:})"; done; exit 0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "run.sh: RUNS must be a positive integer, got '$RUNS'" >&2; exit 2 ;; esac

BENCHES=()
if [ ${#ONLY[@]} -eq 0 ]; then
    BENCHES=("${ALL_BENCHES[@]}")
else
    for want in "${ONLY[@]}"; do
        found=
        for b in "${ALL_BENCHES[@]}"; do
            if [ "${b%%:*}" = "$want" ]; then BENCHES+=("$b"); found=1; fi
        done
        if [ -z "$found" ]; then
            echo "run.sh: unknown benchmark '$want'; known: $(for b in "${ALL_BENCHES[@]}"; do printf '%s ' "${b%%:*}"; done)" >&2
            exit 2
        fi
    done
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/looplab-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- tools

have() { command -v "$1" >/dev/null 2>&1; }

# Run the interpreter itself, not a launcher: a pyenv shim adds ~0.1 s of
# start-up to every run, which would flatter looplab on the short benchmarks.
PY_BIN=$( (have "$PYTHON" && "$PYTHON" -c 'import sys; print(sys.executable)' 2>/dev/null) || true)
[ -n "$PY_BIN" ] && [ -x "$PY_BIN" ] || PY_BIN=$PYTHON

# WRAP FILE CMD... runs CMD and writes its peak RSS in KiB as the last line of
# FILE; its exit status is CMD's. The python fallback also writes `ns N`, the
# wall time of CMD alone, so its own start-up is not counted.
if [ -x /usr/bin/time ] && /usr/bin/time -f %M -o "$TMP/probe" true 2>/dev/null \
        && [ -n "$(tail -n1 "$TMP/probe" | tr -dc 0-9)" ]; then
    RSS_TOOL="GNU /usr/bin/time -f %M"
    WRAP=(/usr/bin/time -f %M -o)
else
    RSS_TOOL="python3 resource.getrusage(RUSAGE_CHILDREN).ru_maxrss (/usr/bin/time not usable)"
    cat >"$TMP/rss.py" <<'PY'
import resource, subprocess, sys, time
start = time.perf_counter_ns()
try:
    rc = subprocess.call(sys.argv[2:])
except OSError as e:
    print(e, file=sys.stderr)
    rc = 127
ns = time.perf_counter_ns() - start
with open(sys.argv[1], "w") as f:
    f.write("ns %d\n" % ns)
    f.write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc if rc >= 0 else 128 - rc)
PY
    WRAP=("$PY_BIN" "$TMP/rss.py")
fi

if [ -f "$LOOPLAB" ] && [ -x "$LOOPLAB" ]; then
    LOOPLAB_OK=1
    LOOPLAB_VERSION=$(timeout 10 "$LOOPLAB" --version 2>/dev/null | head -n1)
    [ -n "$LOOPLAB_VERSION" ] || LOOPLAB_VERSION="(no --version output)"
    LOOPLAB_VERSION="$LOOPLAB_VERSION, binary modified $(date -r "$LOOPLAB" '+%Y-%m-%d %H:%M:%S')"
else
    LOOPLAB_OK=
    LOOPLAB_VERSION="MISSING: not an executable file (cargo build --release, or set LOOPLAB=)"
fi
PY_VERSION=$( (have "$PY_BIN" && "$PY_BIN" --version 2>&1) || echo "MISSING")
NODE_VERSION=$( (have "$NODE" && "$NODE" --version 2>&1) || echo "MISSING")
RUSTC_VERSION=$( (have rustc && rustc --version 2>/dev/null) || echo "not found")
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit yet")
if [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -n1)" ]; then
    GIT_REV="$GIT_REV, work tree has uncommitted changes"
fi

CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
[ -n "$CPU_MODEL" ] || CPU_MODEL="unknown ($(uname -m))"
MEM_TOTAL=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)

# ---------------------------------------------------------------- measuring

# measure KEY CMD... — runs CMD RUNS times, each under TIMEOUT, stopping at the
# first failure. Sets ST_KEY (ok | fail | timeout), T_KEY (best wall time, ns),
# R_KEY (peak RSS over the runs, KiB); leaves run 1's stdout and stderr in
# $TMP/KEY.out and $TMP/KEY.err.
measure() {
    local key=$1; shift
    local run best="" peak=0 start end ns rc rss status=ok
    printf '%s\n' "$*" >"$TMP/$key.cmd"
    for ((run = 1; run <= RUNS; run++)); do
        printf '  %-26s run %d/%d ... ' "$key" "$run" "$RUNS" >&2
        : >"$TMP/rss"
        start=$(date +%s%N)
        timeout -k 5 "$TIMEOUT" "${WRAP[@]}" "$TMP/rss" "$@" \
            >"$TMP/$key.run.out" 2>"$TMP/$key.run.err" </dev/null
        rc=$?
        end=$(date +%s%N)
        ns=$((end - start))
        if grep -q '^ns ' "$TMP/rss" 2>/dev/null; then ns=$(awk '/^ns / { print $2 }' "$TMP/rss"); fi
        if [ $rc -eq 124 ] || { [ $rc -eq 137 ] && [ "$ns" -ge $((TIMEOUT * 1000000000)) ]; }; then
            status=timeout
            printf 'timed out after %s s (TIMEOUT=%s)\n' "$TIMEOUT" "$TIMEOUT" >>"$TMP/$key.run.err"
        elif [ $rc -ne 0 ]; then
            status=fail
            printf 'exit status %d\n' "$rc" >>"$TMP/$key.run.err"
        fi
        if [ "$status" != ok ]; then
            mv -f "$TMP/$key.run.out" "$TMP/$key.out"
            mv -f "$TMP/$key.run.err" "$TMP/$key.err"
            echo "$status" >&2
            break
        fi
        rss=$(tail -n1 "$TMP/rss" 2>/dev/null | tr -dc 0-9)
        if [ -n "$rss" ] && [ "$rss" -gt "$peak" ]; then peak=$rss; fi
        if [ -z "$best" ] || [ "$ns" -lt "$best" ]; then best=$ns; fi
        if [ "$run" -eq 1 ]; then
            mv -f "$TMP/$key.run.out" "$TMP/$key.out"
            mv -f "$TMP/$key.run.err" "$TMP/$key.err"
        elif ! cmp -s "$TMP/$key.run.out" "$TMP/$key.out"; then
            printf 'note: run %d printed a different stdout from run 1\n' "$run" >>"$TMP/$key.err"
        fi
        awk -v ns="$ns" 'BEGIN { printf "%.3f s\n", ns / 1e9 }' >&2
    done
    printf -v "ST_$key" '%s' "$status"
    printf -v "T_$key" '%s' "$best"
    printf -v "R_$key" '%s' "$peak"
}

# skip KEY STATUS REASON — records a command that was not run.
skip() {
    printf -v "ST_$1" '%s' "$2"
    printf -v "T_$1" '%s' ""
    printf -v "R_$1" '%s' 0
    printf '%s\n' "$3" >"$TMP/$1.err"
    : >"$TMP/$1.out"
    : >"$TMP/$1.cmd"
}

st() { local v="ST_$1"; printf '%s' "${!v:-na}"; }
tm() { local v="T_$1"; printf '%s' "${!v:-}"; }
rs() { local v="R_$1"; printf '%s' "${!v:-0}"; }

time_cell() {
    case "$(st "$1")" in
        ok) awk -v ns="$(tm "$1")" 'BEGIN { printf "%.3f s", ns / 1e9 }' ;;
        na) printf 'n/a' ;;
        *) st "$1" ;;
    esac
}
rss_cell() {
    if [ "$(st "$1")" = ok ] && [ "$(rs "$1")" -gt 0 ]; then
        awk -v kib="$(rs "$1")" 'BEGIN { printf "%.1f", kib * 1024 / 1e6 }'
    elif [ "$(st "$1")" = na ]; then printf 'n/a'
    else printf '—'; fi
}
ratio_cell() {  # ratio_cell NUM_KEY DEN_KEY
    if [ "$(st "$1")" = ok ] && [ "$(st "$2")" = ok ]; then
        awk -v a="$(tm "$1")" -v b="$(tm "$2")" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else printf "—" }'
    else printf '—'; fi
}
label() {
    case "$1" in
        *_lj) printf 'looplab js' ;; *_ls) printf 'looplab' ;; *_la) printf 'looplab asyncio' ;;
        *_py) printf 'python3' ;; *_nd) printf 'node' ;;
    esac
}

# ---------------------------------------------------------------- header

echo "## looplab benchmarks"
echo
echo "- date: $(date '+%Y-%m-%d %H:%M:%S %Z')"
echo "- machine: $(nproc) CPUs, $CPU_MODEL, ${MEM_TOTAL:-? GiB} RAM, $(uname -sr), load average at start $LOADAVG"
echo "- looplab: $LOOPLAB — $LOOPLAB_VERSION"
echo "- python3: $PY_VERSION ($PY_BIN)"
echo "- node: $NODE_VERSION ($(command -v "$NODE" || echo "$NODE"))"
echo "- rustc: $RUSTC_VERSION; repo at $GIT_REV"
echo "- method: best wall time of $RUNS run(s), each limited to $TIMEOUT s; peak RSS (max over the runs) from $RSS_TOOL"
echo

# ---------------------------------------------------------------- running

ROWS=()
NOTES=()
for entry in "${BENCHES[@]}"; do
    name=${entry%%:*}
    kind=${entry##*:}
    lab="$BENCH_DIR/$name.lab"
    echo "$name ($kind)" >&2
    if [ "$kind" = seq ]; then
        lkeys=("${name}_ls")
        if [ -n "$LOOPLAB_OK" ]; then
            measure "${name}_ls" "$LOOPLAB" run "$lab"
        else
            skip "${name}_ls" fail "looplab binary missing: $LOOPLAB"
        fi
    else
        lkeys=("${name}_lj" "${name}_la")
        for rt in js asyncio; do
            key=${name}_l${rt:0:1}
            if [ -n "$LOOPLAB_OK" ]; then
                measure "$key" "$LOOPLAB" run "$lab" --runtime "$rt"
            else
                skip "$key" fail "looplab binary missing: $LOOPLAB"
            fi
        done
    fi
    measure "${name}_py" "$PY_BIN" "$BENCH_DIR/$name.py"
    measure "${name}_nd" "$NODE" "$BENCH_DIR/$name.js"

    # Output check: every command that succeeded must print the same stdout.
    ref=""
    for k in "${name}_py" "${name}_nd" "${lkeys[@]}"; do
        if [ "$(st "$k")" = ok ]; then ref=$k; break; fi
    done
    check="—"
    if [ -n "$ref" ]; then
        differ=()
        compared=0
        for k in "${name}_py" "${name}_nd" "${lkeys[@]}"; do
            [ "$(st "$k")" = ok ] || continue
            compared=$((compared + 1))
            cmp -s "$TMP/$ref.out" "$TMP/$k.out" || differ+=("$(label "$k")")
        done
        if [ ${#differ[@]} -gt 0 ]; then
            check="MISMATCH: $(IFS=,; echo "${differ[*]}" | sed 's/,/, /g') ≠ $(label "$ref")"
            NOTES+=("**$name**: stdout differs. $(label "$ref") printed \`$(head -c 200 "$TMP/$ref.out" | tr '\n' '|')\`")
            for k in "${name}_py" "${name}_nd" "${lkeys[@]}"; do
                [ "$(st "$k")" = ok ] || continue
                cmp -s "$TMP/$ref.out" "$TMP/$k.out" \
                    || NOTES+=("  - $(label "$k") printed \`$(head -c 200 "$TMP/$k.out" | tr '\n' '|')\`")
            done
        elif [ $compared -ge 2 ]; then
            check="same ($compared)"
        else
            check="only $(label "$ref") ran"
        fi
    fi

    # Failures, with the command and the start of stderr.
    for k in "${lkeys[@]}" "${name}_py" "${name}_nd"; do
        s=$(st "$k")
        [ "$s" = ok ] && continue
        [ -z "$LOOPLAB_OK" ] && [[ $k == "${name}_l"* ]] && continue  # reported once below
        NOTES+=("**$name**, $(label "$k"): $s — \`$(cat "$TMP/$k.cmd")\`")
        while IFS= read -r line; do
            NOTES+=("      $line")
        done < <(head -n 8 "$TMP/$k.err")
    done

    if [ "$kind" = seq ]; then
        ROWS+=("| $name (seq) | $(time_cell "${name}_ls") | n/a | $(time_cell "${name}_py") | $(time_cell "${name}_nd") | $(ratio_cell "${name}_ls" "${name}_py") | $(ratio_cell "${name}_ls" "${name}_nd") | $(rss_cell "${name}_ls") | n/a | $(rss_cell "${name}_py") | $(rss_cell "${name}_nd") | $check |")
    else
        ROWS+=("| $name | $(time_cell "${name}_lj") | $(time_cell "${name}_la") | $(time_cell "${name}_py") | $(time_cell "${name}_nd") | $(ratio_cell "${name}_la" "${name}_py") | $(ratio_cell "${name}_lj" "${name}_nd") | $(rss_cell "${name}_lj") | $(rss_cell "${name}_la") | $(rss_cell "${name}_py") | $(rss_cell "${name}_nd") | $check |")
    fi
done

# ---------------------------------------------------------------- report

echo "| benchmark | looplab js | looplab asyncio | python3 | node | looplab/python3 | looplab/node | RSS looplab js (MB) | RSS looplab asyncio (MB) | RSS python3 (MB) | RSS node (MB) | output |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Times are the best wall time of $RUNS run(s), start-up included. (seq) rows run"
echo "\`looplab run FILE\` with no --runtime flag; their figure is in the looplab js"
echo "column. For async rows, looplab/python3 is looplab asyncio ÷ python3 and"
echo "looplab/node is looplab js ÷ node; below 1.00× looplab is faster. RSS is the"
echo "peak resident set in MB (10^6 bytes). \`output\` says whether every command"
echo "that ran printed the same stdout (and how many did); \`fail\` is a non-zero"
echo "exit or a missing binary, \`timeout\` a run over $TIMEOUT s. Load average"
echo "at the end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null) (at the start: $LOADAVG; $(nproc) CPUs)."
if [ -z "$LOOPLAB_OK" ] || [ ${#NOTES[@]} -gt 0 ]; then
    echo
    echo "Notes:"
    echo
    [ -z "$LOOPLAB_OK" ] && echo "- looplab was not run: no executable at $LOOPLAB"
    for n in "${NOTES[@]}"; do
        case "$n" in
            " "*) echo "$n" ;;
            *) echo "- $n" ;;
        esac
    done
fi
