#pragma once

#include "distributedmap.h"

#include <QColor>
#include <QLoggingCategory>
#include <QString>

class QPalette;

Q_DECLARE_LOGGING_CATEGORY(lcUi) // distmap.ui

// Small presentation helpers shared by the inspector's models and widgets,
// kept in one place so every view names peers and times the same way.
namespace UiFormat {

// First 8 hex digits of a peer id: enough to tell peers apart on screen.
QString shortPeerId(quint64 peer);
// "Ada (1a2b3c4d)" or just the short id when the peer has no name.
QString peerLabel(const QString &name, quint64 peer);
// Wall-clock time of a hybrid clock stamp, "HH:mm:ss.zzz".
QString clockTime(quint64 hlc);
// Time and logical counter, "HH:mm:ss.zzz #3", for the deltas log.
QString clockStamp(quint64 hlc);
QString timeOfDay(qint64 msSinceEpoch);
// Elides text longer than maxChars with an ellipsis (display only).
QString elided(const QString &text, int maxChars);

// The status bar's words for a map's SyncStatus: the link, then the local
// changes the relay has not confirmed and, with a store, whether they are
// on disk ("synced", "offline, 3 changes not sent, saving…").
QString syncStatusText(const DistributedMap::SyncStatus &status);
// Its tooltip: since when the oldest change waits (a time, so it never
// goes stale on screen), and what the store holds.
QString syncStatusToolTip(const DistributedMap::SyncStatus &status);

// Colours derived from the palette so light and dark themes both read well.
QColor flashColor(const QPalette &palette, qreal intensity);
QColor warningRowColor(const QPalette &palette);
QColor mutedTextColor(const QPalette &palette);

} // namespace UiFormat
