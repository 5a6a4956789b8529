#!/usr/bin/env bash
# Record what the real runtimes print for the twin programs.
#
# For every programs/{seeds,twins}/NAME.js run `node NAME.js` and write
# NAME.node.out; for every NAME.py run `python3 NAME.py` and write
# NAME.python.out. Format (programs/CONVENTIONS.md): stdout verbatim, then a
# line `--- exit N ---` only if the exit status is non-zero. stderr is not
# recorded (it holds node's unhandled-rejection report, Python's tracebacks
# and "never awaited"/"never retrieved" warnings, all with paths and line
# numbers).
#
# Usage:
#   tests/twins/regen.sh              # rewrite every recorded output
#   tests/twins/regen.sh --check      # rerun and compare with the recorded
#                                     # outputs, write nothing (exit 1 on a
#                                     # difference): the determinism check
#   tests/twins/regen.sh [--check] NAME...   # only these programs (a NAME
#                                     # is a file stem, e.g. showcase_spawn_order)
#
# Environment: NODE (default node), PYTHON (default python3),
# TWIN_TIMEOUT (seconds per program, default 30).
#
# The recordings mean node v20 and CPython 3.11; another version is used
# with a warning. A runtime that is not installed is skipped with a message.
set -u

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
node_bin="${NODE:-node}"
python_bin="${PYTHON:-python3}"
limit="${TWIN_TIMEOUT:-30}"

check=0
names=()
for arg in "$@"; do
    case "$arg" in
        --check) check=1 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        -*) echo "regen.sh: unknown option $arg" >&2; exit 2 ;;
        *) names+=("$arg") ;;
    esac
done

have_node=1
have_python=1
if ! command -v "$node_bin" >/dev/null 2>&1; then
    echo "regen.sh: $node_bin not installed: skipping every .js twin" >&2
    have_node=0
else
    v="$("$node_bin" --version 2>/dev/null)"
    case "$v" in v20.*) ;; *) echo "regen.sh: warning: recordings are for node v20, found $v" >&2 ;; esac
fi
if ! command -v "$python_bin" >/dev/null 2>&1; then
    echo "regen.sh: $python_bin not installed: skipping every .py twin" >&2
    have_python=0
else
    v="$("$python_bin" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"
    [ "$v" = "3.11" ] || echo "regen.sh: warning: recordings are for CPython 3.11, found $v" >&2
fi

# The twins' timers are a few ms apart: a program preempted for longer than
# that (a busy machine) can print another order. Run them at a raised
# priority where that is allowed (root); --check shows any flake.
prio=()
if nice -n -10 true 2>/dev/null; then prio=(nice -n -10); fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

wanted() {
    local stem="$1" n
    [ "${#names[@]}" -eq 0 ] && return 0
    for n in "${names[@]}"; do [ "$n" = "$stem" ] && return 0; done
    return 1
}

# run_one RUNTIME-BIN SOURCE OUTFILE
failures=0
written=0
same=0
run_one() {
    local bin="$1" src="$2" out="$3" status
    local dir base
    dir="$(dirname "$src")"
    base="$(basename "$src")"
    (cd "$dir" && PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 \
        ${prio[@]+"${prio[@]}"} timeout --kill-after=5 "$limit" "$bin" "$base" >"$tmp/stdout" 2>"$tmp/stderr" </dev/null)
    status=$?
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        echo "TIMEOUT ($limit s): $src — nothing written" >&2
        failures=$((failures + 1))
        return
    fi
    cp "$tmp/stdout" "$tmp/result"
    if [ "$status" -ne 0 ]; then
        printf -- '--- exit %d ---\n' "$status" >>"$tmp/result"
    fi
    if [ "$check" -eq 1 ]; then
        if [ ! -f "$out" ]; then
            echo "MISSING: $out" >&2
            failures=$((failures + 1))
        elif ! cmp -s "$tmp/result" "$out"; then
            echo "DIFFERS: $out" >&2
            diff "$out" "$tmp/result" | sed 's/^/    /' >&2
            failures=$((failures + 1))
        else
            same=$((same + 1))
        fi
    else
        if [ -f "$out" ] && cmp -s "$tmp/result" "$out"; then
            same=$((same + 1))
        else
            cp "$tmp/result" "$out"
            written=$((written + 1))
            echo "wrote $out"
        fi
    fi
}

for dir in "$root/programs/seeds" "$root/programs/twins"; do
    [ -d "$dir" ] || continue
    for src in "$dir"/*.js "$dir"/*.py; do
        [ -f "$src" ] || continue
        stem="$(basename "${src%.*}")"
        wanted "$stem" || continue
        case "$src" in
            *.js) [ "$have_node" -eq 1 ] && run_one "$node_bin" "$src" "$dir/$stem.node.out" ;;
            *.py) [ "$have_python" -eq 1 ] && run_one "$python_bin" "$src" "$dir/$stem.python.out" ;;
        esac
    done
done

for n in ${names[@]+"${names[@]}"}; do
    found=0
    for f in "$root/programs/seeds/$n".js "$root/programs/seeds/$n".py "$root/programs/twins/$n".js "$root/programs/twins/$n".py; do
        [ -f "$f" ] && found=1
    done
    if [ "$found" -eq 0 ]; then
        echo "regen.sh: no twin named $n" >&2
        failures=$((failures + 1))
    fi
done

if [ "$check" -eq 1 ]; then
    echo "regen.sh --check: $same unchanged, $failures problem(s)"
else
    echo "regen.sh: $written written, $same unchanged, $failures problem(s)"
fi
[ "$failures" -eq 0 ]
