#include "relay.h"
#include "relay_p.h"

#include "admission.h"
#include "binaryframe.h"
#include "busmessage.h"
#include "client.h"
#include "control.h"
#include "httpfront.h"
#include "lingeringclose.h"
#include "maprouter.h"
#include "redisbus.h"
#include "relaytcpserver.h"

#include <QAbstractEventDispatcher>
#include <QDateTime>
#include <QJsonDocument>
#include <QPointer>
#include <QRandomGenerator>
#include <QTcpSocket>
#include <QWebSocket>
#include <QWebSocketCorsAuthenticator>
#include <QWebSocketServer>

namespace {

// Offered by browsers next to `distmap.token.<TOKEN>` (see Admission).
const QString Subprotocol = QStringLiteral("distmap");

QByteArray errorMessage(Wire::ErrorCode code, const QString &message, quint32 mapId, const QString &uri = {})
{
    Control::Error error;
    error.code = code;
    error.message = message;
    error.id = mapId;
    error.map = uri;
    return Control::encodeError(error);
}

} // namespace

Relay::Relay(QObject *parent)
    : Relay(Options(), parent)
{
}

Relay::Relay(const Options &options, QObject *parent)
    : QObject(parent)
    , m_options(options)
{
    m_clock.start();
    m_admission = new Admission({options.maxConnections, options.maxConnectionsPerAddress, options.handshakeTimeoutMs,
                                 options.allowedOrigins},
                                this);
    connect(m_admission, &Admission::logMessage, this, &Relay::logMessage);
    // NonSecureMode even for wss://: TLS is done by our own front
    // (RelayTcpServer + QSslSocket), which hands the decrypted socket over.
    m_ws = new QWebSocketServer(QStringLiteral("distmap"), QWebSocketServer::NonSecureMode, this);
    m_ws->setHandshakeTimeout(options.handshakeTimeoutMs);
    m_ws->setMaxPendingConnections(1 << 20);
    m_ws->setSupportedSubprotocols({Subprotocol});
    connect(m_ws, &QWebSocketServer::newConnection, this, &Relay::onNewConnection);
    connect(m_ws, &QWebSocketServer::originAuthenticationRequired, m_admission, &Admission::checkOrigin);
    m_http = new HttpFront(this);
    m_http->setEnabled(options.serveHttp);
    m_http->setAllowedOrigins(options.allowedOrigins);
    connect(m_admission, &Admission::readyForUpgrade, m_http, &HttpFront::take);
    connect(m_http, &HttpFront::upgradeRequested, m_ws, &QWebSocketServer::handleConnection);
    m_tcp = new RelayTcpServer(this);
    // Each pass's frames leave in one write() per socket, before the loop
    // sleeps, not a poll round later. The dispatcher is the one of the
    // thread the relay is made in; a relay moved elsewhere still writes
    // everything, a round later.
    connect(QAbstractEventDispatcher::instance(), &QAbstractEventDispatcher::aboutToBlock, this, &Relay::flushWrites);
    // Qt's default backlog of 50 makes a burst of connects wait in SYN
    // retransmits for seconds; the kernel caps this at somaxconn.
    m_tcp->setListenBacklogSize(4096);
    connect(m_tcp, &RelayTcpServer::socketAccepted, m_admission, &Admission::accept);
    // One timer for every connection: pings and the pong deadline are
    // checked together, so idle connections cost no timer. (The hello
    // deadline is each new connection's own, see onNewConnection.)
    m_heartbeat.setInterval(qMax(10, options.pingIntervalMs > 0 ? options.pingIntervalMs : 1000));
    connect(&m_heartbeat, &QTimer::timeout, this, &Relay::onHeartbeat);
    // Waiting sync requests time out to within a tenth of the wait.
    m_syncWait.setInterval(qBound(10, options.syncWaitMs / 10, 250));
    connect(&m_syncWait, &QTimer::timeout, this, &Relay::onSyncWaitTick);
    m_lagProbe.setInterval(LagProbeMs);
    m_lagProbe.setTimerType(Qt::PreciseTimer);
    connect(&m_lagProbe, &QTimer::timeout, this, &Relay::onLagProbe);
    installHttpEndpoints(m_http);
}

Relay::~Relay()
{
    close();
}

bool Relay::listen(const QHostAddress &address, quint16 port)
{
    if (!m_tcp->listen(address, port))
        return false;
    m_heartbeat.start();
    m_lagDueNs = m_clock.nsecsElapsed() + LagProbeMs * 1000000LL;
    m_lagWindowStartMs = m_clock.elapsed();
    m_lagProbe.start();
    return true;
}

void Relay::setSslConfiguration(const QSslConfiguration &configuration)
{
    m_tcp->setSslConfiguration(Admission::secured(configuration));
}

bool Relay::isSecure() const { return m_tcp->isSecure(); }

