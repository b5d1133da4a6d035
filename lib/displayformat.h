#pragma once

#include <QByteArray>
#include <QByteArrayView>
#include <QJsonValue>
#include <QString>

// How peers, clocks and values are written for people and for line-oriented
// output, so the inspector, the command line and logs name them alike.
// Public API: apps use this instead of reaching into lib/core's codec,
// clock or JSON helpers, whose layout may change. Pure functions, any thread.
namespace DisplayFormat {

// A peer id as 16 lowercase hex digits, as logs and the protocol docs write it.
QString peerId(quint64 peer);

// First 8 hex digits of a peer id: enough to tell peers apart on screen.
QString shortPeerId(quint64 peer);
// Local wall-clock time of a write's clock stamp, "HH:mm:ss.zzz" (empty for 0).
QString clockTime(quint64 hlc);
// text cut to maxChars with an ellipsis when longer (display only).
QString elided(const QString &text, int maxChars);
// The same for UTF-8 text (a value's JSON), reading at most 4 × maxChars
// bytes of it: a long value is never converted whole for display.
QString elidedUtf8(QByteArrayView utf8, int maxChars);

// The wall-clock part of a write's hybrid clock stamp, ms since the epoch.
qint64 clockMsSinceEpoch(quint64 hlc);
// The logical counter that orders writes within one millisecond.
quint32 clockCounter(quint64 hlc);

// Compact JSON text of any defined value, scalars included (QJsonDocument
// alone only takes objects and arrays); empty for Undefined.
QByteArray jsonText(const QJsonValue &value);
// Parses exactly one JSON value, scalars included. On failure returns
// Undefined and, when error is given, says what is wrong and where.
QJsonValue parseJson(const QByteArray &text, QString *error = nullptr);

} // namespace DisplayFormat
