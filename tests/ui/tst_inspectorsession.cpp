#include "inspectorsession.h"

#include "../peerfixture.h"
#include "connection.h"
#include "distributedmap.h"
#include "hostedrelay.h"
#include "localstore.h"
#include "relay.h"

#include <QCoreApplication>
#include <QJsonObject>
#include <QSignalSpy>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <memory>

namespace {
constexpr int Timeout = 15000; // generous: CI machines are small and busy
const QString MapUri = QStringLiteral("/session-test");

quint16 freePort()
{
    QTcpServer probe;
    if (!probe.listen(QHostAddress::LocalHost, 0))
        return 0;
    return probe.serverPort();
}

QUrl localUrl(quint16 port)
{
    return QUrl(QStringLiteral("ws://127.0.0.1:%1").arg(port));
}

QString presenceName(const DistributedMap *map, quint64 peer)
{
    const auto peers = map->peers();
    for (const DistributedMap::Peer &p : peers) {
        if (p.id == peer)
            return p.presence.value(QStringLiteral("name")).toString();
    }
    return {};
}
} // namespace

// The inspector's session without any widget, on a QCoreApplication, against
// real relays on 127.0.0.1: finding or hosting a relay, opening and moving
// maps, presence, and the local store that keeps a map across runs.
class tst_InspectorSession : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void opensTheStartMapsOnTheRelay();
    void probeFindsARunningRelayAndHostsNothing();
    void hostsARelayWhenNoneAnswers();
    void neverHostsWhenNotAsked();
    void connectToMovesTheOpenMaps();
    void closeMapTellsViewsFirst();
    void aNewDisplayNameReachesOtherPeers();
    void aStoreInTheDataDirectoryKeepsTheMapAcrossSessions();

private:
    static InspectorSession::Options optionsFor(const QUrl &url)
    {
        InspectorSession::Options options;
        options.url = url;
        options.maps = {MapUri};
        options.name = QStringLiteral("Alice");
        options.useStore = false;
        return options;
    }

    QTemporaryDir m_dataHome;
};

void tst_InspectorSession::initTestCase()
{
    // Stores go to AppDataLocation, which follows XDG_DATA_HOME: keep them
    // in a directory this test owns.
    QVERIFY(m_dataHome.isValid());
    qputenv("XDG_DATA_HOME", m_dataHome.path().toLocal8Bit());
    QCoreApplication::setOrganizationName(QStringLiteral("distmap-test"));
    QCoreApplication::setApplicationName(QStringLiteral("tst_inspectorsession"));
    QVERIFY(!QCoreApplication::instance()->inherits("QGuiApplication"));
}

void tst_InspectorSession::opensTheStartMapsOnTheRelay()
{
    Relay relay;
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    InspectorSession::Options options = optionsFor(relay.url());
    options.maps = {MapUri, QStringLiteral("/second")};
    InspectorSession session(options);
    QSignalSpy connections(&session, &InspectorSession::connectionChanged);
    QSignalSpy opened(&session, &InspectorSession::mapOpened);
    session.start();

    QCOMPARE(connections.count(), 1);
    QVERIFY(session.connection());
    QCOMPARE(session.connection()->url(), relay.url());
    QCOMPARE(opened.count(), 2);
    QCOMPARE(session.mapUris(), options.maps);
    QCOMPARE(session.storeStatus(MapUri), QStringLiteral("Not stored on this computer"));
    QVERIFY(!session.store(MapUri));
    QTRY_COMPARE_WITH_TIMEOUT(session.connection()->state(), Connection::Connected, Timeout);
    QTRY_VERIFY_WITH_TIMEOUT(session.map(MapUri)->isReady() && session.map(QStringLiteral("/second"))->isReady(), Timeout);

    // Opening a map already open hands back the same one.
    QCOMPARE(session.openMap(MapUri), session.map(MapUri));
    QCOMPARE(opened.count(), 2);
    QVERIFY(!session.openMap(QString()));

    // Another peer sees the session's peer by name and its writes.
    TestPeer bob(relay.url(), MapUri, QStringLiteral("Bob"));
    QTRY_VERIFY_WITH_TIMEOUT(bob->isReady(), Timeout);
    const quint64 alice = session.connection()->peerId();
    QTRY_COMPARE_WITH_TIMEOUT(presenceName(bob.map.get(), alice), QStringLiteral("Alice"), Timeout);
    session.map(MapUri)->set(QStringLiteral("from"), QStringLiteral("session"));
    QTRY_COMPARE_WITH_TIMEOUT(bob->value(QStringLiteral("from")), QJsonValue(QStringLiteral("session")), Timeout);
}

