#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd build
# "long" tests (10,000 simulation seeds) run only when asked: ctest -L long
QT_QPA_PLATFORM=offscreen ctest --output-on-failure -j2 -LE long "$@"
