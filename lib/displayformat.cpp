#include "displayformat.h"

#include "hybridclock.h"
#include "jsontext.h"
#include "wire.h"

namespace DisplayFormat {

QString peerId(quint64 peer)
{
    return Wire::peerToString(peer);
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
