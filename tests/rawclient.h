#pragma once

// Hand-driven protocol clients for the relay tests: they send exactly what a
// test says, nothing more.

#include "wire.h"

#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkRequest>
#include <QTcpSocket>
#include <QTest>
#include <QWebSocket>
#include <QtEndian>

namespace RelayTest {
inline constexpr int Timeout = 10000;

// A hand-driven protocol client: it sends exactly what a test says.
class RawClient
{
public:
    explicit RawClient(const QUrl &url, const QString &origin = QString())
        : socket(origin)
    {
        init();
        socket.open(url);
    }
    explicit RawClient(const QNetworkRequest &request)
    {
        init();
        socket.open(request);
    }
    void init()
    {
        QObject::connect(&socket, &QWebSocket::textMessageReceived, &socket, [this](const QString &text) {
            messages.append(QJsonDocument::fromJson(text.toUtf8()).object());
        });
        QObject::connect(&socket, &QWebSocket::binaryMessageReceived, &socket,
                         [this](const QByteArray &frame) { frames.append(frame); });
        QObject::connect(&socket, &QWebSocket::disconnected, &socket, [this] { closed = true; });
    }
    bool waitConnected() { return QTest::qWaitFor([this] { return socket.state() == QAbstractSocket::ConnectedState; }, Timeout); }
    void send(const QJsonObject &o) { socket.sendTextMessage(QString::fromUtf8(Wire::controlMessage(o))); }
    void sendRaw(const QString &text) { socket.sendTextMessage(text); }
    void sendBinary(const QByteArray &b) { socket.sendBinaryMessage(b); }
    bool hello(const QString &peer = QString())
    {
        QJsonObject o{{QStringLiteral("type"), QStringLiteral("hello")}, {QStringLiteral("version"), 1}};
        if (!peer.isEmpty())
            o.insert(QStringLiteral("peer"), peer);
        send(o);
        return waitFor(QStringLiteral("welcome"));
    }
    quint32 open(const QString &uri)
    {
        send({{QStringLiteral("type"), QStringLiteral("open")}, {QStringLiteral("map"), uri}});
        if (!waitFor(QStringLiteral("opened")))
            return 0;
        return quint32(last(QStringLiteral("opened")).value(QStringLiteral("id")).toInteger());
    }
    bool waitFor(const QString &type)
    {
        return QTest::qWaitFor([&] { return !last(type).isEmpty(); }, Timeout);
    }
    QJsonObject last(const QString &type) const
    {
        for (auto it = messages.crbegin(); it != messages.crend(); ++it) {
            if (it->value(QStringLiteral("type")).toString() == type)
                return *it;
        }
        return {};
    }
    bool waitError(int code)
    {
        return QTest::qWaitFor([&] {
            for (const QJsonObject &m : messages) {
                if (m.value(QStringLiteral("type")) == QLatin1String("error") && m.value(QStringLiteral("code")).toInt() == code)
                    return true;
            }
            return false;
        }, Timeout);
    }
    bool stillServed()
    {
        const int seq = ++pings;
        send({{QStringLiteral("type"), QStringLiteral("ping")}, {QStringLiteral("seq"), seq}});
        return QTest::qWaitFor([&] { return last(QStringLiteral("pong")).value(QStringLiteral("seq")).toInt() == seq; }, Timeout);
    }

