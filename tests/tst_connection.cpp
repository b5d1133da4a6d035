#include "connection.h"
#include "control.h"
#include "mapchannel.h"
#include "relay.h"

#include <QSignalSpy>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTest>

#include <memory>

// Connection on its own, against a real relay on 127.0.0.1, with no map on
// top: a receiver that records what its channel delivers stands in for
// DistributedMap, which is what MapChannel is for.
namespace {

constexpr int Timeout = 10000;

struct Recorder : MapChannel::Receiver
{
    int ups = 0;
    int downs = 0;
    int gone = 0;
    int alones = 0;
    QList<Control::Opened> openedMessages;
    QList<quint64> joinedPeers;
    QList<quint64> leftPeers;
    QList<Control::Error> errors;
    QList<QByteArray> frames;
    std::unique_ptr<MapChannel> channel;
    QString uri;

    void channelUp(qint64) override
    {
        ++ups;
        channel->sendControl(Control::encodeOpen({uri, {}}));
    }
    void channelDown() override
    {
        ++downs;
        channel->setMapId(0);
    }
    void channelGone() override { ++gone; }
    void opened(const Control::Opened &message) override
    {
        openedMessages.append(message);
        channel->setMapId(message.id);
    }
    void joined(const Control::Joined &message) override { joinedPeers.append(message.peer); }
    void left(const Control::Left &message) override { leftPeers.append(message.peer); }
    void presenceChanged(const Control::Presence &) override {}
    void alone(const Control::Alone &) override { ++alones; }
    void verifyRequested() override {}
    void relayError(const Control::Error &error, const QString &) override { errors.append(error); }
    void frameReceived(const Wire::Header &, const QByteArray &frame) override { frames.append(frame); }

    void attach(Connection *connection, const QString &mapUri)
    {
        uri = mapUri;
        channel = connection->openChannel(uri, this);
        if (channel->isUp())
            channelUp(0);
    }
    quint32 mapId() const { return openedMessages.isEmpty() ? 0 : openedMessages.last().id; }
};

QByteArray delta(quint32 mapId, const QByteArray &payload)
{
    QByteArray frame;
    Wire::appendHeader(frame, {Wire::Type::Delta, 0, mapId, 0});
    return frame + payload;
}

} // namespace

class tst_Connection : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();
    void handshakeConfirmsTheIdAndOpensEachChannel();
    void framesAndMembershipReachOnlyTheirMapsChannel();
    void anErrorAboutAMapReachesThatChannelAndKeepsItsCode();
    void pingIsAnsweredAfterEverythingSentBefore();
    void aRelayRestartTakesEveryChannelDownAndUpAgain();
    void aDestroyedChannelHearsNothingMore();
    void destroyingTheConnectionLeavesChannelsInert();
    void urlsListsTheRelaysInOrder();
    void anAttemptNobodyAnswersIsDroppedForTheNextRelay();

private:
    std::unique_ptr<Relay> m_relay;
    QUrl m_url;
};

void tst_Connection::init()
{
    m_relay = std::make_unique<Relay>();
    QVERIFY(m_relay->listen(QHostAddress::LocalHost, 0));
    m_url = m_relay->url();
}

void tst_Connection::cleanup()
{
    m_relay.reset();
}

void tst_Connection::handshakeConfirmsTheIdAndOpensEachChannel()
{
    Connection connection(m_url);
    connection.setPeerId(0x1234abcd);
    Recorder a, b;
    a.attach(&connection, QStringLiteral("/a"));
    QSignalSpy states(&connection, &Connection::stateChanged);
    connection.open();
    QTRY_COMPARE_WITH_TIMEOUT(connection.state(), Connection::Connected, Timeout);
    QCOMPARE(connection.peerId(), quint64(0x1234abcd));
    QCOMPARE(states.first().first().value<Connection::State>(), Connection::Connecting);
    QTRY_COMPARE_WITH_TIMEOUT(a.openedMessages.size(), 1, Timeout);
    QCOMPARE(a.ups, 1);
    QCOMPARE(a.openedMessages.first().map, QStringLiteral("/a"));
    QVERIFY(a.openedMessages.first().writable);
    // A channel opened on a connection that is up already opens at once.
    b.attach(&connection, QStringLiteral("/b"));
    QTRY_COMPARE_WITH_TIMEOUT(b.openedMessages.size(), 1, Timeout);
    QCOMPARE(b.openedMessages.first().map, QStringLiteral("/b"));
    QVERIFY(a.mapId() != b.mapId());
    QCOMPARE(connection.error(), Connection::NoError);
}

