#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# CI treats compiler warnings as errors; a developer just sees them.
# CI keeps line tables but not full debug info: -g1 cuts a third of the
# compile time, and a failing test's stack trace still names the lines.
if [ "${CI:-}" = "true" ]; then
    scripts/build.sh -DDISTMAP_WERROR=ON "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
else
    scripts/build.sh
fi
# "long" tests (10,000 simulation seeds) run only when asked: ctest -L long
(cd build && QT_QPA_PLATFORM=offscreen ctest --output-on-failure -j2 -LE long "$@")
# CI (CI=true) also runs the suite under ASan + UBSan and each fuzz target
# for 4 s (the whole run stays under 20 minutes on 2 cores); a developer
# runs those longer with scripts/sanitize.sh and scripts/fuzz.sh.
if [ "${CI:-}" = "true" ] && [ $# -eq 0 ]; then
    echo "test.sh: suite done at ${SECONDS}s"
    scripts/sanitize.sh
    echo "test.sh: sanitizers done at ${SECONDS}s"
    scripts/fuzz.sh --time "${FUZZ_SECONDS:-4}"
    echo "test.sh: fuzzing done at ${SECONDS}s"
fi
