#include "connection.h"

#include "control.h"
#include "logging.h"
#include "mapchannel.h"
#include "wire.h"

#include <QDateTime>
#include <QNetworkRequest>
#include <QPointer>
#include <QRandomGenerator>
#include <QWebSocket>

// One attached map. It outlives neither side: the map destroys it, and a
// connection being destroyed tells the receiver and cuts it loose first.
class Connection::Channel final : public MapChannel
{
public:
    Channel(Connection *connection, const QString &uri, Receiver *receiver)
        : connection(connection), uri(uri), receiver(receiver)
    {
    }
    ~Channel() override
    {
        if (connection)
            connection->removeChannel(this);
    }

    quint64 peerId() const override { return connection ? connection->m_peerId : 0; }
    bool isUp() const override { return connection && connection->m_welcomed; }
    qint64 maxMessageBytes() const override
    {
        return connection ? connection->m_maxMessageBytes : Wire::DefaultMaxMessageBytes;
    }
    void sendControl(const QByteArray &text) override
    {
        if (connection)
            connection->sendControl(text);
    }
    void sendFrame(const QByteArray &frame) override
    {
        if (connection)
            connection->sendBinary(frame);
    }
    void setMapId(quint32 id) override
    {
        if (connection && id != mapId)
            connection->routeMapId(this, mapId, id);
        mapId = id;
    }

    Connection *connection;
    const QString uri;
    Receiver *const receiver;
    quint32 mapId = 0;
};

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
    m_handshakeTimer.setSingleShot(true);
    connect(&m_handshakeTimer, &QTimer::timeout, this, &Connection::onHandshakeTimeout);
}

Connection::~Connection()
{
    // Maps outlive nothing here: tell them so they stop using us.
    const auto channels = std::exchange(m_channels, {});
    m_channelsById.clear();
    for (Channel *channel : channels) {
        channel->connection = nullptr;
        channel->receiver->channelGone();
    }
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
    m_handshakeTimer.stop();
    if (m_socket) {
        QWebSocket *socket = m_socket;
        m_socket = nullptr;
        socket->disconnect(this);
        socket->close();
        socket->deleteLater();
    }
    takeChannelsDown();
    setState(Closed);
}

quint32 Connection::ping()
{
    if (!m_welcomed)
        return 0;
    const quint32 seq = ++m_pingSeq;
    sendControl(Control::encodePing({qint64(seq)}));
    return seq;
}

void Connection::setState(State state)
{
    if (m_state == state)
        return;
    m_state = state;
    Q_EMIT stateChanged(state);
}

void Connection::dropSocket()
{
    QWebSocket *socket = std::exchange(m_socket, nullptr);
    if (!socket)
        return;
    socket->disconnect(this);
    socket->abort();
    socket->deleteLater();
}

void Connection::startSocket()
{
    dropSocket();
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
        reportError(SocketError, QStringLiteral("TLS error with %1: %2").arg(m_url.host(), texts.join(QStringLiteral("; "))));
    });
    QNetworkRequest request(m_url);
    for (const auto &header : std::as_const(m_headers))
        request.setRawHeader(header.first, header.second);
    qCDebug(lcNet) << "connecting to" << m_url.adjusted(QUrl::RemoveQuery | QUrl::RemoveUserInfo); // a token may ride in the query
    if (m_handshakeTimeoutMs > 0)
        m_handshakeTimer.start(m_handshakeTimeoutMs);
    m_socket->open(request);
}

void Connection::onHandshakeTimeout()
{
    if (!m_socket || m_welcomed)
        return;
    dropSocket();
    reportError(SocketError, QStringLiteral("no welcome from %1 within %2 ms; trying again")
                                 .arg(m_url.adjusted(QUrl::RemoveQuery | QUrl::RemoveUserInfo).toString())
                                 .arg(m_handshakeTimeoutMs));
    setState(Reconnecting);
    scheduleReconnect();
}

