#include "uiformat.h"

#include "displayformat.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QPalette>

Q_LOGGING_CATEGORY(lcUi, "distmap.ui", QtWarningMsg)

namespace UiFormat {

QString shortPeerId(quint64 peer)
{
    return DisplayFormat::shortPeerId(peer);
}

QString peerLabel(const QString &name, quint64 peer)
{
    if (name.isEmpty())
        return shortPeerId(peer);
    return QStringLiteral("%1 (%2)").arg(name, shortPeerId(peer));
}

QString syncStatusText(const DistributedMap::SyncStatus &status)
{
    const int n = status.pendingWrites;
    QString text;
    switch (status.state) {
    case DistributedMap::SyncStatus::Offline:
        text = n ? QCoreApplication::translate("UiFormat", "offline, %n change(s) not sent", nullptr, n)
                 : QCoreApplication::translate("UiFormat", "offline");
        break;
    case DistributedMap::SyncStatus::Syncing:
        text = n ? QCoreApplication::translate("UiFormat", "syncing\u2026, %n change(s) to send", nullptr, n)
                 : QCoreApplication::translate("UiFormat", "syncing\u2026");
        break;
    case DistributedMap::SyncStatus::Synced:
        text = n ? QCoreApplication::translate("UiFormat", "synced, %n change(s) unconfirmed", nullptr, n)
                 : QCoreApplication::translate("UiFormat", "synced");
        break;
    }
    if (status.hasStore && !status.onDisk)
        text += QCoreApplication::translate("UiFormat", ", saving\u2026");
    return text;
}

QString syncStatusToolTip(const DistributedMap::SyncStatus &status)
{
    QStringList lines;
    if (status.pendingWrites)
        lines << QCoreApplication::translate("UiFormat", "The relay has not confirmed %n local change(s); the oldest was made at %1.",
                                             nullptr, status.pendingWrites)
                     .arg(QDateTime::fromMSecsSinceEpoch(status.oldestPendingSinceMs).toString(QStringLiteral("HH:mm:ss")));
    else
        lines << QCoreApplication::translate("UiFormat", "The relay has every local change.");
    if (!status.hasStore)
        lines << QCoreApplication::translate("UiFormat", "No local store: this copy lives in memory only.");
    else if (status.onDisk)
        lines << QCoreApplication::translate("UiFormat", "Every change is on disk.");
    else
        lines << QCoreApplication::translate("UiFormat", "Changes are being written to disk.");
    return lines.join(QLatin1Char('\n'));
}

QString timeOfDay(qint64 msSinceEpoch)
{
    return QDateTime::fromMSecsSinceEpoch(msSinceEpoch).toString(QStringLiteral("HH:mm:ss.zzz"));
}

QString clockTime(quint64 hlc)
{
    return DisplayFormat::clockTime(hlc);
}

QString clockStamp(quint64 hlc)
{
    if (hlc == 0)
        return QString();
    return QStringLiteral("%1 #%2").arg(clockTime(hlc)).arg(DisplayFormat::clockCounter(hlc));
}

QString elided(const QString &text, int maxChars)
{
    return DisplayFormat::elided(text, maxChars);
}

static QColor blend(const QColor &a, const QColor &b, qreal t)
{
    return QColor::fromRgbF(a.redF() + (b.redF() - a.redF()) * t, a.greenF() + (b.greenF() - a.greenF()) * t,
                            a.blueF() + (b.blueF() - a.blueF()) * t);
}

QColor flashColor(const QPalette &palette, qreal intensity)
{
    // Not the highlight colour, or a flash would read as a selection; a
    // mid-tone green at partial strength stays readable on light and dark bases.
    return blend(palette.color(QPalette::Base), QColor(60, 179, 113), 0.5 * qBound(0.0, intensity, 1.0));
}

QColor warningRowColor(const QPalette &palette)
{
    const bool dark = palette.color(QPalette::Base).lightnessF() < 0.5;
    return blend(palette.color(QPalette::Base), QColor(255, 140, 0), dark ? 0.35 : 0.28);
}

QColor mutedTextColor(const QPalette &palette)
{
    return blend(palette.color(QPalette::Text), palette.color(QPalette::Base), 0.45);
}

} // namespace UiFormat