void tst_InspectorSession::probeFindsARunningRelayAndHostsNothing()
{
    Relay relay;
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    InspectorSession::Options options = optionsFor(relay.url());
    options.hostWhenMissing = true;
    InspectorSession session(options);
    QSignalSpy probing(&session, &InspectorSession::probingChanged);
    QSignalSpy hosted(&session, &InspectorSession::relayHosted);
    session.start();

    QVERIFY(session.isProbing());
    QVERIFY(!session.connection()); // no connection until the probe answers
    QCOMPARE(probing.count(), 1);
    QCOMPARE(probing.at(0).at(0).toBool(), true);
    QTRY_VERIFY_WITH_TIMEOUT(!session.isProbing(), Timeout);
    QCOMPARE(probing.count(), 2);
    QCOMPARE(probing.at(1).at(0).toBool(), false);
    QVERIFY(session.connection());
    QTRY_VERIFY_WITH_TIMEOUT(session.map(MapUri) && session.map(MapUri)->isReady(), Timeout);
    QCOMPARE(hosted.count(), 0);
    QVERIFY(!session.hostedRelay());
    QTRY_COMPARE_WITH_TIMEOUT(relay.stats().connections, 1, Timeout);
}

void tst_InspectorSession::hostsARelayWhenNoneAnswers()
{
    const quint16 port = freePort();
    QVERIFY(port);
    InspectorSession::Options options = optionsFor(localUrl(port));
    options.hostWhenMissing = true;
    InspectorSession first(options);
    QSignalSpy hosted(&first, &InspectorSession::relayHosted);
    QSignalSpy messages(&first, &InspectorSession::message);
    first.start();

    QTRY_COMPARE_WITH_TIMEOUT(hosted.count(), 1, Timeout);
    QVERIFY(first.hostedRelay());
    QCOMPARE(hosted.at(0).at(0).value<HostedRelay *>(), first.hostedRelay());
    QCOMPARE(first.hostedRelay()->port(), port);
    QCOMPARE(first.hostedRelay()->url(), localUrl(port));
    const bool said = std::any_of(messages.cbegin(), messages.cend(), [](const QList<QVariant> &args) {
        return args.at(0).toString().contains(QStringLiteral("hosting one in this app"));
    });
    QVERIFY(said);
    QTRY_VERIFY_WITH_TIMEOUT(first.map(MapUri) && first.map(MapUri)->isReady(), Timeout);

    // A second session started the same way finds that relay and joins it.
    options.name = QStringLiteral("Second");
    InspectorSession second(options);
    second.start();
    QTRY_VERIFY_WITH_TIMEOUT(second.map(MapUri) && second.map(MapUri)->isReady(), Timeout);
    QVERIFY(!second.hostedRelay());
    first.map(MapUri)->set(QStringLiteral("shared"), true);
    QTRY_COMPARE_WITH_TIMEOUT(second.map(MapUri)->value(QStringLiteral("shared")), QJsonValue(true), Timeout);

    // The hosted relay counts what it serves.
    QTRY_COMPARE_WITH_TIMEOUT(first.hostedRelay()->stats().connections, 2, Timeout);
    const auto maps = first.hostedRelay()->maps();
    QCOMPARE(maps.size(), 1);
    QCOMPARE(maps.first().uri, MapUri);
    QCOMPARE(maps.first().members, 2);

    // Hosting again on the same port is a no-op that succeeds; another port is refused.
    QVERIFY(first.hostRelay(port));
    QVERIFY(!first.hostRelay(quint16(port == 65535 ? port - 1 : port + 1)));
    QCOMPARE(hosted.count(), 1);
}