    QWebSocket socket;
    QList<QJsonObject> messages;
    QList<QByteArray> frames;
    bool closed = false;
    int pings = 0;
};

inline QByteArray frame(Wire::Type type, quint32 mapId, quint64 peer, const QByteArray &payload = {})
{
    QByteArray f;
    Wire::appendHeader(f, {type, 0, mapId, peer});
    return f + payload;
}


// A WebSocket client written by hand over a QTcpSocket, for what QWebSocket
// will not do: announce a huge frame, ignore pings, stop reading.
class RawWebSocket
{
public:
    RawWebSocket()
    {
        QObject::connect(&tcp, &QTcpSocket::readyRead, &tcp, [this] {
            if (!paused)
                received += tcp.readAll();
        });
        QObject::connect(&tcp, &QTcpSocket::disconnected, &tcp, [this] { closed = true; });
    }
    bool open(quint16 port, const QByteArray &extraHeaders = {})
    {
        tcp.connectToHost(QHostAddress::LocalHost, port);
        tcp.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                  + extraHeaders + "\r\n");
        if (!QTest::qWaitFor([this] { return received.contains("\r\n\r\n") || closed; }, Timeout))
            return false;
        if (!received.startsWith("HTTP/1.1 101"))
            return false;
        received.remove(0, received.indexOf("\r\n\r\n") + 4);
        return true;
    }
    // A masked frame header announcing `length` bytes, as RFC 6455 5.2 says.
    static QByteArray frameHeader(quint8 opcode, quint64 length)
    {
        QByteArray h;
        h.append(char(0x80 | opcode));
        if (length < 126) {
            h.append(char(0x80 | length));
        } else if (length < 65536) {
            h.append(char(0x80 | 126));
            char b[2];
            qToBigEndian<quint16>(quint16(length), b);
            h.append(b, 2);
        } else {
            h.append(char(0x80 | 127));
            char b[8];
            qToBigEndian<quint64>(length, b);
            h.append(b, 8);
        }
        h.append(QByteArray(4, '\0')); // zero mask: payload bytes go as they are
        return h;
    }
    void sendText(const QByteArray &json) { tcp.write(frameHeader(0x1, quint64(json.size())) + json); }
    bool waitFor(const QByteArray &text) { return QTest::qWaitFor([&] { return received.contains(text); }, Timeout); }
    bool hello() { sendText(R"({"type":"hello","version":1})"); return waitFor("\"welcome\""); }
    // The frames received so far, as RFC 6455 5.2 lays them out; parsing
    // stops at the first incomplete one.
    struct Frame
    {
        quint8 opcode = 0;
        bool masked = false; // a server must never mask
        QByteArray payload;
    };
    QList<Frame> frames() const
    {
        QList<Frame> result;
        qsizetype at = 0;
        while (received.size() - at >= 2) {
            Frame f;
            f.opcode = quint8(received[at]) & 0x0f;
            f.masked = quint8(received[at + 1]) & 0x80;
            quint64 length = quint8(received[at + 1]) & 0x7f;
            qsizetype head = 2;
            if (length == 126) {
                if (received.size() - at < 4)
                    break;
                length = qFromBigEndian<quint16>(received.constData() + at + 2);
                head = 4;
            } else if (length == 127) {
                if (received.size() - at < 10)
                    break;
                length = qFromBigEndian<quint64>(received.constData() + at + 2);
                head = 10;
            }
            if (f.masked)
                head += 4;
            if (quint64(received.size() - at - head) < length)
                break;
            f.payload = received.mid(at + head, qsizetype(length));
            result.append(f);
            at += head + qsizetype(length);
        }
        return result;
    }
    // The close frame's status code the relay sent, or 0.
    int closeCode() const
    {
        const int at = int(received.lastIndexOf(char(0x88)));
        if (at < 0 || received.size() < at + 4)
            return 0;
        return qFromBigEndian<quint16>(received.constData() + at + 2);
    }

    QTcpSocket tcp;
    QByteArray received;
    bool closed = false;
    bool paused = false;
};

// Resident memory of this process, in MiB (tests run the relay in-process).
inline double residentMb()
{
    QFile f(QStringLiteral("/proc/self/status"));
    if (!f.open(QIODevice::ReadOnly))
        return 0;
    for (const QByteArray &line : f.readAll().split('\n')) {
        if (line.startsWith("VmRSS:"))
            return line.mid(6).trimmed().split(' ').first().toDouble() / 1024.0;
    }
    return 0;
}

} // namespace RelayTest
