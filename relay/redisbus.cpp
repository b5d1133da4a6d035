#include "redisbus.h"

#include <QRandomGenerator>

RedisBus::RedisBus(const RedisConnection::Address &address, quint64 relayId, const Timing &timing, QObject *parent)
    : QObject(parent)
    , m_address(address)
    , m_relay(relayId)
    , m_timing(timing)
{
    // A new incarnation each start: peers of the last one are dropped at once.
    do {
        m_incarnation = QRandomGenerator::system()->generate64();
    } while (m_incarnation == 0);
    m_clock.start();
    m_pub = new RedisConnection(this);
    m_sub = new RedisConnection(this);
    for (RedisConnection *c : {m_pub, m_sub}) {
        connect(c, &RedisConnection::opened, this, &RedisBus::onOpened);
        connect(c, &RedisConnection::closed, this, &RedisBus::onClosed);
    }
    connect(m_sub, &RedisConnection::replyReceived, this, &RedisBus::onReply);
    m_tick.setInterval(qMax(10, qMin(m_timing.heartbeatMs, m_timing.relayTimeoutMs) / 4));
    connect(&m_tick, &QTimer::timeout, this, &RedisBus::onTick);
    m_retry.setSingleShot(true);
    connect(&m_retry, &QTimer::timeout, this, &RedisBus::openConnections);
}

RedisBus::~RedisBus()
{
    if (m_connected) { // tell the others now rather than in 6 s
        BusMessage bye;
        bye.kind = BusMessage::Kind::Bye;
        bye.relay = m_relay;
        bye.incarnation = m_incarnation;
        m_pub->send({"PUBLISH", BusMessage::relaysChannel(), bye.encode()});
        m_pub->flushForShutdown();
    }
}

void RedisBus::start()
{
    m_tick.start();
    openConnections();
}

void RedisBus::openConnections()
{
    // Named after the relay, so an operator's CLIENT LIST says whose they are.
    const QByteArray name = "distmap-relay-" + QByteArray::number(m_relay, 16).rightJustified(16, '0');
    RedisConnection::Address address = m_address;
    if (!m_pub->isOpen()) {
        address.clientName = name + "-pub";
        m_pub->open(address);
    }
    if (!m_sub->isOpen()) {
        address.clientName = name + "-sub";
        m_sub->open(address);
    }
}

void RedisBus::onOpened()
{
    if (!m_pub->isOpen() || !m_sub->isOpen())
        return;
    m_backoffMs = 100;
    // Everything again on a fresh subscriber connection.
    m_sub->send({"SUBSCRIBE", BusMessage::relaysChannel()});
    for (auto it = m_maps.begin(); it != m_maps.end(); ++it) {
        it->subscribed = false;
        m_sub->send({"SSUBSCRIBE", it.key()});
    }
    const qint64 now = m_clock.elapsed();
    m_lastOwnHeartbeatMs = now;
    // First on the publishing connection, so the others hear it before any
    // member we announce again (Redis keeps one publisher's order).
    sendHeartbeat(BusMessage::FlagHello);
    m_nextHeartbeatMs = now + m_timing.heartbeatMs;
    // Silence while we were away says nothing about the other relays.
    for (OtherRelay &p : m_relays)
        p.lastHeardMs = now;
    setConnected(true);
}

void RedisBus::onClosed(const QString &reason)
{
    // One side down is the bus down: close the other, open both again.
    const bool was = m_connected;
    m_pub->close();
    m_sub->close();
    setConnected(false);
    if (was || !m_retry.isActive())
        Q_EMIT logMessage(QStringLiteral("redis %1:%2 unreachable (%3); retrying in %4 ms; peers here are still served")
                              .arg(m_address.host).arg(m_address.port).arg(reason).arg(m_backoffMs));
    if (!m_retry.isActive()) {
        m_retry.start(m_backoffMs);
        m_backoffMs = qMin(m_backoffMs * 2, m_timing.maxBackoffMs);
    }
}

void RedisBus::setConnected(bool connected)
{
    if (connected == m_connected)
        return;
    m_connected = connected;
    if (connected)
        ++m_stats.reconnects;
    Q_EMIT logMessage(connected ? QStringLiteral("redis bus connected to %1:%2 as relay %3")
                                      .arg(m_address.host).arg(m_address.port).arg(m_relay, 16, 16, QLatin1Char('0'))
                                : QStringLiteral("redis bus disconnected"));
    Q_EMIT connectedChanged(connected);
}

void RedisBus::subscribe(const QString &uri)
{
    const QByteArray channel = BusMessage::mapChannel(uri);
    auto it = m_maps.find(channel);
    if (it != m_maps.end()) {
        it->unsubscribeAtMs = -1;
        return;
    }
    MapChannel c;
    c.uri = uri;
    m_maps.insert(channel, c);
    m_channelOf.insert(uri, channel);
    if (m_connected)
        m_sub->send({"SSUBSCRIBE", channel});
}

void RedisBus::unsubscribe(const QString &uri)
{
    auto it = m_maps.find(BusMessage::mapChannel(uri));
    if (it != m_maps.end())
        it->unsubscribeAtMs = m_clock.elapsed() + m_timing.unsubscribeMs;
}

RedisBus::Sent RedisBus::publish(const QString &uri, BusMessage message)
{
    const QByteArray channel = m_channelOf.value(uri);
    auto it = m_maps.find(channel);
    if (!m_connected || it == m_maps.end()) {
        ++m_stats.notConnectedDrops;
        // Lost, but numbered all the same: the others see the gap in our
        // seq and ask their peers for a digest round.
        if (it != m_maps.end())
            ++it->nextSeq;
        return Sent::NotConnected;
    }
    message.relay = m_relay;
    message.incarnation = m_incarnation;
    message.seq = it->nextSeq;
    if (!m_pub->send({"SPUBLISH", channel, message.encode()}))
        return Sent::QueueFull;
    ++it->nextSeq;
    ++m_stats.published;
    return Sent::Ok;
}