void Relay::setTokens(const TokenTable &tokens)
{
    const bool reload = m_admission->requiresTokens();
    m_admission->setTokens(tokens);
    if (!reload)
        return;
    // Apply the new file to every connection at once: revoked tokens are
    // closed, and a map's access is recomputed (it may have been lowered).
    int closed = 0;
    for (Client *client : std::as_const(m_clients)) {
        if (client->closing)
            continue;
        const Admission::Verdict verdict = m_admission->recheck(client->token);
        if (!verdict.allowed) {
            cutOff(client, Wire::ErrorCode::Unauthorized, verdict.reason);
            ++closed;
            continue;
        }
        for (auto it = client->maps.begin(); it != client->maps.end(); ++it) {
            const MapNet *net = m_maps.value(it.key());
            if (!net)
                continue;
            const Admission::Verdict grant = m_admission->grant(client->token, net->uri, Admission::Moment::Reload);
            if (!grant.allowed) {
                cutOff(client, Wire::ErrorCode::Unauthorized, grant.reason);
                ++closed;
                break;
            }
            it->writable = grant.writable;
        }
    }
    Q_EMIT logMessage(QStringLiteral("tokens reloaded: %1 token(s), %2 connection(s) closed").arg(m_admission->tokenCount()).arg(closed));
}

void Relay::close()
{
    m_heartbeat.stop();
    m_lagProbe.stop();
    m_syncWait.stop();
    m_tcp->close();
    const auto clients = m_clients.keys();
    for (QWebSocket *socket : clients) {
        socket->disconnect(this);
        socket->close(QWebSocketProtocol::CloseCodeGoingAway, QStringLiteral("relay shutting down"));
        socket->deleteLater();
    }
    qDeleteAll(m_clients);
    m_clients.clear();
    m_byPeer.clear();
    qDeleteAll(m_maps);
    m_maps.clear();
    m_mapsByUri.clear();
}

bool Relay::isListening() const { return m_tcp->isListening(); }
QString Relay::errorString() const { return m_tcp->errorString(); }
quint16 Relay::port() const { return m_tcp->serverPort(); }

QUrl Relay::url() const
{
    QUrl url;
    url.setScheme(isSecure() ? QStringLiteral("wss") : QStringLiteral("ws"));
    const QHostAddress address = m_tcp->serverAddress();
    url.setHost(address == QHostAddress::Any || address == QHostAddress::AnyIPv4 ? QStringLiteral("127.0.0.1")
                                                                                  : address.toString());
    url.setPort(port());
    return url;
}

Relay::Stats Relay::stats() const
{
    Stats s = m_stats;
    s.connections = int(m_clients.size());
    s.sockets = m_admission->sockets();
    s.maps = int(m_maps.size());
    s.refused = m_admission->refused();
    const Admission::Counts &a = m_admission->counts();
    s.accepted = a.accepted;
    s.refusedLimit = a.refusedLimit;
    s.refusedOrigin = a.refusedOrigin;
    s.refusedToken = a.refusedToken;
    s.handshakeTimeouts = a.handshakeTimeouts;
    s.handshakes = m_admission->handshaking();
    for (const Client *client : std::as_const(m_clients))
        s.peers += client->peer != 0 && !client->closing;
    s.loopLagSeconds = qMax(m_lagWindowMax, m_lagLastWindowMax);
    return s;
}

QVector<Relay::MapInfo> Relay::maps() const
{
    QVector<MapInfo> result;
    for (const MapNet *net : std::as_const(m_maps))
        result.append({net->uri, net->members.size()});
    return result;
}

void Relay::onNewConnection()
{
    // Drain the whole queue: anything left there would be dropped silently.
    while (m_ws->hasPendingConnections()) {
        QWebSocket *socket = m_ws->nextPendingConnection();
        if (!socket)
            break;
        socket->setMaxAllowedIncomingFrameSize(quint64(m_options.maxMessageBytes));
        socket->setMaxAllowedIncomingMessageSize(quint64(m_options.maxMessageBytes));
        auto *client = new Client;
        client->socket = socket;
        client->tcp = m_admission->takeUpgraded(socket);
        client->address = QStringLiteral("%1:%2").arg(socket->peerAddress().toString()).arg(socket->peerPort());
        client->connectedMs = client->lastHeardMs = m_clock.elapsed();
        // A timer of its own until hello, not the heartbeat's tick: checked
        // on the tick, a silent connection lived up to twice the timeout.
        QTimer::singleShot(m_options.handshakeTimeoutMs, socket, [this, socket] {
            Client *c = m_clients.value(socket);
            if (c && c->peer == 0 && !c->closing)
                cutOff(c, Wire::ErrorCode::HandshakeRequired, QStringLiteral("no hello within %1 ms").arg(m_options.handshakeTimeoutMs));
        });
        client->bucket = TokenBucket(m_options.messagesPerSecond, m_options.messageBurst, m_clock.nsecsElapsed());
        m_clients.insert(socket, client);
        connect(socket, &QWebSocket::textMessageReceived, this, [this, client](const QString &text) { onText(client, text); });
        connect(socket, &QWebSocket::binaryMessageReceived, this, [this, client](const QByteArray &frame) { onBinary(client, frame); });
        connect(socket, &QWebSocket::disconnected, this, [this, client] { onDisconnected(client); });
        connect(socket, &QWebSocket::pong, this, [this, client] { client->lastHeardMs = m_clock.elapsed(); });
        connect(socket, &QWebSocket::aboutToClose, this, [this, client] {
            // Qt closing on its own for cause (1009: a frame over the limit;
            // 1002, 1003, 1007: a protocol error): keep the connection until
            // the peer can read why. Other codes answer the peer's own close.
            namespace P = QWebSocketProtocol;
            const P::CloseCode code = client->socket->closeCode();
            const bool forCause = code == P::CloseCodeTooMuchData || code == P::CloseCodeProtocolError
                || code == P::CloseCodeDatatypeNotSupported || code == P::CloseCodeWrongDatatype;
            if (client->closing || !forCause)
                return;
            client->closing = true;
            ++m_stats.cutOff;
            ++m_stats.cutOffBy[code == P::CloseCodeTooMuchData ? QStringLiteral("too-large") : QStringLiteral("websocket-protocol")];
            Q_EMIT logMessage(QStringLiteral("close %1 to %2: %3").arg(int(code)).arg(client->describe(), client->socket->closeReason()));
            LingeringClose::outlive(client->tcp, m_options.closeGraceMs, this);
        });
        Q_EMIT logMessage(QStringLiteral("connect %1").arg(client->address));
        const Admission::Verdict verdict = m_admission->admit(socket->request(), &client->token);
        if (!verdict.allowed)
            cutOff(client, Wire::ErrorCode::Unauthorized, verdict.reason);
    }
}

