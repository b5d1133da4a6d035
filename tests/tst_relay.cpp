#include "peerfixture.h"
#include "relay.h"
#include "wire.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QSignalSpy>
#include <QTest>
#include <QWebSocket>

#include <memory>

namespace {
constexpr int Timeout = 10000;

// A hand-driven protocol client: it sends exactly what a test says.
class RawClient
{
public:
    explicit RawClient(const QUrl &url)
    {
        QObject::connect(&socket, &QWebSocket::textMessageReceived, &socket, [this](const QString &text) {
            messages.append(QJsonDocument::fromJson(text.toUtf8()).object());
        });
        QObject::connect(&socket, &QWebSocket::binaryMessageReceived, &socket,
                         [this](const QByteArray &frame) { frames.append(frame); });
        QObject::connect(&socket, &QWebSocket::disconnected, &socket, [this] { closed = true; });
        socket.open(url);
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

QByteArray frame(Wire::Type type, quint32 mapId, quint64 peer, const QByteArray &payload = {})
{
    QByteArray f;
    Wire::appendHeader(f, {type, 0, mapId, peer});
    return f + payload;
}

} // namespace

class tst_Relay : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void welcomeAssignsAPeerId();
    void requestedPeerIdIsHonoured();
    void duplicatePeerIdIsRefused();
    void fatalHandshakeErrors_data();
    void fatalHandshakeErrors();
    void recoverableErrors_data();
    void recoverableErrors();
    void oversizedMessageClosesWith1009();
    void originIsStampedByTheRelay();
    void payloadIsForwardedByteForByte();
    void openReturnsPeersAndTellsOthers();
    void syncWithNoReadyPeerAnswersAlone();
    void abuseDoesNotDisturbRealPeers();

private:
    std::unique_ptr<Relay> m_relay;
};

void tst_Relay::init()
{
    Relay::Options options;
    options.maxMessageBytes = 64 * 1024;
    m_relay = std::make_unique<Relay>(options);
    QVERIFY(m_relay->listen(QHostAddress::LocalHost, 0));
}

void tst_Relay::cleanup()
{
    m_relay.reset();
}

void tst_Relay::welcomeAssignsAPeerId()
{
    RawClient c(m_relay->url());
    QVERIFY(c.waitConnected());
    QVERIFY(c.hello());
    const QJsonObject welcome = c.last(QStringLiteral("welcome"));
    quint64 id = 0;
    QVERIFY(Wire::peerFromString(welcome.value(QStringLiteral("peer")).toString(), &id));
    QVERIFY(id != 0);
    QCOMPARE(welcome.value(QStringLiteral("version")).toInt(), 1);
    QVERIFY(qAbs(welcome.value(QStringLiteral("time")).toInteger() - QDateTime::currentMSecsSinceEpoch()) < 60000);
}

void tst_Relay::requestedPeerIdIsHonoured()
{
    RawClient c(m_relay->url());
    QVERIFY(c.waitConnected());
    QVERIFY(c.hello(QStringLiteral("00000000000000ab")));
    QCOMPARE(c.last(QStringLiteral("welcome")).value(QStringLiteral("peer")).toString(), QStringLiteral("00000000000000ab"));
}

void tst_Relay::duplicatePeerIdIsRefused()
{
    RawClient first(m_relay->url());
    QVERIFY(first.waitConnected());
    QVERIFY(first.hello(QStringLiteral("00000000000000cd")));
    RawClient second(m_relay->url());
    QVERIFY(second.waitConnected());
    second.send({{QStringLiteral("type"), QStringLiteral("hello")}, {QStringLiteral("version"), 1},
                 {QStringLiteral("peer"), QStringLiteral("00000000000000cd")}});
    QVERIFY(second.waitError(int(Wire::ErrorCode::DuplicatePeer)));
    QTRY_VERIFY_WITH_TIMEOUT(second.closed, Timeout);
    QVERIFY(first.stillServed());
}

void tst_Relay::fatalHandshakeErrors_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<QByteArray>("binary");
    QTest::addColumn<int>("code");
    QTest::newRow("an unknown protocol version") << QStringLiteral(R"({"type":"hello","version":99})") << QByteArray() << int(Wire::ErrorCode::UnsupportedVersion);
    QTest::newRow("a hello without a version") << QStringLiteral(R"({"type":"hello"})") << QByteArray() << int(Wire::ErrorCode::UnsupportedVersion);
    QTest::newRow("open before hello") << QStringLiteral(R"({"type":"open","map":"/x"})") << QByteArray() << int(Wire::ErrorCode::HandshakeRequired);
    QTest::newRow("a binary frame before hello") << QString() << frame(Wire::Type::Delta, 1, 0) << int(Wire::ErrorCode::HandshakeRequired);
    QTest::newRow("text that is not JSON before hello") << QStringLiteral("hello?") << QByteArray() << int(Wire::ErrorCode::BadMessage);
    QTest::newRow("a malformed peer id") << QStringLiteral(R"({"type":"hello","version":1,"peer":"xyz"})") << QByteArray() << int(Wire::ErrorCode::BadMessage);
}

