// Several relays, one map network, through a real redis-server the test
// starts (docs/SCALING.md): deltas, presence and syncs cross relays once,
// a dead relay's peers leave everywhere, and the bus heals after Redis
// goes away.
#include "peerfixture.h"
#include "redisbus.h"
#include "redisserver.h"
#include "relay.h"
#include "tcpproxy.h"

#include <QProcess>
#include <QSignalSpy>
#include <QTimer>
#include <QTest>

#include <algorithm>
#include <numeric>
#include <csignal>

namespace {
constexpr int Timeout = 30000; // generous: a noisy shared 2-core machine

std::unique_ptr<Relay> busRelay(const RedisServer &redis, quint64 id = 0)
{
    auto relay = std::make_unique<Relay>();
    QString error;
    if (!relay->joinBus(redis.url(), id, &error) || !relay->listen(QHostAddress::LocalHost, 0))
        return nullptr;
    return relay;
}

std::vector<std::unique_ptr<Relay>> busRelays(const RedisServer &redis, int count)
{
    std::vector<std::unique_ptr<Relay>> relays;
    for (int r = 0; r < count; ++r)
        relays.push_back(busRelay(redis));
    return relays;
}

bool connected(const std::vector<std::unique_ptr<Relay>> &relays)
{
    return std::all_of(relays.begin(), relays.end(), [](const auto &r) { return r->bus()->isConnected(); });
}

QSet<quint64> peerIds(const TestPeer &p)
{
    QSet<quint64> ids;
    for (const DistributedMap::Peer &peer : p->peers())
        ids.insert(peer.id);
    return ids;
}
} // namespace

class tst_Federation : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void everyDeltaReachesEveryPeerOnce();
    void aJoinerIsServedFromAnotherRelay();
    void aKilledRelaysPeersLeaveEverywhere();
    void aPeerMovesToTheNextRelay();
    void aRelayStartedBeforeRedisJoinsLater();
    void redisRestartsHeal();
    void aStoppedRedisIsNoticedAndHealed();
    void peerListsAgreeAfterRedisComesBack();
    void aRelayCutOffFromRedisIsAnnouncedAgain();
};

