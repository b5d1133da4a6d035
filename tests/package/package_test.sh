#!/usr/bin/env bash
# The installed and packaged distmap, as a user gets it (ctest label
# `package`; tests/package/CMakeLists.txt):
#   1. cmake --install into a scratch DESTDIR (prefix /usr), check the
#      layout, build tests/package/consumer against it with
#      find_package(distmap 0.2) and run it; check pkg-config's answer.
#   2. cpack -G DEB, lintian when installed, dpkg -x the package into a
#      scratch root, run its `distmap --version`, start its relay on a free
#      port, check that the relay answers (a `distmap dump` from the same
#      root), stop it.
#
#   3. examples/ built against the same DESTDIR; the console example runs
#      through the .deb's relay, the GUI ones (offscreen) take their
#      screenshot through it and exit.
#
#   package_test.sh BUILD_DIR CONSUMER_SOURCE_DIR [EXAMPLES_SOURCE_DIR]
#
# Needs cmake, cpack, pkg-config, dpkg-deb and dpkg-shlibdeps (dpkg-dev);
# exits 77 (skipped) when one of them is missing. Builds take the build
# lock ($DISTMAP_BUILD_LOCK, default /tmp/distmap-build.lock; empty: none).
set -euo pipefail
build=$(cd "$1" && pwd)
consumer_src=$(cd "$2" && pwd)
examples_src=${3:+$(cd "$3" && pwd)}
cmake=${CMAKE_COMMAND:-cmake}
cpack=${CPACK_COMMAND:-cpack}
for tool in "$cmake" "$cpack" pkg-config dpkg-deb dpkg-shlibdeps; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool not found (scripts/setup.sh installs it)"
        exit 77
    fi