void tst_Relay::fatalHandshakeErrors()
{
    QFETCH(QString, text);
    QFETCH(QByteArray, binary);
    QFETCH(int, code);
    RawClient c(m_relay->url());
    QVERIFY(c.waitConnected());
    if (!text.isEmpty())
        c.sendRaw(text);
    else
        c.sendBinary(binary);
    QVERIFY(c.waitError(code));
    QVERIFY(!c.last(QStringLiteral("error")).value(QStringLiteral("message")).toString().isEmpty());
    QTRY_VERIFY_WITH_TIMEOUT(c.closed, Timeout);
    QCOMPARE(c.socket.closeCode(), QWebSocketProtocol::CloseCodePolicyViolated);
}

void tst_Relay::recoverableErrors_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<QByteArray>("binary");
    QTest::addColumn<int>("code");
    QTest::newRow("an unknown control type") << QStringLiteral(R"({"type":"teleport"})") << QByteArray() << int(Wire::ErrorCode::UnknownType);
    QTest::newRow("a JSON array") << QStringLiteral("[1,2]") << QByteArray() << int(Wire::ErrorCode::BadMessage);
    QTest::newRow("broken JSON") << QStringLiteral("{\"type\":") << QByteArray() << int(Wire::ErrorCode::BadMessage);
    QTest::newRow("open without a map") << QStringLiteral(R"({"type":"open"})") << QByteArray() << int(Wire::ErrorCode::BadMessage);
    QTest::newRow("open with a huge presence") << QStringLiteral(R"({"type":"open","map":"/p","presence":{"x":"%1"}})").arg(QString(5000, QLatin1Char('a')))
                                             << QByteArray() << int(Wire::ErrorCode::TooLarge);
    QTest::newRow("a second hello") << QStringLiteral(R"({"type":"hello","version":1})") << QByteArray() << int(Wire::ErrorCode::BadMessage);
    QTest::newRow("a short binary frame") << QString() << QByteArray("\x10\x00\x00", 3) << int(Wire::ErrorCode::BadMessage);
    QTest::newRow("an unknown binary type") << QString() << (QByteArray(1, char(0x7f)) + QByteArray(15, 0)) << int(Wire::ErrorCode::UnknownType);
    QTest::newRow("a delta to a map not opened") << QString() << frame(Wire::Type::Delta, 999, 0) << int(Wire::ErrorCode::UnknownMap);
    QTest::newRow("a close of a map not opened") << QStringLiteral(R"({"type":"close","id":77})") << QByteArray() << int(Wire::ErrorCode::UnknownMap);
}

void tst_Relay::recoverableErrors()
{
    QFETCH(QString, text);
    QFETCH(QByteArray, binary);
    QFETCH(int, code);
    RawClient c(m_relay->url());
    QVERIFY(c.waitConnected());
    QVERIFY(c.hello());
    if (!text.isEmpty())
        c.sendRaw(text);
    else
        c.sendBinary(binary);
    QVERIFY(c.waitError(code));
    // The connection can go on.
    QVERIFY(c.stillServed());
    QVERIFY(!c.closed);
}