bool Relay::admit(Client *client)
{
    if (client->closing)
        return false;
    const qint64 now = m_clock.nsecsElapsed();
    client->lastHeardMs = now / 1000000;
    TokenBucket &bucket = client->bucket;
    if (client->overRateSinceNs >= 0 && bucket.tokens(now) >= bucket.burst()) {
        // It stayed under its rate long enough to refill: that run is over.
        client->overRateSinceNs = -1;
        if (client->tcp)
            client->tcp->setReadBufferSize(0);
    }
    if (bucket.spend(now) >= 0)
        return true;
    // Over its rate. This message is already read, so it is served (the
    // bucket owes it); what follows is read later.
    if (client->overRateSinceNs < 0)
        client->overRateSinceNs = now;
    if (!client->slowed)
        slowDown(client, now);
    return !client->closing;
}

namespace {
// While a connection is over its rate, Qt reads at most this much of it
// ahead of QWebSocket; the rest waits in the kernel, whose buffers fill
// until TCP pushes back on the sender. It also bounds what one pass can
// serve on credit.
constexpr qint64 SlowedReadBufferBytes = 64 * 1024;
// QWebSocket gives up on a frame it has waited 5 s for the rest of, so a
// slowed connection is read at least this often, on credit if need be.
constexpr qint64 LongestSlowdownNs = 2000 * 1000000LL;
} // namespace

// A connection over its rate is not read until its bucket holds a tenth
// of a second's messages again; one that would still be over its rate
// after rateCutoffMs is cut off.
void Relay::slowDown(Client *client, qint64 nowNs)
{
    const TokenBucket &bucket = client->bucket;
    const qint64 waitNs = bucket.nsUntil(qMax(1.0, bucket.perSecond() / 10.0), nowNs);
    // Without the TCP socket under it (never expected) it cannot be slowed.
    if (!client->tcp
        || (m_options.rateCutoffMs > 0 && nowNs + waitNs - client->overRateSinceNs > qint64(m_options.rateCutoffMs) * 1000000)) {
        cutOff(client, Wire::ErrorCode::RateLimited,
               QStringLiteral("more than %1 messages per second (burst %2) for %3 ms")
                   .arg(m_options.messagesPerSecond).arg(m_options.messageBurst).arg(m_options.rateCutoffMs));
        return;
    }
    client->slowed = true;
    ++m_stats.slowed;
    // Qt stops reading a socket whose capped buffer is full, and reading
    // from the buffer does not always turn that back on; setting the size
    // does, if there is room.
    client->tcp->setReadBufferSize(0);
    client->tcp->setReadBufferSize(SlowedReadBufferBytes);
    // QWebSocket reads when its socket signals readyRead: with the
    // socket's signals blocked it reads nothing until onSlowedTimeout.
    client->tcp->blockSignals(true);
    const qint64 ms = (qMin(waitNs, LongestSlowdownNs) + 999999) / 1000000;
    QTimer::singleShot(int(qMax<qint64>(1, ms)), client->socket, [this, socket = client->socket] {
        if (Client *c = m_clients.value(socket))
            onSlowedTimeout(c);
    });
}

