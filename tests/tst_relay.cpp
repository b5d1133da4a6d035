#include "hybridclock.h"
#include "peerfixture.h"
#include "rawclient.h"
#include "relay.h"
#include "wire.h"

#include <QDateTime>
#include <QJsonArray>
#include <QProcess>
#include <QJsonDocument>
#include <QElapsedTimer>
#include <QSignalSpy>
#include <QStringDecoder>
#include <QTest>
#include <QTimer>
#include <QWebSocket>

#include <memory>

using namespace RelayTest;

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
    void payloadIsForwardedByteForByte_data();
    void payloadIsForwardedByteForByte();
    void openReturnsPeersAndTellsOthers();
    void syncWithNoReadyPeerAnswersAlone();
    void aRequestWhoseResponderLeavesBeforeAnsweringGoesToAnother();
    void aRequestWaitsForAMemberStillSyncing();
    void aRequestWaitsBoundedThenIsAlone();
    void welcomeAnnouncesTheMessageLimit();
    void aCliReaderAcknowledgesItsSyncBeforeExiting_data();
    void aCliReaderAcknowledgesItsSyncBeforeExiting();
    void abuseDoesNotDisturbRealPeers();

    // The relay under abuse (docs/RELIABILITY.md)
    void aFrameAnnouncingTwoGigabytesIsClosedAtOnce();
    void aPeerStillSendingAnOversizedFrameReads1009();
    void handshakesThatNeverFinishAreTimedOut();
    void connectionLimitsCountSocketsInTheirHandshake_data();
    void connectionLimitsCountSocketsInTheirHandshake();
    void aConnectionThatNeverSaysHelloIsClosed();
    void theHelloDeadlineIsKeptToTheTimeoutNotTheHeartbeat();
    void aPeerOverItsRateIsSlowedAndLosesNothing();
    void aPeerThatKeepsFloodingIsCutOff();
    void aSlowedPeerThatDisconnectsIsForgotten();
    void aPeerThatStopsReadingIsCutOffAtTheBacklogCap();
    void heartbeatDropsAHalfOpenConnection();
    void aNonAsciiCloseReasonIsCutToBytes_data();
    void aNonAsciiCloseReasonIsCutToBytes();

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
    const QJsonObject welcome = c.last(Control::Type::Welcome);
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
    QCOMPARE(c.last(Control::Type::Welcome).value(QStringLiteral("peer")).toString(), QStringLiteral("00000000000000ab"));
}

