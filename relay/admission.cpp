#include "admission.h"

#include <QLoggingCategory>
#include <QNetworkRequest>
#include <QSslSocket>
#include <QTcpSocket>
#include <QTimer>
#include <QUrlQuery>
#include <QWebSocket>
#include <QWebSocketCorsAuthenticator>

Q_LOGGING_CATEGORY(lcRelay, "distmap.relay", QtWarningMsg)

namespace {

// A browser cannot set headers on a WebSocket, but it can offer
// subprotocols: `distmap.token.<TOKEN>`, next to `distmap`.
const QLatin1String TokenSubprotocolPrefix("distmap.token.");

QString socketKey(const QHostAddress &address, quint16 port)
{
    return QStringLiteral("%1:%2").arg(address.toString()).arg(port);
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

Admission::Verdict refusal(const QString &reason)
{
    return {false, false, reason};
}

} // namespace

Admission::Admission(const Limits &limits, QObject *parent)
    : QObject(parent)
    , m_limits(limits)
{
}

Admission::~Admission() = default;

QSslConfiguration Admission::secured(const QSslConfiguration &configuration)
{
    QSslConfiguration c = configuration;
    if (c.protocol() != QSsl::TlsV1_3 && c.protocol() != QSsl::TlsV1_3OrLater)
        c.setProtocol(QSsl::TlsV1_2OrLater);
    c.setPeerVerifyMode(QSslSocket::VerifyNone);
    return c;
}

void Admission::accept(QTcpSocket *socket)
{
    const QString address = socket->peerAddress().toString();
    if (m_sockets >= m_limits.maxConnections || m_perAddress.value(address) >= m_limits.maxConnectionsPerAddress) {
        qCWarning(lcRelay) << "refusing connection from" << address << "(connection limit)";
        ++m_counts.refusedLimit;
        socket->abort();
        socket->deleteLater();
        return;
    }
    ++m_counts.accepted;
    ++m_sockets;
    ++m_perAddress[address];
    // Count the socket until it is gone, handshake or not. Watch a child
    // object: QWebSocketServer drops every connection to the socket's own
    // signals when it upgrades it, destroyed() included, and the count
    // then never went down (after maxConnectionsPerAddress connections
    // over the relay's life, that address was refused for good).
    auto *guard = new QObject(socket);
    const QString key = socketKey(socket->peerAddress(), socket->peerPort());
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
    QTimer::singleShot(m_limits.handshakeTimeoutMs, guard, [this, socket, key] {
        if (m_handshaking.value(key) != socket)
            return;
        m_handshaking.remove(key);
        ++m_counts.handshakeTimeouts;
        socket->abort();
        socket->deleteLater();
    });
    auto *ssl = qobject_cast<QSslSocket *>(socket);
    if (!ssl) {
        Q_EMIT readyForUpgrade(socket);
        return;
    }
    // TLS first; only a socket that finished it reaches the WebSocket
    // server. The handshake timeout covers TLS too, so a client that never
    // speaks TLS (plain ws:// to this port) is dropped like a slow handshake.
    connect(ssl, &QSslSocket::encrypted, this, [this, ssl] {
        ssl->disconnect(this);
        Q_EMIT readyForUpgrade(ssl);
    });
    connect(ssl, &QAbstractSocket::errorOccurred, this, [this, ssl] {
        if (ssl->isEncrypted())
            return;
        ++m_counts.tlsFailures;
        Q_EMIT logMessage(QStringLiteral("tls handshake with %1 failed: %2").arg(ssl->peerAddress().toString(), ssl->errorString()));
        ssl->abort();
        ssl->deleteLater();
    });
    ssl->startServerEncryption();
}

QTcpSocket *Admission::takeUpgraded(const QWebSocket *socket)
{
    return m_handshaking.take(socketKey(socket->peerAddress(), socket->peerPort()));
}

void Admission::checkOrigin(QWebSocketCorsAuthenticator *authenticator)
{
    // Browsers always send Origin; other clients usually do not, and are
    // not what an origin allow-list is about.
    const QString origin = authenticator->origin();
    if (m_limits.allowedOrigins.isEmpty() || origin.isEmpty() || m_limits.allowedOrigins.contains(origin))
        return;
    authenticator->setAllowed(false);
    ++m_counts.refusedOrigin;
    Q_EMIT logMessage(QStringLiteral("refused origin %1").arg(origin));
}

void Admission::setTokens(const TokenTable &tokens)
{
    m_tokens = tokens;
    m_tokensRequired = true;
}

Admission::Verdict Admission::admit(const QNetworkRequest &request, QByteArray *token)
{
    if (!m_tokensRequired)
        return {};
    *token = presentedToken(request);
    if (m_tokens.contains(*token))
        return {};
    ++m_counts.refusedToken;
    return refusal(token->isEmpty() ? QStringLiteral("a token is required") : QStringLiteral("unknown token"));
}

Admission::Verdict Admission::recheck(const QByteArray &token) const
{
    if (m_tokensRequired && !m_tokens.contains(token))
        return refusal(QStringLiteral("token revoked"));
    return {};
}

Admission::Verdict Admission::grant(const QByteArray &token, const QString &uri, Moment moment) const
{
    if (!m_tokensRequired)
        return {};
    const TokenTable::Access access = m_tokens.access(token, uri);
    if (access == TokenTable::NoAccess) {
        return refusal(moment == Moment::Open ? QStringLiteral("this token does not grant map %1").arg(uri)
                                              : QStringLiteral("token no longer grants %1").arg(uri));
    }
    return {true, access == TokenTable::ReadWrite, QString()};
}
