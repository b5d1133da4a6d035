#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang, ASan + UBSan) in build-fuzz
# and runs each for a while from its checked-in seed corpus.
#
#   scripts/fuzz.sh [--time SECONDS] [--seeds] [TARGET...]
#
#   --time S   seconds per target (default 20); each target stops at the
#              first crash, which is saved in build-fuzz/artifacts/
#   --seeds    rewrite fuzz/corpus from real encodings (fuzz_makecorpus)
#   TARGET     e.g. fuzz_entries; default: all of them
#
# Targets run one after the other, never in parallel (shared machines);
# FUZZ_NICE=19 runs them niced. New inputs go to build-fuzz/corpus, never
# into fuzz/corpus; a crash found and fixed belongs in fuzz/corpus/<target>/
# as a regression seed. Exits non-zero on any crash or invariant failure.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=20
seeds=0
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --time) seconds=$2; shift 2 ;;
        --seeds) seeds=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
all=(fuzz_header fuzz_entries fuzz_syncrequest fuzz_syncchunk fuzz_syncack fuzz_jsontext fuzz_control fuzz_journal fuzz_relay fuzz_http fuzz_busmessage)
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

scripts/setup.sh --fuzz
build=build-fuzz
if [ ! -f "$build/build.ninja" ]; then
    # -O1 -g1: what libFuzzer's docs build with, at half the compile time of -O2 -g.
    CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DDISTMAP_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
fi
# The build lock keeps builds on a shared machine from running at once.
flock /tmp/distmap-build.lock cmake --build "$build" -j2 --target "${targets[@]}" fuzz_makecorpus

if [ $seeds -eq 1 ]; then
    "$build/fuzz/fuzz_makecorpus" fuzz/corpus
fi

nice_cmd=()
[ -z "${FUZZ_NICE:-}" ] || nice_cmd=(nice -n "$FUZZ_NICE")
logs=${FUZZ_LOG_DIR:-$build/logs}
mkdir -p "$build/artifacts" "$logs"
export QT_QPA_PLATFORM=offscreen
# UBSan findings abort (a crash libFuzzer saves) rather than scroll past.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$build/corpus/$t"
    log="$logs/$t.log"
    echo "== $t: ${seconds}s"
    if "${nice_cmd[@]}" "$build/fuzz/$t" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
        "$build/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" | tr '\n' ' '
        echo
    else
        echo "$t FAILED: see $log"
        grep -E 'ERROR|invariant failed|SUMMARY|Test unit written' "$log" | head -20 || true
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing failed: ${failed[*]}"
    exit 1
fi
echo "fuzzing: no crashes in ${targets[*]}"
