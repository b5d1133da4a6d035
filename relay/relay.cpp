#include "relay.h"

#include "relaytcpserver.h"
#include "wire.h"

#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLoggingCategory>
#include <QNetworkRequest>
#include <QPointer>
#include <QRandomGenerator>
#include <QSslSocket>
#include <QTcpSocket>
#include <QUrlQuery>
#include <QWebSocket>
#include <QWebSocketCorsAuthenticator>
#include <QWebSocketServer>

#include <sys/socket.h>

Q_LOGGING_CATEGORY(lcRelay, "distmap.relay", QtWarningMsg)

namespace {

constexpr int MaxPresenceBytes = 4096;
constexpr int MaxUriBytes = 1024;

QString mapKeyField() { return QStringLiteral("id"); }

// The subprotocol a browser offers next to `distmap.token.<TOKEN>` (a
// browser cannot set headers on a WebSocket; it can offer subprotocols).
const QString Subprotocol = QStringLiteral("distmap");
const QLatin1String TokenSubprotocolPrefix("distmap.token.");

QJsonObject errorMessage(int code, const QString &message, quint32 mapId)
{
    QJsonObject error{{QStringLiteral("type"), QStringLiteral("error")},
                      {QStringLiteral("code"), code},
                      {QStringLiteral("name"), Wire::errorName(Wire::ErrorCode(code))},
                      {QStringLiteral("message"), message}};
    if (mapId)
        error.insert(mapKeyField(), qint64(mapId));
    return error;
}

// The token a connection presents, in order of preference: the
// Authorization header (Qt peers), a `distmap.token.` subprotocol
// (browsers), the `token` query parameter (anything that can only set a URL).
QByteArray presentedToken(const QNetworkRequest &request)
{
    const QByteArray authorization = request.rawHeader("Authorization").trimmed();
    if (authorization.startsWith("Bearer "))
        return authorization.mid(7).trimmed();
    for (const QByteArray &offered : request.rawHeader("Sec-WebSocket-Protocol").split(',')) {
        const QByteArray protocol = offered.trimmed();
        if (protocol.startsWith(TokenSubprotocolPrefix.data()))
            return protocol.mid(TokenSubprotocolPrefix.size());
    }
    return QUrlQuery(request.url()).queryItemValue(QStringLiteral("token"), QUrl::FullyDecoded).toUtf8();
}

} // namespace

struct Relay::Membership
{
    QJsonObject presence;
    bool writable = true; // cached from the token at open (and reload): the hot path checks a bool
};

struct Relay::Client
{
    QWebSocket *socket = nullptr;
    QTcpSocket *tcp = nullptr;     // the socket under it, for a lingering close
    QString address;
    quint64 peer = 0;              // 0 until hello
    QHash<quint32, Membership> maps; // open maps
    QByteArray token;              // presented at the handshake; never logged
    double bucket = 0;             // rate limiter: messages it may still send now
    qint64 refilledNs = 0;         // when the bucket was last refilled
    qint64 connectedMs = 0;
    qint64 lastHeardMs = 0;        // last message or pong: the heartbeat's evidence of life
    bool closing = false;          // cut off: nothing more is read from it or sent to it
};

struct Relay::MapNet
{
    struct Member
    {
        Client *client = nullptr;
        bool ready = false;
        bool writable = true; // read-only members never answer sync requests
        quint64 lastSource = 0; // who answered this member's last sync request
    };
    quint32 id = 0;
    QString uri;
    QVector<Member> members;
    int cursor = 0; // spreads sync requests over the ready members

    int indexOf(const Client *client) const
    {
        for (int i = 0; i < members.size(); ++i) {
            if (members[i].client == client)
                return i;
        }
        return -1;
    }
};

Relay::Relay(QObject *parent)
    : Relay(Options(), parent)
{
}

