#include "httpfront.h"

#include <QDirIterator>
#include <QFile>
#include <QHttpServerRequest>
#include <QHttpServerResponder>
#include <QLoggingCategory>
#include <QTcpServer>
#include <QTcpSocket>

Q_DECLARE_LOGGING_CATEGORY(lcRelay)

namespace {

// Qt warns when a server that does not listen hands out a connection; here
// that is the design, not a mistake, so those two lines are dropped while
// the handoff runs (synchronously: QAbstractHttpServer takes the socket
// inside addPendingConnection()). Every other message goes on as before.
QtMessageHandler previousHandler = nullptr;

void dropNotListeningWarnings(QtMsgType type, const QMessageLogContext &context, const QString &message)
{
    if (type == QtWarningMsg && message.contains(QLatin1String("not listening")))
        return;
    previousHandler(type, context, message);
}

template<typename F>
void withoutNotListeningWarnings(F &&f)
{
    previousHandler = qInstallMessageHandler(dropNotListeningWarnings);
    f();
    qInstallMessageHandler(previousHandler);
}

// A server that never listens: the front hands it sockets it accepted
// already, and QAbstractHttpServer takes them from it like new ones.
class HandoffServer : public QTcpServer
{
public:
    using QTcpServer::QTcpServer;
    void handOff(QTcpSocket *socket)
    {
        withoutNotListeningWarnings([&] { addPendingConnection(socket); });
    }
};

QByteArray contentType(const QString &path)
{
    if (path.endsWith(QLatin1String(".html")))
        return "text/html; charset=utf-8";
    if (path.endsWith(QLatin1String(".js")) || path.endsWith(QLatin1String(".mjs")))
        return "text/javascript; charset=utf-8";
    if (path.endsWith(QLatin1String(".css")))
        return "text/css; charset=utf-8";
    if (path.endsWith(QLatin1String(".svg")))
        return "image/svg+xml";
    if (path.endsWith(QLatin1String(".png")))
        return "image/png";
    if (path.endsWith(QLatin1String(".json")))
        return "application/json";
    return "application/octet-stream";
}

// Data the socket holds already gives no new readyRead: whoever takes the
// socket over is told there is something to read.
void nudge(QTcpSocket *socket)
{
    QMetaObject::invokeMethod(socket, [socket] {
        if (socket->bytesAvailable() > 0)
            Q_EMIT socket->readyRead();
    }, Qt::QueuedConnection);
}

// Header lookup in a raw request head, case-insensitive on the name.
QByteArray headerValue(const QByteArray &head, const QByteArray &name)
{
    for (const QByteArray &line : head.split('\n')) {
        const int colon = line.indexOf(':');
        if (colon > 0 && line.left(colon).trimmed().toLower() == name)
            return line.mid(colon + 1).trimmed();
    }
    return {};
}

} // namespace

HttpFront::HttpFront(QObject *parent)
    : QAbstractHttpServer(parent)
{
    auto *handoff = new HandoffServer(this);
    m_handoff = handoff;
    withoutNotListeningWarnings([&] { bind(handoff); });
    QDirIterator it(QStringLiteral(":/web"), QDir::Files);
    while (it.hasNext()) {
        const QString resource = it.next();
        m_files.insert(QLatin1Char('/') + it.fileName(), resource);
    }
    if (m_files.contains(QStringLiteral("/index.html")))
        m_files.insert(QStringLiteral("/"), m_files.value(QStringLiteral("/index.html")));
#if defined(QT_WEBSOCKETS_LIB)
    // Upgrades are taken before a socket gets here; one arriving later on
    // the same connection is not served.
    connect(this, &QAbstractHttpServer::newWebSocketConnection, this, [this] {
        while (hasPendingWebSocketConnections())
            nextPendingWebSocketConnection()->abort();
    });
#endif
}

HttpFront::~HttpFront() = default;

void HttpFront::setHandler(const QString &path, std::function<Reply()> handler)
{
    m_handlers.insert(path, std::move(handler));
}

void HttpFront::take(QTcpSocket *socket)
{
    connect(socket, &QTcpSocket::readyRead, this, [this, socket] { sniff(socket); });
    sniff(socket);
}

HttpFront::Verdict HttpFront::classify(const QByteArray &head, bool serveHttp)
{
    const qsizetype end = head.indexOf("\r\n\r\n");
    if (end < 0)
        return head.size() > MaxHeadBytes ? Verdict::TooLarge : Verdict::NeedMore;
    const QByteArray headers = head.left(end);
    if (!serveHttp || headerValue(headers, "upgrade").toLower().contains("websocket"))
        return Verdict::Upgrade;
    // Only GET without a body is served: anything else is answered before
    // a body could be read into memory.
    if (headers.left(headers.indexOf(' ')) != "GET")
        return Verdict::BadMethod;
    if (!headerValue(headers, "transfer-encoding").isEmpty() || headerValue(headers, "content-length").toLongLong() != 0)
        return Verdict::HasBody;
    return Verdict::Serve;
}