void tst_InspectorSession::neverHostsWhenNotAsked()
{
    const quint16 port = freePort();
    QVERIFY(port);
    InspectorSession session(optionsFor(localUrl(port)));
    session.start();
    QVERIFY(!session.isProbing());
    QVERIFY(session.connection());
    QTRY_COMPARE_WITH_TIMEOUT(session.connection()->state(), Connection::Reconnecting, Timeout);
    QVERIFY(!session.hostedRelay());
    // Maps are open (and writable) offline.
    QVERIFY(session.map(MapUri));
    QVERIFY(session.map(MapUri)->set(QStringLiteral("offline"), 1));
}

void tst_InspectorSession::connectToMovesTheOpenMaps()
{
    Relay one;
    Relay two;
    QVERIFY(one.listen(QHostAddress::LocalHost, 0));
    QVERIFY(two.listen(QHostAddress::LocalHost, 0));
    InspectorSession session(optionsFor(one.url()));
    session.start();
    session.openMap(QStringLiteral("/extra"));
    QTRY_VERIFY_WITH_TIMEOUT(session.map(MapUri)->isReady(), Timeout);
    const Connection *before = session.connection();

    QSignalSpy closing(&session, &InspectorSession::mapAboutToClose);
    QSignalSpy opened(&session, &InspectorSession::mapOpened);
    QSignalSpy connections(&session, &InspectorSession::connectionChanged);
    session.connectTo(one.url()); // already there: nothing happens
    QCOMPARE(connections.count(), 0);
    QCOMPARE(session.connection(), before);

    session.connectTo(two.url());
    QCOMPARE(connections.count(), 1);
    QCOMPARE(closing.count(), 2);
    QCOMPARE(opened.count(), 2);
    QCOMPARE(session.connection()->url(), two.url());
    QCOMPARE(session.mapUris(), (QStringList{MapUri, QStringLiteral("/extra")}));
    QTRY_VERIFY_WITH_TIMEOUT(session.map(MapUri)->isReady(), Timeout);

    TestPeer bob(two.url(), MapUri, QStringLiteral("Bob"));
    QTRY_VERIFY_WITH_TIMEOUT(bob->isReady(), Timeout);
    bob->set(QStringLiteral("moved"), true);
    QTRY_COMPARE_WITH_TIMEOUT(session.map(MapUri)->value(QStringLiteral("moved")), QJsonValue(true), Timeout);
    QTRY_COMPARE_WITH_TIMEOUT(one.stats().connections, 0, Timeout);

    // With nothing open, a new relay gets the start maps.
    session.closeMap(MapUri);
    session.closeMap(QStringLiteral("/extra"));
    QVERIFY(session.mapUris().isEmpty());
    session.setStartMaps({QStringLiteral("/only")});
    session.connectTo(one.url());
    QCOMPARE(session.mapUris(), QStringList{QStringLiteral("/only")});
}

void tst_InspectorSession::closeMapTellsViewsFirst()
{
    Relay relay;
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    InspectorSession session(optionsFor(relay.url()));
    session.start();
    DistributedMap *map = session.map(MapUri);
    QVERIFY(map);
    QPointer<DistributedMap> watched(map);
    bool aliveWhenTold = false;
    connect(&session, &InspectorSession::mapAboutToClose, this, [&](DistributedMap *closing) {
        aliveWhenTold = closing == map && watched && closing->uri() == MapUri;
    });
    session.closeMap(QStringLiteral("/not-open")); // nothing to do
    QVERIFY(watched);
    session.closeMap(MapUri);
    QVERIFY(aliveWhenTold);
    QVERIFY(!watched);
    QVERIFY(!session.map(MapUri));
}