void Relay::onSlowedTimeout(Client *client)
{
    if (!client->slowed || client->closing)
        return;
    client->lastHeardMs = m_clock.elapsed(); // it was not being listened to
    stopSlowing(client);
    QTcpSocket *tcp = client->tcp;
    // What the socket signalled while blocked was lost: signal it again.
    // Data first, so QWebSocket serves what was read before a close (and
    // may slow the connection down again); the close after that.
    if (tcp->bytesAvailable() > 0)
        Q_EMIT tcp->readyRead();
    if (tcp->state() == QAbstractSocket::UnconnectedState) {
        QMetaObject::invokeMethod(tcp, [this, socket = client->socket, tcp] {
            Client *c = m_clients.value(socket);
            // QWebSocket learns of a close from its socket's stateChanged.
            if (c && !c->slowed && tcp->state() == QAbstractSocket::UnconnectedState)
                Q_EMIT tcp->stateChanged(QAbstractSocket::UnconnectedState);
        }, Qt::QueuedConnection);
    }
}

// Lets the socket's signals through again (a close for cause needs them);
// reads nothing by itself. Its read buffer stays small until the
// connection is back under its rate (admit).
void Relay::stopSlowing(Client *client)
{
    if (!client->slowed)
        return;
    client->slowed = false;
    client->tcp->blockSignals(false);
}

void Relay::cutOff(Client *client, Wire::ErrorCode code, const QString &message)
{
    if (client->closing)
        return;
    // From now on nothing is read from or sent to it. The rest is deferred:
    // cutOff can be called from inside a loop over a map's members.
    client->closing = true;
    stopSlowing(client);
    ++m_stats.cutOff;
    ++m_stats.cutOffBy[Wire::errorName(code)];
    QPointer<QWebSocket> socket = client->socket;
    QMetaObject::invokeMethod(this, [this, socket, code, message] {
        if (!socket)
            return;
        if (Client *c = m_clients.value(socket))
            finishCutOff(c, code, message);
    }, Qt::QueuedConnection);
}

void Relay::finishCutOff(Client *client, Wire::ErrorCode code, const QString &message)
{
    Q_EMIT logMessage(QStringLiteral("error %1 to %2: %3 (closing)").arg(Wire::errorName(code), client->describe(), message));
    // Others hear `left` now, not when the closing handshake ends.
    leaveAllMaps(client);
    if (client->peer && m_byPeer.value(client->peer) == client)
        m_byPeer.remove(client->peer); // the peer may reconnect at once
    const QByteArray text = errorMessage(code, message, 0);
    ++m_stats.framesOut;
    m_stats.bytesOut += quint64(text.size());
    client->socket->sendTextMessage(QString::fromUtf8(text));
    LingeringClose::start(client->socket, client->tcp, QWebSocketProtocol::CloseCodePolicyViolated, message,
                          m_options.closeGraceMs); // may delete client
}

void Relay::onHeartbeat()
{
    const qint64 now = m_clock.elapsed();
    const bool ping = m_options.pingIntervalMs > 0 && now - m_lastPingMs >= m_options.pingIntervalMs - m_heartbeat.interval() / 2;
    if (ping)
        m_lastPingMs = now;
    QVector<QWebSocket *> silent;
    for (Client *client : std::as_const(m_clients)) {
        if (client->closing)
            continue;
        // A slowed connection is not being read: its silence proves nothing.
        if (m_options.pingIntervalMs > 0 && !client->slowed && now - client->lastHeardMs > m_options.pingTimeoutMs) {
            silent.append(client->socket);
        } else if (ping) {
            client->socket->ping();
        }
    }
    // A half-open connection would never finish a closing handshake: abort.
    for (QWebSocket *socket : std::as_const(silent)) {
        if (Client *client = m_clients.value(socket)) {
            Q_EMIT logMessage(QStringLiteral("heartbeat: nothing from %1 for %2 ms, dropping it").arg(client->describe()).arg(now - client->lastHeardMs));
            ++m_stats.heartbeatDrops;
            ++m_stats.cutOffBy[QStringLiteral("heartbeat")];
            stopSlowing(client); // so that QWebSocket hears the abort
            socket->abort(); // emits disconnected: the client is gone after this
        }
    }
}

void Relay::sendControl(Client *client, const QByteArray &text)
{
    if (client->closing)
        return;
    ++m_stats.framesOut;
    m_stats.bytesOut += quint64(text.size());
    client->socket->sendTextMessage(QString::fromUtf8(text));
    markUnflushed(client);
    if (client->socket->bytesToWrite() > m_options.maxBacklogBytes)
        cutOff(client, Wire::ErrorCode::Backlog, QStringLiteral("more than %1 bytes queued: reading too slowly").arg(m_options.maxBacklogBytes));
}

void Relay::sendFrame(Client *client, const QByteArray &frame)
{
    sendEncoded(client, frame, {});
}

