#include "goldenjson.h"

namespace GoldenJson {

namespace {

QString u64(quint64 v) { return QString::number(v); }

bool readU64(const QJsonValue &value, quint64 *out)
{
    bool ok = false;
    *out = value.toString().toULongLong(&ok);
    return ok;
}

QJsonArray digestToJson(const QVector<quint64> &digest)
{
    QJsonArray words;
    for (quint64 w : digest)
        words.append(u64(w));
    return words;
}

bool digestFromJson(const QJsonValue &value, QVector<quint64> *out)
{
    for (const QJsonValue &w : value.toArray()) {
        quint64 word = 0;
        if (!readU64(w, &word))
            return false;
        out->append(word);
    }
    return true;
}

QJsonArray entriesToJson(const QVector<Wire::DecodedEntry> &entries)
{
    QJsonArray out;
    for (const Wire::DecodedEntry &e : entries)
        out.append(entryToJson(e.key, e.entry));
    return out;
}

bool appendEntries(QByteArray &out, const QJsonValue &value)
{
    for (const QJsonValue &v : value.toArray()) {
        const QJsonObject o = v.toObject();
        Entry entry;
        entry.tombstone = o.value(QLatin1String("kind")).toString() == QLatin1String("delete");
        if (!entry.tombstone)
            entry.value = o.value(QLatin1String("value")).toString().toUtf8();
        if (!readU64(o.value(QLatin1String("hlc")), &entry.hlc) || !readU64(o.value(QLatin1String("writer")), &entry.writer))
            return false;
        Wire::appendEntry(out, o.value(QLatin1String("key")).toString(), entry);
    }
    return true;
}

} // namespace

QString typeName(Wire::Type type)
{
    switch (type) {
    case Wire::Type::Delta: return QStringLiteral("Delta");
    case Wire::Type::SyncRequest: return QStringLiteral("SyncRequest");
    case Wire::Type::SyncData: return QStringLiteral("SyncData");
    case Wire::Type::SyncAck: return QStringLiteral("SyncAck");
    case Wire::Type::WriteAck: return QStringLiteral("WriteAck");
    case Wire::Type::Repair: return QStringLiteral("Repair");
    }
    return QString();
}

QJsonObject entryToJson(const QString &key, const Entry &entry)
{
    QJsonObject o{{QStringLiteral("kind"), entry.tombstone ? QStringLiteral("delete") : QStringLiteral("set")},
                  {QStringLiteral("hlc"), u64(entry.hlc)},
                  {QStringLiteral("writer"), u64(entry.writer)},
                  {QStringLiteral("key"), key}};
    if (!entry.tombstone)
        o.insert(QStringLiteral("value"), QString::fromUtf8(entry.value));
    return o;
}

QJsonObject describe(const QByteArray &frame, QString *error)
{
    Wire::Header header;
    Wire::DecodeError e = Wire::decodeHeader(frame, &header);
    const char *payload = frame.constData() + Wire::HeaderSize;
    const qsizetype size = frame.size() - Wire::HeaderSize;
    QJsonObject m{{QStringLiteral("type"), typeName(header.type)},
                  {QStringLiteral("flags"), int(header.flags)},
                  {QStringLiteral("map"), qint64(header.mapId)},
                  {QStringLiteral("peer"), u64(header.peer)}};
    if (e == Wire::DecodeError::NoError) {
        switch (header.type) {
        case Wire::Type::Delta:
        case Wire::Type::Repair: {
            QVector<Wire::DecodedEntry> entries;
            e = Wire::decodeEntries(payload, size, &entries);
            m.insert(QStringLiteral("entries"), entriesToJson(entries));
            break;
        }
        case Wire::Type::SyncRequest: {
            Wire::SyncRequest r;
            e = Wire::decodeSyncRequest(payload, size, &r);
            m.insert(QStringLiteral("syncId"), qint64(r.syncId));
            m.insert(QStringLiteral("since"), u64(r.since));
            m.insert(QStringLiteral("bucketCount"), int(r.digest.size()));
            m.insert(QStringLiteral("digest"), digestToJson(r.digest));
            break;
        }
        case Wire::Type::SyncData: {
            Wire::SyncChunk c;
            e = Wire::decodeSyncChunk(payload, size, &c);
            m.insert(QStringLiteral("syncId"), qint64(c.syncId));
            m.insert(QStringLiteral("seq"), qint64(c.seq));
            m.insert(QStringLiteral("final"), c.final);
            m.insert(QStringLiteral("bucketCount"), int(c.digest.size()));
            m.insert(QStringLiteral("digest"), digestToJson(c.digest));
            m.insert(QStringLiteral("entries"), entriesToJson(c.entries));
            break;
        }
        case Wire::Type::SyncAck: {
            Wire::SyncAck a;
            e = Wire::decodeSyncAck(payload, size, &a);
            m.insert(QStringLiteral("syncId"), qint64(a.syncId));
            m.insert(QStringLiteral("seq"), qint64(a.seq));
            break;
        }
        case Wire::Type::WriteAck: {
            Wire::WriteAck a;
            e = Wire::decodeWriteAck(payload, size, &a);
            m.insert(QStringLiteral("durable"), a.durable);
            QJsonArray hlcs;
            for (quint64 h : a.hlcs)
                hlcs.append(u64(h));
            m.insert(QStringLiteral("hlcs"), hlcs);
            break;
        }
        }
    }
    if (e != Wire::DecodeError::NoError) {
        *error = Wire::decodeErrorText(e);
        return {};
    }
    return m;
}

QByteArray encode(const QJsonObject &m, QString *error)
{
    const QString type = m.value(QLatin1String("type")).toString();
    Wire::Header header;
    bool known = false;
    for (Wire::Type t : {Wire::Type::Delta, Wire::Type::SyncRequest, Wire::Type::SyncData, Wire::Type::SyncAck,
                         Wire::Type::WriteAck, Wire::Type::Repair}) {
        if (typeName(t) == type) {
            header.type = t;
            known = true;
        }
    }
    header.flags = quint8(m.value(QLatin1String("flags")).toInt());
    header.mapId = quint32(m.value(QLatin1String("map")).toInteger());
    if (!known || !readU64(m.value(QLatin1String("peer")), &header.peer)) {
        *error = QStringLiteral("bad type or peer");
        return {};
    }
    QByteArray out;
    Wire::appendHeader(out, header);
    bool ok = true;
    switch (header.type) {
    case Wire::Type::Delta:
    case Wire::Type::Repair:
        ok = appendEntries(out, m.value(QLatin1String("entries")));
        break;
    case Wire::Type::SyncRequest: {
        Wire::SyncRequest r;
        r.syncId = quint32(m.value(QLatin1String("syncId")).toInteger());
        ok = readU64(m.value(QLatin1String("since")), &r.since) && digestFromJson(m.value(QLatin1String("digest")), &r.digest);
        out += Wire::encodeSyncRequest(r);
        break;
    }
    case Wire::Type::SyncData: {
        QVector<quint64> digest;
        ok = digestFromJson(m.value(QLatin1String("digest")), &digest);
        Wire::appendSyncChunkHead(out, quint32(m.value(QLatin1String("syncId")).toInteger()),
                                  quint32(m.value(QLatin1String("seq")).toInteger()),
                                  m.value(QLatin1String("final")).toBool(), digest);
        ok = ok && appendEntries(out, m.value(QLatin1String("entries")));
        break;
    }
    case Wire::Type::SyncAck:
        out += Wire::encodeSyncAck({quint32(m.value(QLatin1String("syncId")).toInteger()),
                                    quint32(m.value(QLatin1String("seq")).toInteger())});
        break;
    case Wire::Type::WriteAck: {
        Wire::WriteAck a;
        a.durable = m.value(QLatin1String("durable")).toBool();
        for (const QJsonValue &h : m.value(QLatin1String("hlcs")).toArray()) {
            quint64 hlc = 0;
            ok = ok && readU64(h, &hlc);
            a.hlcs.append(hlc);
        }
        out += Wire::encodeWriteAck(a);
        break;
    }
    }
    if (!ok) {
        *error = QStringLiteral("a 64-bit field is not a decimal string");
        return {};
    }
    return out;
}

} // namespace GoldenJson