done
lock=${DISTMAP_BUILD_LOCK-/tmp/distmap-build.lock}
locked() {
    if [ -n "$lock" ]; then flock "$lock" "$@"; else "$@"; fi
}
arch_libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$build/CMakeCache.txt")
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
[ -n "$version" ] || { echo "FAIL: no project version in $build/CMakeCache.txt"; exit 1; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/distmap-package.XXXXXX")
relay_pid=
cleanup() {
    if [ -n "$relay_pid" ] && kill -0 "$relay_pid" 2>/dev/null; then
        kill "$relay_pid" 2>/dev/null || true
        wait "$relay_pid" 2>/dev/null || true
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    exit 1
}
step() {
    echo "== $* ($SECONDS s)"
}

# 1. cmake --install ---------------------------------------------------------
step "cmake --install into a DESTDIR"
dest=$scratch/dest
DESTDIR=$dest "$cmake" --install "$build" --prefix /usr >"$scratch/install.log"
for f in usr/bin/distmap "usr/$arch_libdir/libdistmap.so.$version" "usr/$arch_libdir/libdistmap.so" \
         usr/include/distmap/distributedmap.h usr/include/distmap/connection.h usr/include/distmap/localstore.h \
         usr/include/distmap/distributedmapmodel.h usr/include/distmap/distributedmap_impl.h \
         "usr/$arch_libdir/cmake/distmap/distmapConfig.cmake" "usr/$arch_libdir/pkgconfig/distmap.pc" \
         usr/share/man/man1/distmap.1.gz usr/share/applications/distmap.desktop \
         usr/share/icons/hicolor/scalable/apps/distmap.svg usr/share/icons/hicolor/256x256/apps/distmap.png \
         etc/distmap/relay.conf etc/distmap/keep.conf \
         lib/systemd/system/distmap-relay.service lib/systemd/system/distmap-keep@.service; do
    [ -e "$dest/$f" ] || fail "not installed: /$f"
done
# The internals stay private.
for f in replica.h wire.h mapchannel.h journal.h distributedmap_p.h; do
    [ ! -e "$dest/usr/include/distmap/$f" ] || fail "internal header installed: $f"
done

step "find_package(distmap $version) from the DESTDIR"
consumer=$scratch/consumer
"$cmake" -S "$consumer_src" -B "$consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$dest/usr" >"$scratch/consumer-configure.log" \
    || { cat "$scratch/consumer-configure.log"; fail "the consumer does not configure"; }
locked "$cmake" --build "$consumer" >"$scratch/consumer-build.log" \
    || { cat "$scratch/consumer-build.log"; fail "the consumer does not build"; }
out=$(LD_LIBRARY_PATH="$dest/usr/$arch_libdir" "$consumer/consumer") || fail "the consumer failed: $out"
echo "$out"
# Whole outputs into variables, then match: `cmd | grep -q` under pipefail
# fails at random when grep exits first and cmd dies of SIGPIPE.
libs=$(LD_LIBRARY_PATH="$dest/usr/$arch_libdir" ldd "$consumer/consumer")
[[ "$libs" == *"libdistmap.so.${version%.*} => $dest/"* ]] \
    || fail "the consumer does not load libdistmap.so.${version%.*} from the DESTDIR: $libs"

step "pkg-config"
# PKG_CONFIG_SYSROOT_DIR: the .pc says prefix=/usr, the files are under $dest.
flags=$(PKG_CONFIG_SYSROOT_DIR=$dest PKG_CONFIG_PATH="$dest/usr/$arch_libdir/pkgconfig" \
        pkg-config --cflags --libs distmap) || fail "pkg-config does not know distmap"
echo "$flags"
for want in "-I$dest/usr/include" "-L$dest/usr/$arch_libdir" "-ldistmap" "-lQt6WebSockets"; do
    [[ " $flags " == *" $want "* ]] || fail "pkg-config --cflags --libs lacks $want"
done
[ "$(PKG_CONFIG_PATH="$dest/usr/$arch_libdir/pkgconfig" pkg-config --modversion distmap)" = "$version" ] \
    || fail "pkg-config --modversion is not $version"

# 2. The .deb ----------------------------------------------------------------
step "cpack -G DEB"
"$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$scratch/cpack" >"$scratch/cpack.log" \
    || { cat "$scratch/cpack.log"; fail "cpack failed"; }
deb=$scratch/cpack/distmap_${version}_$(dpkg --print-architecture).deb
[ -f "$deb" ] || fail "no $(basename "$deb"): $(ls "$scratch/cpack")"
depends=$(dpkg-deb --field "$deb" Depends)
[[ "$depends" == *libqt6core6* ]] || fail "Depends lacks libqt6core6 (dpkg-shlibdeps): $depends"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
grep -qx /etc/distmap/relay.conf <<<"$conffiles" \
    || fail "relay.conf is not a conffile"
if command -v lintian >/dev/null 2>&1; then
    step "lintian (errors and warnings fail)"
    lintian --fail-on error,warning "$deb" || fail "lintian found errors or warnings"
fi
root=$scratch/root
dpkg-deb -x "$deb" "$root"
export LD_LIBRARY_PATH=$root/usr/$arch_libdir

step "distmap --version from the .deb"
out=$("$root/usr/bin/distmap" --version)
echo "$out"
[[ "$out" =~ ^distmap\ $version\ \(protocol\ [0-9]+\)$ ]] || fail "unexpected --version: $out"

step "the .deb's relay"
# The relay prints "listening on ws://HOST:PORT" once it listens (port 0:
# a free one). Read that line from a FIFO: no polling, no sleep.
mkfifo "$scratch/relay.out"
QT_QPA_PLATFORM=offscreen "$root/usr/bin/distmap" relay --host 127.0.0.1 --port 0 \
    >"$scratch/relay.out" 2>"$scratch/relay.err" &
relay_pid=$!
exec 3<"$scratch/relay.out"
line=
read -r -t 20 line <&3 || fail "the relay said nothing in 20 s: $(cat "$scratch/relay.err")"
[[ "$line" =~ ^listening\ on\ (ws://127\.0\.0\.1:[0-9]+) ]] || fail "unexpected relay output: $line"
url=${BASH_REMATCH[1]}
echo "$line"
if [ -n "$examples_src" ]; then
    step "examples/ against the DESTDIR"
    examples=$scratch/examples
    "$cmake" -S "$examples_src" -B "$examples" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$dest/usr" >"$scratch/examples-configure.log" \
        || { cat "$scratch/examples-configure.log"; fail "the examples do not configure"; }
    locked "$cmake" --build "$examples" >"$scratch/examples-build.log" \
        || { cat "$scratch/examples-build.log"; fail "the examples do not build"; }
    out=$(LD_LIBRARY_PATH="$dest/usr/$arch_libdir" timeout 30 "$examples/distmap-console" "$url" /package-example greeting hi) \
        || fail "the console example failed"
    [ "$out" = '{"greeting":"hi"}' ] || fail "unexpected console example output: $out"
    echo "console example: $out"
    for gui in todo settings; do
        LD_LIBRARY_PATH="$dest/usr/$arch_libdir" QT_QPA_PLATFORM=offscreen timeout 60 \
            "$examples/distmap-$gui" "$url" --screenshot "$scratch/$gui.png" 2>"$scratch/$gui.err" \
            || fail "the $gui example failed: $(cat "$scratch/$gui.err")"
        [ -s "$scratch/$gui.png" ] || fail "the $gui example saved no screenshot"
        echo "$gui example: screenshot taken"
    done
fi
# A peer from the same package syncs the (empty) map through it.
out=$(QT_QPA_PLATFORM=offscreen "$root/usr/bin/distmap" dump --url "$url" --map /package-test --timeout 10000) \
    || fail "distmap dump through the relay failed"
[ "$out" = "{}" ] || fail "unexpected dump: $out"
echo "dump: $out"
kill "$relay_pid"
wait "$relay_pid" || fail "the relay exited with $? on SIGTERM"
relay_pid=
exec 3<&-

step "passed"
