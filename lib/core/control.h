#pragma once

#include "wire.h"

#include <QByteArray>
#include <QJsonObject>
#include <QJsonValue>
#include <QString>
#include <QVector>

// Control messages: text frames holding one JSON object with a string
// member "type" (docs/PROTOCOL.md sections 3, 4 and 6). One encode/decode
// pair per message, so no other code builds or parses this JSON by hand.
//
// Decoding is two steps: decodeMessage() checks the frame is a JSON object
// and names its type; then the decoder for that type reads the members.
// Decoders never throw or assert; they return an error and, through `why`,
// a sentence fit for an error message. Unknown members are ignored, as the
// protocol requires.
namespace Control {

constexpr int MaxUriBytes = 1024;
constexpr int MaxPresenceBytes = 4096;

enum class Type {
    Unknown = 0, // a type this codec does not know (or none at all)
    Hello,       // peer -> relay
    Welcome,     // relay -> peer
    Open,        // peer -> relay
    Opened,      // relay -> peer
    Close,       // peer -> relay
    Presence,    // both ways: peer -> relay without "peer", relay -> peer with it
    Joined,      // relay -> peer
    Left,        // relay -> peer
    Ready,       // peer -> relay
    Alone,       // relay -> peer
    Ping,        // peer -> relay
    Pong,        // relay -> peer
    Error,       // relay -> peer
    Verify,      // relay -> peer: run a verify round, messages of the map may be lost
};
QString typeName(Type type); // "hello", ...; empty for Unknown
Type typeFromName(const QString &name);

enum class DecodeError {
    NoError = 0,
    NotJson,    // the text does not parse as JSON
    NotObject,  // valid JSON, but not an object
    BadMember,  // a member is missing or has the wrong type or value
};

// A control frame parsed as far as its type.
struct Message
{
    Type type = Type::Unknown;
    QString typeName; // as received ("" when "type" is missing or not a string)
    QJsonObject object;
};
DecodeError decodeMessage(const QByteArray &utf8, Message *out, QString *why = nullptr);

// The compact JSON text of an object, as every encoder below writes it.
QByteArray toText(const QJsonObject &object);
// Size of a presence object on the wire, for the MaxPresenceBytes limit.
qsizetype presenceBytes(const QJsonObject &presence);

struct PeerInfo
{
    quint64 peer = 0;
    QJsonObject presence;
};

// hello {version, peer?, time?}. The decoder fills `version` before it
// checks anything else (-1 when missing or not a number), so a relay can
// answer unsupported-version ahead of a malformed peer id. peer 0 = absent.
struct Hello
{
    int version = Wire::ProtocolVersion;
    QString versionText; // the version as received, for error messages
    quint64 peer = 0;
    qint64 time = 0;
};
QByteArray encodeHello(const Hello &hello);
DecodeError decodeHello(const QJsonObject &object, Hello *out, QString *why = nullptr);

// welcome {version, peer, time}. peer must be valid and non-zero.
// maxMessage: the largest message the relay accepts, in bytes (0: not
// announced; a relay that does not announce it accepts DefaultMaxMessageBytes).
struct Welcome
{
    int version = Wire::ProtocolVersion;
    quint64 peer = 0;
    qint64 time = 0; // relay wall clock (ms since epoch); 0 if absent
    qint64 maxMessage = 0;
};
QByteArray encodeWelcome(const Welcome &welcome);
DecodeError decodeWelcome(const QJsonObject &object, Welcome *out, QString *why = nullptr);

// open {map, presence?}. map: 1 to MaxUriBytes bytes of UTF-8. A presence
// that is not an object reads as empty; its size is the relay's to check.
struct Open
{
    QString map;
    QJsonObject presence;
};
QByteArray encodeOpen(const Open &open);
DecodeError decodeOpen(const QJsonObject &object, Open *out, QString *why = nullptr);

// opened {map, id, access, peers}. id must be non-zero; list items without
// a valid peer id are skipped.
struct Opened
{
    QString map;
    quint32 id = 0;
    bool writable = true; // access "rw" (true) or "ro"
    QVector<PeerInfo> peers;
};
QByteArray encodeOpened(const Opened &opened);
DecodeError decodeOpened(const QJsonObject &object, Opened *out, QString *why = nullptr);

// close, ready: {id}. A missing id reads as 0, which no map has, so the
// relay answers unknown-map rather than bad-message.
struct MapRef
{
    quint32 id = 0;
};
QByteArray encodeClose(const MapRef &ref);
QByteArray encodeReady(const MapRef &ref);
QByteArray encodeVerify(const MapRef &ref);
DecodeError decodeMapRef(const QJsonObject &object, MapRef *out, QString *why = nullptr);

// alone {id, readOnlyPeers?}: no other member can answer a sync request.
// readOnlyPeers counts ready members that hold the map but may not write
// it, so may not answer (written only when non-zero; a missing, negative or
// non-integer value reads as 0).
struct Alone
{
    quint32 id = 0;
    int readOnlyPeers = 0;
};
QByteArray encodeAlone(const Alone &alone);
DecodeError decodeAlone(const QJsonObject &object, Alone *out, QString *why = nullptr);

// presence {id, peer?, presence}: peer is absent (0) from a peer, the
// changing peer's id from the relay. id and presence are read even when
// peer is bad, so the relay can ignore a `peer` member from a peer, which
// names no one there. joined {id, peer, presence} carries the same
// members, peer required.
struct Presence
{
    quint32 id = 0;
    quint64 peer = 0;
    QJsonObject presence;
};
using Joined = Presence;
QByteArray encodePresence(const Presence &presence);
DecodeError decodePresence(const QJsonObject &object, Presence *out, QString *why = nullptr);

QByteArray encodeJoined(const Joined &joined);
DecodeError decodeJoined(const QJsonObject &object, Joined *out, QString *why = nullptr);

// left {id, peer}
struct Left
{
    quint32 id = 0;
    quint64 peer = 0;
};
QByteArray encodeLeft(const Left &left);
DecodeError decodeLeft(const QJsonObject &object, Left *out, QString *why = nullptr);

// ping {seq} and pong {seq}: the relay echoes seq as it came, whatever its
// JSON type, so it is kept as a value.
struct Ping
{
    QJsonValue seq;
};
QByteArray encodePing(const Ping &ping);
QByteArray encodePong(const Ping &pong);
DecodeError decodePing(const QJsonObject &object, Ping *out, QString *why = nullptr);

// error {code, name, message, id?}. name is derived from code when encoding.
struct Error
{
    Wire::ErrorCode code = Wire::ErrorCode::NoError;
    QString name;    // as received; the code's name when encoding
    QString message;
    quint32 id = 0;  // the map the error is about; 0 = none
    QString map;     // the URI of the `open` the error refuses; empty = none
};
QByteArray encodeError(const Error &error);
DecodeError decodeError(const QJsonObject &object, Error *out, QString *why = nullptr);

} // namespace Control
