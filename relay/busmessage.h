#pragma once

#include <QByteArray>
#include <QString>

// What relays tell each other over the Redis bus (docs/SCALING.md). Plain
// C++: encoded and decoded here, fuzzed and tested directly.
//
// Every message names its sender (relay id and incarnation, so a relay
// drops its own and a restarted relay's old peers can be told apart) and
// numbers itself per sender and channel (seq), so a receiver sees a gap.
struct BusMessage
{
    enum class Kind : quint8 {
        Frame = 1,     // a routed message of `peer`; to `target` only, or (0) to every member
        Joined = 2,    // `peer` opened the map on the sender (body: presence JSON)
        Left = 3,      // `peer` left the map
        Presence = 4,  // `peer` changed its presence (body: presence JSON)
        Ready = 5,     // `peer` finished its sync and may serve
        Roster = 6,    // the sender just subscribed: every relay announces its members again
        Heartbeat = 7, // on the relays' channel, every 2 s
        Bye = 8,       // the sender is shutting down: drop its peers now
    };
    static constexpr quint8 FlagReady = 0x01;    // Joined: the member is ready
    static constexpr quint8 FlagWritable = 0x02; // Joined: it may write (and so serve syncs)
    // Heartbeat: the sender's first since it (re)connected to Redis. What it
    // published while away is lost, Lefts included: the others forget its
    // members unless it announces them again (docs/SCALING.md).
    static constexpr quint8 FlagHello = 0x04;
    static constexpr int HeaderSize = 2 + 1 + 1 + 8 * 5 + 1;
    static constexpr quint8 Version = 1;

    Kind kind = Kind::Frame;
    quint64 relay = 0;
    quint64 incarnation = 0;
    quint64 seq = 0;
    quint64 peer = 0;
    quint64 target = 0;
    quint8 flags = 0;
    QByteArray body;

    QByteArray encode() const;
    // False, with *error, for anything that is not a whole message of a
    // known kind and version.
    static bool decode(const QByteArray &bytes, BusMessage *out, QString *error);

    // The channel of a map: a hash tag of the URI's FNV-1a 64, so every
    // message of a map lands on one Redis Cluster shard when there is one.
    static QByteArray mapChannel(const QString &uri);
    static QByteArray relaysChannel() { return QByteArrayLiteral("dm:relays"); }
};
