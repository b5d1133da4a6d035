#!/usr/bin/env bash
# Runs our relay and the two anchors (a node `ws` relay and y-websocket) side by side with the
# same node clients (bench/anchors, issue 14), interleaved in one sitting so that a noisy machine
# affects all three alike: for each round, for each workload, ws-relay, yjs, distmap, one run each.
# Workloads: fan-out 1→1, 1→10, 1→50, all-write 10, unloaded (W = 1) with 10 readers.
# Prints the load average before and after, and writes a markdown table of the medians over the
# rounds plus every raw JSON line (bench/anchors/bench.js records) to the results file.
#
# Usage: scripts/bench-all.sh [--rounds N] [--out FILE] [--scale F]
#   --rounds N  rounds (default 3)
#   --out FILE  results file (default bench-results/anchors-<UTC time>.md)
#   --scale F   multiply every workload's delta count by F (default 1; e.g. 0.1 for a smoke test)
# The relay binary is $DISTMAP_BINARY, else build/distmap (this script builds nothing: run
# scripts/build.sh first). npm deps are installed with `npm ci` into bench/anchors/node_modules
# from the committed package-lock.json. A full sitting (3 rounds) takes roughly 10 minutes on 2 cores.
# The C++ benchmark (build/distmap-bench, docs/BENCHMARKS.md) is run separately.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
rounds=3
scale=1
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --scale) scale=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "bench-all.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
binary=${DISTMAP_BINARY:-$root/build/distmap}
if [ ! -x "$binary" ]; then
    echo "bench-all.sh: no relay binary at $binary (run scripts/build.sh, or set DISTMAP_BINARY)" >&2
    exit 1
fi
command -v node >/dev/null && command -v npm >/dev/null || { echo "bench-all.sh: needs node and npm" >&2; exit 1; }
stamp=$(date -u +%Y%m%dT%H%M%SZ)
[ -n "$out" ] || out=bench-results/anchors-$stamp.md
mkdir -p "$(dirname "$out")"
anchors=$root/bench/anchors

echo "installing the harness's npm packages (npm ci, bench/anchors/package-lock.json)"
(cd "$anchors" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

raw=$(mktemp)
fails=$(mktemp)
trap 'rm -f "$raw" "$fails"' EXIT
m() { awk -v m="$1" -v s="$scale" 'BEGIN { v = int(m * s); print (v < 100 ? 100 : v) }'; }
workloads=(
    "fanout --n 1 --m $(m 100000)"
    "fanout --n 10 --m $(m 50000)"
    "fanout --n 50 --m $(m 20000)"
    "allwrite --n 10 --m $(m 50000)"
    "unloaded --n 10 --m $(m 5000)"
)
systems=(ws-relay yjs distmap)

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
echo "load average before: $load_before"
for ((r = 1; r <= rounds; r++)); do
    for w in "${workloads[@]}"; do
        for s in "${systems[@]}"; do
            echo "round $r/$rounds: $s $w"
            # shellcheck disable=SC2086 # $w is the workload's arguments
            if ! (cd "$anchors" && node bench.js --system "$s" --workload $w --runs 1 --binary "$binary" --out "$raw" | grep '^MEDIAN'); then
                echo "round $r: $s $w FAILED" | tee -a "$fails" >&2
            fi
        done
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average after: $load_after"

{
    echo "# Relay side by side: ws-relay, Yjs (y-websocket), distmap — same node clients"
    echo
    echo "Sitting from $started to $(date -u '+%H:%M:%S UTC'): $rounds round(s), systems interleaved"
    echo "(ws-relay, yjs, distmap for each workload in turn), scale $scale."
    echo "Load average (1, 5, 15 min) before: $load_before; after: $load_after."
    echo "Machine: $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), node $(node --version)."
    echo "Relay: $binary (modified $(date -u -r "$binary" '+%Y-%m-%d %H:%M UTC')), run as \`distmap relay --max-rate 0 --no-http\`;"
    echo "repository at $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')."
    echo "Harness: bench/anchors (a copy of shared/anchors), \`node bench.js --system S --workload W --runs 1\` per cell."
    echo
    if [ -s "$fails" ]; then echo "**Failed runs:**"; sed 's/^/- /' "$fails"; echo; fi
    node "$anchors/sitting-report.js" "$raw"
    echo
    echo "## Raw JSON lines (bench/anchors/bench.js records, one per run)"
    echo
    echo '```jsonl'
    cat "$raw"
    echo '```'
} > "$out"
echo "results: $out"