void tst_Connection::framesAndMembershipReachOnlyTheirMapsChannel()
{
    Connection first(m_url), second(m_url);
    Recorder onA, onB, otherA;
    onA.attach(&first, QStringLiteral("/a"));
    onB.attach(&first, QStringLiteral("/b"));
    otherA.attach(&second, QStringLiteral("/a"));
    first.open();
    QTRY_VERIFY_WITH_TIMEOUT(onA.mapId() && onB.mapId(), Timeout);
    second.open();
    QTRY_VERIFY_WITH_TIMEOUT(otherA.mapId(), Timeout);
    QTRY_COMPARE_WITH_TIMEOUT(onA.joinedPeers, QList<quint64>{second.peerId()}, Timeout);
    QVERIFY(onB.joinedPeers.isEmpty());

    otherA.channel->sendFrame(delta(otherA.mapId(), "payload"));
    QTRY_COMPARE_WITH_TIMEOUT(onA.frames.size(), 1, Timeout);
    QVERIFY(onA.frames.first().endsWith("payload"));
    QCOMPARE(Wire::peekPeer(onA.frames.first()), second.peerId()); // the relay stamped the origin
    QVERIFY(onB.frames.isEmpty());

    second.close();
    QTRY_COMPARE_WITH_TIMEOUT(onA.leftPeers, QList<quint64>{second.peerId()}, Timeout);
    QVERIFY(onB.leftPeers.isEmpty());
    QCOMPARE(otherA.downs, 1);
}

void tst_Connection::anErrorAboutAMapReachesThatChannelAndKeepsItsCode()
{
    Connection connection(m_url);
    Recorder a;
    a.attach(&connection, QStringLiteral("/a"));
    QSignalSpy errors(&connection, &Connection::errorOccurred);
    connection.open();
    QTRY_VERIFY_WITH_TIMEOUT(a.mapId(), Timeout);
    // Opening the same map twice: the relay names the map it is about.
    a.channel->sendControl(Control::encodeOpen({QStringLiteral("/a"), {}}));
    QTRY_COMPARE_WITH_TIMEOUT(a.errors.size(), 1, Timeout);
    QCOMPARE(a.errors.first().code, Wire::ErrorCode::AlreadyOpen);
    QCOMPARE(a.errors.first().id, a.mapId());
    QCOMPARE(connection.error(), Connection::RelayError);
    QCOMPARE(connection.relayErrorCode(), Wire::ErrorCode::AlreadyOpen);
    QVERIFY(connection.errorString().contains(QLatin1String("already-open")));
    QCOMPARE(errors.size(), 1);
    // An error about a map no channel has reaches the connection only.
    a.channel->sendControl(Control::encodeReady({4242}));
    QTRY_COMPARE_WITH_TIMEOUT(connection.relayErrorCode(), Wire::ErrorCode::UnknownMap, Timeout);
    QCOMPARE(a.errors.size(), 1);
    QCOMPARE(connection.state(), Connection::Connected); // neither closes the connection
}

void tst_Connection::pingIsAnsweredAfterEverythingSentBefore()
{
    Connection connection(m_url);
    QCOMPARE(connection.ping(), 0u); // not connected
    connection.open();
    QTRY_COMPARE_WITH_TIMEOUT(connection.state(), Connection::Connected, Timeout);
    QSignalSpy pongs(&connection, &Connection::pongReceived);
    const quint32 seq = connection.ping();
    QVERIFY(seq != 0);
    QVERIFY(pongs.wait(Timeout));
    QCOMPARE(pongs.first().first().toUInt(), seq);
}

void tst_Connection::aRelayRestartTakesEveryChannelDownAndUpAgain()
{
    Connection connection(m_url);
    connection.setReconnectDelays(20, 200);
    Recorder a;
    a.attach(&connection, QStringLiteral("/a"));
    connection.open();
    QTRY_VERIFY_WITH_TIMEOUT(a.mapId(), Timeout);
    const quint16 port = m_relay->port();
    m_relay.reset();
    QTRY_COMPARE_WITH_TIMEOUT(a.downs, 1, Timeout);
    QTRY_COMPARE_WITH_TIMEOUT(connection.state(), Connection::Reconnecting, Timeout);
    QCOMPARE(connection.error(), Connection::SocketError);
    m_relay = std::make_unique<Relay>();
    QVERIFY(m_relay->listen(QHostAddress::LocalHost, port));
    QTRY_COMPARE_WITH_TIMEOUT(a.ups, 2, Timeout);
    QTRY_COMPARE_WITH_TIMEOUT(a.openedMessages.size(), 2, Timeout);
    QCOMPARE(connection.state(), Connection::Connected);
}

