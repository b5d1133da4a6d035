#include "uiformat.h"

#include "displayformat.h"

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