void RedisBus::onReply(const RedisReply &reply)
{
    if (reply.type != RedisReply::Type::Array || reply.elements.size() < 3)
        return;
    const QByteArray kind = reply.at(0);
    if (kind == "message" || kind == "smessage") {
        handle(reply.at(1), reply.at(2));
    } else if (kind == "ssubscribe") {
        auto it = m_maps.find(reply.at(1));
        if (it != m_maps.end() && !it->subscribed) {
            it->subscribed = true;
            const bool again = it->everSubscribed;
            it->everSubscribed = true;
            Q_EMIT channelReady(it->uri, again);
        }
    }
}

void RedisBus::handle(const QByteArray &channel, const QByteArray &payload)
{
    BusMessage m;
    QString error;
    if (!BusMessage::decode(payload, &m, &error)) {
        Q_EMIT logMessage(QStringLiteral("redis bus: dropped a message on %1: %2").arg(QString::fromUtf8(channel), error));
        return;
    }
    const qint64 now = m_clock.elapsed();
    if (m.relay == m_relay) {
        if (m.incarnation == m_incarnation && m.kind == BusMessage::Kind::Heartbeat)
            m_lastOwnHeartbeatMs = now; // the liveness probe: Redis carries our messages
        else
            ++m_stats.ownDropped;
        return;
    }
    auto known = m_relays.find(m.relay);
    if (known != m_relays.end() && known->incarnation != m.incarnation) {
        Q_EMIT relayLost(m.relay, known->incarnation); // it restarted
        m_relays.erase(known);
        known = m_relays.end();
    }
    if (m.kind == BusMessage::Kind::Bye) {
        if (known != m_relays.end())
            m_relays.erase(known);
        Q_EMIT relayLost(m.relay, m.incarnation);
        return;
    }
    const bool wasKnown = known != m_relays.end();
    if (!wasKnown)
        known = m_relays.insert(m.relay, {m.incarnation, now, {}});
    known->lastHeardMs = now;
    if (m.kind == BusMessage::Kind::Heartbeat) {
        if (wasKnown && (m.flags & BusMessage::FlagHello))
            Q_EMIT relayReconnected(m.relay);
        return;
    }
    ++m_stats.received; // map messages only, as `published` counts them
    const auto map = m_maps.constFind(channel);
    if (map == m_maps.constEnd())
        return; // unsubscribed meanwhile
    // Numbered per sender and channel: a jump means Redis dropped some
    // (it does while a subscriber reconnects). The first heard sets the base.
    quint64 &last = known->lastSeq[channel];
    if (last != 0 && m.seq != last + 1) {
        ++m_stats.gaps;
        Q_EMIT logMessage(QStringLiteral("redis bus: %1 messages of relay %2 on %3 lost")
                              .arg(m.seq > last ? m.seq - last - 1 : 0).arg(m.relay, 16, 16, QLatin1Char('0')).arg(map->uri));
        Q_EMIT gapDetected(map->uri);
    }
    last = m.seq;
    Q_EMIT messageReceived(map->uri, m);
}

void RedisBus::onTick()
{
    const qint64 now = m_clock.elapsed();
    if (m_connected && now >= m_nextHeartbeatMs) {
        sendHeartbeat(0);
        m_nextHeartbeatMs = now + m_timing.heartbeatMs;
    }
    // Our own heartbeat has not come back: Redis is stopped or the link is
    // half-open, which TCP alone would not say for minutes.
    if (m_connected && now - m_lastOwnHeartbeatMs > m_timing.relayTimeoutMs) {
        onClosed(QStringLiteral("no heartbeat came back for %1 ms").arg(now - m_lastOwnHeartbeatMs));
        return;
    }
    for (auto it = m_relays.begin(); it != m_relays.end();) {
        if (m_connected && now - it->lastHeardMs > m_timing.relayTimeoutMs) {
            const quint64 relay = it.key();
            const quint64 incarnation = it->incarnation;
            it = m_relays.erase(it);
            Q_EMIT logMessage(QStringLiteral("redis bus: relay %1 silent for %2 ms, its peers leave")
                                  .arg(relay, 16, 16, QLatin1Char('0')).arg(m_timing.relayTimeoutMs));
            Q_EMIT relayLost(relay, incarnation);
        } else {
            ++it;
        }
    }
    for (auto it = m_maps.begin(); it != m_maps.end();) {
        if (it->unsubscribeAtMs >= 0 && now >= it->unsubscribeAtMs) {
            if (m_connected)
                m_sub->send({"SUNSUBSCRIBE", it.key()});
            for (OtherRelay &p : m_relays)
                p.lastSeq.remove(it.key());
            m_channelOf.remove(it->uri);
            it = m_maps.erase(it);
        } else {
            ++it;
        }
    }
}

void RedisBus::sendHeartbeat(quint8 flags)
{
    BusMessage beat;
    beat.kind = BusMessage::Kind::Heartbeat;
    beat.relay = m_relay;
    beat.incarnation = m_incarnation;
    beat.seq = m_heartbeatSeq++;
    beat.flags = flags;
    m_pub->send({"PUBLISH", BusMessage::relaysChannel(), beat.encode()});
}

RedisBus::Stats RedisBus::stats() const
{
    Stats s = m_stats;
    s.channels = int(m_maps.size());
    s.relays = int(m_relays.size());
    return s;
}
