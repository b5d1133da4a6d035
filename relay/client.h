#pragma once

#include "tokenbucket.h"

#include <QByteArray>
#include <QHash>
#include <QJsonObject>
#include <QString>

class QTcpSocket;
class QWebSocket;

// One WebSocket connection to the relay, from the upgrade until it is gone.
// Its open maps and what it may do in each are kept here and only here;
// the map's side (MapRouter) knows only peer ids.
struct Client
{
    struct Membership
    {
        QJsonObject presence;
        bool writable = true; // from the token at open, and again at each reload
    };

    QWebSocket *socket = nullptr;
    QTcpSocket *tcp = nullptr;       // the socket under it, for a lingering close
    QString address;                 // "address:port"
    quint64 peer = 0;                // 0 until hello
    QHash<quint32, Membership> maps; // by map id
    QByteArray token;                // presented at the handshake; never logged
    TokenBucket bucket;              // over every message it sends
    qint64 connectedMs = 0;
    qint64 lastHeardMs = 0;          // last message or pong: the heartbeat's evidence of life
    bool unflushed = false;          // in Relay::m_unflushed
    bool closing = false;            // cut off: nothing more is read from it or sent to it
    // Over its rate: its socket is not read for now (Relay::slowDown), and
    // since when it has been over without its bucket refilling to full.
    bool slowed = false;
    qint64 overRateSinceNs = -1;

    bool isMember(quint32 mapId) const { return maps.contains(mapId); }
    bool isWritable(quint32 mapId) const;
    // For the log: the peer id once it has one, else its address.
    QString describe() const;
};
