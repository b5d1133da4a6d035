#!/usr/bin/env bash
# Installs what distmap needs on Debian 12 when it is missing.
set -euo pipefail
packages=(cmake ninja-build g++ qt6-base-dev qt6-websockets-dev xvfb openssl)
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