void Connection::onConnected()
{
    Control::Hello hello;
    hello.peer = m_peerId;
    hello.time = QDateTime::currentMSecsSinceEpoch();
    sendControl(Control::encodeHello(hello));
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
    m_handshakeTimer.stop();
    const bool wasUp = takeChannelsDown();
    reportError(SocketError, wasUp ? QStringLiteral("connection to %1 lost: %2").arg(m_url.toString(), reason)
                                   : QStringLiteral("cannot reach %1: %2").arg(m_url.toString(), reason));
    if (m_state == Closed)
        return;
    setState(Reconnecting);
    scheduleReconnect();
}

bool Connection::takeChannelsDown()
{
    const bool wasUp = std::exchange(m_welcomed, false);
    if (wasUp) {
        const auto channels = m_channels;
        for (Channel *channel : channels)
            channel->receiver->channelDown();
    }
    return wasUp;
}

void Connection::setUrls(const QList<QUrl> &urls)
{
    m_urls = urls.size() > 1 ? urls : QList<QUrl>();
    if (!urls.isEmpty())
        m_url = urls.first();
}

void Connection::scheduleReconnect()
{
    if (!m_urls.isEmpty()) { // the relay is gone or unreachable: try the next
        m_url = m_urls.at((m_urls.indexOf(m_url) + 1) % m_urls.size());
        qCInfo(lcNet) << "next relay:" << m_url.adjusted(QUrl::RemoveQuery | QUrl::RemoveUserInfo);
    }
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
    reportError(ProtocolError, message);
}

void Connection::reportError(Error error, const QString &message)
{
    m_error = error;
    m_errorString = message;
    Q_EMIT errorOccurred(error, message);
}

