#include "connection.h"

#include "distributedmap.h"
#include "logging.h"
#include "wire.h"

#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>
#include <QNetworkRequest>
#include <QRandomGenerator>
#include <QWebSocket>

Connection::Connection(const QUrl &url, QObject *parent)
    : QObject(parent)
    , m_url(url)
{
    // Writes are stamped with the peer id before the first handshake (the map
    // works offline), so the id exists from the start; the relay confirms it.
    while (m_peerId == 0)
        m_peerId = QRandomGenerator::system()->generate64();
    m_reconnectTimer.setSingleShot(true);
    connect(&m_reconnectTimer, &QTimer::timeout, this, &Connection::startSocket);
}

Connection::~Connection()
{
    // Maps outlive nothing here: tell them so they stop using us.
    const auto maps = m_maps;
    for (DistributedMap *map : maps)
        map->connectionDestroyed();
    if (m_socket) {
        m_socket->disconnect(this);
        m_socket->abort();
        delete m_socket;
    }
}

void Connection::setReconnectDelays(int minimumMs, int maximumMs)
{
    m_minDelayMs = qMax(1, minimumMs);
    m_maxDelayMs = qMax(m_minDelayMs, maximumMs);
}

void Connection::setHandshakeHeader(const QByteArray &name, const QByteArray &value)
{
    m_headers.append({name, value});
}

void Connection::open()
{
    if (m_state != Closed)
        return;
    m_attempt = 0;
    setState(Connecting);
    startSocket();
}

void Connection::close()
{
    m_reconnectTimer.stop();
    if (m_socket) {
        QWebSocket *socket = m_socket;
        m_socket = nullptr;
        socket->disconnect(this);
        socket->close();
        socket->deleteLater();
    }
    const bool wasUp = m_welcomed;
    m_welcomed = false;
    if (wasUp) {
        for (DistributedMap *map : std::as_const(m_maps))
            map->connectionLost();
    }
    setState(Closed);
}

quint32 Connection::ping()
{
    if (!m_welcomed)
        return 0;
    const quint32 seq = ++m_pingSeq;
    sendControl(QJsonObject{{QStringLiteral("type"), QStringLiteral("ping")}, {QStringLiteral("seq"), qint64(seq)}});
    return seq;
}

void Connection::setState(State state)
{
    if (m_state == state)
        return;
    m_state = state;
    Q_EMIT stateChanged(state);
}

void Connection::startSocket()
{
    if (m_socket) {
        m_socket->disconnect(this);
        m_socket->abort();
        m_socket->deleteLater();
    }
    m_socket = new QWebSocket(QString(), QWebSocketProtocol::VersionLatest, this);
    m_socket->setMaxAllowedIncomingMessageSize(Wire::MaxValueBytes + 1024 * 1024);
    connect(m_socket, &QWebSocket::connected, this, &Connection::onConnected);
    connect(m_socket, &QWebSocket::disconnected, this, &Connection::onDisconnected);
    connect(m_socket, &QWebSocket::textMessageReceived, this, &Connection::onText);
    connect(m_socket, &QWebSocket::binaryMessageReceived, this, &Connection::onBinary);
    if (!m_ssl.isNull())
        m_socket->setSslConfiguration(m_ssl);
    connect(m_socket, &QWebSocket::sslErrors, this, [this](const QList<QSslError> &errors) {
        // Not ignored: the socket aborts; say why before it does.
        QStringList texts;
        for (const QSslError &e : errors)
            texts.append(e.errorString());
        Q_EMIT errorOccurred(SocketError, QStringLiteral("TLS error with %1: %2").arg(m_url.host(), texts.join(QStringLiteral("; "))));
    });
    QNetworkRequest request(m_url);
    for (const auto &header : std::as_const(m_headers))
        request.setRawHeader(header.first, header.second);
    qCDebug(lcNet) << "connecting to" << m_url.adjusted(QUrl::RemoveQuery | QUrl::RemoveUserInfo); // a token may ride in the query
    m_socket->open(request);
}

void Connection::onConnected()
{
    QJsonObject hello{{QStringLiteral("type"), QStringLiteral("hello")},
                      {QStringLiteral("version"), Wire::ProtocolVersion}};
    hello.insert(QStringLiteral("peer"), Wire::peerToString(m_peerId));
    hello.insert(QStringLiteral("time"), QDateTime::currentMSecsSinceEpoch());
    sendControl(hello);
}

void Connection::onDisconnected()
{
    if (!m_socket)
        return;
    const QString reason = m_socket->closeReason().isEmpty() ? m_socket->errorString() : m_socket->closeReason();
    const auto code = m_socket->closeCode();
    qCInfo(lcNet) << "disconnected:" << code << reason;
    m_socket->disconnect(this);
    m_socket->deleteLater();
    m_socket = nullptr;
    const bool wasUp = m_welcomed;
    m_welcomed = false;
    if (wasUp) {
        for (DistributedMap *map : std::as_const(m_maps))
            map->connectionLost();
    }
    Q_EMIT errorOccurred(SocketError, wasUp ? QStringLiteral("connection to %1 lost: %2").arg(m_url.toString(), reason)
                                            : QStringLiteral("cannot reach %1: %2").arg(m_url.toString(), reason));
    if (m_state == Closed)
        return;
    setState(Reconnecting);
    scheduleReconnect();
}

