#pragma once

#include <QString>

#include <optional>

// The times people type for history questions, as hybrid clock instants
// (lib/core/hybridclock.h): what `distmap dump --at`, `diff` and `keep
// --history` read. Pure functions over QtCore.
namespace Instant {

// Parses a time:
//   ISO 8601       2024-05-01T14:02:17, .mmm optional, Z or +hh:mm optional
//                  (without one it is local time), or a date alone (local
//                  midnight);
//   relative       -30s, -10m, -2h, -1d, -1w: that long before nowMs;
//   now;
//   hlc:N          an exact clock value, as `distmap history` prints it.
// A wall-clock time stands for the end of its millisecond: every write
// stamped within it counts. On failure returns nullopt and says why in error.
std::optional<quint64> parse(const QString &text, qint64 nowMs, QString *error);

// Parses a duration: a number and a unit (s, m, h, d, w), or 0. In ms.
std::optional<qint64> parseDuration(const QString &text, QString *error);

// The wall-clock part of an instant in ISO 8601, UTC, with milliseconds.
QString isoText(quint64 hlc);

} // namespace Instant
