#pragma once

#include <QtGlobal>

/// \file
/// The export macro of the library's public classes.

/// \def DISTMAP_EXPORT
/// DISTMAP_EXPORT marks the classes libdistmap.so exports; everything else
/// in it is hidden (the build uses -fvisibility=hidden). DISTMAP_BUILDING is
/// defined while compiling the library's sources; DISTMAP_STATIC by targets
/// that link the static internal libraries (distmap_net, distmap_core)
/// instead of the shared one.
#if defined(DISTMAP_STATIC)
#  define DISTMAP_EXPORT
#elif defined(DISTMAP_BUILDING)
#  define DISTMAP_EXPORT Q_DECL_EXPORT
#else
#  define DISTMAP_EXPORT Q_DECL_IMPORT
#endif