void tst_Federation::everyDeltaReachesEveryPeerOnce()
{
    RedisServer redis;
    QVERIFY(redis.isRunning());
    std::vector<std::unique_ptr<Relay>> relays;
    for (int r = 0; r < 3; ++r) {
        relays.push_back(busRelay(redis));
        QVERIFY(relays.back());
    }
    QTRY_VERIFY_WITH_TIMEOUT(connected(relays), Timeout);
    constexpr int PerRelay = 10;
    constexpr int Writes = 20;
    std::vector<std::unique_ptr<TestPeer>> peers;
    for (int r = 0; r < 3; ++r) {
        for (int i = 0; i < PerRelay; ++i)
            peers.push_back(std::make_unique<TestPeer>(relays[size_t(r)]->url(), QStringLiteral("/fed"), QStringLiteral("r%1p%2").arg(r).arg(i)));
    }
    const int n = int(peers.size());
    QTRY_VERIFY_WITH_TIMEOUT(std::all_of(peers.begin(), peers.end(), [&](const auto &p) { return (*p)->isReady() && (*p)->peers().size() == n - 1; }), Timeout);
    // Presence agrees everywhere: everyone sees everyone else, names included.
    for (const auto &p : peers) {
        QSet<quint64> expected;
        for (const auto &q : peers) {
            if (q != p)
                expected.insert(q->id());
        }
        QCOMPARE(peerIds(*p), expected);
    }
    // Every peer writes its own keys, in order; everyone counts what arrives.
    QVector<QHash<QString, int>> seen(n);
    QVector<QHash<int, int>> lastIndexFrom(n); // writer -> last index seen, to check order
    bool inOrder = true;
    for (int i = 0; i < n; ++i) {
        connect(peers[size_t(i)]->map.get(), &DistributedMap::valueSet, this, [&, i](const QJsonValue &, const QString &key) {
            ++seen[i][key];
            const int writer = key.section(QLatin1Char('-'), 0, 0).mid(1).toInt();
            const int index = key.section(QLatin1Char('-'), 1).toInt();
            inOrder = inOrder && index > lastIndexFrom[i].value(writer, -1);
            lastIndexFrom[i][writer] = index;
        });
    }
    // Count from a quiet bus: what the syncs published must have arrived
    // first, or it would be counted as received without being published.
    auto busTotals = [&] {
        quint64 sum = 0;
        for (const auto &r : relays)
            sum += r->bus()->stats().published * 1000003 + r->bus()->stats().received;
        return sum;
    };
    quint64 last = busTotals();
    int quietRounds = 0;
    QTRY_VERIFY_WITH_TIMEOUT([&] {
        const quint64 now = busTotals();
        quietRounds = now == last ? quietRounds + 1 : 0;
        last = now;
        return quietRounds >= 5; // unchanged over 5 polls of QTRY (50 ms apart)
    }(), Timeout);
    QVector<RedisBus::Stats> before;
    for (const auto &r : relays)
        before.append(r->bus()->stats());
    for (int k = 0; k < Writes; ++k) {
        for (int i = 0; i < n; ++i)
            (*peers[size_t(i)])->set(QStringLiteral("w%1-%2").arg(i).arg(k), k);
        QCoreApplication::processEvents(); // one delta per write round
    }
    const int expected = (n - 1) * Writes;
    QTRY_VERIFY_WITH_TIMEOUT(std::all_of(seen.begin(), seen.end(), [&](const auto &s) { return s.size() == expected; }), Timeout);
    QTest::qWait(200); // a duplicate would show up now
    for (int i = 0; i < n; ++i) {
        QCOMPARE(seen[i].size(), expected);
        for (auto it = seen[i].cbegin(); it != seen[i].cend(); ++it)
            QVERIFY2(it.value() == 1, qPrintable(QStringLiteral("peer %1 got %2 %3 times").arg(i).arg(it.key()).arg(it.value())));
    }
    QVERIFY(inOrder);
    // Nothing loops: what a relay published, each other relay received
    // once (one message per routed frame, never per peer).
    quint64 published = 0;
    quint64 totalReceived = 0;
    auto count = [&] {
        published = 0;
        totalReceived = 0;
        for (size_t r = 0; r < relays.size(); ++r) {
            const RedisBus::Stats s = relays[r]->bus()->stats();
            published += s.published - before[int(r)].published;
            totalReceived += s.received - before[int(r)].received;
        }
        return totalReceived == published * 2; // each message reaches the 2 other relays, once
    };
    QTRY_VERIFY_WITH_TIMEOUT(count(), Timeout); // what is still on its way arrives
    QVERIFY(published > 0);
    QTest::qWait(200); // and nothing arrives twice (a duplicate would show now)
    QVERIFY2(count(), qPrintable(QStringLiteral("published %1, received %2").arg(published).arg(totalReceived)));
    for (const auto &r : relays)
        QCOMPARE(r->bus()->stats().gaps, 0u);
}

void tst_Federation::aJoinerIsServedFromAnotherRelay()
{
    RedisServer redis;
    const std::vector<std::unique_ptr<Relay>> relays = busRelays(redis, 3);
    QTRY_VERIFY_WITH_TIMEOUT(connected(relays), Timeout);
    TestPeer holder(relays[2]->url(), QStringLiteral("/held"), QStringLiteral("holder"));
    QTRY_VERIFY_WITH_TIMEOUT(holder->isReady(), Timeout);
    for (int i = 0; i < 500; ++i)
        holder->set(QStringLiteral("k%1").arg(i), i);
    // The first peer of the map on relay A: its relay knew nothing of the
    // map, and must not answer `alone`.
    TestPeer joiner(relays[0]->url(), QStringLiteral("/held"), QStringLiteral("joiner"));
    QTRY_VERIFY_WITH_TIMEOUT(joiner->isReady(), Timeout);
    QCOMPARE(joiner->size(), 500);
    QCOMPARE(joiner->lastSyncSource(), holder.id());
    // Writes flow both ways afterwards.
    joiner->set(QStringLiteral("back"), true);
    QTRY_COMPARE_WITH_TIMEOUT(holder->value(QStringLiteral("back")).toBool(), true, Timeout);
}

