#pragma once

#include "control.h"
#include "wire.h"

#include <QByteArray>

// One map's view of a connection to a relay: what a map sends through, and
// what the connection delivers to it. Connection implements it (one channel
// per attached map); a test can put anything else behind a map, and test a
// Connection without a map (tests/tst_connection.cpp).
//
// Everything happens in the connection's thread.

// The map side (MapChannel::Receiver). The connection decodes control
// messages and routes them by map URI (opened) or map id (everything else),
// so a receiver only ever sees messages about its own map. A class of its
// own, not nested, so that connection.h (a public header) can declare
// Connection::openChannel() without including this internal one.
class MapChannelReceiver
{
public:
    virtual ~MapChannelReceiver() = default;
    // The handshake is done: open the map now. relayClockOffsetMs is the
    // relay's wall clock minus ours.
    virtual void channelUp(qint64 relayClockOffsetMs) = 0;
    // The link dropped (it will come back) or the connection closed.
    virtual void channelDown() = 0;
    // The connection is being destroyed; the channel is dead from now on.
    virtual void channelGone() = 0;
    virtual void opened(const Control::Opened &message) = 0;
    virtual void joined(const Control::Joined &message) = 0;
    virtual void left(const Control::Left &message) = 0;
    virtual void presenceChanged(const Control::Presence &message) = 0;
    virtual void alone(const Control::Alone &message) = 0;
    // The relay may have lost messages of this map (a relay bus gap).
    virtual void verifyRequested() = 0;
    // An error the relay reported about this map (its id in the error).
    virtual void relayError(const Control::Error &error, const QString &text) = 0;
    virtual void frameReceived(const Wire::Header &header, const QByteArray &frame) = 0;
};

class MapChannel
{
public:
    using Receiver = MapChannelReceiver;

    virtual ~MapChannel() = default;

    virtual quint64 peerId() const = 0;
    // True between the relay's welcome and the link dropping.
    virtual bool isUp() const = 0;
    // The largest message the relay accepts (announced in its welcome).
    virtual qint64 maxMessageBytes() const = 0;
    virtual void sendControl(const QByteArray &text) = 0;
    virtual void sendFrame(const QByteArray &frame) = 0;
    // The relay's id for this map on this connection (0: not open). Frames
    // and messages carrying it reach this channel's receiver.
    virtual void setMapId(quint32 id) = 0;
};
