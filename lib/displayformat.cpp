#include "displayformat.h"

#include <QDateTime>

#include "hybridclock.h"
#include "jsontext.h"
#include "wire.h"

namespace DisplayFormat {

QString peerId(quint64 peer)
{
    return Wire::peerToString(peer);
}

QString shortPeerId(quint64 peer)
{
    return QStringLiteral("%1").arg(peer >> 32, 8, 16, QLatin1Char('0'));
}

QString clockTime(quint64 hlc)
{
    if (hlc == 0)
        return QString();
    return QDateTime::fromMSecsSinceEpoch(clockMsSinceEpoch(hlc)).toString(QStringLiteral("HH:mm:ss.zzz"));
}

QString elided(const QString &text, int maxChars)
{
    if (text.size() <= maxChars)
        return text;
    return text.left(maxChars - 1) + QChar(0x2026);
}

QString elidedUtf8(QByteArrayView utf8, int maxChars)
{
    return elided(QString::fromUtf8(utf8.first(qMin(utf8.size(), qsizetype(maxChars) * 4))), maxChars);
}

qint64 clockMsSinceEpoch(quint64 hlc)
{
    return HybridClock::physicalPart(hlc);
}

quint32 clockCounter(quint64 hlc)
{
    return HybridClock::logicalPart(hlc);
}

QByteArray jsonText(const QJsonValue &value)
{
    return JsonText::encode(value);
}

QJsonValue parseJson(const QByteArray &text, QString *error)
{
    return JsonText::decode(text, error);
}

} // namespace DisplayFormat
