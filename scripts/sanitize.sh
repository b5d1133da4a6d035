#!/usr/bin/env bash
# Builds build-asan (AddressSanitizer + UndefinedBehaviorSanitizer, the
# DISTMAP_SANITIZE option) and runs the unit and integration tests in it.
# CI runs it after the plain suite (scripts/test.sh with CI=true); any
# sanitizer report fails the test that triggered it. Extra arguments go to
# ctest (default: every test but the `slow`, `long` and `web` ones: the
# JavaScript tests run on Node, and the plain suite runs them).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build=build-asan
# -Og -g1: with ASan and UBSan, -O1 took 17 s to compile tst_sync.cpp and
# -Og 10.6 s (-O0 9.5 s, with no optimisation at all for the tests to run
# under); reports still carry file:line.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDISTMAP_SANITIZE=ON -DDISTMAP_BENCH=OFF \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-Og -g1 -DNDEBUG" >/dev/null
# The build lock keeps builds on a shared machine from running at once.
flock /tmp/distmap-build.lock cmake --build "$build" -j2
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:check_initialization_order=1
# Only leaks inside Qt's own one-time allocations are suppressed (see the file).
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The simulation's seed sweep is the plain suite's job; here a few seeds
# exercise the same code for memory errors at a tenth of the cost.
export DISTMAP_SIM_SEEDS=${DISTMAP_SIM_SEEDS:-10}
# Likewise the crash test: 50 kills instead of 200 (93 s under ASan).
export DISTMAP_CRASH_KILLS=${DISTMAP_CRASH_KILLS:-50}
cd "$build"
if [ $# -eq 0 ]; then
    set -- -LE "slow|long|web"
fi
QT_QPA_PLATFORM=offscreen ctest --output-on-failure -j2 "$@"