void tst_Federation::aKilledRelaysPeersLeaveEverywhere()
{
    RedisServer redis;
    auto near = busRelay(redis);
    QVERIFY(near);
    QProcess far; // a relay process we can kill -9
    far.setProgram(qEnvironmentVariable("DISTMAP_BINARY"));
    far.setArguments({QStringLiteral("relay"), QStringLiteral("--port"), QStringLiteral("0"), QStringLiteral("--redis"), redis.url()});
    far.start();
    QVERIFY(far.waitForStarted(Timeout));
    QVERIFY(QTest::qWaitFor([&] { return far.canReadLine(); }, Timeout));
    const QString line = QString::fromUtf8(far.readLine()).trimmed();
    QVERIFY2(line.startsWith(QLatin1String("listening on ")), qPrintable(line));
    const QUrl farUrl(line.mid(13));
    TestPeer here(near->url(), QStringLiteral("/kill"), QStringLiteral("here"));
    TestPeer there(farUrl, QStringLiteral("/kill"), QStringLiteral("there"));
    there.connection->setReconnectDelays(60000, 60000); // stays away: we watch it leave
    // This one knows both relays and moves to the near one.
    TestPeer mover(farUrl, QStringLiteral("/kill"), QStringLiteral("mover"), false);
    mover.connection->setUrls({farUrl, near->url()});
    mover.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(here->peers().size() == 2 && mover->isReady(), Timeout);
    QSignalSpy left(here.map.get(), &DistributedMap::peerLeft);
    QElapsedTimer timer;
    timer.start();
    ::kill(pid_t(far.processId()), SIGKILL); // the relay process we started
    QVERIFY(far.waitForFinished(Timeout));
    QTRY_VERIFY_WITH_TIMEOUT([&] {
        for (const auto &args : left) {
            if (args.first().toULongLong() == there.id())
                return true;
        }
        return false;
    }(), Timeout);
    qInfo("the killed relay's peer left the other relay's map after %lld ms", timer.elapsed());
    // The mover is on the near relay now, in the same network as before.
    QCOMPARE(mover.connection->url(), near->url());
    QTRY_COMPARE_WITH_TIMEOUT(peerIds(here), QSet<quint64>{mover.id()}, Timeout);
    mover->set(QStringLiteral("moved"), true);
    QTRY_COMPARE_WITH_TIMEOUT(here->value(QStringLiteral("moved")).toBool(), true, Timeout);
    here->set(QStringLiteral("welcome"), 1);
    QTRY_COMPARE_WITH_TIMEOUT(mover->value(QStringLiteral("welcome")).toInt(), 1, Timeout);
}

void tst_Federation::aPeerMovesToTheNextRelay()
{
    RedisServer redis;
    auto first = busRelay(redis);
    auto second = busRelay(redis);
    QVERIFY(first && second);
    TestPeer stays(second->url(), QStringLiteral("/move"), QStringLiteral("stays"));
    TestPeer mover(first->url(), QStringLiteral("/move"), QStringLiteral("mover"), false);
    mover.connection->setUrls({first->url(), second->url()});
    mover.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(mover->isReady() && mover->peers().size() == 1, Timeout);
    mover->set(QStringLiteral("before"), 1);
    QTRY_COMPARE_WITH_TIMEOUT(stays->value(QStringLiteral("before")).toInt(), 1, Timeout);
    first.reset(); // the first relay goes away
    QTRY_COMPARE_WITH_TIMEOUT(mover.connection->url(), second->url(), Timeout);
    QTRY_VERIFY_WITH_TIMEOUT(mover.connection->state() == Connection::Connected && mover->peers().size() == 1, Timeout);
    mover->set(QStringLiteral("after"), 2);
    QTRY_COMPARE_WITH_TIMEOUT(stays->value(QStringLiteral("after")).toInt(), 2, Timeout);
    // The CLI takes the same list: a dead relay first, a live one next.
    QProcess get;
    get.start(qEnvironmentVariable("DISTMAP_BINARY"), {QStringLiteral("get"), QStringLiteral("--url"), QStringLiteral("ws://127.0.0.1:1"),
                                                       QStringLiteral("--url"), second->url().toString(), QStringLiteral("--map"),
                                                       QStringLiteral("/move"), QStringLiteral("after")});
    QVERIFY(QTest::qWaitFor([&] { return get.state() == QProcess::NotRunning; }, Timeout));
    QCOMPARE(get.exitCode(), 0);
    QCOMPARE(get.readAllStandardOutput().trimmed(), QByteArray("2"));
}

