// The relay's operational side: /metrics, /healthz, /readyz, the event
// loop's lag, and limits changed at run time. docs/OPERATIONS.md lists
// every metric.
#include "relay.h"
#include "relay_p.h"

#include "admission.h"
#include "client.h"
#include "httpfront.h"
#include "metricswriter.h"
#include "opsserver.h"
#include "redisbus.h"

#include <QWebSocketServer>

void Relay::onLagProbe()
{
    // How much later than asked the timer fired: the time the loop spent
    // on other work first. Reset to the schedule, not to now, so a late
    // tick does not hide the next one's lateness.
    const qint64 now = m_clock.nsecsElapsed();
    const double lag = double(qMax<qint64>(0, now - m_lagDueNs)) / 1e9;
    m_lagDueNs = now + LagProbeMs * 1000000LL;
    m_lagWindowMax = qMax(m_lagWindowMax, lag);
    if (m_clock.elapsed() - m_lagWindowStartMs >= 10000) {
        m_lagLastWindowMax = m_lagWindowMax;
        m_lagWindowMax = 0;
        m_lagWindowStartMs = m_clock.elapsed();
    }
}

bool Relay::isReady(QString *why) const
{
    QString reason;
    if (!isListening())
        reason = QStringLiteral("not listening");
    else if (m_bus && !m_bus->isConnected())
        reason = QStringLiteral("the Redis bus is not connected");
    if (why)
        *why = reason;
    return reason.isEmpty();
}

QByteArray Relay::metricsText() const
{
    const Stats s = stats();
    MetricsWriter w;
    w.gauge("distmap_relay_up", "1 while the relay listens.", isListening() ? 1 : 0);
    w.gauge("distmap_relay_connections", "WebSocket connections open.", s.connections);
    w.gauge("distmap_relay_sockets", "Sockets counted against the connection limits, handshakes included.", s.sockets);
    w.gauge("distmap_relay_handshakes", "Sockets still in TLS or the HTTP upgrade.", s.handshakes);
    w.gauge("distmap_relay_peers", "Connections past their hello.", s.peers);
    w.gauge("distmap_relay_maps", "Maps with at least one member on this relay.", s.maps);
    w.counter("distmap_relay_connections_accepted_total", "TCP connections accepted.", double(s.accepted));
    w.family("distmap_relay_connections_refused_total", "counter", "Connections refused, by reason.")
        .sample("distmap_relay_connections_refused_total", {{"reason", "limit"}}, double(s.refusedLimit))
        .sample("distmap_relay_connections_refused_total", {{"reason", "origin"}}, double(s.refusedOrigin))
        .sample("distmap_relay_connections_refused_total", {{"reason", "token"}}, double(s.refusedToken))
        .sample("distmap_relay_connections_refused_total", {{"reason", "handshake-timeout"}}, double(s.handshakeTimeouts));
    // Every reason the relay cuts a connection for, 0 included, so a rate
    // over it is defined from the first scrape.
    QMap<QString, quint64> cut = s.cutOffBy;
    for (const char *reason : {"rate-limited", "backlog", "too-large", "heartbeat", "unauthorized", "handshake-required",
                               "websocket-protocol"})
        cut.insert(QString::fromLatin1(reason), cut.value(QString::fromLatin1(reason)));
    MetricsWriter &cutFamily = w.family("distmap_relay_connections_cut_total", "counter",
                                        "Connections the relay closed for cause, by reason.");
    for (auto it = cut.cbegin(); it != cut.cend(); ++it)
        cutFamily.sample("distmap_relay_connections_cut_total", {{"reason", it.key().toUtf8()}}, double(it.value()));
    QMap<QString, quint64> dropped = s.droppedBy;
    for (const char *reason : {"bad-frame", "not-a-member", "read-only", "unknown-peer"})
        dropped.insert(QString::fromLatin1(reason), dropped.value(QString::fromLatin1(reason)));
    MetricsWriter &dropFamily = w.family("distmap_relay_frames_dropped_total", "counter",
                                         "Binary frames not forwarded, by reason (the sender gets an error).");
    for (auto it = dropped.cbegin(); it != dropped.cend(); ++it)
        dropFamily.sample("distmap_relay_frames_dropped_total", {{"reason", it.key().toUtf8()}}, double(it.value()));
    w.counter("distmap_relay_messages_received_total", "Messages (frames and control messages) received from peers.", double(s.framesIn));
    w.counter("distmap_relay_messages_sent_total", "Messages sent to peers.", double(s.framesOut));
    w.counter("distmap_relay_received_bytes_total", "Message bytes received from peers.", double(s.bytesIn));
    w.counter("distmap_relay_sent_bytes_total", "Message bytes sent to peers.", double(s.bytesOut));
    w.counter("distmap_relay_slowed_total", "Times a connection over its message rate stopped being read for a while.", double(s.slowed));
    w.counter("distmap_relay_deliveries_total", "Binary frames delivered to peers.", double(s.deliveries));
    w.counter("distmap_relay_sync_requests_total", "Sync requests routed.", double(s.syncRequests));
    w.gauge("distmap_relay_event_loop_lag_seconds", "Longest delay of the event loop in the last 10 to 20 s.", s.loopLagSeconds);
    if (const double rss = MetricsWriter::residentBytes(); rss > 0)
        w.gauge("distmap_relay_resident_memory_bytes", "Resident memory of the relay process.", rss);
    if (m_bus) {
        const RedisBus::Stats b = m_bus->stats();
        w.gauge("distmap_relay_bus_connected", "1 while the Redis bus is connected.", m_bus->isConnected() ? 1 : 0);
        w.gauge("distmap_relay_bus_relays", "Other relays heard on the bus.", b.relays);
        w.gauge("distmap_relay_bus_channels", "Map channels subscribed.", b.channels);
        w.counter("distmap_relay_bus_published_total", "Messages published on the bus.", double(b.published));
        w.counter("distmap_relay_bus_received_total", "Map messages received from other relays.", double(b.received));
        w.counter("distmap_relay_bus_gaps_total", "Gaps in another relay's sequence numbers (messages lost on the bus).", double(b.gaps));
        w.counter("distmap_relay_bus_reconnects_total", "Reconnections to Redis.", double(b.reconnects));
        w.counter("distmap_relay_bus_dropped_total", "Messages not published because the bus was down.", double(b.notConnectedDrops));
    }
    return w.text();
}