Relay::Relay(const Options &options, QObject *parent)
    : QObject(parent)
    , m_options(options)
{
    m_clock.start();
    // NonSecureMode even for wss://: TLS is done by our own front
    // (RelayTcpServer + QSslSocket), which hands the decrypted socket over.
    m_ws = new QWebSocketServer(QStringLiteral("distmap"), QWebSocketServer::NonSecureMode, this);
    m_ws->setHandshakeTimeout(options.handshakeTimeoutMs);
    m_ws->setMaxPendingConnections(1 << 20);
    m_ws->setSupportedSubprotocols({Subprotocol});
    connect(m_ws, &QWebSocketServer::newConnection, this, &Relay::onNewConnection);
    connect(m_ws, &QWebSocketServer::originAuthenticationRequired, this, &Relay::onOriginCheck);
    m_tcp = new RelayTcpServer(this);
    // Qt's default backlog of 50 makes a burst of connects wait in SYN
    // retransmits for seconds; the kernel caps this at somaxconn.
    m_tcp->setListenBacklogSize(4096);
    connect(m_tcp, &RelayTcpServer::socketAccepted, this, &Relay::acceptSocket);
    // One timer for every connection: pings, the pong deadline and the
    // hello deadline are checked together, so idle connections cost no timer.
    int tick = options.handshakeTimeoutMs;
    if (options.pingIntervalMs > 0)
        tick = qMin(tick, options.pingIntervalMs);
    m_heartbeat.setInterval(qMax(10, tick));
    connect(&m_heartbeat, &QTimer::timeout, this, &Relay::onHeartbeat);
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
    return true;
}

void Relay::setSslConfiguration(const QSslConfiguration &configuration)
{
    QSslConfiguration c = configuration;
    if (c.protocol() != QSsl::TlsV1_3 && c.protocol() != QSsl::TlsV1_3OrLater)
        c.setProtocol(QSsl::TlsV1_2OrLater);
    c.setPeerVerifyMode(QSslSocket::VerifyNone); // peers are authenticated by token, not client certificate
    m_tcp->setSslConfiguration(c);
}

bool Relay::isSecure() const { return m_tcp->isSecure(); }

void Relay::setTokens(const TokenTable &tokens)
{
    const bool reload = m_tokensRequired;
    m_tokens = tokens;
    m_tokensRequired = true;
    if (!reload)
        return;
    // Apply the new file to every connection at once: revoked tokens are
    // closed, and a map's access is recomputed (it may have been lowered).
    int closed = 0;
    for (Client *client : std::as_const(m_clients)) {
        if (client->closing)
            continue;
        if (!m_tokens.contains(client->token)) {
            cutOff(client, int(Wire::ErrorCode::Unauthorized), QStringLiteral("token revoked"));
            ++closed;
            continue;
        }
        for (auto it = client->maps.begin(); it != client->maps.end(); ++it) {
            MapNet *net = m_maps.value(it.key());
            if (!net)
                continue;
            const TokenTable::Access access = m_tokens.access(client->token, net->uri);
            if (access == TokenTable::NoAccess) {
                cutOff(client, int(Wire::ErrorCode::Unauthorized), QStringLiteral("token no longer grants %1").arg(net->uri));
                ++closed;
                break;
            }
            it->writable = access == TokenTable::ReadWrite;
            net->members[net->indexOf(client)].writable = it->writable;
        }
    }
    Q_EMIT logMessage(QStringLiteral("tokens reloaded: %1 token(s), %2 connection(s) closed").arg(m_tokens.tokenCount()).arg(closed));
}

void Relay::close()
{
    m_heartbeat.stop();
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
    s.sockets = m_sockets;
    s.maps = int(m_maps.size());
    return s;
}

QVector<Relay::MapInfo> Relay::maps() const
{
    QVector<MapInfo> result;
    for (const MapNet *net : std::as_const(m_maps))
        result.append({net->uri, int(net->members.size())});
    return result;
}