void tst_Federation::aRelayStartedBeforeRedisJoinsLater()
{
    RedisServer redis;
    redis.stop();
    auto early = busRelay(redis); // Redis is down
    QVERIFY(early);
    TestPeer alone(early->url(), QStringLiteral("/late"), QStringLiteral("alone"));
    QTRY_VERIFY_WITH_TIMEOUT(alone->isReady(), Timeout); // served locally meanwhile
    alone->set(QStringLiteral("before"), 1);
    QVERIFY(redis.start());
    auto other = busRelay(redis);
    QTRY_VERIFY_WITH_TIMEOUT(early->bus()->isConnected() && other->bus()->isConnected(), Timeout);
    TestPeer joiner(other->url(), QStringLiteral("/late"), QStringLiteral("joiner"));
    QTRY_COMPARE_WITH_TIMEOUT(joiner->value(QStringLiteral("before")).toInt(), 1, Timeout);
}

void tst_Federation::redisRestartsHeal()
{
    RedisServer redis;
    const std::vector<std::unique_ptr<Relay>> relays = busRelays(redis, 2);
    QTRY_VERIFY_WITH_TIMEOUT(connected(relays), Timeout);
    TestPeer a(relays[0]->url(), QStringLiteral("/heal"), QStringLiteral("a"));
    TestPeer b(relays[1]->url(), QStringLiteral("/heal"), QStringLiteral("b"));
    a->setWriteAcknowledgements(true);
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady() && b->isReady() && a->peers().size() == 1, Timeout);
    QSet<QString> acknowledged;
    connect(a.map.get(), &DistributedMap::writeAcknowledged, this, [&](const QString &key) { acknowledged.insert(key); });
    // Steady writes on both sides, every 20 ms, for the whole test.
    int written = 0;
    QTimer writer;
    connect(&writer, &QTimer::timeout, this, [&] {
        (written % 2 ? a : b)->set(QStringLiteral("k%1").arg(written), written);
        ++written;
    });
    writer.start(20);
    qint64 slowest = 0;
    for (int restart = 0; restart < 10; ++restart) {
        redis.stop();
        QTest::qWait(300); // writes go on while Redis is down (a duration, not a wait for a result)
        QVERIFY(redis.start());
        QElapsedTimer back;
        back.start();
        // Converged: both hold what both wrote up to the restart.
        const int target = written;
        QTRY_VERIFY_WITH_TIMEOUT([&] {
            for (int i = 0; i < target; ++i) {
                const QString key = QStringLiteral("k%1").arg(i);
                if (!a->value(key).isDouble() || !b->value(key).isDouble())
                    return false;
            }
            return true;
        }(), Timeout);
        slowest = qMax(slowest, back.elapsed());
    }
    writer.stop();
    QTRY_COMPARE_WITH_TIMEOUT(a->toJsonObject(), b->toJsonObject(), Timeout);
    qInfo("10 Redis restarts under %d writes: converged at most %lld ms after Redis was back; %lld writes acknowledged",
          written, slowest, qint64(acknowledged.size()));
    QVERIFY(!acknowledged.isEmpty());
    for (const QString &key : std::as_const(acknowledged))
        QVERIFY2(b->value(key).isDouble(), qPrintable(key)); // no acknowledged write lost
    QTRY_COMPARE_WITH_TIMEOUT(a->peers().size(), 1, Timeout);
}

