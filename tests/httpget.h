#pragma once

// A bare HTTP/1.1 client for tests of the relay's and the keeper's HTTP
// side: raw bytes out, the whole answer back (the servers close after one
// request). Real sockets on loopback, no Qt HTTP client in between.
#include <QTcpSocket>
#include <QTest>

namespace HttpGet {

constexpr int ReplyTimeoutMs = 15000;

struct Reply
{
    int status = 0;
    QByteArray head;
    QByteArray body;
    QByteArray header(const QByteArray &name) const
    {
        for (const QByteArray &line : head.split('\n')) {
            const int colon = line.indexOf(':');
            if (colon > 0 && line.left(colon).trimmed().toLower() == name.toLower())
                return line.mid(colon + 1).trimmed();
        }
        return {};
    }
};

// Sends raw bytes (in pieces, when given several) and reads until the relay
// closes the connection: it serves one request per connection.
inline Reply exchange(quint16 port, const QList<QByteArray> &pieces)
{
    QTcpSocket socket;
    socket.connectToHost(QHostAddress::LocalHost, port);
    if (!socket.waitForConnected(ReplyTimeoutMs))
        return {};
    for (const QByteArray &piece : pieces) {
        socket.write(piece);
        socket.flush();
        QTest::qWait(20); // so the pieces arrive apart, not a wait for a result
    }
    QByteArray all;
    (void)QTest::qWaitFor([&] { // the caller checks what came
        all += socket.readAll();
        return socket.state() == QAbstractSocket::UnconnectedState;
    }, ReplyTimeoutMs);
    all += socket.readAll();
    Reply reply;
    const qsizetype end = all.indexOf("\r\n\r\n");
    reply.head = all.left(end);
    reply.body = end < 0 ? QByteArray() : all.mid(end + 4);
    reply.status = all.startsWith("HTTP/1.1 ") ? all.mid(9, 3).toInt() : 0;
    return reply;
}

inline Reply get(quint16 port, const QByteArray &path, const QByteArray &extra = {})
{
    return exchange(port, {"GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n"});
}

// The value of one sample ("name" or "name{labels}") in a /metrics body; -1 if absent.
inline double sample(const QByteArray &body, const QByteArray &series)
{
    for (const QByteArray &line : body.split('\n')) {
        if (line.startsWith(series + ' '))
            return line.mid(series.size() + 1).toDouble();
    }
    return -1;
}

} // namespace HttpGet