void tst_Relay::duplicatePeerIdIsRefused()
{
    RawClient first(m_relay->url());
    QVERIFY(first.waitConnected());
    QVERIFY(first.hello(QStringLiteral("00000000000000cd")));
    RawClient second(m_relay->url());
    QVERIFY(second.waitConnected());
    Control::Hello hello;
    hello.peer = 0xcd;
    second.send(Control::encodeHello(hello));
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
    QVERIFY(!c.last(Control::Type::Error).value(QStringLiteral("message")).toString().isEmpty());
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

// The relay writes forwarded messages as WebSocket frames itself
// (BinaryFrame): every length form, at its edges, must reach the readers
// (QWebSocket parses them) byte for byte.
void tst_Relay::payloadIsForwardedByteForByte_data()
{
    QTest::addColumn<int>("messageBytes");
    QTest::newRow("a header alone (16 bytes)") << int(Wire::HeaderSize);
    QTest::newRow("125 bytes: the largest 7-bit length") << 125;
    QTest::newRow("126 bytes: the smallest 16-bit length") << 126;
    QTest::newRow("5016 bytes") << 5016;
    QTest::newRow("65535 bytes: the largest 16-bit length") << 65535;
    QTest::newRow("65536 bytes: the smallest 64-bit length, and this relay's limit") << 65536;
}

void tst_Relay::payloadIsForwardedByteForByte()
{
    QFETCH(int, messageBytes);
    RawClient a(m_relay->url());
    RawClient b(m_relay->url());
    RawClient c(m_relay->url());
    QVERIFY(a.waitConnected() && b.waitConnected() && c.waitConnected());
    QVERIFY(a.hello() && b.hello() && c.hello());
    const quint32 id = a.open(QStringLiteral("/m"));
    b.open(QStringLiteral("/m"));
    c.open(QStringLiteral("/m"));
    // Not a valid entry run: the relay must not look inside.
    QByteArray payload(messageBytes - Wire::HeaderSize, '\0');
    for (int i = 0; i < payload.size(); ++i)
        payload[i] = char(i * 31);
    a.sendBinary(frame(Wire::Type::Repair, id, 0, payload));
    a.sendBinary(frame(Wire::Type::Repair, id, 0, "next"));
    for (RawClient *reader : {&b, &c}) {
        QTRY_COMPARE_WITH_TIMEOUT(reader->frames.size(), 2, Timeout);
        QCOMPARE(reader->frames[0].size(), messageBytes);
        QCOMPARE(reader->frames[0].mid(Wire::HeaderSize), payload);
        QCOMPARE(quint8(reader->frames[0][0]), quint8(Wire::Type::Repair));
        QCOMPARE(reader->frames[1].mid(Wire::HeaderSize), QByteArray("next"));
    }
    QVERIFY(a.frames.isEmpty());
}

void tst_Relay::openReturnsPeersAndTellsOthers()
{
    RawClient a(m_relay->url());
    RawClient b(m_relay->url());
    QVERIFY(a.waitConnected() && b.waitConnected());
    QVERIFY(a.hello(QStringLiteral("00000000000000a1")));
    QVERIFY(b.hello(QStringLiteral("00000000000000b1")));
    a.send(Control::encodeOpen({QStringLiteral("/p"), QJsonObject{{QStringLiteral("name"), QStringLiteral("Ada")}}}));
    QVERIFY(a.waitFor(Control::Type::Opened));
    QVERIFY(a.last(Control::Type::Opened).value(QStringLiteral("peers")).toArray().isEmpty());
    b.open(QStringLiteral("/p"));
    const QJsonArray peers = b.last(Control::Type::Opened).value(QStringLiteral("peers")).toArray();
    QCOMPARE(peers.size(), 1);
    QCOMPARE(peers[0].toObject().value(QStringLiteral("peer")).toString(), QStringLiteral("00000000000000a1"));
    QCOMPARE(peers[0].toObject().value(QStringLiteral("presence")).toObject().value(QStringLiteral("name")).toString(), QStringLiteral("Ada"));
    QVERIFY(a.waitFor(Control::Type::Joined));
    QCOMPARE(a.last(Control::Type::Joined).value(QStringLiteral("peer")).toString(), QStringLiteral("00000000000000b1"));
    b.socket.close();
    QVERIFY(a.waitFor(Control::Type::Left));
    QCOMPARE(a.last(Control::Type::Left).value(QStringLiteral("peer")).toString(), QStringLiteral("00000000000000b1"));
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
    QVERIFY(a.waitFor(Control::Type::Alone));
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

namespace {
// The sync requests among a raw client's frames, by requester.
QList<quint64> syncRequesters(const RawClient &c)
{
    QList<quint64> result;
    for (const QByteArray &f : c.frames) {
        Wire::Header h;
        if (Wire::decodeHeader(f, &h) == Wire::DecodeError::NoError && h.type == Wire::Type::SyncRequest)
            result.append(h.peer);
    }
    return result;
}
} // namespace

// A responder that leaves before its first chunk (a CLI peer exiting, a
// link going down) must not leave the requester waiting for its timeout.
void tst_Relay::aRequestWhoseResponderLeavesBeforeAnsweringGoesToAnother()
{
    RawClient a(m_relay->url());
    auto b = std::make_unique<RawClient>(m_relay->url());
    RawClient c(m_relay->url());
    QVERIFY(a.waitConnected() && b->waitConnected() && c.waitConnected());
    QVERIFY(a.hello(QStringLiteral("00000000000000a4")) && b->hello(QStringLiteral("00000000000000b4"))
            && c.hello(QStringLiteral("00000000000000c4")));
    // b opens first, so the rotation starts with it.
    const quint32 id = b->open(QStringLiteral("/reroute"));
    QCOMPARE(a.open(QStringLiteral("/reroute")), id);
    b->send(Control::encodeReady({id}));
    a.send(Control::encodeReady({id}));
    QVERIFY(a.stillServed() && b->stillServed());
    QCOMPARE(c.open(QStringLiteral("/reroute")), id);
    const QByteArray request = frame(Wire::Type::SyncRequest, id, 0, Wire::encodeSyncRequest({7, 0, {}}));
    c.sendBinary(request);
    QTRY_COMPARE_WITH_TIMEOUT(syncRequesters(*b), QList<quint64>{0xc4}, Timeout);
    QVERIFY(a.frames.isEmpty());
    b.reset(); // gone without a word
    QTRY_COMPARE_WITH_TIMEOUT(syncRequesters(a), QList<quint64>{0xc4}, Timeout);
    // The same request, byte for byte but for the stamped origin.
    QCOMPARE(a.frames.first().mid(Wire::HeaderSize), request.mid(Wire::HeaderSize));
    QVERIFY(c.last(Control::Type::Alone).isEmpty());

    // Once a responder has answered, the request is not kept: if it leaves
    // now, the requester hears `left` and asks again itself.
    QByteArray chunk;
    Wire::appendSyncChunkHead(chunk, 7, 0, false, {});
    a.sendBinary(frame(Wire::Type::SyncData, id, 0xc4, chunk));
    QTRY_COMPARE_WITH_TIMEOUT(c.frames.size(), 1, Timeout);
    RawClient d(m_relay->url());
    QVERIFY(d.waitConnected() && d.hello(QStringLiteral("00000000000000d4")));
    QCOMPARE(d.open(QStringLiteral("/reroute")), id);
    d.send(Control::encodeReady({id}));
    QVERIFY(d.stillServed());
    a.socket.close();
    QVERIFY(c.waitFor(Control::Type::Left));
    QVERIFY(d.stillServed());
    QVERIFY(syncRequesters(d).isEmpty());
}

// A member that opened the map and has not finished its sync may hold data
// that nobody ready has (a keeper back after a relay restart): a request
// waits for it instead of being told `alone`.
void tst_Relay::aRequestWaitsForAMemberStillSyncing()
{
    RawClient keeper(m_relay->url());
    RawClient joiner(m_relay->url());
    QVERIFY(keeper.waitConnected() && joiner.waitConnected());
    QVERIFY(keeper.hello(QStringLiteral("00000000000000a5")) && joiner.hello(QStringLiteral("00000000000000b5")));
    const quint32 id = keeper.open(QStringLiteral("/wait"));
    QCOMPARE(joiner.open(QStringLiteral("/wait")), id);
    joiner.sendBinary(frame(Wire::Type::SyncRequest, id, 0, Wire::encodeSyncRequest({1, 0, {}})));
    QVERIFY(joiner.stillServed()); // the relay has taken the request
    QVERIFY(joiner.last(Control::Type::Alone).isEmpty());
    keeper.send(Control::encodeReady({id}));
    QTRY_COMPARE_WITH_TIMEOUT(syncRequesters(keeper), QList<quint64>{0xb5}, Timeout);
    QVERIFY(joiner.stillServed());
    QVERIFY(joiner.last(Control::Type::Alone).isEmpty());
}

void tst_Relay::aRequestWaitsBoundedThenIsAlone()
{
    Relay::Options options;
    options.syncWaitMs = 300;
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    RawClient silent(relay.url());
    RawClient joiner(relay.url());
    QVERIFY(silent.waitConnected() && joiner.waitConnected());
    QVERIFY(silent.hello() && joiner.hello());
    const quint32 id = silent.open(QStringLiteral("/wait"));
    QCOMPARE(joiner.open(QStringLiteral("/wait")), id);
    QElapsedTimer waited;
    waited.start();
    joiner.sendBinary(frame(Wire::Type::SyncRequest, id, 0, Wire::encodeSyncRequest({1, 0, {}})));
    QVERIFY(joiner.waitFor(Control::Type::Alone));
    QVERIFY2(waited.elapsed() >= 300, "alone came before the wait was over");
    QVERIFY(silent.frames.isEmpty());
    // The joiner is ready now: the silent member's own request goes to it.
    silent.sendBinary(frame(Wire::Type::SyncRequest, id, 0, Wire::encodeSyncRequest({1, 0, {}})));
    QTRY_COMPARE_WITH_TIMEOUT(joiner.frames.size(), 1, Timeout);
}

void tst_Relay::welcomeAnnouncesTheMessageLimit()
{
    RawClient c(m_relay->url());
    QVERIFY(c.waitConnected() && c.hello());
    Control::Welcome welcome;
    QCOMPARE(Control::decodeWelcome(c.last(Control::Type::Welcome), &welcome), Control::DecodeError::NoError);
    QCOMPARE(welcome.maxMessage, qint64(64 * 1024)); // init()'s relay
}

void tst_Relay::aCliReaderAcknowledgesItsSyncBeforeExiting_data()
{
    QTest::addColumn<QStringList>("arguments");
    QTest::addColumn<QByteArray>("output");
    QTest::newRow("get") << QStringList{QStringLiteral("get"), QStringLiteral("k")} << QByteArray("1\n");
    QTest::newRow("dump") << QStringList{QStringLiteral("dump")} << QByteArray("{\"k\":1}\n");
}

// `get` and `dump` exit once they have read the map; the last chunk's
// acknowledgement must reach the responder first, or its session never ends.
void tst_Relay::aCliReaderAcknowledgesItsSyncBeforeExiting()
{
    QFETCH(QStringList, arguments);
    QFETCH(QByteArray, output);
    RawClient holder(m_relay->url());
    QVERIFY(holder.waitConnected() && holder.hello(QStringLiteral("00000000000000a3")));
    const quint32 id = holder.open(QStringLiteral("/cli-ack"));
    holder.sendBinary(frame(Wire::Type::SyncRequest, id, 0, Wire::encodeSyncRequest({1, 0, {}})));
    QVERIFY(holder.waitFor(Control::Type::Alone));

    QProcess cli;
    cli.start(qEnvironmentVariable("DISTMAP_BINARY"),
              arguments + QStringList{QStringLiteral("--url"), m_relay->url().toString(), QStringLiteral("--map"), QStringLiteral("/cli-ack")});
    QVERIFY(cli.waitForStarted(Timeout));
    QTRY_COMPARE_WITH_TIMEOUT(holder.frames.size(), 1, Timeout);
    Wire::Header first;
    QCOMPARE(Wire::decodeHeader(holder.frames[0], &first), Wire::DecodeError::NoError);
    QCOMPARE(first.type, Wire::Type::SyncRequest);
    const quint64 reader = first.peer;
    Wire::SyncRequest request;
    QCOMPARE(Wire::decodeSyncRequest(holder.frames[0].constData() + Wire::HeaderSize, holder.frames[0].size() - Wire::HeaderSize, &request),
             Wire::DecodeError::NoError);
    QByteArray chunk = frame(Wire::Type::SyncData, id, reader);
    Wire::appendSyncChunkHead(chunk, request.syncId, 0, true, {});
    Entry entry;
    entry.value = QByteArray("1");
    entry.hlc = HybridClock::pack(QDateTime::currentMSecsSinceEpoch(), 0);
    entry.writer = 0xa3;
    Wire::appendEntry(chunk, QStringLiteral("k"), entry);
    holder.sendBinary(chunk);

    // The relay runs in this process: wait with the event loop running.
    QTRY_COMPARE_WITH_TIMEOUT(cli.state(), QProcess::NotRunning, Timeout);
    QCOMPARE(cli.exitStatus(), QProcess::NormalExit);
    QCOMPARE(cli.exitCode(), 0);
    QCOMPARE(cli.readAllStandardOutput(), output);
    // The relay forwards a connection's messages in order, and its `left`
    // after them: once `left` is here, so is any ack the reader sent.
    QVERIFY(holder.waitFor(Control::Type::Left));
    bool acked = false;
    for (const QByteArray &f : std::as_const(holder.frames)) {
        Wire::Header header;
        Wire::SyncAck ack;
        if (Wire::decodeHeader(f, &header) == Wire::DecodeError::NoError && header.type == Wire::Type::SyncAck
            && header.peer == reader
            && Wire::decodeSyncAck(f.constData() + Wire::HeaderSize, f.size() - Wire::HeaderSize, &ack) == Wire::DecodeError::NoError)
            acked = ack.syncId == request.syncId && ack.seq == 0;
    }
    QVERIFY2(acked, "the reader exited without acknowledging the final chunk");
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

void tst_Relay::aFrameAnnouncingTwoGigabytesIsClosedAtOnce()
{
    RawWebSocket raw;
    QVERIFY(raw.open(m_relay->port()));
    QVERIFY(raw.hello());
    RawClient bystander(m_relay->url());
    QVERIFY(bystander.waitConnected() && bystander.hello());
    const double before = residentMb();
    // The header alone, then a little of the promised payload: the relay
    // must close on the header, not buffer towards 2 GiB.
    raw.tcp.write(RawWebSocket::frameHeader(0x2, quint64(2) << 30) + QByteArray(64 * 1024, 'x'));
    QTRY_VERIFY_WITH_TIMEOUT(raw.closed, Timeout);
    QCOMPARE(raw.closeCode(), int(QWebSocketProtocol::CloseCodeTooMuchData));
    QVERIFY2(residentMb() - before < 32, qPrintable(QStringLiteral("RSS grew by %1 MiB").arg(residentMb() - before)));
    QVERIFY(bystander.stillServed());
}

// Qt closes the socket itself on a frame over the limit; with the peer's
// bytes still arriving, that close resets the connection and the peer's
// kernel throws the 1009 close frame away unread. The relay keeps the
// connection half-open long enough for the close frame to be read.
void tst_Relay::aPeerStillSendingAnOversizedFrameReads1009()
{
    RawWebSocket raw;
    QVERIFY(raw.open(m_relay->port()));
    QVERIFY(raw.hello());
    // Read nothing until the relay has closed its side: what it sends stays
    // in the kernel (Qt's buffer takes one byte), as with a busy peer.
    raw.paused = true;
    raw.tcp.setReadBufferSize(1);
    // Announce 1 MiB (the limit here is 64 KiB) and keep sending it.
    raw.tcp.write(RawWebSocket::frameHeader(0x2, quint64(1) << 20));
    const QByteArray piece(16 * 1024, 'x');
    QTimer pump;
    int sent = 0;
    QObject::connect(&pump, &QTimer::timeout, &raw.tcp, [&] {
        if (raw.tcp.state() == QAbstractSocket::ConnectedState && raw.tcp.bytesToWrite() < 64 * 1024 && sent < 64) {
            raw.tcp.write(piece);
            ++sent;
        }
    });
    pump.start(2);
    // Once the relay's FIN is in, read what came before it.
    QTRY_VERIFY_WITH_TIMEOUT(sent >= 64 || raw.tcp.state() != QAbstractSocket::ConnectedState, Timeout);
    pump.stop();
    raw.paused = false;
    raw.tcp.setReadBufferSize(0);
    QTRY_VERIFY_WITH_TIMEOUT(((raw.received += raw.tcp.readAll()), raw.closeCode() != 0) || raw.closed, Timeout);
    QCOMPARE(raw.closeCode(), int(QWebSocketProtocol::CloseCodeTooMuchData));
}

void tst_Relay::handshakesThatNeverFinishAreTimedOut()
{
    Relay::Options options;
    options.handshakeTimeoutMs = 5000;
    options.maxConnections = 1100;
    options.maxConnectionsPerAddress = 1100;
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    constexpr int Idle = 1000;
    std::vector<std::unique_ptr<QTcpSocket>> idle;
    int connected = 0;
    int gone = 0;
    for (int i = 0; i < Idle; ++i) {
        auto s = std::make_unique<QTcpSocket>();
        QObject::connect(s.get(), &QTcpSocket::connected, s.get(), [&connected] { ++connected; });
        QObject::connect(s.get(), &QTcpSocket::disconnected, s.get(), [&gone] { ++gone; });
        s->connectToHost(QHostAddress::LocalHost, relay.port());
        idle.push_back(std::move(s));
    }
    QTRY_COMPARE_WITH_TIMEOUT(connected, Idle, Timeout);
    QTRY_COMPARE_WITH_TIMEOUT(relay.stats().sockets, Idle, Timeout);
    // A real peer still gets in while they hold their slots.
    QElapsedTimer timer;
    timer.start();
    RawClient real(relay.url());
    QVERIFY(real.waitConnected());
    QVERIFY(real.hello());
    qInfo("real peer welcomed in %lld ms with %d stalled handshakes held", timer.elapsed(), Idle);
    QTRY_COMPARE_WITH_TIMEOUT(gone, Idle, 30000);
    QTRY_COMPARE_WITH_TIMEOUT(relay.stats().sockets, 1, Timeout);
    QVERIFY(real.stillServed());
}

void tst_Relay::connectionLimitsCountSocketsInTheirHandshake_data()
{
    QTest::addColumn<int>("total");
    QTest::addColumn<int>("perAddress");
    QTest::newRow("the total limit") << 3 << 100;
    QTest::newRow("the per-address limit") << 100 << 3;
}

void tst_Relay::connectionLimitsCountSocketsInTheirHandshake()
{
    QFETCH(int, total);
    QFETCH(int, perAddress);
    Relay::Options options;
    options.maxConnections = total;
    options.maxConnectionsPerAddress = perAddress;
    options.handshakeTimeoutMs = 1000;
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    std::vector<std::unique_ptr<QTcpSocket>> stalled;
    for (int i = 0; i < 3; ++i) {
        stalled.push_back(std::make_unique<QTcpSocket>());
        stalled.back()->connectToHost(QHostAddress::LocalHost, relay.port());
    }
    QTRY_COMPARE_WITH_TIMEOUT(relay.stats().sockets, 3, Timeout);
    // Three sockets that never upgraded fill the limit: a fourth is refused.
    RawClient refused(relay.url());
    QTRY_VERIFY_WITH_TIMEOUT(refused.closed || refused.socket.error() != QAbstractSocket::UnknownSocketError, Timeout);
    QVERIFY(refused.socket.state() != QAbstractSocket::ConnectedState);
    QVERIFY(relay.stats().refused >= 1);
    // The handshake timeout frees their slots.
    QTRY_COMPARE_WITH_TIMEOUT(relay.stats().sockets, 0, Timeout);
    RawClient admitted(relay.url());
    QVERIFY(admitted.waitConnected());
    QVERIFY(admitted.hello());
}

void tst_Relay::aConnectionThatNeverSaysHelloIsClosed()
{
    Relay::Options options;
    options.handshakeTimeoutMs = 500;
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    RawClient silent(relay.url());
    QVERIFY(silent.waitConnected());
    QVERIFY(silent.waitError(int(Wire::ErrorCode::HandshakeRequired)));
    QTRY_VERIFY_WITH_TIMEOUT(silent.closed, Timeout);
    QTRY_COMPARE_WITH_TIMEOUT(relay.stats().sockets, 0, Timeout);
}

void tst_Relay::theHelloDeadlineIsKeptToTheTimeoutNotTheHeartbeat()
{
    // The heartbeat ticks every second here (the ping interval); a deadline
    // checked on the tick let a connection made just after one tick live
    // until the tick after next: about 2 s for a 1 s timeout.
    Relay::Options options;
    options.handshakeTimeoutMs = 1000;
    options.pingIntervalMs = 1000;
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    QElapsedTimer clock;
    clock.start();
    RawClient silent(relay.url());
    QVERIFY(silent.waitConnected());
    QVERIFY(silent.waitError(int(Wire::ErrorCode::HandshakeRequired)));
    const qint64 elapsed = clock.elapsed();
    qInfo("closed %lld ms after connecting (timeout 1000 ms)", elapsed);
    QVERIFY2(elapsed >= 900 && elapsed < 1600, qPrintable(QString::number(elapsed)));
}

namespace {
// A delta frame of one entry, key f<i>, from peer 0xf1, with a value of
// about 1 KiB: the relay reads a connection over its rate 64 KiB at a time.
QByteArray floodDelta(quint32 mapId, int i)
{
    QByteArray entries;
    Entry entry;
    entry.value = '"' + QByteArray(1000, 'a' + char(i % 26)) + '"';
    entry.hlc = quint64(i + 1) << 16;
    entry.writer = 0xf1;
    Wire::appendEntry(entries, QStringLiteral("f%1").arg(i), entry);
    return frame(Wire::Type::Delta, mapId, 0, entries);
}
} // namespace

void tst_Relay::aPeerOverItsRateIsSlowedAndLosesNothing()
{
    Relay::Options options;
    options.messagesPerSecond = 200;
    options.messageBurst = 10;
    options.rateCutoffMs = 0; // slowed for as long as it takes, never cut
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    TestPeer a(relay.url(), QStringLiteral("/others"), QStringLiteral("a"));
    TestPeer b(relay.url(), QStringLiteral("/others"), QStringLiteral("b"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady() && b->isReady(), Timeout);
    RawClient reader(relay.url());
    QVERIFY(reader.waitConnected() && reader.hello(QStringLiteral("00000000000000e1")));
    QVERIFY(reader.open(QStringLiteral("/flood")));
    RawClient writer(relay.url());
    QVERIFY(writer.waitConnected() && writer.hello(QStringLiteral("00000000000000f1")));
    const quint32 id = writer.open(QStringLiteral("/flood"));
    QVERIFY(id);
    QVERIFY(reader.waitFor(Control::Type::Joined));

    // Past its burst of 10 the writer is slowed; then it sends the rest
    // at once: about 490 / 200 s = 2.5 s of messages.
    const int count = 500;
    QElapsedTimer clock;
    clock.start();
    for (int i = 0; i < 20; ++i)
        writer.sendBinary(floodDelta(id, i));
    QTRY_VERIFY_WITH_TIMEOUT(relay.stats().slowed > 0, Timeout);
    for (int i = 20; i < count; ++i)
        writer.sendBinary(floodDelta(id, i));
    // The others are served meanwhile: a's write reaches b while most of
    // the writer's messages are still held back.
    a->set(QStringLiteral("after"), 1);
    QTRY_COMPARE_WITH_TIMEOUT(b->value(QStringLiteral("after")).toInt(), 1, Timeout);
    const int deliveredBefore = reader.frames.size();
    qInfo("a's write reached b after %lld ms, with %d of %d flood messages delivered", clock.elapsed(), deliveredBefore, count);
    QVERIFY2(deliveredBefore < count, qPrintable(QString::number(deliveredBefore)));

    // Every message arrives, in order, and the writer was never cut off.
    QTRY_COMPARE_WITH_TIMEOUT(reader.frames.size(), count, 4 * Timeout);
    const qint64 elapsed = clock.elapsed();
    qInfo("%d messages delivered in %lld ms at a limit of 200/s, burst 10 (%llu slowdowns)", count, elapsed,
          static_cast<unsigned long long>(relay.stats().slowed));
    QVERIFY2(elapsed >= 1500, qPrintable(QString::number(elapsed))); // without a limit: well under 0.1 s
    constexpr int HeaderBytes = 16; // the map id in it is the receiver's
    for (int i = 0; i < count; ++i)
        QCOMPARE(reader.frames.at(i).mid(HeaderBytes), floodDelta(id, i).mid(HeaderBytes));
    QVERIFY(!writer.closed);
    QVERIFY(writer.stillServed());
    QCOMPARE(relay.stats().cutOff, 0u);
    QCOMPARE(a.connection->state(), Connection::Connected);
    QCOMPARE(b.connection->state(), Connection::Connected);
}

void tst_Relay::aPeerThatKeepsFloodingIsCutOff()
{
    Relay::Options options;
    options.messagesPerSecond = 200;
    options.messageBurst = 10;
    options.rateCutoffMs = 1500;
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    TestPeer a(relay.url(), QStringLiteral("/flood"), QStringLiteral("a"));
    TestPeer b(relay.url(), QStringLiteral("/flood"), QStringLiteral("b"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady() && b->isReady(), Timeout);
    RawClient flooder(relay.url());
    QVERIFY(flooder.waitConnected());
    QVERIFY(flooder.hello(QStringLiteral("00000000000000f1")));
    const quint32 id = flooder.open(QStringLiteral("/flood"));
    QVERIFY(id);
    for (int i = 0; i < 20; ++i)
        flooder.sendBinary(floodDelta(id, i));
    QTRY_VERIFY_WITH_TIMEOUT(relay.stats().slowed > 0, Timeout);
    QElapsedTimer clock;
    clock.start();
    // Ten seconds' worth at its rate: slowed first, then cut off once it
    // would still be over its rate 1.5 s after it first was.
    for (int i = 20; i < 2000; ++i)
        flooder.sendBinary(floodDelta(id, i));
    QVERIFY(flooder.waitError(int(Wire::ErrorCode::RateLimited)));
    qInfo("cut off %lld ms after it was first slowed, after %llu slowdowns", clock.elapsed(),
          static_cast<unsigned long long>(relay.stats().slowed));
    QVERIFY2(clock.elapsed() >= 800, qPrintable(QString::number(clock.elapsed())));
    QVERIFY(relay.stats().slowed > 1);
    QTRY_VERIFY_WITH_TIMEOUT(flooder.closed, Timeout);
    QCOMPARE(flooder.socket.closeCode(), QWebSocketProtocol::CloseCodePolicyViolated);
    QVERIFY(flooder.socket.closeReason().contains(QLatin1String("messages per second")));
    QVERIFY(flooder.socket.closeReason().contains(QLatin1String("for 1500 ms")));
    // The others never noticed beyond the flooder's `left`.
    a->set(QStringLiteral("after"), 1);
    QTRY_COMPARE_WITH_TIMEOUT(b->value(QStringLiteral("after")).toInt(), 1, Timeout);
    QCOMPARE(a.connection->state(), Connection::Connected);
    QCOMPARE(b.connection->state(), Connection::Connected);
}

void tst_Relay::aSlowedPeerThatDisconnectsIsForgotten()
{
    // While slowed, the relay does not listen to the socket: its close must
    // still be noticed when the slowing ends, and the others hear `left`.
    Relay::Options options;
    options.messagesPerSecond = 50;
    options.messageBurst = 10;
    options.rateCutoffMs = 0;
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    RawClient other(relay.url());
    QVERIFY(other.waitConnected() && other.hello(QStringLiteral("00000000000000e1")));
    QVERIFY(other.open(QStringLiteral("/m")));
    RawClient writer(relay.url());
    QVERIFY(writer.waitConnected() && writer.hello(QStringLiteral("00000000000000f1")));
    const quint32 id = writer.open(QStringLiteral("/m"));
    QVERIFY(id);
    QVERIFY(other.waitFor(Control::Type::Joined));
    for (int i = 0; i < 20; ++i)
        writer.sendBinary(floodDelta(id, i));
    QTRY_VERIFY_WITH_TIMEOUT(relay.stats().slowed > 0, Timeout);
    for (int i = 20; i < 200; ++i)
        writer.sendBinary(floodDelta(id, i));
    QTRY_VERIFY_WITH_TIMEOUT(writer.socket.bytesToWrite() == 0, Timeout);
    writer.socket.abort();
    QVERIFY(other.waitFor(Control::Type::Left));
    QTRY_COMPARE_WITH_TIMEOUT(relay.stats().connections, 1, Timeout);
    QVERIFY(other.stillServed());
}

void tst_Relay::aPeerThatStopsReadingIsCutOffAtTheBacklogCap()
{
    Relay::Options options;
    options.maxMessageBytes = 1024 * 1024;
    options.maxBacklogBytes = 4 * 1024 * 1024;
    options.messagesPerSecond = 0;
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    RawClient writer(relay.url());
    QVERIFY(writer.waitConnected() && writer.hello(QStringLiteral("00000000000000a1")));
    const quint32 id = writer.open(QStringLiteral("/slow"));
    RawWebSocket slow;
    QVERIFY(slow.open(relay.port()));
    slow.sendText(Control::encodeHello({Wire::ProtocolVersion, {}, 0xb1, 0}));
    slow.sendText(Control::encodeOpen({QStringLiteral("/slow"), {}}));
    QVERIFY(slow.waitForControl(Control::Type::Opened));
    QVERIFY(writer.waitFor(Control::Type::Joined));
    // Stop reading: Qt stops draining the kernel once 4 KiB are buffered.
    slow.tcp.setReadBufferSize(4096);
    slow.paused = true;
    const double before = residentMb();
    double peak = before;
    const QByteArray chunk(512 * 1024, 'v');
    for (int round = 0; round < 200 && writer.last(Control::Type::Left).isEmpty(); ++round) {
        for (int i = 0; i < 4; ++i)
            writer.sendBinary(frame(Wire::Type::Delta, id, 0, chunk));
        QVERIFY(writer.stillServed()); // the relay has taken all of it
        peak = qMax(peak, residentMb());
    }
    QVERIFY2(!writer.last(Control::Type::Left).isEmpty(), "the slow reader was never cut off");
    QCOMPARE(writer.last(Control::Type::Left).value(QStringLiteral("peer")).toString(), QStringLiteral("00000000000000b1"));
    QTRY_COMPARE_WITH_TIMEOUT(relay.stats().connections, 1, Timeout); // its socket and backlog are gone
    QVERIFY(relay.stats().cutOff >= 1);
    qInfo("test process RSS grew by %.1f MiB at most while the reader stalled", peak - before);
    QVERIFY(peak - before < 100);
    QVERIFY(writer.stillServed());
}

void tst_Relay::heartbeatDropsAHalfOpenConnection()
{
    Relay::Options options;
    // Generous against a stalled test process: the in-process watcher's
    // pongs must not look late.
    options.pingIntervalMs = 200;
    options.pingTimeoutMs = 2000;
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    RawClient watcher(relay.url());
    QVERIFY(watcher.waitConnected() && watcher.hello());
    watcher.open(QStringLiteral("/hb"));
    // Hand-made client: it never answers pings, as a peer whose host
    // vanished would not.
    RawWebSocket mute;
    QVERIFY(mute.open(relay.port()));
    mute.sendText(Control::encodeHello({Wire::ProtocolVersion, {}, 0xc1, 0}));
    mute.sendText(Control::encodeOpen({QStringLiteral("/hb"), {}}));
    QVERIFY(mute.waitForControl(Control::Type::Opened));
    QVERIFY(watcher.waitFor(Control::Type::Joined));
    QVERIFY(mute.waitFor(QByteArray(1, char(0x89)))); // the relay pings it
    QVERIFY(watcher.waitFor(Control::Type::Left));
    QCOMPARE(watcher.last(Control::Type::Left).value(QStringLiteral("peer")).toString(), QStringLiteral("00000000000000c1"));
    QTRY_VERIFY_WITH_TIMEOUT(mute.closed, Timeout);
    QCOMPARE(relay.stats().heartbeatDrops, quint64(1));
    // QWebSocket answers pings by itself: the watcher outlived the timeout.
    QVERIFY(watcher.stillServed());
}

void tst_Relay::aNonAsciiCloseReasonIsCutToBytes_data()
{
    QTest::addColumn<QByteArray>("first");
    QTest::addColumn<int>("code");
    const QByteArray accents = QString(100, QChar(0xe9)).toUtf8(); // 200 bytes
    QTest::newRow("a first message whose type the error echoes")
        << QByteArray(R"({"type":")" + accents + R"("})") << int(Wire::ErrorCode::HandshakeRequired);
    QTest::newRow("a hello whose version the error echoes")
        << QByteArray(R"({"type":"hello","version":"x)" + accents + R"("})") << int(Wire::ErrorCode::UnsupportedVersion);
    const QByteArray emoji = QByteArray("\xf0\x9f\x98\x80").repeated(40); // 160 bytes
    QTest::newRow("a type of four-byte characters")
        << QByteArray(R"({"type":"x)" + emoji + R"("})") << int(Wire::ErrorCode::HandshakeRequired);
}

// The relay writes this close frame itself (the lingering close): the
// reason must be cut in bytes, at a character boundary, to fit one frame.
void tst_Relay::aNonAsciiCloseReasonIsCutToBytes()
{
    QFETCH(QByteArray, first);
    QFETCH(int, code);
    RawWebSocket raw;
    QVERIFY(raw.open(m_relay->port()));
    raw.sendText(first);
    QTRY_VERIFY_WITH_TIMEOUT(raw.closed, Timeout);
    const QList<RawWebSocket::Frame> frames = raw.frames();
    QCOMPARE(frames.size(), 2);
    QCOMPARE(frames[0].opcode, quint8(0x1));
    const QJsonObject error = QJsonDocument::fromJson(frames[0].payload).object();
    QCOMPARE(error.value(QStringLiteral("code")).toInt(), code);
    const QByteArray message = error.value(QStringLiteral("message")).toString().toUtf8();
    QVERIFY(message.size() > 125);
    const RawWebSocket::Frame &close = frames[1];
    QCOMPARE(close.opcode, quint8(0x8));
    QVERIFY(!close.masked);
    QVERIFY2(close.payload.size() <= 125, qPrintable(QString::number(close.payload.size())));
    QCOMPARE(qFromBigEndian<quint16>(close.payload.constData()), quint16(QWebSocketProtocol::CloseCodePolicyViolated));
    const QByteArray reason = close.payload.mid(2);
    QVERIFY(message.startsWith(reason));
    QVERIFY2(reason.size() > 123 - 4, "cut at the last character boundary that fits, no earlier");
    QStringDecoder utf8(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless);
    const QString text = utf8(reason);
    QVERIFY2(!utf8.hasError(), reason.toHex().constData());

    // A real WebSocket stack takes the frame and reads the same reason.
    RawClient client(m_relay->url());
    QVERIFY(client.waitConnected());
    client.sendRaw(QString::fromUtf8(first));
    QTRY_VERIFY_WITH_TIMEOUT(client.closed, Timeout);
    QCOMPARE(client.socket.closeCode(), QWebSocketProtocol::CloseCodePolicyViolated);
    QCOMPARE(client.socket.closeReason(), text);
}

QTEST_GUILESS_MAIN(tst_Relay)
#include "tst_relay.moc"
