#pragma once

// Hand-driven protocol clients for the relay tests: they send exactly what a
// test says, nothing more.

#include "control.h"
#include "wire.h"

#include <QFile>
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
            Control::Message message;
            Control::decodeMessage(text.toUtf8(), &message);
            messages.append(message);
        });
        QObject::connect(&socket, &QWebSocket::binaryMessageReceived, &socket,
                         [this](const QByteArray &frame) { frames.append(frame); });
        QObject::connect(&socket, &QWebSocket::disconnected, &socket, [this] { closed = true; });
    }
    bool waitConnected() { return QTest::qWaitFor([this] { return socket.state() == QAbstractSocket::ConnectedState; }, Timeout); }
    void send(const QByteArray &text) { socket.sendTextMessage(QString::fromUtf8(text)); }
    void sendRaw(const QString &text) { socket.sendTextMessage(text); }
    void sendBinary(const QByteArray &b) { socket.sendBinaryMessage(b); }
    bool hello(const QString &peer = QString())
    {
        Control::Hello hello;
        if (!peer.isEmpty() && !Wire::peerFromString(peer, &hello.peer))
            return false;
        send(Control::encodeHello(hello));
        return waitFor(Control::Type::Welcome);
    }
    quint32 open(const QString &uri)
    {
        send(Control::encodeOpen({uri, {}}));
        if (!waitFor(Control::Type::Opened))
            return 0;
        Control::Opened opened;
        Control::decodeOpened(last(Control::Type::Opened), &opened);
        return opened.id;
    }
    bool waitFor(Control::Type type)
    {
        return QTest::qWaitFor([&] { return !last(type).isEmpty(); }, Timeout);
    }
    // The latest message of that type, or an empty object.
    QJsonObject last(Control::Type type) const
    {
        for (auto it = messages.crbegin(); it != messages.crend(); ++it) {
            if (it->type == type)
                return it->object;
        }
        return {};
    }
    bool waitError(int code)
    {
        return QTest::qWaitFor([&] {
            for (const Control::Message &m : messages) {
                Control::Error error;
                if (m.type == Control::Type::Error && Control::decodeError(m.object, &error) == Control::DecodeError::NoError
                    && int(error.code) == code)
                    return true;
            }
            return false;
        }, Timeout);
    }
    bool stillServed()
    {
        const int seq = ++pings;
        send(Control::encodePing({seq}));
        return QTest::qWaitFor([&] {
            Control::Ping pong;
            Control::decodePing(last(Control::Type::Pong), &pong);
            return pong.seq.toInt() == seq;
        }, Timeout);
    }

    QWebSocket socket;
    QList<Control::Message> messages;
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
    bool hello()
    {
        sendText(Control::encodeHello({}));
        return waitForControl(Control::Type::Welcome);
    }
    // Waits for a control message of that type among the frames received.
    bool waitForControl(Control::Type type)
    {
        return QTest::qWaitFor([&] {
            for (const Frame &f : frames()) {
                Control::Message m;
                if (f.opcode == 0x1 && Control::decodeMessage(f.payload, &m) == Control::DecodeError::NoError && m.type == type)
                    return true;
            }
            return false;
        }, Timeout);
    }
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