void Relay::acceptSocket(QTcpSocket *socket)
{
    const QString address = socket->peerAddress().toString();
    if (m_sockets >= m_options.maxConnections
        || m_perAddress.value(address) >= m_options.maxConnectionsPerAddress) {
        qCWarning(lcRelay) << "refusing connection from" << address << "(connection limit)";
        ++m_stats.refused;
        socket->abort();
        socket->deleteLater();
        return;
    }
    ++m_sockets;
    ++m_perAddress[address];
    // Count the socket until it is gone, handshake or not. Watch a child
    // object: QWebSocketServer drops every connection to the socket's own
    // signals when it upgrades it, destroyed() included, and the count
    // then never went down (after maxConnectionsPerAddress connections
    // over the relay's life, that address was refused for good).
    auto *guard = new QObject(socket);
    const QString key = QStringLiteral("%1:%2").arg(address).arg(socket->peerPort());
    m_handshaking.insert(key, socket);
    connect(guard, &QObject::destroyed, this, [this, address, key, socket] {
        --m_sockets;
        if (--m_perAddress[address] <= 0)
            m_perAddress.remove(address);
        if (m_handshaking.value(key) == socket)
            m_handshaking.remove(key);
    });
    // QWebSocketServer::handleConnection() starts no handshake timer (only
    // sockets its own server accepted get one), so keep our own: a socket
    // still in m_handshaking when it fires never upgraded. The guard, not
    // the socket, is the context, for the reason above.
    QTimer::singleShot(m_options.handshakeTimeoutMs, guard, [this, socket, key] {
        if (m_handshaking.value(key) != socket)
            return;
        m_handshaking.remove(key);
        socket->abort();
        socket->deleteLater();
    });
    auto *ssl = qobject_cast<QSslSocket *>(socket);
    if (!ssl) {
        m_ws->handleConnection(socket);
        return;
    }
    // TLS first; only a socket that finished it reaches the WebSocket
    // server. The handshake timeout covers TLS too, so a client that never
    // speaks TLS (plain ws:// to this port) is dropped like a slow handshake.
    connect(ssl, &QSslSocket::encrypted, this, [this, ssl] {
        ssl->disconnect(this);
        m_ws->handleConnection(ssl);
    });
    connect(ssl, &QAbstractSocket::errorOccurred, this, [this, ssl](QAbstractSocket::SocketError error) {
        if (ssl->isEncrypted())
            return;
        Q_EMIT logMessage(QStringLiteral("tls handshake with %1 failed: %2").arg(ssl->peerAddress().toString(), ssl->errorString()));
        Q_UNUSED(error);
        ssl->abort();
        ssl->deleteLater();
    });
    ssl->startServerEncryption();
}

void Relay::onOriginCheck(QWebSocketCorsAuthenticator *authenticator)
{
    // Browsers always send Origin; other clients usually do not, and are
    // not what an origin allow-list is about.
    const QString origin = authenticator->origin();
    if (m_options.allowedOrigins.isEmpty() || origin.isEmpty() || m_options.allowedOrigins.contains(origin))
        return;
    authenticator->setAllowed(false);
    ++m_stats.refused;
    Q_EMIT logMessage(QStringLiteral("refused origin %1").arg(origin));
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
        QTcpSocket *tcp = m_handshaking.take(QStringLiteral("%1:%2").arg(socket->peerAddress().toString()).arg(socket->peerPort()));
        auto *client = new Client;
        client->socket = socket;
        client->tcp = tcp;
        client->address = QStringLiteral("%1:%2").arg(socket->peerAddress().toString()).arg(socket->peerPort());
        client->connectedMs = client->lastHeardMs = m_clock.elapsed();
        client->refilledNs = m_clock.nsecsElapsed();
        client->bucket = m_options.messageBurst;
        m_clients.insert(socket, client);
        connect(socket, &QWebSocket::textMessageReceived, this, [this, client](const QString &text) { onText(client, text); });
        connect(socket, &QWebSocket::binaryMessageReceived, this, [this, client](const QByteArray &frame) { onBinary(client, frame); });
        connect(socket, &QWebSocket::disconnected, this, [this, client] { onDisconnected(client); });
        connect(socket, &QWebSocket::pong, this, [this, client] { client->lastHeardMs = m_clock.elapsed(); });
        Q_EMIT logMessage(QStringLiteral("connect %1").arg(client->address));
        if (m_tokensRequired) {
            client->token = presentedToken(socket->request());
            if (!m_tokens.contains(client->token)) {
                ++m_stats.refused;
                cutOff(client, int(Wire::ErrorCode::Unauthorized),
                       client->token.isEmpty() ? QStringLiteral("a token is required") : QStringLiteral("unknown token"));
            }
        }
    }
}