void tst_Connection::aDestroyedChannelHearsNothingMore()
{
    Connection first(m_url), second(m_url);
    Recorder a, b;
    a.attach(&first, QStringLiteral("/m"));
    b.attach(&second, QStringLiteral("/m"));
    first.open();
    second.open();
    QTRY_VERIFY_WITH_TIMEOUT(a.mapId() && b.mapId(), Timeout);
    a.channel->sendControl(Control::encodeClose({a.mapId()}));
    a.channel.reset();
    // A frame for the map id a no longer routes goes nowhere, without error.
    b.channel->sendFrame(delta(b.mapId(), "late"));
    QSignalSpy pongs(&second, &Connection::pongReceived);
    second.ping();
    QVERIFY(pongs.wait(Timeout));
    QSignalSpy firstPongs(&first, &Connection::pongReceived);
    first.ping();
    QVERIFY(firstPongs.wait(Timeout));
    QVERIFY(a.frames.isEmpty());
    QCOMPARE(first.error(), Connection::NoError);
}

void tst_Connection::destroyingTheConnectionLeavesChannelsInert()
{
    Recorder a;
    {
        Connection connection(m_url);
        a.attach(&connection, QStringLiteral("/a"));
        connection.open();
        QTRY_VERIFY_WITH_TIMEOUT(a.mapId(), Timeout);
    }
    QCOMPARE(a.gone, 1);
    QVERIFY(!a.channel->isUp());
    QCOMPARE(a.channel->peerId(), quint64(0));
    a.channel->sendFrame(delta(1, "nowhere")); // no crash, nothing sent
    a.channel->setMapId(7);
    a.channel.reset();
}

void tst_Connection::urlsListsTheRelaysInOrder()
{
    // One relay: urls() is that one, so code written for a list of relays
    // (LocalStore::defaultPathFor(urls().first(), ...)) works with either.
    Connection one(m_url);
    QCOMPARE(one.urls(), QList<QUrl>{m_url});
    const QUrl second(QStringLiteral("ws://127.0.0.1:9"));
    Connection two(m_url);
    two.setUrls({second, m_url});
    QCOMPARE(two.urls(), (QList<QUrl>{second, m_url}));
    QCOMPARE(two.url(), second);
    Connection none{QUrl()};
    QVERIFY(none.urls().isEmpty());
}

// A server that accepts and never answers (a hung relay, or a load
// balancer with nothing behind it): the attempt is dropped after the
// handshake timeout and the next relay is tried.
void tst_Connection::anAttemptNobodyAnswersIsDroppedForTheNextRelay()
{
    QTcpServer silent;
    QVERIFY(silent.listen(QHostAddress::LocalHost, 0));
    std::vector<std::unique_ptr<QTcpSocket>> held; // accepted, never read from
    connect(&silent, &QTcpServer::newConnection, this, [&] {
        while (QTcpSocket *s = silent.nextPendingConnection())
            held.emplace_back(s);
    });
    const QUrl silentUrl(QStringLiteral("ws://127.0.0.1:%1").arg(silent.serverPort()));
    Connection connection(silentUrl);
    connection.setUrls({silentUrl, m_url});
    connection.setHandshakeTimeout(300);
    connection.setReconnectDelays(10, 50);
    QSignalSpy errors(&connection, &Connection::errorOccurred);
    connection.open();
    QTRY_COMPARE_WITH_TIMEOUT(connection.state(), Connection::Connected, Timeout);
    QCOMPARE(connection.url(), m_url);
    QVERIFY(!held.empty());
    QVERIFY(!errors.isEmpty());
    QVERIFY2(errors.first().at(1).toString().contains(QStringLiteral("no welcome from ws://127.0.0.1:%1 within 300 ms").arg(silent.serverPort())),
             qPrintable(errors.first().at(1).toString()));

    // Welcomed: the timer is off, and a link that stays up stays up.
    QSignalSpy states(&connection, &Connection::stateChanged);
    QTest::qWait(600); // twice the timeout, to see nothing happen (a duration, not a wait for a result)
    QCOMPARE(connection.state(), Connection::Connected);
    QVERIFY(states.isEmpty());
}

QTEST_GUILESS_MAIN(tst_Connection)
#include "tst_connection.moc"