void Connection::scheduleReconnect()
{
    // Exponential backoff with jitter so peers of a restarted relay do not
    // all come back in the same millisecond.
    const int shift = qMin(m_attempt, 16);
    const qint64 base = qMin<qint64>(m_maxDelayMs, qint64(m_minDelayMs) << shift);
    const qint64 delay = base / 2 + QRandomGenerator::global()->bounded(base / 2 + 1);
    ++m_attempt;
    m_reconnectTimer.start(int(delay));
}

void Connection::protocolError(const QString &message)
{
    qCWarning(lcNet) << "protocol error:" << message;
    Q_EMIT errorOccurred(ProtocolError, message);
}

void Connection::sendControl(const QJsonObject &message)
{
    if (!m_socket)
        return;
    const QByteArray text = Wire::controlMessage(message);
    m_bytesSent += quint64(text.size());
    m_socket->sendTextMessage(QString::fromUtf8(text));
}

void Connection::sendBinary(const QByteArray &frame)
{
    if (!m_socket || !m_welcomed)
        return;
    m_bytesSent += quint64(frame.size());
    ++m_framesSent;
    m_socket->sendBinaryMessage(frame);
}

void Connection::attach(DistributedMap *map)
{
    if (!m_maps.contains(map))
        m_maps.append(map);
    if (m_welcomed)
        map->connectionReady();
}

void Connection::detach(DistributedMap *map)
{
    m_maps.removeAll(map);
    for (auto it = m_mapsById.begin(); it != m_mapsById.end();) {
        if (it.value() == map)
            it = m_mapsById.erase(it);
        else
            ++it;
    }
}

void Connection::mapIdChanged(DistributedMap *map, quint32 oldId, quint32 newId)
{
    if (oldId && m_mapsById.value(oldId) == map)
        m_mapsById.remove(oldId);
    if (newId)
        m_mapsById.insert(newId, map);
}

void Connection::onText(const QString &text)
{
    const QByteArray utf8 = text.toUtf8();
    m_bytesReceived += quint64(utf8.size());
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(utf8, &parseError);
    if (!doc.isObject()) {
        protocolError(QStringLiteral("relay sent a control message that is not a JSON object"));
        return;
    }
    const QJsonObject msg = doc.object();
    const QString type = msg.value(QStringLiteral("type")).toString();

    if (type == QLatin1String("welcome")) {
        quint64 peer = 0;
        if (!Wire::peerFromString(msg.value(QStringLiteral("peer")).toString(), &peer) || peer == 0) {
            protocolError(QStringLiteral("welcome without a valid peer id"));
            return;
        }
        m_peerId = peer;
        m_welcomed = true;
        m_attempt = 0;
        const qint64 relayTime = qint64(msg.value(QStringLiteral("time")).toDouble());
        if (relayTime > 0)
            m_clockOffsetMs = relayTime - QDateTime::currentMSecsSinceEpoch();
        qCInfo(lcNet) << "welcomed as" << Wire::peerToString(peer);
        setState(Connected);
        const auto maps = m_maps;
        for (DistributedMap *map : maps)
            map->connectionReady();
        return;
    }
    if (type == QLatin1String("pong")) {
        Q_EMIT pongReceived(quint32(msg.value(QStringLiteral("seq")).toInteger()));
        return;
    }
    if (type == QLatin1String("opened")) {
        const QString uri = msg.value(QStringLiteral("map")).toString();
        for (DistributedMap *map : std::as_const(m_maps)) {
            if (map->uri() == uri) {
                map->handleOpened(msg);
                return;
            }
        }
        return; // a map closed before the answer came
    }
    if (type == QLatin1String("error")) {
        const int code = msg.value(QStringLiteral("code")).toInt();
        const QString text = QStringLiteral("relay error %1 (%2): %3")
                                 .arg(code)
                                 .arg(msg.value(QStringLiteral("name")).toString(),
                                      msg.value(QStringLiteral("message")).toString());
        if (code == int(Wire::ErrorCode::UnknownPeer)) {
            // A sync answer or ack to a peer that has just left: a normal race.
            qCDebug(lcNet) << text;
            return;
        }
        qCWarning(lcNet) << text;
        const quint32 mapId = quint32(msg.value(QStringLiteral("id")).toInteger());
        if (DistributedMap *map = m_mapsById.value(mapId))
            map->handleRelayError(code, text);
        Q_EMIT errorOccurred(RelayError, text);
        if (code == int(Wire::ErrorCode::UnsupportedVersion) || code == int(Wire::ErrorCode::Unauthorized)) {
            // Retrying cannot help: stop here and say why.
            close();
        }
        return;
    }
    const quint32 mapId = quint32(msg.value(QStringLiteral("id")).toInteger());
    DistributedMap *map = m_mapsById.value(mapId);
    if (!map)
        return; // the map closed while this was in flight
    if (type == QLatin1String("joined") || type == QLatin1String("left") || type == QLatin1String("presence")
        || type == QLatin1String("alone")) {
        map->handleControl(type, msg);
        return;
    }
    protocolError(QStringLiteral("relay sent an unknown control message type '%1'").arg(type));
}

void Connection::onBinary(const QByteArray &frame)
{
    m_bytesReceived += quint64(frame.size());
    Wire::Header header;
    const Wire::DecodeError error = Wire::decodeHeader(frame, &header);
    if (error != Wire::DecodeError::None) {
        protocolError(QStringLiteral("relay sent a bad frame: %1").arg(Wire::decodeErrorText(error)));
        return;
    }
    if (DistributedMap *map = m_mapsById.value(header.mapId))
        map->handleFrame(header, frame);
}