// `encoded` is `frame` as a WebSocket message, or empty: written to the TCP
// socket under QWebSocket, so a delta for many readers is encoded once.
// Empty, the header and `frame` are written one after the other, which
// spares one reader (or a 256 KiB sync chunk) a copy of the payload.
// QWebSocket writes its own frames (pings, closes) to the same buffer,
// each whole.
void Relay::sendEncoded(Client *client, const QByteArray &frame, const QByteArray &encoded)
{
    if (client->closing)
        return;
    ++m_stats.framesOut;
    ++m_stats.deliveries;
    m_stats.bytesOut += quint64(frame.size());
    if (!client->tcp) {
        client->socket->sendBinaryMessage(frame); // never expected (see Client::tcp)
    } else if (client->socket->state() == QAbstractSocket::ConnectedState) { // after a close frame, nothing more
        if (encoded.isEmpty())
            client->tcp->write(BinaryFrame::header(frame.size()));
        client->tcp->write(encoded.isEmpty() ? frame : encoded);
    }
    markUnflushed(client);
    // The socket's write buffer is the only place the relay holds data:
    // bounding it per peer bounds the relay's memory.
    if (client->socket->bytesToWrite() > m_options.maxBacklogBytes)
        cutOff(client, Wire::ErrorCode::Backlog, QStringLiteral("more than %1 bytes queued: reading too slowly").arg(m_options.maxBacklogBytes));
}

void Relay::markUnflushed(Client *client)
{
    if (client->unflushed || !client->tcp)
        return;
    client->unflushed = true;
    m_unflushed.append(client);
}

void Relay::flushWrites()
{
    // By index: a flush that fails disconnects its client, which may
    // write to others (appended here) and takes itself out (nulled).
    for (qsizetype i = 0; i < m_unflushed.size(); ++i) {
        if (Client *client = m_unflushed.at(i)) {
            client->unflushed = false;
            client->tcp->flush();
        }
    }
    m_unflushed.clear();
}

void Relay::sendToOthers(const MapNet *net, const Client *sender, const QByteArray &text)
{
    for (const MapRouter::Member &m : net->members.members()) {
        if (Client *local = localMember(net, m.peer); local && local != sender)
            sendControl(local, text);
    }
}

void Relay::sendFrameToOthers(const MapNet *net, const Client *sender, const QByteArray &frame)
{
    // The first reader gets header and payload as they are; a second one
    // is worth encoding the frame once for it and every reader after.
    bool first = true;
    QByteArray encoded;
    for (const MapRouter::Member &m : net->members.members()) {
        if (Client *local = localMember(net, m.peer); local && local != sender) {
            if (!first && encoded.isEmpty())
                encoded = BinaryFrame::encode(frame);
            sendEncoded(local, frame, encoded);
            first = false;
        }
    }
}

Client *Relay::localMember(const MapNet *net, quint64 peer) const
{
    return net->remote.contains(peer) ? nullptr : m_byPeer.value(peer);
}

void Relay::sendError(Client *client, Wire::ErrorCode code, const QString &message, quint32 mapId, const QString &uri)
{
    sendControl(client, errorMessage(code, message, mapId, uri));
    Q_EMIT logMessage(QStringLiteral("error %1 to %2: %3").arg(Wire::errorName(code), client->describe(), message));
}

void Relay::onText(Client *client, const QString &text)
{
    if (!admit(client))
        return;
    ++m_stats.framesIn;
    m_stats.bytesIn += quint64(text.size());
    Control::Message message;
    QString why;
    if (Control::decodeMessage(text.toUtf8(), &message, &why) != Control::DecodeError::NoError) {
        if (client->peer == 0)
            cutOff(client, Wire::ErrorCode::BadMessage, why);
        else
            sendError(client, Wire::ErrorCode::BadMessage, why);
        return;
    }
    if (client->peer == 0) {
        if (message.type == Control::Type::Hello)
            handleHello(client, message.object);
        else
            cutOff(client, Wire::ErrorCode::HandshakeRequired, QStringLiteral("the first message must be hello, got '%1'").arg(message.typeName));
        return;
    }
    Control::MapRef ref;
    switch (message.type) {
    case Control::Type::Open:
        handleOpen(client, message.object);
        break;
    case Control::Type::Close:
        Control::decodeMapRef(message.object, &ref);
        handleCloseMap(client, ref.id);
        break;
    case Control::Type::Ready:
        Control::decodeMapRef(message.object, &ref);
        handleReady(client, ref.id);
        break;
    case Control::Type::Presence: {
        // A peer's presence names no peer, so a `peer` member is ignored
        // however bad, as the protocol ignores unknown members.
        Control::Presence presence;
        Control::decodePresence(message.object, &presence);
        handlePresence(client, presence.id, presence.presence);
        break;
    }
    case Control::Type::Ping: {
        Control::Ping ping;
        Control::decodePing(message.object, &ping);
        sendControl(client, Control::encodePong(ping));
        break;
    }
    case Control::Type::Hello:
        sendError(client, Wire::ErrorCode::BadMessage, QStringLiteral("hello was already received"));
        break;
    default: // unknown, and the types only a relay sends
        sendError(client, Wire::ErrorCode::UnknownType, QStringLiteral("unknown control message type '%1'").arg(message.typeName));
        break;
    }
}

