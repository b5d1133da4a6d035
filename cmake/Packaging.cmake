# `cpack -G DEB` in the build directory: distmap_<version>_<arch>.deb with
# everything `cmake --install` puts under /usr, /etc and /lib/systemd.
# One package holds the program, the shared library and its development
# files (headers, CMake and pkg-config files); see docs/PACKAGING.md.
set(CPACK_PACKAGE_NAME distmap)
set(CPACK_PACKAGE_VENDOR "distmap")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "replicated key/value map for Qt applications")
set(CPACK_PACKAGE_CONTACT "distmap maintainers <maintainers@distmap.example.org>")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://distmap.example.org/")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
# The extended description (CPack puts the summary above it and indents
# each line by one space in the control file).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "\
Every peer holds a full copy of a named map of JSON values; a relay that
keeps no map data forwards the changes between peers, and concurrent
writes converge (last writer wins per key, by hybrid logical clocks).
.
This package holds the distmap program (an inspector GUI, a relay, a
headless keeper that stores maps on disk, and command-line peers),
systemd units for the relay and for keepers, and libdistmap, the C++
library for Qt 6 applications, with its headers, CMake package and
pkg-config file.")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Plugins dpkg-shlibdeps cannot see: Qt's platform plugins for the GUI
# (xcb is in libqt6gui6, Wayland in qt6-wayland).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "qt6-wayland")
# A shlibs file for libdistmap (0.x: the exact version, as the soname).
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY "=")
# Control files (resources/debian): the example settings in /etc are
# conffiles; the ldconfig trigger replaces the ldconfig calls CPack would
# write into postinst and postrm, which reload systemd's units instead.
set(deb_dir ${PROJECT_SOURCE_DIR}/resources/debian)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${deb_dir}/conffiles ${deb_dir}/triggers ${deb_dir}/postinst ${deb_dir}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_GENERATOR DEB)
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/node_modules/")
include(CPack)
