// The relay's message handling, driven through a real Relay over a real
// WebSocket on 127.0.0.1 (relay/ is used as is: no test hook). Each input is
// a short conversation from a fresh connection:
//
//   byte 0       bit 0 set: raw, the input's messages come first (it must
//                say hello itself); clear: the harness says hello and opens
//                map "/fuzz" first, where a well-behaved witness peer is
//                ready, so deltas, sync requests and addressed frames route.
//   then up to 64 messages: kind (1 byte), length (2 bytes LE), bytes.
//                kind bit 0: binary, else text (UTF-8). For binary frames of
//                16 bytes or more, bit 1 writes the session's map id into the
//                header and bit 2 writes the witness's peer id.
//
// After the conversation the session pings and waits for its pong (or for
// the relay to close it), then the witness pings: the relay must answer it,
// and must never have closed the witness, whatever the session sent.
#include "control.h"
#include "fuzzcheck.h"
#include "relay.h"
#include "wire.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QWebSocket>

#include <functional>

namespace {

constexpr int TimeoutMs = 20000; // generous: the machine is shared and the fuzzer runs niced
const quint64 WitnessPeer = 0x00000000000000b0ULL;

struct Harness
{
    Relay *relay = nullptr;
    QWebSocket *witness = nullptr;
    quint32 witnessMapId = 0;
    quint32 lastPong = 0;
    bool witnessLost = false;
    quint64 nextSessionPeer = 0x1000;
};

Harness *harness = nullptr;

bool waitFor(const std::function<bool()> &condition)
{
    QElapsedTimer timer;
    timer.start();
    while (!condition()) {
        if (timer.elapsed() > TimeoutMs)
            return false;
        QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 50);
        // No exec() runs here, so deleteLater() (the relay's closed sockets)
        // would wait forever and fill the relay's per-address limit.
        QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
    }
    return true;
}

QString text(const QByteArray &encoded) { return QString::fromUtf8(encoded); }

Control::Message parse(const QString &message)
{
    Control::Message decoded;
    Control::decodeMessage(message.toUtf8(), &decoded);
    return decoded;
}

QString hello(quint64 peer)
{
    Control::Hello hello;
    hello.peer = peer;
    return text(Control::encodeHello(hello));
}

QString ping(quint32 seq) { return text(Control::encodePing({qint64(seq)})); }

// The seq of a pong, or -1 for any other message.
qint64 pongSeq(const Control::Message &message)
{
    Control::Ping pong;
    if (message.type != Control::Type::Pong || Control::decodePing(message.object, &pong) != Control::DecodeError::NoError)
        return -1;
    return pong.seq.toInteger(-1);
}

void setUp()
{
    static int argc = 1;
    static char name[] = "fuzz_relay";
    static char *argv[] = {name, nullptr};
    new QCoreApplication(argc, argv);
    harness = new Harness;
    harness->relay = new Relay;
    FUZZ_CHECK(harness->relay->listen(QHostAddress::LocalHost, 0));

    QWebSocket *w = new QWebSocket;
    harness->witness = w;
    QObject::connect(w, &QWebSocket::disconnected, [] { harness->witnessLost = true; });
    QObject::connect(w, &QWebSocket::textMessageReceived, [](const QString &message) {
        const Control::Message m = parse(message);
        Control::Opened opened;
        if (m.type == Control::Type::Opened && Control::decodeOpened(m.object, &opened) == Control::DecodeError::NoError) {
            harness->witnessMapId = opened.id;
            harness->witness->sendTextMessage(text(Control::encodeReady({opened.id})));
        } else if (m.type == Control::Type::Pong) {
            harness->lastPong = quint32(pongSeq(m));
        }
    });
    QObject::connect(w, &QWebSocket::connected, [] {
        harness->witness->sendTextMessage(hello(WitnessPeer));
        harness->witness->sendTextMessage(text(Control::encodeOpen({QStringLiteral("/fuzz"), {}})));
    });
    w->open(harness->relay->url());
    FUZZ_CHECK(waitFor([] { return harness->witnessMapId != 0 || harness->witnessLost; }));
    FUZZ_CHECK(!harness->witnessLost);
}

struct Message
{
    quint8 kind = 0;
    QByteArray bytes;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!harness)
        setUp();
    if (size < 1)
        return 0;
    const bool raw = data[0] & 1;
    QVector<Message> messages;
    size_t at = 1;
    while (at + 3 <= size && messages.size() < 64) {
        Message m;
        m.kind = data[at];
        const size_t length = qMin<size_t>(size - at - 3, size_t(data[at + 1]) | size_t(data[at + 2]) << 8);
        m.bytes = QByteArray(reinterpret_cast<const char *>(data) + at + 3, qsizetype(length));
        messages.append(m);
        at += 3 + length;
    }

    QWebSocket session;
    bool closed = false;
    bool welcomed = false;
    quint32 mapId = 0;
    bool gotPong = false;
    const quint32 pingSeq = 4242;
    QObject::connect(&session, &QWebSocket::disconnected, [&closed] { closed = true; });
    QObject::connect(&session, &QWebSocket::textMessageReceived, [&](const QString &message) {
        const Control::Message m = parse(message);
        Control::Opened opened;
        if (m.type == Control::Type::Welcome)
            welcomed = true;
        else if (m.type == Control::Type::Opened && Control::decodeOpened(m.object, &opened) == Control::DecodeError::NoError
                 && opened.map == QLatin1String("/fuzz"))
            mapId = opened.id;
        else if (pongSeq(m) == pingSeq)
            gotPong = true;
    });
    session.open(harness->relay->url());
    FUZZ_CHECK(waitFor([&] { return session.state() == QAbstractSocket::ConnectedState || closed; }));
    FUZZ_CHECK(!closed);
    if (!raw) {
        session.sendTextMessage(hello(harness->nextSessionPeer++));
        session.sendTextMessage(text(Control::encodeOpen({QStringLiteral("/fuzz"), {}})));
        FUZZ_CHECK(waitFor([&] { return mapId != 0 || closed; }));
        FUZZ_CHECK(welcomed && !closed);
    }
    for (Message &m : messages) {
        if (m.kind & 1) {
            if (m.bytes.size() >= Wire::HeaderSize && (m.kind & 2))
                qToLittleEndian<quint32>(mapId, m.bytes.data() + 4);
            if (m.bytes.size() >= Wire::HeaderSize && (m.kind & 4))
                qToLittleEndian<quint64>(WitnessPeer, m.bytes.data() + 8);
            session.sendBinaryMessage(m.bytes);
        } else {
            session.sendTextMessage(QString::fromUtf8(m.bytes));
        }
    }
    session.sendTextMessage(ping(pingSeq));
    FUZZ_CHECK(waitFor([&] { return gotPong || closed; }));
    // The relay closes a connection only for a handshake problem.
    FUZZ_CHECK(gotPong || raw);
    session.abort(); // RST, not FIN: no TIME_WAIT pile-up over millions of inputs

    static quint32 witnessSeq = 0;
    const quint32 seq = ++witnessSeq;
    harness->witness->sendTextMessage(ping(seq));
    FUZZ_CHECK(waitFor([seq] { return harness->lastPong == seq || harness->witnessLost; }));
    FUZZ_CHECK(!harness->witnessLost);
    return 0;
}