void Relay::handleHello(Client *client, const QJsonObject &message)
{
    Control::Hello hello;
    QString why;
    const Control::DecodeError error = Control::decodeHello(message, &hello, &why);
    // The version before anything else: under another version the other
    // members may mean something else, and the peer needs to hear that.
    if (hello.version != Wire::ProtocolVersion) {
        cutOff(client, Wire::ErrorCode::UnsupportedVersion,
               QStringLiteral("protocol version %1 is not supported; this relay speaks version %2")
                   .arg(hello.versionText)
                   .arg(Wire::ProtocolVersion));
        return;
    }
    if (error != Control::DecodeError::NoError) {
        cutOff(client, Wire::ErrorCode::BadMessage, why);
        return;
    }
    quint64 peer = hello.peer;
    if (peer && m_byPeer.contains(peer)) {
        cutOff(client, Wire::ErrorCode::DuplicatePeer, QStringLiteral("peer id %1 is already connected").arg(Wire::peerToString(peer)));
        return;
    }
    while (peer == 0 || m_byPeer.contains(peer))
        peer = QRandomGenerator::global()->generate64();
    client->peer = peer;
    m_byPeer.insert(peer, client);
    Control::Welcome welcome;
    welcome.peer = peer;
    welcome.time = QDateTime::currentMSecsSinceEpoch();
    welcome.maxMessage = m_options.maxMessageBytes;
    sendControl(client, Control::encodeWelcome(welcome));
    Q_EMIT logMessage(QStringLiteral("hello %1 is peer %2").arg(client->address, Wire::peerToString(peer)));
}

void Relay::handleOpen(Client *client, const QJsonObject &message)
{
    Control::Open open;
    QString why;
    if (Control::decodeOpen(message, &open, &why) != Control::DecodeError::NoError) {
        // The URI is what is wrong; it is echoed only when it is a string
        // the peer could have meant (so the peer can tell which open failed).
        const bool named = message.value(QStringLiteral("map")).isString() && open.map.toUtf8().size() <= Control::MaxUriBytes;
        sendError(client, Wire::ErrorCode::BadMessage, why, 0, named ? open.map : QString());
        return;
    }
    const QString &uri = open.map;
    if (Control::presenceBytes(open.presence) > Control::MaxPresenceBytes) {
        sendError(client, Wire::ErrorCode::TooLarge, QStringLiteral("presence is larger than 4096 bytes"), 0, uri);
        return;
    }
    const Admission::Verdict grant = m_admission->grant(client->token, uri, Admission::Moment::Open);
    if (!grant.allowed) {
        sendError(client, Wire::ErrorCode::Unauthorized, grant.reason, 0, uri);
        return;
    }
    MapNet *net = m_mapsByUri.value(uri);
    if (net && client->isMember(net->id)) {
        sendError(client, Wire::ErrorCode::AlreadyOpen, QStringLiteral("map %1 is already open on this connection").arg(uri), net->id, uri);
        return;
    }
    if (!net) {
        net = new MapNet;
        net->id = m_nextMapId++;
        if (m_nextMapId == 0)
            m_nextMapId = 1;
        net->uri = uri;
        const quint32 id = net->id;
        net->members.setServeFilter([this, id, net](quint64 peer) {
            const auto remote = net->remote.constFind(peer);
            if (remote != net->remote.constEnd())
                return remote->writable;
            const Client *candidate = m_byPeer.value(peer);
            return candidate && !candidate->closing && candidate->isWritable(id);
        });
        net->members.setWaitMs(m_options.syncWaitMs);
        net->members.setRemoteReachable(m_bus && m_bus->isConnected());
        m_maps.insert(net->id, net);
        m_mapsByUri.insert(uri, net);
    }
    Control::Opened opened;
    opened.map = uri;
    opened.id = net->id;
    opened.writable = grant.writable;
    // A peer that moved here from a relay not yet known to be dead: the
    // stale remote entry goes, this connection is the peer now (and it
    // must not find itself among the peers).
    if (net->remote.contains(client->peer))
        removeRemote(net, client->peer);
    for (const MapRouter::Member &m : net->members.members()) {
        const Client *local = localMember(net, m.peer);
        opened.peers.append({m.peer, local ? local->maps.value(net->id).presence : net->remote.value(m.peer).presence});
    }
    sendToOthers(net, client, Control::encodeJoined({net->id, client->peer, open.presence}));
    net->members.add(client->peer);
    client->maps.insert(net->id, {open.presence, grant.writable});
    sendControl(client, Control::encodeOpened(opened));
    announceJoined(net, client);
    Q_EMIT logMessage(QStringLiteral("open %1 by %2 (%3 peers)").arg(uri, client->describe()).arg(net->members.size()));
}

void Relay::handleCloseMap(Client *client, quint32 mapId)
{
    if (MapNet *net = memberMap(client, mapId))
        leaveMap(client, net);
}

void Relay::handleReady(Client *client, quint32 mapId)
{
    if (MapNet *net = memberMap(client, mapId)) {
        BusMessage ready;
        ready.kind = BusMessage::Kind::Ready;
        ready.peer = client->peer;
        publish(net, ready, nullptr);
        carryOut(net, net->members.setReady(client->peer, m_clock.elapsed()));
    }
}

