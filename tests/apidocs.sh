#!/usr/bin/env bash
# The API reference builds without a single doxygen warning (ctest test
# `apidocs`, label unit; tests/CMakeLists.txt): every public class, function,
# enum and member of the installed headers is documented, and every comment
# parses.
#
#   apidocs.sh SOURCE_DIR OUTPUT_DIR
#
# Runs doxygen on docs/Doxyfile from SOURCE_DIR, with DOXYGEN_OUTPUT set to
# OUTPUT_DIR (emptied first). Whatever doxygen writes to stderr is a warning:
# printed, and the test fails.
set -euo pipefail
src=$(cd "$1" && pwd)
out=$2
doxygen=${DOXYGEN_EXECUTABLE:-doxygen}
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
warnings="$out/warnings.txt"
status=0
(cd "$src" && DOXYGEN_OUTPUT="$out" "$doxygen" docs/Doxyfile) >"$out/doxygen.log" 2>"$warnings" || status=$?
if [ "$status" -ne 0 ] || [ -s "$warnings" ]; then
    cat "$warnings"
    echo "FAIL: doxygen exited with $status, $(wc -l <"$warnings") line(s) of warnings (docs/Doxyfile)"
    exit 1
fi
echo "OK: no warnings; the reference is $out/html/index.html"
