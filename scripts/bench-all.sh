#!/usr/bin/env bash
# Runs the anchors (../shared/anchors: a node `ws` relay and y-websocket) and
# distmap-bench in one sitting, so the figures in docs/BENCHMARKS.md compare
# like with like on a noisy machine. Needs node/npm for the anchors.
# Usage: scripts/bench-all.sh [OUTDIR]   (about 15 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
anchors=$(cd ../shared/anchors 2>/dev/null && pwd || true)
if [ -n "$anchors" ] && command -v npm >/dev/null; then
    scratch=$(mktemp -d)
    cp -r "$anchors/." "$scratch"
    chmod -R u+w "$scratch"
    (cd "$scratch" && npm ci --no-audit --no-fund >/dev/null && OUT="$out/anchors.jsonl" sh run-all.sh > "$out/anchors.md")
    rm -rf "$scratch"
else
    echo "no ../shared/anchors or no npm: skipping the anchors" >&2
fi
scripts/build.sh
./build/distmap-bench --runs 3 --json "$out/distmap.json" | tee "$out/distmap.md"