void tst_Relay::oversizedMessageClosesWith1009()
{
    RawClient c(m_relay->url());
    QVERIFY(c.waitConnected());
    QVERIFY(c.hello());
    RawClient bystander(m_relay->url());
    QVERIFY(bystander.waitConnected());
    QVERIFY(bystander.hello());
    c.sendBinary(frame(Wire::Type::Delta, 1, 0, QByteArray(100 * 1024, 'x')));
    QTRY_VERIFY_WITH_TIMEOUT(c.closed, Timeout);
    QCOMPARE(c.socket.closeCode(), QWebSocketProtocol::CloseCodeTooMuchData);
    QVERIFY(bystander.stillServed());
}

void tst_Relay::originIsStampedByTheRelay()
{
    RawClient a(m_relay->url());
    RawClient b(m_relay->url());
    QVERIFY(a.waitConnected() && b.waitConnected());
    QVERIFY(a.hello(QStringLiteral("000000000000000a")));
    QVERIFY(b.hello(QStringLiteral("000000000000000b")));
    const quint32 id = a.open(QStringLiteral("/m"));
    QCOMPARE(b.open(QStringLiteral("/m")), id);
    // a pretends the delta comes from b: the relay overwrites the origin.
    a.sendBinary(frame(Wire::Type::Delta, id, 0xb, QByteArray("payload")));
    QTRY_COMPARE_WITH_TIMEOUT(b.frames.size(), 1, Timeout);
    QCOMPARE(Wire::peekPeer(b.frames[0]), 0xaull);
    QCOMPARE(Wire::peekMapId(b.frames[0]), id);
    QVERIFY(a.frames.isEmpty()); // not echoed to the sender
}

void tst_Relay::payloadIsForwardedByteForByte()
{
    RawClient a(m_relay->url());
    RawClient b(m_relay->url());
    QVERIFY(a.waitConnected() && b.waitConnected());
    QVERIFY(a.hello() && b.hello());
    const quint32 id = a.open(QStringLiteral("/m"));
    b.open(QStringLiteral("/m"));
    // Not a valid entry run: the relay must not look inside.
    QByteArray payload(5000, '\0');
    for (int i = 0; i < payload.size(); ++i)
        payload[i] = char(i * 31);
    a.sendBinary(frame(Wire::Type::Repair, id, 0, payload));
    QTRY_COMPARE_WITH_TIMEOUT(b.frames.size(), 1, Timeout);
    QCOMPARE(b.frames[0].mid(Wire::HeaderSize), payload);
    QCOMPARE(quint8(b.frames[0][0]), quint8(Wire::Type::Repair));
}

void tst_Relay::openReturnsPeersAndTellsOthers()
{
    RawClient a(m_relay->url());
    RawClient b(m_relay->url());
    QVERIFY(a.waitConnected() && b.waitConnected());
    QVERIFY(a.hello(QStringLiteral("00000000000000a1")));
    QVERIFY(b.hello(QStringLiteral("00000000000000b1")));
    a.send({{QStringLiteral("type"), QStringLiteral("open")}, {QStringLiteral("map"), QStringLiteral("/p")},
            {QStringLiteral("presence"), QJsonObject{{QStringLiteral("name"), QStringLiteral("Ada")}}}});
    QVERIFY(a.waitFor(QStringLiteral("opened")));
    QVERIFY(a.last(QStringLiteral("opened")).value(QStringLiteral("peers")).toArray().isEmpty());
    b.open(QStringLiteral("/p"));
    const QJsonArray peers = b.last(QStringLiteral("opened")).value(QStringLiteral("peers")).toArray();
    QCOMPARE(peers.size(), 1);
    QCOMPARE(peers[0].toObject().value(QStringLiteral("peer")).toString(), QStringLiteral("00000000000000a1"));
    QCOMPARE(peers[0].toObject().value(QStringLiteral("presence")).toObject().value(QStringLiteral("name")).toString(), QStringLiteral("Ada"));
    QVERIFY(a.waitFor(QStringLiteral("joined")));
    QCOMPARE(a.last(QStringLiteral("joined")).value(QStringLiteral("peer")).toString(), QStringLiteral("00000000000000b1"));
    b.socket.close();
    QVERIFY(a.waitFor(QStringLiteral("left")));
    QCOMPARE(a.last(QStringLiteral("left")).value(QStringLiteral("peer")).toString(), QStringLiteral("00000000000000b1"));
}