void Relay::handlePresence(Client *client, quint32 mapId, const QJsonObject &presence)
{
    MapNet *net = memberMap(client, mapId);
    if (!net)
        return;
    if (Control::presenceBytes(presence) > Control::MaxPresenceBytes) {
        sendError(client, Wire::ErrorCode::TooLarge, QStringLiteral("presence is larger than 4096 bytes"), mapId);
        return;
    }
    client->maps[mapId].presence = presence;
    sendToOthers(net, client, Control::encodePresence({mapId, client->peer, presence}));
    BusMessage changed;
    changed.kind = BusMessage::Kind::Presence;
    changed.peer = client->peer;
    changed.body = QJsonDocument(presence).toJson(QJsonDocument::Compact);
    publish(net, changed, nullptr);
}

void Relay::leaveMap(Client *client, MapNet *net)
{
    if (!client->maps.remove(net->id))
        return;
    const MapRouter::Decisions decisions = net->members.remove(client->peer, m_clock.elapsed());
    Q_EMIT logMessage(QStringLiteral("close %1 by %2").arg(net->uri, client->describe()));
    sendToOthers(net, client, Control::encodeLeft({net->id, client->peer}));
    BusMessage left;
    left.kind = BusMessage::Kind::Left;
    left.peer = client->peer;
    publish(net, left, nullptr);
    // Requests it had not started answering go elsewhere (after `left`, so
    // a requester hears who left before it hears from the new responder).
    carryOut(net, decisions);
    if (net->localCount() == 0) {
        // Remote members are only known while a local peer needs them.
        if (m_bus)
            m_bus->unsubscribe(net->uri);
        m_maps.remove(net->id);
        m_mapsByUri.remove(net->uri);
        delete net;
    }
}

void Relay::leaveAllMaps(Client *client)
{
    const auto ids = client->maps.keys();
    for (quint32 id : ids) {
        if (MapNet *net = m_maps.value(id))
            leaveMap(client, net);
    }
}

Relay::MapNet *Relay::memberMap(Client *client, quint32 mapId)
{
    if (!client->isMember(mapId)) {
        sendError(client, Wire::ErrorCode::UnknownMap, QStringLiteral("map id %1 is not open on this connection").arg(mapId), mapId);
        return nullptr;
    }
    return m_maps.value(mapId);
}

void Relay::onBinary(Client *client, const QByteArray &incoming)
{
    if (!admit(client))
        return;
    ++m_stats.framesIn;
    m_stats.bytesIn += quint64(incoming.size());
    if (client->peer == 0) {
        cutOff(client, Wire::ErrorCode::HandshakeRequired, QStringLiteral("the first message must be hello"));
        return;
    }
    Wire::Header header;
    const Wire::DecodeError error = Wire::decodeHeader(incoming, &header);
    if (error != Wire::DecodeError::NoError) {
        countDrop("bad-frame");
        sendError(client, error == Wire::DecodeError::UnknownType ? Wire::ErrorCode::UnknownType : Wire::ErrorCode::BadMessage,
                  QStringLiteral("bad frame: %1").arg(Wire::decodeErrorText(error)));
        return;
    }
    MapNet *net = memberMap(client, header.mapId);
    if (!net) {
        countDrop("not-a-member");
        return;
    }
    // A read-only peer may ask for the map (SyncRequest), take it (SyncAck)
    // and confirm writes it holds (WriteAck), but sends no entries: not
    // deltas or repairs, and not sync answers either, which would let it
    // write into whoever it answers.
    const bool carriesEntries = header.type == Wire::Type::Delta || header.type == Wire::Type::Repair
        || header.type == Wire::Type::SyncData;
    if (carriesEntries && !client->isWritable(net->id)) {
        countDrop("read-only");
        sendError(client, Wire::ErrorCode::ReadOnly,
                  QStringLiteral("map %1 is read-only for this connection's token").arg(net->uri), net->id);
        return;
    }
    Client *target = nullptr;
    const bool remoteTarget = Wire::isAddressed(header.type) && net->remote.contains(header.peer);
    if (Wire::isAddressed(header.type) && !remoteTarget) {
        target = m_byPeer.value(header.peer);
        if (!target || target == client || !target->isMember(net->id)) {
            countDrop("unknown-peer");
            sendError(client, Wire::ErrorCode::UnknownPeer,
                      QStringLiteral("peer %1 is not in map %2").arg(Wire::peerToString(header.peer), net->uri), net->id);
            return;
        }
    }
    // Whatever a peer wrote there, what others receive names the sender.
    QByteArray frame = incoming; // shares the buffer; the stamp detaches it once
    Wire::setHeaderPeer(frame, client->peer);
    if (remoteTarget) { // on another relay: once over the bus, to it
        BusMessage routed;
        routed.kind = BusMessage::Kind::Frame;
        routed.peer = client->peer;
        routed.target = header.peer;
        routed.body = frame;
        publish(net, routed, client);
        return;
    }
    switch (header.type) {
    case Wire::Type::Delta:
    case Wire::Type::Repair:
        sendFrameToOthers(net, client, frame);
        if (m_bus) { // the forwarding loop: nothing to build without a bus
            BusMessage broadcast;
            broadcast.kind = BusMessage::Kind::Frame;
            broadcast.peer = client->peer;
            broadcast.body = frame;
            publish(net, broadcast, client);
        }
        break;
    case Wire::Type::SyncRequest:
        routeSyncRequest(client, net, frame);
        break;
    case Wire::Type::SyncData:
        net->members.answered(client->peer, target->peer);
        sendFrame(target, frame);
        break;
    case Wire::Type::SyncAck:
    case Wire::Type::WriteAck:
        sendFrame(target, frame);
        break;
    }
}