void tst_Federation::aStoppedRedisIsNoticedAndHealed()
{
    RedisServer redis;
    const std::vector<std::unique_ptr<Relay>> relays = busRelays(redis, 2);
    QTRY_VERIFY_WITH_TIMEOUT(connected(relays), Timeout);
    QStringList log;
    connect(relays[0]->bus(), &RedisBus::logMessage, this, [&](const QString &line) { log.append(line); });
    TestPeer a(relays[0]->url(), QStringLiteral("/stop"), QStringLiteral("a"));
    TestPeer b(relays[1]->url(), QStringLiteral("/stop"), QStringLiteral("b"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady() && b->isReady() && a->peers().size() == 1, Timeout);
    redis.pause(); // SIGSTOP: the TCP connections stay open, nothing answers
    QElapsedTimer stopped;
    stopped.start();
    a->set(QStringLiteral("during"), 1); // lost on the bus
    QTRY_VERIFY_WITH_TIMEOUT(!relays[0]->bus()->isConnected(), Timeout);
    qInfo("a stopped Redis was noticed after %lld ms", stopped.elapsed());
    QVERIFY2(log.join(QLatin1Char('\n')).contains(QLatin1String("no heartbeat came back")), qPrintable(log.join(QLatin1Char('\n'))));
    QCOMPARE(a->peers().size(), 1); // peers on a relay are not dropped for a bus failure
    // Still served locally meanwhile.
    TestPeer local(relays[0]->url(), QStringLiteral("/stop"), QStringLiteral("local"));
    QTRY_COMPARE_WITH_TIMEOUT(local->value(QStringLiteral("during")).toInt(), 1, Timeout);
    while (stopped.elapsed() < 10000)
        QTest::qWait(100); // the 10 s stop (a duration, not a wait for a result)
    redis.resume();
    QTRY_VERIFY_WITH_TIMEOUT(connected(relays), Timeout);
    QTRY_COMPARE_WITH_TIMEOUT(b->value(QStringLiteral("during")).toInt(), 1, Timeout);
}

// Joins and leaves published while Redis is down are lost on the bus. When
// it is back, every relay's list of the others' peers must match what they
// hold now: no ghost of a peer that left meanwhile, no peer missing.
void tst_Federation::peerListsAgreeAfterRedisComesBack()
{
    RedisServer redis;
    const std::vector<std::unique_ptr<Relay>> relays = busRelays(redis, 2);
    QTRY_VERIFY_WITH_TIMEOUT(connected(relays), Timeout);
    TestPeer a(relays[0]->url(), QStringLiteral("/roster"), QStringLiteral("a"));
    TestPeer b(relays[1]->url(), QStringLiteral("/roster"), QStringLiteral("b"));
    auto leaver = std::make_unique<TestPeer>(relays[1]->url(), QStringLiteral("/roster"), QStringLiteral("leaver"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady() && b->isReady() && (*leaver)->isReady() && a->peers().size() == 2, Timeout);
    const quint64 leaverId = leaver->id();

    redis.stop();
    QTRY_VERIFY_WITH_TIMEOUT(!relays[0]->bus()->isConnected() && !relays[1]->bus()->isConnected(), Timeout);
    leaver.reset(); // leaves while its relay cannot tell the other one
    TestPeer joiner(relays[1]->url(), QStringLiteral("/roster"), QStringLiteral("joiner"));
    QTRY_VERIFY_WITH_TIMEOUT(joiner->isReady() && peerIds(b) == (QSet<quint64>{a.id(), joiner.id()}), Timeout);
    QVERIFY(peerIds(a).contains(leaverId)); // a's relay has not heard yet
    QVERIFY(redis.start());
    QTRY_VERIFY_WITH_TIMEOUT(connected(relays), Timeout);

    QTRY_COMPARE_WITH_TIMEOUT(peerIds(a), (QSet<quint64>{b.id(), joiner.id()}), Timeout);
    QCOMPARE(peerIds(b), (QSet<quint64>{a.id(), joiner.id()}));
    QCOMPARE(peerIds(joiner), (QSet<quint64>{a.id(), b.id()}));
    // The map network still works across the two relays.
    a->set(QStringLiteral("after"), 1);
    QTRY_COMPARE_WITH_TIMEOUT(joiner->value(QStringLiteral("after")).toInt(), 1, Timeout);
}

// One relay loses Redis while the other keeps it (a partition): what the
// cut-off relay's peers did meanwhile reaches the other once it is back,
// its first heartbeat saying it reconnected.
void tst_Federation::aRelayCutOffFromRedisIsAnnouncedAgain()
{
    RedisServer redis;
    TcpProxy link(redis.port());
    auto kept = busRelay(redis);
    auto cut = std::make_unique<Relay>();
    QString error;
    const quint64 cutId = 0xc07;
    QVERIFY(cut->joinBus(QStringLiteral("redis://127.0.0.1:%1").arg(link.port()), cutId, &error));
    QVERIFY(cut->listen(QHostAddress::LocalHost, 0));
    QTRY_VERIFY_WITH_TIMEOUT(kept->bus()->isConnected() && cut->bus()->isConnected(), Timeout);
    QStringList log;
    connect(kept.get(), &Relay::logMessage, this, [&](const QString &line) { log.append(line); });
    connect(kept->bus(), &RedisBus::logMessage, this, [&](const QString &line) { log.append(line); });

    // Redis names the cut relay's two connections after it.
    QTcpSocket admin;
    admin.connectToHost(QHostAddress::LocalHost, redis.port());
    QVERIFY(admin.waitForConnected(Timeout));
    admin.write("CLIENT LIST\r\n");
    QByteArray clients;
    QVERIFY(QTest::qWaitFor([&] {
        admin.waitForReadyRead(100);
        clients += admin.readAll();
        return clients.contains("-sub ") && clients.contains("-pub ") && clients.endsWith("\r\n");
    }, Timeout));
    QVERIFY2(clients.contains("name=distmap-relay-0000000000000c07-pub") && clients.contains("name=distmap-relay-0000000000000c07-sub"),
             clients.constData());

    TestPeer a(kept->url(), QStringLiteral("/cut"), QStringLiteral("a"));
    TestPeer b(cut->url(), QStringLiteral("/cut"), QStringLiteral("b"));
    auto leaver = std::make_unique<TestPeer>(cut->url(), QStringLiteral("/cut"), QStringLiteral("leaver"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady() && b->isReady() && (*leaver)->isReady() && a->peers().size() == 2, Timeout);
    const quint64 leaverId = leaver->id();

    link.cut();
    QTRY_VERIFY_WITH_TIMEOUT(!cut->bus()->isConnected(), Timeout);
    QVERIFY(kept->bus()->isConnected());
    leaver.reset(); // its Left cannot reach the bus
    b->set(QStringLiteral("during"), 1); // nor can this delta
    TestPeer joiner(cut->url(), QStringLiteral("/cut"), QStringLiteral("joiner"));
    QTRY_VERIFY_WITH_TIMEOUT(joiner->isReady() && peerIds(b) == (QSet<quint64>{a.id(), joiner.id()}), Timeout);
    QVERIFY(peerIds(a).contains(leaverId));
    link.restore();

    QTRY_COMPARE_WITH_TIMEOUT(peerIds(a), (QSet<quint64>{b.id(), joiner.id()}), Timeout);
    QCOMPARE(peerIds(joiner), (QSet<quint64>{a.id(), b.id()}));
    const QString said = log.join(QLatin1Char('\n'));
    // Pruned because the relay did not announce it again, not because the
    // relay was declared dead (which would have dropped b too).
    QVERIFY2(said.contains(QLatin1String("was not announced again")) && !said.contains(QLatin1String("silent for")), qPrintable(said));
    // What it could not publish still took its numbers: the kept relay saw
    // the gap (and asked its peers for a digest round).
    QVERIFY2(said.contains(QLatin1String("of relay 0000000000000c07 on /cut lost")), qPrintable(said));
    QTRY_COMPARE_WITH_TIMEOUT(a->value(QStringLiteral("during")).toInt(), 1, Timeout);
    a->set(QStringLiteral("after"), 1);
    QTRY_COMPARE_WITH_TIMEOUT(joiner->value(QStringLiteral("after")).toInt(), 1, Timeout);
}

QTEST_GUILESS_MAIN(tst_Federation)
#include "tst_federation.moc"
