#include "control.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonParseError>

#include <climits>

namespace Control {

namespace {

const QString TypeKey = QStringLiteral("type");
const QString IdKey = QStringLiteral("id");
const QString PeerKey = QStringLiteral("peer");
const QString PresenceKey = QStringLiteral("presence");
const QString MapKey = QStringLiteral("map");
const QString VersionKey = QStringLiteral("version");
const QString TimeKey = QStringLiteral("time");
const QString SeqKey = QStringLiteral("seq");
const QString ReadOnlyPeersKey = QStringLiteral("readOnlyPeers");
const QString MaxMessageKey = QStringLiteral("maxMessage");

struct TypeNameRow
{
    Type type;
    const char *name;
};
constexpr TypeNameRow TypeNames[] = {
    {Type::Hello, "hello"},     {Type::Welcome, "welcome"}, {Type::Open, "open"},   {Type::Opened, "opened"},
    {Type::Close, "close"},     {Type::Presence, "presence"}, {Type::Joined, "joined"}, {Type::Left, "left"},
    {Type::Ready, "ready"},     {Type::Alone, "alone"},     {Type::Ping, "ping"},   {Type::Pong, "pong"},
    {Type::Error, "error"},     {Type::Verify, "verify"},
};

QJsonObject withType(Type type)
{
    return {{TypeKey, typeName(type)}};
}

DecodeError fail(QString *why, const QString &text)
{
    if (why)
        *why = text;
    return DecodeError::BadMember;
}

// Times are integers of milliseconds; anything else (a fraction, a number
// beyond 64 bits, which a plain cast from double would make undefined)
// reads as 0, "unknown". Found by fuzz_control.
qint64 millis(const QJsonObject &object)
{
    return object.value(TimeKey).toInteger(0);
}

quint32 mapId(const QJsonObject &object)
{
    return quint32(object.value(IdKey).toInteger());
}

// Relay -> peer messages name a peer that must be valid; peer -> relay ones
// have none.
DecodeError readPeer(const QJsonObject &object, Type type, quint64 *peer, QString *why)
{
    if (!Wire::peerFromString(object.value(PeerKey).toString(), peer) || *peer == 0)
        return fail(why, QStringLiteral("%1 without a valid peer id").arg(typeName(type)));
    return DecodeError::NoError;
}

} // namespace

QString typeName(Type type)
{
    for (const TypeNameRow &row : TypeNames) {
        if (row.type == type)
            return QString::fromLatin1(row.name);
    }
    return QString();
}

Type typeFromName(const QString &name)
{
    for (const TypeNameRow &row : TypeNames) {
        if (name == QLatin1String(row.name))
            return row.type;
    }
    return Type::Unknown;
}

DecodeError decodeMessage(const QByteArray &utf8, Message *out, QString *why)
{
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(utf8, &parseError);
    if (parseError.error != QJsonParseError::NoError) {
        if (why)
            *why = QStringLiteral("control message is not valid JSON: %1").arg(parseError.errorString());
        return DecodeError::NotJson;
    }
    if (!doc.isObject()) {
        if (why)
            *why = QStringLiteral("control message is not a JSON object");
        return DecodeError::NotObject;
    }
    out->object = doc.object();
    out->typeName = out->object.value(TypeKey).toString();
    out->type = typeFromName(out->typeName);
    return DecodeError::NoError;
}

QByteArray toText(const QJsonObject &object)
{
    return QJsonDocument(object).toJson(QJsonDocument::Compact);
}

qsizetype presenceBytes(const QJsonObject &presence)
{
    return toText(presence).size();
}

// hello ----------------------------------------------------------------------

QByteArray encodeHello(const Hello &hello)
{
    QJsonObject o = withType(Type::Hello);
    o.insert(VersionKey, hello.version);
    if (hello.peer)
        o.insert(PeerKey, Wire::peerToString(hello.peer));
    if (hello.time)
        o.insert(TimeKey, hello.time);
    return toText(o);
}

DecodeError decodeHello(const QJsonObject &object, Hello *out, QString *why)
{
    const QJsonValue version = object.value(VersionKey);
    out->version = version.toInt(-1);
    out->versionText = version.toVariant().toString();
    out->time = millis(object);
    out->peer = 0;
    const QJsonValue wanted = object.value(PeerKey);
    if (!wanted.isUndefined()) {
        if (!Wire::peerFromString(wanted.toString(), &out->peer) || out->peer == 0) {
            out->peer = 0;
            return fail(why, QStringLiteral("peer must be 16 hexadecimal digits, not zero"));
        }
    }
    return DecodeError::NoError;
}

// welcome --------------------------------------------------------------------

QByteArray encodeWelcome(const Welcome &welcome)
{
    QJsonObject o = withType(Type::Welcome);
    o.insert(VersionKey, welcome.version);
    o.insert(PeerKey, Wire::peerToString(welcome.peer));
    o.insert(TimeKey, welcome.time);
    if (welcome.maxMessage > 0)
        o.insert(MaxMessageKey, welcome.maxMessage);
    return toText(o);
}

DecodeError decodeWelcome(const QJsonObject &object, Welcome *out, QString *why)
{
    out->version = object.value(VersionKey).toInt(-1);
    out->time = millis(object);
    // Not a positive integer: not announced, and the peer assumes the default.
    out->maxMessage = qMax<qint64>(0, object.value(MaxMessageKey).toInteger(0));
    return readPeer(object, Type::Welcome, &out->peer, why);
}

// open / opened ----------------------------------------------------------------

QByteArray encodeOpen(const Open &open)
{
    QJsonObject o = withType(Type::Open);
    o.insert(MapKey, open.map);
    o.insert(PresenceKey, open.presence);
    return toText(o);
}

DecodeError decodeOpen(const QJsonObject &object, Open *out, QString *why)
{
    const QJsonValue uri = object.value(MapKey);
    out->map = uri.toString();
    out->presence = object.value(PresenceKey).toObject();
    if (!uri.isString() || out->map.isEmpty() || out->map.toUtf8().size() > MaxUriBytes)
        return fail(why, QStringLiteral("open needs a map URI of 1 to %1 bytes").arg(MaxUriBytes));
    return DecodeError::NoError;
}

QByteArray encodeOpened(const Opened &opened)
{
    QJsonArray peers;
    for (const PeerInfo &p : opened.peers)
        peers.append(QJsonObject{{PeerKey, Wire::peerToString(p.peer)}, {PresenceKey, p.presence}});
    QJsonObject o = withType(Type::Opened);
    o.insert(MapKey, opened.map);
    o.insert(IdKey, qint64(opened.id));
    o.insert(QStringLiteral("access"), opened.writable ? QStringLiteral("rw") : QStringLiteral("ro"));
    o.insert(QStringLiteral("peers"), peers);
    return toText(o);
}

DecodeError decodeOpened(const QJsonObject &object, Opened *out, QString *why)
{
    out->map = object.value(MapKey).toString();
    out->id = mapId(object);
    out->writable = object.value(QStringLiteral("access")).toString() != QLatin1String("ro");
    out->peers.clear();
    const QJsonArray list = object.value(QStringLiteral("peers")).toArray();
    for (const QJsonValue &item : list) {
        PeerInfo info;
        const QJsonObject entry = item.toObject();
        if (!Wire::peerFromString(entry.value(PeerKey).toString(), &info.peer) || info.peer == 0)
            continue;
        info.presence = entry.value(PresenceKey).toObject();
        out->peers.append(info);
    }
    if (out->id == 0)
        return fail(why, QStringLiteral("relay opened %1 without a map id").arg(out->map));
    return DecodeError::NoError;
}

// close / ready / alone ----------------------------------------------------------

namespace {
QByteArray encodeMapRef(Type type, const MapRef &ref)
{
    QJsonObject o = withType(type);
    o.insert(IdKey, qint64(ref.id));
    return toText(o);
}
} // namespace

QByteArray encodeClose(const MapRef &ref) { return encodeMapRef(Type::Close, ref); }
QByteArray encodeReady(const MapRef &ref) { return encodeMapRef(Type::Ready, ref); }
QByteArray encodeVerify(const MapRef &ref) { return encodeMapRef(Type::Verify, ref); }

DecodeError decodeMapRef(const QJsonObject &object, MapRef *out, QString *)
{
    out->id = mapId(object);
    return DecodeError::NoError;
}

QByteArray encodeAlone(const Alone &alone)
{
    QJsonObject o = withType(Type::Alone);
    o.insert(IdKey, qint64(alone.id));
    if (alone.readOnlyPeers > 0)
        o.insert(ReadOnlyPeersKey, alone.readOnlyPeers);
    return toText(o);
}

DecodeError decodeAlone(const QJsonObject &object, Alone *out, QString *)
{
    out->id = mapId(object);
    out->readOnlyPeers = int(qBound(qint64(0), object.value(ReadOnlyPeersKey).toInteger(0), qint64(INT_MAX)));
    return DecodeError::NoError;
}

// presence / joined / left --------------------------------------------------------

namespace {
QByteArray encodePeerPresence(Type type, const Presence &presence)
{
    QJsonObject o = withType(type);
    o.insert(IdKey, qint64(presence.id));
    if (presence.peer)
        o.insert(PeerKey, Wire::peerToString(presence.peer));
    o.insert(PresenceKey, presence.presence);
    return toText(o);
}
} // namespace

QByteArray encodePresence(const Presence &presence)
{
    return encodePeerPresence(Type::Presence, presence);
}

DecodeError decodePresence(const QJsonObject &object, Presence *out, QString *why)
{
    out->id = mapId(object);
    out->presence = object.value(PresenceKey).toObject();
    out->peer = 0;
    if (object.contains(PeerKey))
        return readPeer(object, Type::Presence, &out->peer, why);
    return DecodeError::NoError;
}

QByteArray encodeJoined(const Joined &joined)
{
    return encodePeerPresence(Type::Joined, joined);
}

DecodeError decodeJoined(const QJsonObject &object, Joined *out, QString *why)
{
    out->id = mapId(object);
    out->presence = object.value(PresenceKey).toObject();
    return readPeer(object, Type::Joined, &out->peer, why);
}

QByteArray encodeLeft(const Left &left)
{
    QJsonObject o = withType(Type::Left);
    o.insert(IdKey, qint64(left.id));
    o.insert(PeerKey, Wire::peerToString(left.peer));
    return toText(o);
}

DecodeError decodeLeft(const QJsonObject &object, Left *out, QString *why)
{
    out->id = mapId(object);
    return readPeer(object, Type::Left, &out->peer, why);
}

// ping / pong --------------------------------------------------------------------

QByteArray encodePing(const Ping &ping)
{
    QJsonObject o = withType(Type::Ping);
    o.insert(SeqKey, ping.seq);
    return toText(o);
}

QByteArray encodePong(const Ping &pong)
{
    QJsonObject o = withType(Type::Pong);
    o.insert(SeqKey, pong.seq);
    return toText(o);
}

DecodeError decodePing(const QJsonObject &object, Ping *out, QString *)
{
    out->seq = object.value(SeqKey);
    return DecodeError::NoError;
}

// error ----------------------------------------------------------------------

QByteArray encodeError(const Error &error)
{
    QJsonObject o = withType(Type::Error);
    o.insert(QStringLiteral("code"), int(error.code));
    o.insert(QStringLiteral("name"), Wire::errorName(error.code));
    o.insert(QStringLiteral("message"), error.message);
    if (error.id)
        o.insert(IdKey, qint64(error.id));
    if (!error.map.isEmpty())
        o.insert(MapKey, error.map);
    return toText(o);
}

DecodeError decodeError(const QJsonObject &object, Error *out, QString *why)
{
    const QJsonValue code = object.value(QStringLiteral("code"));
    out->code = Wire::ErrorCode(code.toInt());
    out->name = object.value(QStringLiteral("name")).toString();
    out->message = object.value(QStringLiteral("message")).toString();
    out->id = mapId(object);
    out->map = object.value(MapKey).toString();
    if (!code.isDouble() || code.toInt() <= 0)
        return fail(why, QStringLiteral("error without a code"));
    return DecodeError::NoError;
}

} // namespace Control