bool Relay::admit(Client *client)
{
    if (client->closing)
        return false;
    const qint64 now = m_clock.nsecsElapsed();
    client->lastHeardMs = now / 1000000;
    if (m_options.messagesPerSecond <= 0)
        return true;
    // Token bucket: O(1), one clock read per message.
    client->bucket = qMin(double(m_options.messageBurst),
                          client->bucket + double(now - client->refilledNs) * 1e-9 * m_options.messagesPerSecond);
    client->refilledNs = now;
    if (client->bucket < 1) {
        cutOff(client, int(Wire::ErrorCode::RateLimited),
               QStringLiteral("more than %1 messages per second (burst %2)").arg(m_options.messagesPerSecond).arg(m_options.messageBurst));
        return false;
    }
    client->bucket -= 1;
    return true;
}

void Relay::cutOff(Client *client, int code, const QString &message)
{
    if (client->closing)
        return;
    // From now on nothing is read from or sent to it. The rest is deferred:
    // cutOff can be called from inside a loop over a map's members.
    client->closing = true;
    ++m_stats.cutOff;
    QPointer<QWebSocket> socket = client->socket;
    QMetaObject::invokeMethod(this, [this, socket, code, message] {
        if (!socket)
            return;
        if (Client *c = m_clients.value(socket))
            finishCutOff(c, code, message);
    }, Qt::QueuedConnection);
}

void Relay::finishCutOff(Client *client, int code, const QString &message)
{
    Q_EMIT logMessage(QStringLiteral("error %1 to %2: %3 (closing)").arg(Wire::errorName(Wire::ErrorCode(code)), describe(client), message));
    // Others hear `left` now, not when the closing handshake ends.
    const auto ids = client->maps.keys();
    for (quint32 id : ids) {
        if (MapNet *net = m_maps.value(id))
            leaveMap(client, net);
    }
    if (client->peer && m_byPeer.value(client->peer) == client)
        m_byPeer.remove(client->peer); // the peer may reconnect at once
    QWebSocket *socket = client->socket;
    const QByteArray text = Wire::controlMessage(errorMessage(code, message, 0));
    ++m_stats.framesOut;
    m_stats.bytesOut += quint64(text.size());
    socket->sendTextMessage(QString::fromUtf8(text));
    // A peer that stopped reading never completes the closing handshake:
    // drop the socket (and its backlog) after a grace period.
    QTimer::singleShot(m_options.closeGraceMs, socket, [socket] { socket->abort(); });
    QTcpSocket *tcp = client->tcp;
    if (!tcp || tcp->state() != QAbstractSocket::ConnectedState) {
        socket->close(QWebSocketProtocol::CloseCodePolicyViolated, message.left(120)); // may delete client
        return;
    }
    // QWebSocket::close() closes the TCP socket at once. With unread bytes
    // from the peer still in the kernel (a flooder always has some), that
    // sends a reset, and the reset makes the peer's kernel discard the
    // error and close frame before the peer reads them. So: write the close
    // frame ourselves, half-close once it is out, and keep reading (and
    // ignoring) until the peer closes or the grace period ends.
    QByteArray reason = message.left(120).toUtf8();
    QByteArray close;
    close.append(char(0x88));
    close.append(char(2 + reason.size()));
    close.append(char(QWebSocketProtocol::CloseCodePolicyViolated >> 8));
    close.append(char(QWebSocketProtocol::CloseCodePolicyViolated & 0xff));
    close.append(reason);
    tcp->write(close);
    // From here on, what the peer still sends (a flooder sends without end)
    // is read and dropped without being parsed into messages: parsing it
    // cost the relay its time and starved the other peers.
    QObject::disconnect(tcp, &QIODevice::readyRead, nullptr, nullptr);
    connect(tcp, &QIODevice::readyRead, socket, [tcp] { tcp->skip(tcp->bytesAvailable()); });
    tcp->skip(tcp->bytesAvailable());
    auto halfClose = [tcp] {
        if (tcp->bytesToWrite() == 0 && tcp->socketDescriptor() >= 0)
            ::shutdown(int(tcp->socketDescriptor()), SHUT_WR);
    };
    connect(tcp, &QTcpSocket::bytesWritten, socket, halfClose);
    halfClose();
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
        if (client->peer == 0 && now - client->connectedMs > m_options.handshakeTimeoutMs) {
            cutOff(client, int(Wire::ErrorCode::HandshakeRequired),
                   QStringLiteral("no hello within %1 ms").arg(m_options.handshakeTimeoutMs));
        } else if (m_options.pingIntervalMs > 0 && now - client->lastHeardMs > m_options.pingTimeoutMs) {
            silent.append(client->socket);
        } else if (ping) {
            client->socket->ping();
        }
    }
    // A half-open connection would never finish a closing handshake: abort.
    for (QWebSocket *socket : std::as_const(silent)) {
        if (Client *client = m_clients.value(socket)) {
            Q_EMIT logMessage(QStringLiteral("heartbeat: nothing from %1 for %2 ms, dropping it").arg(describe(client)).arg(now - client->lastHeardMs));
            ++m_stats.heartbeatDrops;
            socket->abort(); // emits disconnected: the client is gone after this
        }
    }
}

