#!/usr/bin/env bash
# Installs what is missing, builds, and starts the inspector GUI. With no
# relay listening on ws://127.0.0.1:7357 the GUI hosts one itself.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec ./build/distmap "$@"