void Relay::installHttpEndpoints(HttpFront *front)
{
    front->setHandler(QStringLiteral("/metrics"), [this] {
        return HttpFront::Reply{200, MetricsWriter::ContentType, metricsText()};
    });
    front->setHandler(QStringLiteral("/healthz"), [] { return HttpFront::Reply{200, "text/plain; charset=utf-8", "ok\n"}; });
    front->setHandler(QStringLiteral("/readyz"), [this] {
        QString why;
        if (isReady(&why))
            return HttpFront::Reply{200, "text/plain; charset=utf-8", "ready\n"};
        return HttpFront::Reply{503, "text/plain; charset=utf-8", "not ready: " + why.toUtf8() + '\n'};
    });
}

bool Relay::listenMetrics(const QHostAddress &address, quint16 port, QString *error)
{
    if (!m_ops) {
        m_ops = new OpsServer(this);
        installHttpEndpoints(m_ops->front());
    }
    if (!m_ops->listen(address, port, error))
        return false;
    // Off the public port: a scraper's view of the relay is not for peers.
    for (const char *path : {"/metrics", "/healthz", "/readyz"})
        m_http->removeHandler(QString::fromLatin1(path));
    return true;
}

quint16 Relay::metricsPort() const
{
    return m_ops ? m_ops->port() : 0;
}

QStringList Relay::setLimits(const Options &limits)
{
    QStringList changed;
    const auto update = [&changed](auto &field, auto value, const char *name) {
        if (field != value) {
            field = value;
            changed.append(QString::fromLatin1(name));
        }
    };
    update(m_options.messagesPerSecond, limits.messagesPerSecond, "max-rate");
    update(m_options.messageBurst, limits.messageBurst, "burst");
    update(m_options.rateCutoffMs, limits.rateCutoffMs, "rate-cutoff");
    update(m_options.maxBacklogBytes, limits.maxBacklogBytes, "max-backlog");
    update(m_options.pingIntervalMs, limits.pingIntervalMs, "ping-interval");
    update(m_options.pingTimeoutMs, limits.pingTimeoutMs, "ping-timeout");
    update(m_options.maxConnections, limits.maxConnections, "max-connections");
    update(m_options.maxConnectionsPerAddress, limits.maxConnectionsPerAddress, "max-per-address");
    update(m_options.handshakeTimeoutMs, limits.handshakeTimeoutMs, "handshake-timeout");
    if (changed.isEmpty())
        return changed;
    m_admission->setLimits({m_options.maxConnections, m_options.maxConnectionsPerAddress, m_options.handshakeTimeoutMs,
                            m_options.allowedOrigins});
    m_ws->setHandshakeTimeout(m_options.handshakeTimeoutMs);
    // A new rate applies at once, with a full bucket: a reload never cuts
    // anyone off by itself.
    const qint64 now = m_clock.nsecsElapsed();
    // (A connection that was over its rate is back under it at its next
    // message, which finds the bucket full: admit().)
    for (Client *client : std::as_const(m_clients))
        client->bucket = TokenBucket(m_options.messagesPerSecond, m_options.messageBurst, now);
    m_heartbeat.setInterval(qMax(10, m_options.pingIntervalMs > 0 ? m_options.pingIntervalMs : 1000));
    Q_EMIT logMessage(QStringLiteral("limits changed: %1").arg(changed.join(QStringLiteral(", "))));
    return changed;
}