QString Relay::describe(const Client *client) const
{
    return client->peer ? Wire::peerToString(client->peer) : client->address;
}

void Relay::sendControl(Client *client, const QJsonObject &message)
{
    if (client->closing)
        return;
    const QByteArray text = Wire::controlMessage(message);
    ++m_stats.framesOut;
    m_stats.bytesOut += quint64(text.size());
    client->socket->sendTextMessage(QString::fromUtf8(text));
    if (client->socket->bytesToWrite() > m_options.maxBacklogBytes)
        cutOff(client, int(Wire::ErrorCode::Backlog), QStringLiteral("more than %1 bytes queued: reading too slowly").arg(m_options.maxBacklogBytes));
}

void Relay::sendFrame(Client *client, const QByteArray &frame)
{
    if (client->closing)
        return;
    ++m_stats.framesOut;
    m_stats.bytesOut += quint64(frame.size());
    client->socket->sendBinaryMessage(frame);
    // The socket's write buffer is the only place the relay holds data:
    // bounding it per peer bounds the relay's memory.
    if (client->socket->bytesToWrite() > m_options.maxBacklogBytes)
        cutOff(client, int(Wire::ErrorCode::Backlog), QStringLiteral("more than %1 bytes queued: reading too slowly").arg(m_options.maxBacklogBytes));
}

void Relay::sendError(Client *client, int code, const QString &message, quint32 mapId, bool fatal)
{
    if (fatal) {
        cutOff(client, code, message);
        return;
    }
    sendControl(client, errorMessage(code, message, mapId));
    Q_EMIT logMessage(QStringLiteral("error %1 to %2: %3").arg(Wire::errorName(Wire::ErrorCode(code)), describe(client), message));
}

