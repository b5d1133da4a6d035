#include "relay.h"

#include "relaytcpserver.h"
#include "wire.h"

#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLoggingCategory>
#include <QRandomGenerator>
#include <QTcpSocket>
#include <QWebSocket>
#include <QWebSocketServer>

Q_LOGGING_CATEGORY(lcRelay, "distmap.relay", QtWarningMsg)

namespace {

constexpr int MaxPresenceBytes = 4096;
constexpr int MaxUriBytes = 1024;

QString mapKeyField() { return QStringLiteral("id"); }

} // namespace

struct Relay::Client
{
    QWebSocket *socket = nullptr;
    QString address;
    quint64 peer = 0;              // 0 until hello
    QHash<quint32, QJsonObject> maps; // open maps -> presence
};

struct Relay::MapNet
{
    struct Member
    {
        Client *client = nullptr;
        bool ready = false;
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
    m_ws = new QWebSocketServer(QStringLiteral("distmap"), QWebSocketServer::NonSecureMode, this);
    m_ws->setHandshakeTimeout(options.handshakeTimeoutMs);
    m_ws->setMaxPendingConnections(1 << 20);
    connect(m_ws, &QWebSocketServer::newConnection, this, &Relay::onNewConnection);
    m_tcp = new RelayTcpServer(this);
    connect(m_tcp, &RelayTcpServer::socketAccepted, this, &Relay::acceptSocket);
}

Relay::~Relay()
{
    close();
}

bool Relay::listen(const QHostAddress &address, quint16 port)
{
    return m_tcp->listen(address, port);
}

void Relay::close()
{
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
    url.setScheme(QStringLiteral("ws"));
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
    connect(new QObject(socket), &QObject::destroyed, this, [this, address] {
        --m_sockets;
        if (--m_perAddress[address] <= 0)
            m_perAddress.remove(address);
    });
    m_ws->handleConnection(socket);
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
        client->address = QStringLiteral("%1:%2").arg(socket->peerAddress().toString()).arg(socket->peerPort());
        m_clients.insert(socket, client);
        connect(socket, &QWebSocket::textMessageReceived, this, [this, client](const QString &text) { onText(client, text); });
        connect(socket, &QWebSocket::binaryMessageReceived, this, [this, client](const QByteArray &frame) { onBinary(client, frame); });
        connect(socket, &QWebSocket::disconnected, this, [this, client] { onDisconnected(client); });
        Q_EMIT logMessage(QStringLiteral("connect %1").arg(client->address));
    }
}

QString Relay::describe(const Client *client) const
{
    return client->peer ? Wire::peerToString(client->peer) : client->address;
}

void Relay::sendControl(Client *client, const QJsonObject &message)
{
    const QByteArray text = Wire::controlMessage(message);
    ++m_stats.framesOut;
    m_stats.bytesOut += quint64(text.size());
    client->socket->sendTextMessage(QString::fromUtf8(text));
}

void Relay::sendFrame(Client *client, const QByteArray &frame)
{
    ++m_stats.framesOut;
    m_stats.bytesOut += quint64(frame.size());
    client->socket->sendBinaryMessage(frame);
}

void Relay::sendError(Client *client, int code, const QString &message, quint32 mapId, bool fatal)
{
    QJsonObject error{{QStringLiteral("type"), QStringLiteral("error")},
                      {QStringLiteral("code"), code},
                      {QStringLiteral("name"), Wire::errorName(Wire::ErrorCode(code))},
                      {QStringLiteral("message"), message}};
    if (mapId)
        error.insert(mapKeyField(), qint64(mapId));
    sendControl(client, error);
    Q_EMIT logMessage(QStringLiteral("error %1 to %2: %3").arg(Wire::errorName(Wire::ErrorCode(code)), describe(client), message));
    if (fatal)
        client->socket->close(QWebSocketProtocol::CloseCodePolicyViolated, message.left(120));
}

void Relay::onText(Client *client, const QString &text)
{
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
        client->maps[id] = presence;
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
                                 {QStringLiteral("presence"), m.client->maps.value(net->id)}});
    }
    const QJsonObject joined{{QStringLiteral("type"), QStringLiteral("joined")},
                             {mapKeyField(), qint64(net->id)},
                             {QStringLiteral("peer"), Wire::peerToString(client->peer)},
                             {QStringLiteral("presence"), presence}};
    for (const auto &m : std::as_const(net->members))
        sendControl(m.client, joined);
    net->members.append({client, false});
    client->maps.insert(net->id, presence);
    sendControl(client, {{QStringLiteral("type"), QStringLiteral("opened")},
                         {QStringLiteral("map"), uri},
                         {mapKeyField(), qint64(net->id)},
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

void Relay::onBinary(Client *client, const QByteArray &incoming)
{
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
    MapNet *net = memberMap(client, header.mapId);
    if (!net)
        return;
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
        if (m.client == client || !m.ready)
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
    if (client->peer)
        m_byPeer.remove(client->peer);
    m_clients.remove(client->socket);
    client->socket->deleteLater();
    delete client;
}
