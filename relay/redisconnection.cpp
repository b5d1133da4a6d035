#include "redisconnection.h"

#include <QTcpSocket>
#include <QTimer>

#include <hiredis/hiredis.h>

namespace {

RedisReply convert(const redisReply *r)
{
    RedisReply out;
    switch (r->type) {
    case REDIS_REPLY_STRING:
        out.type = RedisReply::Type::String;
        out.string = QByteArray(r->str, qsizetype(r->len));
        break;
    case REDIS_REPLY_STATUS:
        out.type = RedisReply::Type::Status;
        out.string = QByteArray(r->str, qsizetype(r->len));
        break;
    case REDIS_REPLY_ERROR:
        out.type = RedisReply::Type::Error;
        out.string = QByteArray(r->str, qsizetype(r->len));
        break;
    case REDIS_REPLY_INTEGER:
        out.type = RedisReply::Type::Integer;
        out.integer = r->integer;
        break;
    case REDIS_REPLY_ARRAY:
        out.type = RedisReply::Type::Array;
        out.elements.reserve(qsizetype(r->elements));
        for (size_t i = 0; i < r->elements; ++i)
            out.elements.append(convert(r->element[i]));
        break;
    default:
        out.type = RedisReply::Type::Nil;
        break;
    }
    return out;
}

} // namespace

bool RedisConnection::parseUrl(const QString &text, Address *address, QString *error)
{
    const QUrl url(text, QUrl::StrictMode);
    if (!url.isValid() || url.scheme() != QLatin1String("redis") || url.host().isEmpty()) {
        *error = url.scheme() == QLatin1String("rediss")
            ? QStringLiteral("rediss:// (Redis over TLS) is not supported yet; use redis://")
            : QStringLiteral("'%1' is not a redis://[user:password@]host[:port][/db] URL").arg(url.toDisplayString(QUrl::RemovePassword));
        return false;
    }
    Address a;
    a.host = url.host();
    const int port = url.port(6379);
    if (port <= 0 || port > 65535) {
        *error = QStringLiteral("bad port in the Redis URL");
        return false;
    }
    a.port = quint16(port);
    a.user = url.userName(QUrl::FullyDecoded).toUtf8();
    a.password = url.password(QUrl::FullyDecoded).toUtf8();
    if (a.password.isEmpty() && !a.user.isEmpty()) { // redis://:password@ has the password as the user part in some tools
        *error = QStringLiteral("a Redis user needs a password: redis://user:password@host");
        return false;
    }
    const QString path = url.path().mid(1);
    if (!path.isEmpty()) {
        bool ok = false;
        a.db = path.toInt(&ok);
        if (!ok || a.db < 0) {
            *error = QStringLiteral("the Redis URL's path must be a database number, not '%1'").arg(path);
            return false;
        }
    }
    *address = a;
    return true;
}

RedisConnection::RedisConnection(QObject *parent)
    : QObject(parent)
{
    m_deadline = new QTimer(this);
    m_deadline->setSingleShot(true);
    connect(m_deadline, &QTimer::timeout, this, [this] { fail(QStringLiteral("no answer within %1 ms").arg(ConnectTimeoutMs)); });
}

RedisConnection::~RedisConnection()
{
    if (m_reader)
        redisReaderFree(m_reader);
}

void RedisConnection::open(const Address &address)
{
    close();
    m_address = address;
    m_reader = redisReaderCreate();
    m_socket = new QTcpSocket(this);
    m_socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
    connect(m_socket, &QTcpSocket::connected, this, &RedisConnection::onConnected);
    connect(m_socket, &QTcpSocket::readyRead, this, &RedisConnection::onReadyRead);
    connect(m_socket, &QTcpSocket::errorOccurred, this, [this] { fail(m_socket->errorString()); });
    connect(m_socket, &QTcpSocket::disconnected, this, [this] { fail(QStringLiteral("the server closed the connection")); });
    m_state = State::Connecting;
    m_deadline->start(ConnectTimeoutMs);
    m_socket->connectToHost(address.host, address.port);
}

void RedisConnection::close()
{
    m_deadline->stop();
    if (m_socket) {
        m_socket->disconnect(this);
        m_socket->abort();
        m_socket->deleteLater();
        m_socket = nullptr;
    }
    if (m_reader) {
        redisReaderFree(m_reader);
        m_reader = nullptr;
    }
    m_state = State::Closed;
}

bool RedisConnection::send(const QList<QByteArray> &arguments)
{
    if (m_state != State::Open || pendingBytes() > MaxPendingBytes)
        return false;
    write(arguments);
    return true;
}

qint64 RedisConnection::pendingBytes() const
{
    return m_socket ? m_socket->bytesToWrite() : 0;
}

void RedisConnection::flushForShutdown()
{
    if (m_socket && m_socket->bytesToWrite() > 0)
        m_socket->waitForBytesWritten(200);
}

void RedisConnection::write(const QList<QByteArray> &arguments)
{
    QVarLengthArray<const char *, 8> argv;
    QVarLengthArray<size_t, 8> lengths;
    for (const QByteArray &a : arguments) {
        argv.append(a.constData());
        lengths.append(size_t(a.size()));
    }
    char *command = nullptr;
    const int length = redisFormatCommandArgv(&command, int(argv.size()), argv.data(), lengths.data());
    if (length > 0)
        m_socket->write(command, length);
    redisFreeCommand(command);
}

void RedisConnection::onConnected()
{
    m_state = State::Handshake;
    m_handshakeReplies = 0;
    if (!m_address.password.isEmpty()) {
        write(m_address.user.isEmpty() ? QList<QByteArray>{"AUTH", m_address.password}
                                       : QList<QByteArray>{"AUTH", m_address.user, m_address.password});
        ++m_handshakeReplies;
    }
    if (m_address.db != 0) {
        write({"SELECT", QByteArray::number(m_address.db)});
        ++m_handshakeReplies;
    }
    if (!m_address.clientName.isEmpty()) {
        write({"CLIENT", "SETNAME", m_address.clientName});
        ++m_handshakeReplies;
    }
    // A PING last: its answer says the server speaks RESP and took the rest.
    write({"PING"});
    ++m_handshakeReplies;
}

void RedisConnection::onReadyRead()
{
    const QByteArray data = m_socket->readAll();
    if (redisReaderFeed(m_reader, data.constData(), size_t(data.size())) != REDIS_OK) {
        fail(QStringLiteral("cannot read the server's answer"));
        return;
    }
    for (;;) {
        void *raw = nullptr;
        if (redisReaderGetReply(m_reader, &raw) != REDIS_OK) {
            fail(QStringLiteral("protocol error: %1").arg(QString::fromUtf8(m_reader->errstr)));
            return;
        }
        if (!raw)
            return;
        const RedisReply reply = convert(static_cast<redisReply *>(raw));
        freeReplyObject(raw);
        if (m_state == State::Handshake) {
            if (reply.isError()) {
                fail(QStringLiteral("the server refused the connection: %1").arg(QString::fromUtf8(reply.string)));
                return;
            }
            if (--m_handshakeReplies == 0) {
                m_deadline->stop();
                m_state = State::Open;
                Q_EMIT opened();
            }
            continue;
        }
        Q_EMIT replyReceived(reply);
        if (!m_socket) // closed by a receiver
            return;
    }
}

void RedisConnection::fail(const QString &reason)
{
    if (m_state == State::Closed)
        return;
    close();
    Q_EMIT closed(reason);
}