void Relay::onText(Client *client, const QString &text)
{
    if (!admit(client))
        return;
    ++m_stats.framesIn;
    m_stats.bytesIn += quint64(text.size());
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(text.toUtf8(), &parseError);
    if (!doc.isObject()) {
        sendError(client, int(Wire::ErrorCode::BadMessage),
                  parseError.error != QJsonParseError::NoError
                      ? QStringLiteral("control message is not valid JSON: %1").arg(parseError.errorString())
                      : QStringLiteral("control message is not a JSON object"),
                  0, client->peer == 0);
        return;
    }
    const QJsonObject msg = doc.object();
    const QString type = msg.value(QStringLiteral("type")).toString();
    if (client->peer == 0) {
        if (type == QLatin1String("hello"))
            handleHello(client, msg);
        else
            sendError(client, int(Wire::ErrorCode::HandshakeRequired),
                      QStringLiteral("the first message must be hello, got '%1'").arg(type), 0, true);
        return;
    }
    if (type == QLatin1String("open")) {
        handleOpen(client, msg);
    } else if (type == QLatin1String("close")) {
        handleCloseMap(client, quint32(msg.value(mapKeyField()).toInteger()));
    } else if (type == QLatin1String("ready")) {
        const quint32 id = quint32(msg.value(mapKeyField()).toInteger());
        MapNet *net = memberMap(client, id);
        if (!net)
            return;
        net->members[net->indexOf(client)].ready = true;
    } else if (type == QLatin1String("presence")) {
        const quint32 id = quint32(msg.value(mapKeyField()).toInteger());
        MapNet *net = memberMap(client, id);
        if (!net)
            return;
        const QJsonObject presence = msg.value(QStringLiteral("presence")).toObject();
        if (Wire::controlMessage(presence).size() > MaxPresenceBytes) {
            sendError(client, int(Wire::ErrorCode::TooLarge), QStringLiteral("presence is larger than 4096 bytes"), id);
            return;
        }
        client->maps[id].presence = presence;
        const QJsonObject note{{QStringLiteral("type"), QStringLiteral("presence")},
                               {mapKeyField(), qint64(id)},
                               {QStringLiteral("peer"), Wire::peerToString(client->peer)},
                               {QStringLiteral("presence"), presence}};
        for (const auto &m : std::as_const(net->members)) {
            if (m.client != client)
                sendControl(m.client, note);
        }
    } else if (type == QLatin1String("ping")) {
        sendControl(client, {{QStringLiteral("type"), QStringLiteral("pong")}, {QStringLiteral("seq"), msg.value(QStringLiteral("seq"))}});
    } else if (type == QLatin1String("hello")) {
        sendError(client, int(Wire::ErrorCode::BadMessage), QStringLiteral("hello was already received"));
    } else {
        sendError(client, int(Wire::ErrorCode::UnknownType), QStringLiteral("unknown control message type '%1'").arg(type));
    }
}

void Relay::handleHello(Client *client, const QJsonObject &message)
{
    const int version = message.value(QStringLiteral("version")).toInt(-1);
    if (version != Wire::ProtocolVersion) {
        sendError(client, int(Wire::ErrorCode::UnsupportedVersion),
                  QStringLiteral("protocol version %1 is not supported; this relay speaks version %2")
                      .arg(message.value(QStringLiteral("version")).toVariant().toString())
                      .arg(Wire::ProtocolVersion),
                  0, true);
        return;
    }
    quint64 peer = 0;
    const QJsonValue wanted = message.value(QStringLiteral("peer"));
    if (!wanted.isUndefined()) {
        if (!Wire::peerFromString(wanted.toString(), &peer) || peer == 0) {
            sendError(client, int(Wire::ErrorCode::BadMessage),
                      QStringLiteral("peer must be 16 hexadecimal digits, not zero"), 0, true);
            return;
        }
        if (m_byPeer.contains(peer)) {
            sendError(client, int(Wire::ErrorCode::DuplicatePeer),
                      QStringLiteral("peer id %1 is already connected").arg(Wire::peerToString(peer)), 0, true);
            return;
        }
    } else {
        while (peer == 0 || m_byPeer.contains(peer))
            peer = QRandomGenerator::global()->generate64();
    }
    client->peer = peer;
    m_byPeer.insert(peer, client);
    sendControl(client, {{QStringLiteral("type"), QStringLiteral("welcome")},
                         {QStringLiteral("version"), Wire::ProtocolVersion},
                         {QStringLiteral("peer"), Wire::peerToString(peer)},
                         {QStringLiteral("time"), QDateTime::currentMSecsSinceEpoch()}});
    Q_EMIT logMessage(QStringLiteral("hello %1 is peer %2").arg(client->address, Wire::peerToString(peer)));
}