void Connection::sendControl(const QByteArray &text)
{
    if (!m_socket)
        return;
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

std::unique_ptr<MapChannel> Connection::openChannel(const QString &uri, MapChannelReceiver *receiver)
{
    auto channel = std::make_unique<Channel>(this, uri, receiver);
    m_channels.append(channel.get());
    return channel;
}

void Connection::removeChannel(Channel *channel)
{
    m_channels.removeAll(channel);
    if (channel->mapId && m_channelsById.value(channel->mapId) == channel)
        m_channelsById.remove(channel->mapId);
}

void Connection::routeMapId(Channel *channel, quint32 oldId, quint32 newId)
{
    if (oldId && m_channelsById.value(oldId) == channel)
        m_channelsById.remove(oldId);
    if (newId)
        m_channelsById.insert(newId, channel);
}

void Connection::onText(const QString &text)
{
    const QByteArray utf8 = text.toUtf8();
    m_bytesReceived += quint64(utf8.size());
    Control::Message msg;
    if (Control::decodeMessage(utf8, &msg) != Control::DecodeError::NoError) {
        protocolError(QStringLiteral("relay sent a control message that is not a JSON object"));
        return;
    }
    QString why;
    const auto bad = [&](Control::DecodeError error) {
        if (error == Control::DecodeError::NoError)
            return false;
        protocolError(QStringLiteral("relay sent a bad %1 message: %2").arg(msg.typeName, why));
        return true;
    };

    switch (msg.type) {
    case Control::Type::Welcome: {
        Control::Welcome welcome;
        if (Control::decodeWelcome(msg.object, &welcome, &why) != Control::DecodeError::NoError) {
            protocolError(QStringLiteral("welcome without a valid peer id"));
            return;
        }
        m_peerId = welcome.peer;
        m_welcomed = true;
        m_handshakeTimer.stop();
        m_attempt = 0;
        if (welcome.time > 0)
            m_clockOffsetMs = welcome.time - QDateTime::currentMSecsSinceEpoch();
        m_maxMessageBytes = welcome.maxMessage > 0 ? welcome.maxMessage : Wire::DefaultMaxMessageBytes;
        qCInfo(lcNet) << "welcomed as" << Wire::peerToString(welcome.peer);
        setState(Connected);
        const auto channels = m_channels;
        for (Channel *channel : channels)
            channel->receiver->channelUp(m_clockOffsetMs);
        return;
    }
    case Control::Type::Pong: {
        Control::Ping pong;
        Control::decodePing(msg.object, &pong);
        Q_EMIT pongReceived(quint32(pong.seq.toInteger()));
        return;
    }
    case Control::Type::Opened: {
        Control::Opened opened;
        if (bad(Control::decodeOpened(msg.object, &opened, &why)))
            return;
        for (Channel *channel : std::as_const(m_channels)) {
            if (channel->uri == opened.map) {
                channel->receiver->opened(opened);
                return;
            }
        }
        return; // a map closed before the answer came
    }
    case Control::Type::Error: {
        Control::Error error;
        if (bad(Control::decodeError(msg.object, &error, &why)))
            return;
        handleRelayError(error);
        return;
    }
    default:
        break;
    }

    Control::MapRef ref;
    Control::decodeMapRef(msg.object, &ref);
    Channel *channel = m_channelsById.value(ref.id);
    switch (msg.type) {
    case Control::Type::Joined: {
        Control::Joined joined;
        if (!bad(Control::decodeJoined(msg.object, &joined, &why)) && channel)
            channel->receiver->joined(joined);
        return;
    }
    case Control::Type::Left: {
        Control::Left left;
        if (!bad(Control::decodeLeft(msg.object, &left, &why)) && channel)
            channel->receiver->left(left);
        return;
    }
    case Control::Type::Presence: {
        Control::Presence presence;
        if (!bad(Control::decodePresence(msg.object, &presence, &why)) && channel)
            channel->receiver->presenceChanged(presence);
        return;
    }
    case Control::Type::Alone: {
        Control::Alone alone;
        if (!bad(Control::decodeAlone(msg.object, &alone, &why)) && channel)
            channel->receiver->alone(alone);
        return;
    }
    case Control::Type::Verify: {
        Control::MapRef ref;
        if (!bad(Control::decodeMapRef(msg.object, &ref, &why)) && channel)
            channel->receiver->verifyRequested();
        return;
    }
    default:
        // Types added within version 1 after this peer (PROTOCOL.md section
        // 12) are for peers that know them; this one carries on.
        qCDebug(lcNet) << "ignoring an unknown control message type" << msg.typeName;
        return;
    }
}

void Connection::handleRelayError(const Control::Error &error)
{
    const QString text = QStringLiteral("relay error %1 (%2): %3").arg(int(error.code)).arg(error.name, error.message);
    if (error.code == Wire::ErrorCode::UnknownPeer) {
        // A sync answer or ack to a peer that has just left: a normal race.
        qCDebug(lcNet) << text;
        return;
    }
    qCWarning(lcNet) << text;
    m_relayError = error.code;
    Channel *about = m_channelsById.value(error.id);
    for (auto it = m_channels.cbegin(); !about && !error.map.isEmpty() && it != m_channels.cend(); ++it) {
        if ((*it)->uri == error.map)
            about = *it; // an `open` of this map was refused
    }
    if (about)
        about->receiver->relayError(error, text);
    reportError(RelayError, text);
    if (error.code == Wire::ErrorCode::UnsupportedVersion || error.code == Wire::ErrorCode::Unauthorized) {
        // Retrying cannot help: stop here and say why.
        close();
    }
}

void Connection::onBinary(const QByteArray &frame)
{
    m_bytesReceived += quint64(frame.size());
    Wire::Header header;
    const Wire::DecodeError error = Wire::decodeHeader(frame, &header);
    if (error != Wire::DecodeError::NoError) {
        protocolError(QStringLiteral("relay sent a bad frame: %1").arg(Wire::decodeErrorText(error)));
        return;
    }
    if (Channel *channel = m_channelsById.value(header.mapId))
        channel->receiver->frameReceived(header, frame);
}
