#include "instant.h"

#include "hybridclock.h"

#include <QDateTime>
#include <QRegularExpression>

namespace Instant {

namespace {

// The physical part of a clock value has 48 bits.
constexpr qint64 MaxMs = (qint64(1) << 48) - 1;

std::optional<qint64> unitMs(QChar unit)
{
    switch (unit.toLatin1()) {
    case 's': return 1000;
    case 'm': return 60 * 1000;
    case 'h': return 3600 * 1000;
    case 'd': return 24 * 3600 * 1000;
    case 'w': return 7 * 24 * 3600 * 1000;
    }
    return std::nullopt;
}

// "12h" -> ms; nullopt when it is not a count and a unit.
std::optional<qint64> countAndUnit(const QString &text)
{
    static const QRegularExpression pattern(QStringLiteral("^(\\d{1,9})([smhdw])$"));
    const QRegularExpressionMatch m = pattern.match(text);
    if (!m.hasMatch())
        return std::nullopt;
    return m.captured(1).toLongLong() * *unitMs(m.captured(2).at(0));
}

} // namespace

std::optional<quint64> parse(const QString &text, qint64 nowMs, QString *error)
{
    const QString t = text.trimmed();
    auto fail = [&](const QString &why) -> std::optional<quint64> {
        if (error)
            *error = QStringLiteral("'%1' is not a time%2: use ISO 8601 (2024-05-01T14:02:17Z; local time without an "
                                    "offset), a relative time (-30s, -10m, -2h, -1d), now, or hlc:N")
                         .arg(text, why);
        return std::nullopt;
    };
    if (t.startsWith(QLatin1String("hlc:"))) {
        bool ok = false;
        const quint64 hlc = t.mid(4).toULongLong(&ok);
        return ok ? std::optional<quint64>(hlc) : fail(QStringLiteral(" (hlc:N takes a clock value)"));
    }
    qint64 ms = 0;
    if (t == QLatin1String("now")) {
        ms = nowMs;
    } else if (t.startsWith(QLatin1Char('-'))) {
        const std::optional<qint64> ago = countAndUnit(t.mid(1));
        if (!ago)
            return fail(QString());
        ms = nowMs - *ago;
    } else {
        QDateTime when = QDateTime::fromString(t, Qt::ISODateWithMs);
        if (!when.isValid()) {
            // A date alone is midnight where the user is.
            const QDate date = QDate::fromString(t, Qt::ISODate);
            if (date.isValid())
                when = date.startOfDay();
        }
        if (!when.isValid())
            return fail(QString());
        ms = when.toMSecsSinceEpoch();
    }
    if (ms < 0 || ms > MaxMs)
        return fail(QStringLiteral(" a clock can hold (1970 to year 10889)"));
    return HybridClock::pack(ms, (1u << HybridClock::LogicalBits) - 1);
}

std::optional<qint64> parseDuration(const QString &text, QString *error)
{
    const QString t = text.trimmed();
    if (t == QLatin1String("0"))
        return 0;
    const std::optional<qint64> ms = countAndUnit(t);
    if (!ms && error)
        *error = QStringLiteral("'%1' is not a duration: use a number and a unit (30s, 10m, 2h, 7d, 1w), or 0").arg(text);
    return ms;
}

QString isoText(quint64 hlc)
{
    return QDateTime::fromMSecsSinceEpoch(HybridClock::physicalPart(hlc), Qt::UTC).toString(Qt::ISODateWithMs);
}

} // namespace Instant