void Relay::handleOpen(Client *client, const QJsonObject &message)
{
    const QJsonValue uriValue = message.value(QStringLiteral("map"));
    const QString uri = uriValue.toString();
    if (!uriValue.isString() || uri.isEmpty() || uri.toUtf8().size() > MaxUriBytes) {
        sendError(client, int(Wire::ErrorCode::BadMessage), QStringLiteral("open needs a map URI of 1 to 1024 bytes"));
        return;
    }
    const QJsonObject presence = message.value(QStringLiteral("presence")).toObject();
    if (Wire::controlMessage(presence).size() > MaxPresenceBytes) {
        sendError(client, int(Wire::ErrorCode::TooLarge), QStringLiteral("presence is larger than 4096 bytes"));
        return;
    }
    bool writable = true;
    if (m_tokensRequired) {
        const TokenTable::Access access = m_tokens.access(client->token, uri);
        if (access == TokenTable::NoAccess) {
            sendError(client, int(Wire::ErrorCode::Unauthorized), QStringLiteral("this token does not grant map %1").arg(uri));
            return;
        }
        writable = access == TokenTable::ReadWrite;
    }
    MapNet *net = m_mapsByUri.value(uri);
    if (net && net->indexOf(client) >= 0) {
        sendError(client, int(Wire::ErrorCode::AlreadyOpen), QStringLiteral("map %1 is already open on this connection").arg(uri), net->id);
        return;
    }
    if (!net) {
        net = new MapNet;
        net->id = m_nextMapId++;
        if (m_nextMapId == 0)
            m_nextMapId = 1;
        net->uri = uri;
        m_maps.insert(net->id, net);
        m_mapsByUri.insert(uri, net);
    }
    QJsonArray peers;
    for (const auto &m : std::as_const(net->members)) {
        peers.append(QJsonObject{{QStringLiteral("peer"), Wire::peerToString(m.client->peer)},
                                 {QStringLiteral("presence"), m.client->maps.value(net->id).presence}});
    }
    const QJsonObject joined{{QStringLiteral("type"), QStringLiteral("joined")},
                             {mapKeyField(), qint64(net->id)},
                             {QStringLiteral("peer"), Wire::peerToString(client->peer)},
                             {QStringLiteral("presence"), presence}};
    for (const auto &m : std::as_const(net->members))
        sendControl(m.client, joined);
    net->members.append({client, false, writable});
    client->maps.insert(net->id, {presence, writable});
    sendControl(client, {{QStringLiteral("type"), QStringLiteral("opened")},
                         {QStringLiteral("map"), uri},
                         {mapKeyField(), qint64(net->id)},
                         {QStringLiteral("access"), writable ? QStringLiteral("rw") : QStringLiteral("ro")},
                         {QStringLiteral("peers"), peers}});
    Q_EMIT logMessage(QStringLiteral("open %1 by %2 (%3 peers)").arg(uri, describe(client)).arg(net->members.size()));
}

void Relay::handleCloseMap(Client *client, quint32 mapId)
{
    MapNet *net = memberMap(client, mapId);
    if (!net)
        return;
    leaveMap(client, net);
}

void Relay::leaveMap(Client *client, MapNet *net)
{
    const int index = net->indexOf(client);
    if (index < 0)
        return;
    net->members.remove(index);
    client->maps.remove(net->id);
    Q_EMIT logMessage(QStringLiteral("close %1 by %2").arg(net->uri, describe(client)));
    const QJsonObject left{{QStringLiteral("type"), QStringLiteral("left")},
                           {mapKeyField(), qint64(net->id)},
                           {QStringLiteral("peer"), Wire::peerToString(client->peer)}};
    for (const auto &m : std::as_const(net->members))
        sendControl(m.client, left);
    if (net->members.isEmpty()) {
        m_maps.remove(net->id);
        m_mapsByUri.remove(net->uri);
        delete net;
    }
}

Relay::MapNet *Relay::memberMap(Client *client, quint32 mapId)
{
    if (!client->maps.contains(mapId)) {
        sendError(client, int(Wire::ErrorCode::UnknownMap),
                  QStringLiteral("map id %1 is not open on this connection").arg(mapId), mapId);
        return nullptr;
    }
    return m_maps.value(mapId);
}

Relay::Membership *Relay::membership(Client *client, quint32 mapId)
{
    const auto it = client->maps.find(mapId);
    if (it == client->maps.end()) {
        sendError(client, int(Wire::ErrorCode::UnknownMap),
                  QStringLiteral("map id %1 is not open on this connection").arg(mapId), mapId);
        return nullptr;
    }
    return &*it;
}

