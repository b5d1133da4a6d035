#!/usr/bin/env bash
# Installs what distmap needs on Debian 12 when it is missing: the Qt build,
# Node.js and Chromium for the browser peer's tests (with the npm packages
# pinned by package-lock.json), Redis for the scale-out, promtool
# (Prometheus) to check the metrics output, and doxygen for the `apidocs`
# test.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(cmake ninja-build g++ qt6-base-dev qt6-websockets-dev qt6-httpserver-dev xvfb openssl
          chromium redis-server libhiredis-dev pkg-config
          dpkg-dev doxygen)
# Debian's Node.js 18, unless a node is there already (its npm comes with it).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
# scripts/fuzz.sh needs clang and its libFuzzer/sanitizer runtimes too.
if [ "${1:-}" = "--fuzz" ]; then
    packages+=(clang libclang-rt-14-dev)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
# promtool checks the /metrics output in tests/tst_operations; it comes with
# Debian's Prometheus server, whose daemon nobody starts here (and without
# its recommends: no node exporter).
if ! command -v promtool >/dev/null 2>&1; then
    echo "installing: prometheus (for promtool)"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    [ ${#missing[@]} -gt 0 ] || $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends prometheus
fi
# The JavaScript tests' dev dependencies (ws, puppeteer-core: it drives the
# system Chromium and downloads no browser), exactly as the lockfile says.
if [ -f package-lock.json ] && { [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
    npm ci --no-audit --no-fund --loglevel=error
fi