void Relay::routeSyncRequest(Client *client, MapNet *net, const QByteArray &frame)
{
    ++m_stats.syncRequests;
    if (m_clock.elapsed() < net->rosterUntilMs) {
        net->held.append({client->peer, frame});
        if (!m_syncWait.isActive())
            m_syncWait.start();
        return;
    }
    const MapRouter::Decisions decisions = net->members.request(client->peer, frame, m_clock.elapsed());
    carryOut(net, decisions);
    if (net->members.hasWaiting()) {
        bool waits = true;
        for (const MapRouter::Decision &d : decisions)
            waits = waits && d.requester != client->peer;
        if (waits)
            Q_EMIT logMessage(QStringLiteral("sync %1: %2 waits for a peer still syncing").arg(net->uri, client->describe()));
    }
}

void Relay::carryOut(MapNet *net, const QVector<MapRouter::Decision> &decisions)
{
    for (const MapRouter::Decision &d : decisions) {
        Client *requester = m_byPeer.value(d.requester);
        if (!requester)
            continue;
        if (d.kind == MapRouter::Decision::Forward) {
            if (net->remote.contains(d.responder)) {
                BusMessage routed;
                routed.kind = BusMessage::Kind::Frame;
                routed.peer = d.requester;
                routed.target = d.responder;
                routed.body = d.frame;
                publish(net, routed, nullptr);
                Q_EMIT logMessage(QStringLiteral("sync %1: %2 served by %3 on relay %4")
                                      .arg(net->uri, requester->describe(), Wire::peerToString(d.responder))
                                      .arg(net->remote.value(d.responder).relay, 16, 16, QLatin1Char('0')));
                continue;
            }
            Client *served = m_byPeer.value(d.responder);
            if (!served)
                continue;
            sendFrame(served, d.frame);
            Q_EMIT logMessage(QStringLiteral("sync %1: %2 served by %3").arg(net->uri, requester->describe(), served->describe()));
            continue;
        }
        // Read-only members may hold the map but may not answer (their
        // answer would write into the requester): the requester hears how
        // many there are, so it does not take "alone" for "empty".
        Control::Alone alone{net->id, 0};
        for (const MapRouter::Member &m : net->members.members()) {
            if (m.peer == d.requester || !m.ready)
                continue;
            const Client *member = localMember(net, m.peer);
            if (member ? !member->isWritable(net->id) : !net->remote.value(m.peer).writable)
                ++alone.readOnlyPeers;
        }
        sendControl(requester, Control::encodeAlone(alone));
        Q_EMIT logMessage(QStringLiteral("sync %1: %2 is alone%3")
                              .arg(net->uri, requester->describe(),
                                   alone.readOnlyPeers ? QStringLiteral(" (%1 read-only peers hold it)").arg(alone.readOnlyPeers)
                                                       : QString()));
    }
    if (net->members.hasWaiting() && !m_syncWait.isActive())
        m_syncWait.start();
}

void Relay::onSyncWaitTick()
{
    bool waiting = false;
    const qint64 now = m_clock.elapsed();
    // carryOut never closes a map, so the hash is stable while we walk it.
    for (MapNet *net : std::as_const(m_maps)) {
        if (!net->held.isEmpty() && now >= net->rosterUntilMs) {
            const QVector<MapNet::HeldRequest> held = std::exchange(net->held, {});
            for (const MapNet::HeldRequest &h : held) {
                Client *requester = localMember(net, h.requester);
                if (requester && requester->isMember(net->id))
                    routeSyncRequest(requester, net, h.frame);
            }
        }
        waiting = waiting || !net->held.isEmpty();
        if (!net->members.hasWaiting())
            continue;
        carryOut(net, net->members.expire(now));
        waiting = waiting || net->members.hasWaiting();
    }
    if (!waiting)
        m_syncWait.stop();
}

void Relay::onDisconnected(Client *client)
{
    Q_EMIT logMessage(QStringLiteral("disconnect %1").arg(client->describe()));
    leaveAllMaps(client);
    if (client->peer && m_byPeer.value(client->peer) == client)
        m_byPeer.remove(client->peer);
    m_clients.remove(client->socket);
    if (client->unflushed)
        m_unflushed[m_unflushed.indexOf(client)] = nullptr;
    // The socket lives until deleteLater and can still signal (aboutToClose
    // has been seen after disconnected under ASan); every slot captures the
    // client freed below.
    client->socket->disconnect(this);
    client->socket->deleteLater();
    delete client;
}