void Relay::onBinary(Client *client, const QByteArray &incoming)
{
    if (!admit(client))
        return;
    ++m_stats.framesIn;
    m_stats.bytesIn += quint64(incoming.size());
    if (client->peer == 0) {
        sendError(client, int(Wire::ErrorCode::HandshakeRequired), QStringLiteral("the first message must be hello"), 0, true);
        return;
    }
    Wire::Header header;
    const Wire::DecodeError error = Wire::decodeHeader(incoming, &header);
    if (error != Wire::DecodeError::None) {
        sendError(client, int(error == Wire::DecodeError::UnknownType ? Wire::ErrorCode::UnknownType : Wire::ErrorCode::BadMessage),
                  QStringLiteral("bad frame: %1").arg(Wire::decodeErrorText(error)));
        return;
    }
    const Membership *member = membership(client, header.mapId);
    if (!member)
        return;
    MapNet *net = m_maps.value(header.mapId);
    // A read-only peer may ask for the map (SyncRequest) and take it
    // (SyncAck), but sends no entries: not deltas or repairs, and not sync
    // answers either, which would let it write into whoever it answers.
    if (!member->writable && header.type != Wire::Type::SyncRequest && header.type != Wire::Type::SyncAck) {
        sendError(client, int(Wire::ErrorCode::ReadOnly),
                  QStringLiteral("map %1 is read-only for this connection's token").arg(net->uri), net->id);
        return;
    }
    QByteArray frame = incoming; // shares the buffer; the stamp below detaches at most once
    switch (header.type) {
    case Wire::Type::Delta:
    case Wire::Type::Repair: {
        Wire::setHeaderPeer(frame, client->peer);
        for (const auto &m : std::as_const(net->members)) {
            if (m.client != client)
                sendFrame(m.client, frame);
        }
        break;
    }
    case Wire::Type::SyncRequest:
        routeSyncRequest(client, net, frame);
        break;
    case Wire::Type::SyncData:
    case Wire::Type::SyncAck: {
        Client *target = m_byPeer.value(header.peer);
        if (!target || target == client || net->indexOf(target) < 0) {
            sendError(client, int(Wire::ErrorCode::UnknownPeer),
                      QStringLiteral("peer %1 is not in map %2").arg(Wire::peerToString(header.peer), net->uri), net->id);
            return;
        }
        Wire::setHeaderPeer(frame, client->peer);
        sendFrame(target, frame);
        break;
    }
    }
}

void Relay::routeSyncRequest(Client *client, MapNet *net, QByteArray frame)
{
    const int n = int(net->members.size());
    const int self = net->indexOf(client);
    // A member's successive requests (its periodic digest rounds) go to each
    // ready peer in turn, so two peers that share a stale write cannot keep
    // comparing only with each other; first requests spread by a shared cursor.
    int start = net->cursor;
    for (int i = 0; i < n; ++i) {
        if (net->members[i].client->peer == net->members[self].lastSource)
            start = i + 1;
    }
    for (int step = 0; step < n; ++step) {
        const int i = (start + step) % n;
        const auto &m = net->members[i];
        if (m.client == client || !m.ready || !m.writable || m.client->closing)
            continue;
        net->cursor = (i + 1) % n;
        net->members[self].lastSource = m.client->peer;
        Wire::setHeaderPeer(frame, client->peer);
        sendFrame(m.client, frame);
        Q_EMIT logMessage(QStringLiteral("sync %1: %2 served by %3").arg(net->uri, describe(client), describe(m.client)));
        return;
    }
    // Nobody else is ready: the requester's state is the map's state. Mark
    // it ready now, so a peer that asks next syncs from it instead of also
    // being told it is alone.
    net->members[net->indexOf(client)].ready = true;
    sendControl(client, {{QStringLiteral("type"), QStringLiteral("alone")}, {mapKeyField(), qint64(net->id)}});
    Q_EMIT logMessage(QStringLiteral("sync %1: %2 is alone").arg(net->uri, describe(client)));
}

void Relay::onDisconnected(Client *client)
{
    Q_EMIT logMessage(QStringLiteral("disconnect %1").arg(describe(client)));
    const auto ids = client->maps.keys();
    for (quint32 id : ids) {
        if (MapNet *net = m_maps.value(id))
            leaveMap(client, net);
    }
    if (client->peer && m_byPeer.value(client->peer) == client)
        m_byPeer.remove(client->peer);
    m_clients.remove(client->socket);
    client->socket->deleteLater();
    delete client;
}