void tst_Relay::syncWithNoReadyPeerAnswersAlone()
{
    RawClient a(m_relay->url());
    RawClient b(m_relay->url());
    QVERIFY(a.waitConnected() && b.waitConnected());
    QVERIFY(a.hello(QStringLiteral("00000000000000a2")) && b.hello(QStringLiteral("00000000000000b2")));
    const quint32 id = a.open(QStringLiteral("/s"));
    b.open(QStringLiteral("/s"));
    const QByteArray request = frame(Wire::Type::SyncRequest, id, 0, Wire::encodeSyncRequest({1, 0, {}}));
    a.sendBinary(request);
    QVERIFY(a.waitFor(QStringLiteral("alone")));
    // a is now ready as far as the relay knows: b's request goes to a.
    b.sendBinary(request);
    QTRY_COMPARE_WITH_TIMEOUT(a.frames.size(), 1, Timeout);
    QCOMPARE(quint8(a.frames[0][0]), quint8(Wire::Type::SyncRequest));
    QCOMPARE(Wire::peekPeer(a.frames[0]), 0xb2ull);
    // a answers b directly; a target outside the map is refused.
    a.sendBinary(frame(Wire::Type::SyncData, id, 0xb2, QByteArray("chunk")));
    QTRY_COMPARE_WITH_TIMEOUT(b.frames.size(), 1, Timeout);
    QCOMPARE(Wire::peekPeer(b.frames[0]), 0xa2ull);
    a.sendBinary(frame(Wire::Type::SyncData, id, 0x1234, QByteArray("chunk")));
    QVERIFY(a.waitError(int(Wire::ErrorCode::UnknownPeer)));
}

void tst_Relay::abuseDoesNotDisturbRealPeers()
{
    TestPeer a(m_relay->url(), QStringLiteral("/real"), QStringLiteral("a"));
    TestPeer b(m_relay->url(), QStringLiteral("/real"), QStringLiteral("b"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady() && b->isReady(), Timeout);
    std::vector<std::unique_ptr<RawClient>> abusers;
    for (int i = 0; i < 5; ++i) {
        abusers.push_back(std::make_unique<RawClient>(m_relay->url()));
        QVERIFY(abusers.back()->waitConnected());
    }
    abusers[0]->sendRaw(QStringLiteral("garbage"));
    abusers[1]->sendBinary(QByteArray(3, 'x'));
    QVERIFY(abusers[2]->hello());
    const quint32 id = abusers[2]->open(QStringLiteral("/real"));
    abusers[2]->sendBinary(frame(Wire::Type::Delta, id, 0, QByteArray("\x09garbage-entry")));
    abusers[3]->sendBinary(frame(Wire::Type::Delta, 1, 0, QByteArray(200 * 1024, 'z')));
    abusers[4]->sendRaw(QStringLiteral(R"({"type":"hello","version":2})"));

    a->set(QStringLiteral("still"), QStringLiteral("works"));
    QTRY_COMPARE_WITH_TIMEOUT(b->value(QStringLiteral("still")).toString(), QStringLiteral("works"), Timeout);
    // The garbage delta reached b (the relay does not decode payloads) and
    // b dropped it whole, with a message, keeping its state intact.
    QCOMPARE(b->size(), 1);
}

QTEST_GUILESS_MAIN(tst_Relay)
#include "tst_relay.moc"