void HttpFront::sniff(QTcpSocket *socket)
{
    // peek(), not read(): whoever takes the socket reads the request itself.
    const Verdict verdict = classify(socket->peek(MaxHeadBytes + 4), m_enabled);
    if (verdict == Verdict::NeedMore)
        return;
    socket->disconnect(this);
    switch (verdict) {
    case Verdict::NeedMore:
        break;
    case Verdict::Upgrade:
        if (!m_acceptUpgrades) {
            refuse(socket, 400, "Bad Request");
            break;
        }
        Q_EMIT upgradeRequested(socket);
        nudge(socket);
        break;
    case Verdict::TooLarge:
        refuse(socket, 431, "Request Header Fields Too Large");
        break;
    case Verdict::BadMethod:
        refuse(socket, 405, "Method Not Allowed", "Allow: GET\r\n");
        break;
    case Verdict::HasBody:
        refuse(socket, 413, "Content Too Large");
        break;
    case Verdict::Serve:
        static_cast<HandoffServer *>(m_handoff)->handOff(socket);
        nudge(socket);
        break;
    }
}

void HttpFront::refuse(QTcpSocket *socket, int status, const QByteArray &reason, const QByteArray &extraHeaders)
{
    ++m_refused;
    const QByteArray body = QByteArray::number(status) + ' ' + reason + '\n';
    socket->write("HTTP/1.1 " + QByteArray::number(status) + ' ' + reason + "\r\n" + extraHeaders
                  + "Content-Type: text/plain; charset=utf-8\r\nContent-Length: " + QByteArray::number(body.size())
                  + "\r\nConnection: close\r\n\r\n" + body);
    socket->disconnectFromHost();
}

bool HttpFront::handleRequest(const QHttpServerRequest &request, QTcpSocket *socket)
{
    if (const auto handler = m_handlers.constFind(request.url().path()); handler != m_handlers.constEnd()) {
        const Reply reply = (*handler)();
        QHttpServerResponder responder = makeResponder(request, socket);
        responder.writeStatusLine(QHttpServerResponder::StatusCode(reply.status));
        responder.writeHeader("Content-Type", reply.contentType);
        responder.writeHeader("Content-Length", QByteArray::number(reply.body.size()));
        responder.writeHeader("Cache-Control", "no-store");
        responder.writeHeader("Connection", "close");
        responder.writeBody(reply.body);
        ++m_served;
        socket->disconnectFromHost();
        return true;
    }
    const QString resource = m_serveFiles ? m_files.value(request.url().path()) : QString();
    if (resource.isEmpty())
        return false; // missingHandler: 404
    QHttpServerResponder responder = makeResponder(request, socket);
    const QByteArray origin = request.value("Origin");
    if (!origin.isEmpty() && !m_allowedOrigins.isEmpty() && !m_allowedOrigins.contains(QString::fromUtf8(origin))) {
        ++m_refused;
        responder.write("forbidden origin\n", "text/plain; charset=utf-8", QHttpServerResponder::StatusCode::Forbidden);
        socket->disconnectFromHost();
        return true;
    }
    QFile file(resource);
    file.open(QIODevice::ReadOnly); // compiled in: cannot fail
    const QByteArray body = file.readAll();
    responder.writeStatusLine(QHttpServerResponder::StatusCode::Ok);
    responder.writeHeader("Content-Type", contentType(resource));
    responder.writeHeader("Content-Length", QByteArray::number(body.size()));
    responder.writeHeader("Cache-Control", "no-cache");
    responder.writeHeader("X-Content-Type-Options", "nosniff");
    responder.writeHeader("Connection", "close");
    // Cross-origin pages may import the client (a module script needs
    // CORS); the allow-list, when there is one, says which.
    if (!origin.isEmpty())
        responder.writeHeader("Access-Control-Allow-Origin", m_allowedOrigins.isEmpty() ? QByteArray("*") : origin);
    responder.writeBody(body);
    ++m_served;
    socket->disconnectFromHost();
    return true;
}

void HttpFront::missingHandler(const QHttpServerRequest &request, QTcpSocket *socket)
{
    ++m_refused;
    QHttpServerResponder responder = makeResponder(request, socket);
    responder.write("404 not found\n", "text/plain; charset=utf-8", QHttpServerResponder::StatusCode::NotFound);
    socket->disconnectFromHost();
}
