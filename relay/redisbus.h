#pragma once

#include "busmessage.h"
#include "redisconnection.h"

#include <QElapsedTimer>
#include <QHash>
#include <QObject>
#include <QTimer>

// The relays' bus over Redis pub/sub: one channel per map (sharded pub/sub,
// SSUBSCRIBE/SPUBLISH) that a relay subscribes to while its own peers have
// the map open, and one channel for heartbeats. Two connections, one that
// publishes and one that listens, reopened with backoff when they fail.
// It knows nothing of peers: Relay says what to publish and acts on what
// arrives. See docs/SCALING.md.
class RedisBus : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY(RedisBus)
public:
    struct Timing
    {
        int heartbeatMs = 2000;     // a heartbeat on dm:relays this often
        int relayTimeoutMs = 6000;  // a relay silent this long is dead
        int unsubscribeMs = 5000;   // keep a map's channel this long after its last local peer
        int maxBackoffMs = 5000;    // reconnect backoff: 100 ms, doubling, up to this
    };

    RedisBus(const RedisConnection::Address &address, quint64 relayId, const Timing &timing, QObject *parent = nullptr);
    ~RedisBus() override;

    void start();
    quint64 relayId() const { return m_relay; }
    quint64 incarnation() const { return m_incarnation; }
    bool isConnected() const { return m_connected; }

    // Subscribes to uri's channel (at once, or when the bus is back).
    void subscribe(const QString &uri);
    // Unsubscribes after Timing::unsubscribeMs unless subscribe() comes first.
    void unsubscribe(const QString &uri);
    // Redis confirmed the subscription: what is published there now arrives.
    bool isSubscribed(const QString &uri) const { return m_maps.value(BusMessage::mapChannel(uri)).subscribed; }

    enum class Sent { Ok, NotConnected, QueueFull };
    // Stamps the sender and the channel's next seq, and publishes it once.
    Sent publish(const QString &uri, BusMessage message);

    struct Stats
    {
        quint64 published = 0;
        quint64 received = 0;
        quint64 ownDropped = 0; // our own messages, back from Redis
        quint64 gaps = 0;
        quint64 reconnects = 0;
        quint64 notConnectedDrops = 0;
        int channels = 0;
        int relays = 0; // other relays heard from
    };
    Stats stats() const;

Q_SIGNALS:
    // Connected again after a failure (or for the first time): whatever was
    // published meanwhile is lost, and others may have dropped our peers.
    void connectedChanged(bool connected);
    // uri's channel is subscribed (again, after a reconnect, when `again`):
    // the time to ask the others for their members.
    void channelReady(const QString &uri, bool again);
    // A message of another relay about uri.
    void messageReceived(const QString &uri, const BusMessage &message);
    // Messages from a relay on uri's channel were lost (a gap in its seq):
    // the peers there should compare digests.
    void gapDetected(const QString &uri);
    // A relay (that incarnation) is gone: dead, restarted or said bye.
    void relayLost(quint64 relay, quint64 incarnation);
    // A relay we knew connected to Redis again: what it published while
    // away is lost, so its members must be announced again.
    void relayReconnected(quint64 relay);
    void logMessage(const QString &line);

private:
    struct MapChannel
    {
        QString uri;
        quint64 nextSeq = 1;
        bool subscribed = false; // confirmed by Redis
        bool everSubscribed = false;
        qint64 unsubscribeAtMs = -1;
    };
    struct OtherRelay
    {
        quint64 incarnation = 0;
        qint64 lastHeardMs = 0;
        QHash<QByteArray, quint64> lastSeq; // per channel
    };

    void openConnections();
    void onOpened();
    void onClosed(const QString &reason);
    void onReply(const RedisReply &reply);
    void onTick();
    void handle(const QByteArray &channel, const QByteArray &payload);
    void setConnected(bool connected);
    void sendHeartbeat(quint8 flags);

    RedisConnection::Address m_address;
    quint64 m_relay = 0;
    quint64 m_incarnation = 0;
    Timing m_timing;
    RedisConnection *m_pub = nullptr;
    RedisConnection *m_sub = nullptr;
    QHash<QByteArray, MapChannel> m_maps;
    QHash<QString, QByteArray> m_channelOf; // uri -> channel, so publish() hashes no URI
    QHash<quint64, OtherRelay> m_relays;
    QTimer m_tick;
    QTimer m_retry;
    QElapsedTimer m_clock;
    qint64 m_nextHeartbeatMs = 0;
    qint64 m_lastOwnHeartbeatMs = 0; // our own heartbeat came back: the round trip works
    quint64 m_heartbeatSeq = 1;
    int m_backoffMs = 100;
    bool m_connected = false;
    Stats m_stats;
};
