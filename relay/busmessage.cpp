#include "busmessage.h"

#include "mapstate.h"

#include <QtEndian>

namespace {

void appendU64(QByteArray &out, quint64 v)
{
    char b[8];
    qToLittleEndian(v, b);
    out.append(b, 8);
}

} // namespace

QByteArray BusMessage::encode() const
{
    QByteArray out;
    out.reserve(HeaderSize + body.size());
    out.append("DM", 2);
    out.append(char(Version));
    out.append(char(kind));
    appendU64(out, relay);
    appendU64(out, incarnation);
    appendU64(out, seq);
    appendU64(out, peer);
    appendU64(out, target);
    out.append(char(flags));
    out.append(body);
    return out;
}

bool BusMessage::decode(const QByteArray &bytes, BusMessage *out, QString *error)
{
    if (bytes.size() < HeaderSize || !bytes.startsWith("DM")) {
        *error = QStringLiteral("not a bus message (%1 bytes)").arg(bytes.size());
        return false;
    }
    if (quint8(bytes[2]) != Version) {
        *error = QStringLiteral("bus message version %1, this relay speaks %2").arg(quint8(bytes[2])).arg(Version);
        return false;
    }
    const quint8 kind = quint8(bytes[3]);
    if (kind < quint8(Kind::Frame) || kind > quint8(Kind::Bye)) {
        *error = QStringLiteral("unknown bus message kind %1").arg(kind);
        return false;
    }
    const char *p = bytes.constData() + 4;
    BusMessage m;
    m.kind = Kind(kind);
    m.relay = qFromLittleEndian<quint64>(p);
    m.incarnation = qFromLittleEndian<quint64>(p + 8);
    m.seq = qFromLittleEndian<quint64>(p + 16);
    m.peer = qFromLittleEndian<quint64>(p + 24);
    m.target = qFromLittleEndian<quint64>(p + 32);
    m.flags = quint8(p[40]);
    m.body = bytes.mid(HeaderSize);
    if (m.relay == 0) {
        *error = QStringLiteral("bus message from relay id 0");
        return false;
    }
    *out = m;
    return true;
}

QByteArray BusMessage::mapChannel(const QString &uri)
{
    // The digest's key hash (FNV-1a 64 of the UTF-8 bytes) serves as well here.
    return "dm:{" + QByteArray::number(MapState::keyHash(uri), 16).rightJustified(16, '0') + "}:map";
}