void tst_InspectorSession::aNewDisplayNameReachesOtherPeers()
{
    Relay relay;
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    InspectorSession session(optionsFor(relay.url()));
    session.start();
    TestPeer bob(relay.url(), MapUri, QStringLiteral("Bob"));
    const quint64 alice = session.connection()->peerId();
    QTRY_COMPARE_WITH_TIMEOUT(presenceName(bob.map.get(), alice), QStringLiteral("Alice"), Timeout);

    QSignalSpy renamed(&session, &InspectorSession::displayNameChanged);
    session.setDisplayName(QStringLiteral("Alice"));
    QCOMPARE(renamed.count(), 0);
    session.setDisplayName(QStringLiteral("Ada"));
    QCOMPARE(renamed.count(), 1);
    QCOMPARE(session.displayName(), QStringLiteral("Ada"));
    QTRY_COMPARE_WITH_TIMEOUT(presenceName(bob.map.get(), alice), QStringLiteral("Ada"), Timeout);
    // Maps opened later carry the new name too.
    QCOMPARE(session.openMap(QStringLiteral("/later"))->presence().value(QStringLiteral("name")).toString(),
             QStringLiteral("Ada"));
}

void tst_InspectorSession::aStoreInTheDataDirectoryKeepsTheMapAcrossSessions()
{
    Relay relay;
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    InspectorSession::Options options = optionsFor(relay.url());
    options.useStore = true;
    QString path;
    {
        InspectorSession session(options);
        session.start();
        // The store is read in a worker thread; the map comes after it.
        QTRY_VERIFY_WITH_TIMEOUT(session.store(MapUri), Timeout);
        LocalStore *store = session.store(MapUri);
        path = store->path();
        QVERIFY2(path.startsWith(m_dataHome.path() + QLatin1Char('/')), qPrintable(path));
        QCOMPARE(path, LocalStore::defaultPathFor(relay.url(), MapUri));
        QCOMPARE(session.storeStatus(MapUri), QStringLiteral("Stored in %1").arg(path));
        QVERIFY(QFile::exists(path));
        QTRY_VERIFY_WITH_TIMEOUT(session.map(MapUri)->isReady(), Timeout);
        session.map(MapUri)->set(QStringLiteral("kept"), QJsonObject{{QStringLiteral("by"), QStringLiteral("store")}});
    }
    // The last peer has gone: only the file holds the map now.
    QTRY_COMPARE_WITH_TIMEOUT(relay.stats().connections, 0, Timeout);

    InspectorSession again(options);
    QSignalSpy messages(&again, &InspectorSession::message);
    QSignalSpy opened(&again, &InspectorSession::mapOpened);
    again.start();
    QCOMPARE(again.mapUris(), QStringList{MapUri}); // opening counts as open
    QVERIFY(!again.map(MapUri));
    QVERIFY(opened.wait(Timeout));
    // Loaded before any sync (the map exists once its store is read), and said so.
    QCOMPARE(again.map(MapUri)->value(QStringLiteral("kept")),
             QJsonValue(QJsonObject{{QStringLiteral("by"), QStringLiteral("store")}}));
    QVERIFY(!messages.isEmpty());
    QVERIFY(messages.first().at(0).toString().startsWith(QStringLiteral("Loaded 1 keys of %1").arg(MapUri)));

    // A second session cannot take a store that is in use: it says why.
    InspectorSession other(options);
    other.start();
    QTRY_VERIFY_WITH_TIMEOUT(other.map(MapUri), Timeout);
    QVERIFY(!other.store(MapUri));
    QVERIFY(other.storeStatus(MapUri).startsWith(QStringLiteral("Not stored: ")));
    QVERIFY(other.map(MapUri));

    // Closed while its store is read: it never opens, and the store goes.
    QVERIFY(!again.openMap(QStringLiteral("/closing")));
    QVERIFY(again.mapUris().contains(QStringLiteral("/closing")));
    again.closeMap(QStringLiteral("/closing"));
    QVERIFY(!again.mapUris().contains(QStringLiteral("/closing")));
    QVERIFY(!again.openMap(QStringLiteral("/after")));
    QTRY_VERIFY_WITH_TIMEOUT(again.map(QStringLiteral("/after")), Timeout);
    QVERIFY(!again.map(QStringLiteral("/closing")));
}

QTEST_GUILESS_MAIN(tst_InspectorSession)
#include "tst_inspectorsession.moc"
