#include "peerfixture.h"
#include "distributedmap_p.h"
#include "rawclient.h"
#include "relay.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QRandomGenerator>
#include <QSignalSpy>
#include <QTest>

#include <memory>

namespace {
constexpr int Timeout = 15000;
const QString Uri = QStringLiteral("/rooms/42");
}

class tst_Sync : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void readyWhenAlone();
    void readyCallbackFiresAtOnceWhenAlreadyReady();
    void readyAfterSyncFromAPeer();
    void syncRequestsAreSpreadOverReadyPeers();
    void mapsWithDifferentUrisAreSeparate();
    void liveSetAndDeleteReachOthersWithSignals();
    void aWriteThatLosesEmitsNothing();
    void syncIsTwoWay();
    void concurrentWritesConverge();
    void deltasDuringSyncAreNotLost();
    void presenceJoinLeaveAndUpdate();
    void relayRestartReconnectsResyncsAndConverges();
    void responderLeavingMidSyncStillGivesFullState();
    void aResponderGoneBeforeItsFirstChunkDoesNotStallTheJoiner();
    void aStalledResponderIsReplaced_data();
    void aStalledResponderIsReplaced();
    void aWriteLargerThanTheRelayAcceptsIsRefusedAndNothingIsCutOff();
    void largeStateIsChunkedAndSyncs();
    void resyncShipsOnlyWhatChanged();
    void aPeerWithAClockADayAheadFollowsTheRelay();
    void verifyRoundRepairsLostWritesOlderThanTheCatchUp();
    void aBurstOfFramesYieldsToTheEventLoopInOrder();

private:
    std::unique_ptr<Relay> m_relay;
    QUrl m_url;
};

void tst_Sync::init()
{
    m_relay = std::make_unique<Relay>();
    QVERIFY(m_relay->listen(QHostAddress::LocalHost, 0));
    m_url = m_relay->url();
}

void tst_Sync::cleanup()
{
    m_relay.reset();
}

static bool sameMaps(const QList<TestPeer *> &peers)
{
    const QJsonObject first = peers.first()->map->toJsonObject();
    for (TestPeer *p : peers) {
        if (p->map->toJsonObject() != first)
            return false;
    }
    return true;
}

void tst_Sync::readyWhenAlone()
{
    TestPeer a(m_url, Uri, QStringLiteral("a"));
    QSignalSpy ready(a.map.get(), &DistributedMap::ready);
    QVERIFY(ready.wait(Timeout));
    QVERIFY(a->isReady());
    QCOMPARE(a->lastSyncSource(), 0ull);
    QVERIFY(a->peers().isEmpty());
    QCOMPARE(ready.count(), 1);
}

void tst_Sync::readyCallbackFiresAtOnceWhenAlreadyReady()
{
    TestPeer a(m_url, Uri, QStringLiteral("a"));
    int calls = 0;
    a->onReady([&calls] { ++calls; });
    QTRY_COMPARE_WITH_TIMEOUT(calls, 1, Timeout);
    a->onReady([&calls] { ++calls; });
    QCOMPARE(calls, 2); // synchronously
}

void tst_Sync::readyAfterSyncFromAPeer()
{
    TestPeer a(m_url, Uri, QStringLiteral("a"));
    for (int i = 0; i < 500; ++i)
        a->set(QStringLiteral("key-%1").arg(i), QJsonObject{{QStringLiteral("n"), i}});
    a->remove(QStringLiteral("key-7"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), Timeout);

    TestPeer b(m_url, Uri, QStringLiteral("b"));
    QTRY_VERIFY_WITH_TIMEOUT(b->isReady(), Timeout);
    QCOMPARE(b->lastSyncSource(), a.id());
    QCOMPARE(b->size(), 499);
    QCOMPARE(b->value(QStringLiteral("key-42")).toObject().value(QStringLiteral("n")).toInt(), 42);
    QVERIFY(!b->contains(QStringLiteral("key-7")));
    // The tombstone travelled too, with its clock.
    QVERIFY(b.internals()->state().find(QStringLiteral("key-7")));
    QVERIFY(b.internals()->state().find(QStringLiteral("key-7"))->tombstone);
    QCOMPARE(b->toJsonObject(), a->toJsonObject());
}

void tst_Sync::syncRequestsAreSpreadOverReadyPeers()
{
    TestPeer a(m_url, Uri, QStringLiteral("a"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), Timeout);
    TestPeer b(m_url, Uri, QStringLiteral("b"));
    QTRY_VERIFY_WITH_TIMEOUT(b->isReady(), Timeout);
    QSet<quint64> sources;
    for (int i = 0; i < 4; ++i) {
        TestPeer c(m_url, Uri, QStringLiteral("c"));
        QTRY_VERIFY_WITH_TIMEOUT(c->isReady(), Timeout);
        sources.insert(c->lastSyncSource());
    }
    QCOMPARE(sources, (QSet<quint64>{a.id(), b.id()}));
}

void tst_Sync::mapsWithDifferentUrisAreSeparate()
{
    Connection shared(m_url);
    DistributedMap one(&shared, QStringLiteral("/one"));
    DistributedMap two(&shared, QStringLiteral("/two"));
    shared.open();
    QTRY_VERIFY_WITH_TIMEOUT(one.isReady() && two.isReady(), Timeout);
    TestPeer other(m_url, QStringLiteral("/two"), QStringLiteral("other"));
    QTRY_VERIFY_WITH_TIMEOUT(other->isReady(), Timeout);
    one.set(QStringLiteral("x"), 1);
    two.set(QStringLiteral("y"), 2);
    QTRY_COMPARE_WITH_TIMEOUT(other->value(QStringLiteral("y")).toInt(), 2, Timeout);
    QVERIFY(!other->contains(QStringLiteral("x")));
    QCOMPARE(m_relay->stats().maps, 2);
}

void tst_Sync::liveSetAndDeleteReachOthersWithSignals()
{
    TestPeer a(m_url, Uri, QStringLiteral("a"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), Timeout);
    TestPeer b(m_url, Uri, QStringLiteral("b"));
    QTRY_VERIFY_WITH_TIMEOUT(b->isReady(), Timeout);

    QSignalSpy setSpy(b.map.get(), &DistributedMap::valueSet);
    QSignalSpy deleteSpy(b.map.get(), &DistributedMap::valueDeleted);
    QSignalSpy localChanges(a.map.get(), &DistributedMap::changed);
    QSignalSpy localSets(a.map.get(), &DistributedMap::valueSet);
    a->set(QStringLiteral("color"), QStringLiteral("blue"));
    QCOMPARE(localChanges.count(), 1); // local changes are reported at once...
    QCOMPARE(localSets.count(), 0);    // ...but valueSet is for other peers' writes
    QVERIFY(setSpy.wait(Timeout));
    QCOMPARE(setSpy.at(0).at(0).value<QJsonValue>(), QJsonValue(QStringLiteral("blue")));
    QCOMPARE(setSpy.at(0).at(1).toString(), QStringLiteral("color"));

    QVERIFY(a->remove(QStringLiteral("color")));
    QVERIFY(!a->remove(QStringLiteral("color")));
    QVERIFY(deleteSpy.wait(Timeout));
    QCOMPARE(deleteSpy.at(0).at(0).value<QJsonValue>(), QJsonValue(QStringLiteral("blue")));
    QCOMPARE(deleteSpy.at(0).at(1).toString(), QStringLiteral("color"));
    QVERIFY(!b->contains(QStringLiteral("color")));
    QCOMPARE(localSets.count(), 0);
}

void tst_Sync::aWriteThatLosesEmitsNothing()
{
    TestPeer a(m_url, Uri, QStringLiteral("a"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), Timeout);
    // b's clock is an hour behind, and b has not seen a's write yet when it
    // writes (it is offline): its write is older and must lose silently.
    TestPeer b(m_url, Uri, QStringLiteral("b"), false);
    const qint64 behind = QDateTime::currentMSecsSinceEpoch() - 3'600'000;
    b.internals()->clock() = HybridClock([behind] { return behind; });
    a->set(QStringLiteral("k"), QStringLiteral("new"));
    b->set(QStringLiteral("k"), QStringLiteral("stale"));
    QSignalSpy bSets(b.map.get(), &DistributedMap::valueSet);
    QSignalSpy aSets(a.map.get(), &DistributedMap::valueSet);
    QSignalSpy aChanges(a.map.get(), &DistributedMap::changed);
    b.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(b->isReady(), Timeout);
    QTRY_COMPARE_WITH_TIMEOUT(b->value(QStringLiteral("k")).toString(), QStringLiteral("new"), Timeout);
    QCOMPARE(bSets.count(), 1);
    // b pushed its stale entry; a applied nothing and said nothing.
    b->set(QStringLiteral("marker"), 1);
    QTRY_VERIFY_WITH_TIMEOUT(a->contains(QStringLiteral("marker")), Timeout);
    QCOMPARE(a->value(QStringLiteral("k")).toString(), QStringLiteral("new"));
    QCOMPARE(aSets.count(), 1); // the marker only
    QCOMPARE(aChanges.count(), 1);
}

void tst_Sync::syncIsTwoWay()
{
    TestPeer a(m_url, Uri, QStringLiteral("a"));
    a->set(QStringLiteral("shared"), QStringLiteral("from a"));
    a->set(QStringLiteral("only-a"), 1);
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), Timeout);
    TestPeer c(m_url, Uri, QStringLiteral("c"));
    QTRY_VERIFY_WITH_TIMEOUT(c->isReady(), Timeout);

    // b edits offline, then connects: its edits must reach a and c.
    TestPeer b(m_url, Uri, QStringLiteral("b"), false);
    b->set(QStringLiteral("only-b"), QJsonArray{1, 2, 3});
    b->set(QStringLiteral("shared"), QStringLiteral("from b, later"));
    for (int i = 0; i < 50; ++i)
        b->set(QStringLiteral("offline-%1").arg(i), i);
    b.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(b->isReady(), Timeout);
    QList<TestPeer *> all{&a, &b, &c};
    QTRY_VERIFY_WITH_TIMEOUT(sameMaps(all), Timeout);
    QCOMPARE(a->value(QStringLiteral("only-b")), QJsonValue(QJsonArray{1, 2, 3}));
    QCOMPARE(c->value(QStringLiteral("shared")).toString(), QStringLiteral("from b, later"));
    QCOMPARE(b->value(QStringLiteral("only-a")).toInt(), 1);
    QCOMPARE(c->size(), 53);
}

void tst_Sync::concurrentWritesConverge()
{
    const quint32 seed = QRandomGenerator::global()->generate();
    qInfo("seed %u", seed);
    QRandomGenerator rng(seed);
    std::vector<std::unique_ptr<TestPeer>> peers;
    for (int i = 0; i < 4; ++i) {
        peers.push_back(std::make_unique<TestPeer>(m_url, Uri, QStringLiteral("p%1").arg(i)));
        QTRY_VERIFY_WITH_TIMEOUT(peers.back()->map->isReady(), Timeout);
    }
    // Skewed clocks: peer 0 runs a minute ahead, peer 3 a minute behind.
    for (int i = 0; i < 4; ++i) {
        const qint64 skew = (i == 0 ? 60'000 : i == 3 ? -60'000 : 0);
        DistributedMapPrivate::get(peers[i]->map.get())->clock() = HybridClock([skew] { return QDateTime::currentMSecsSinceEpoch() + skew; });
    }
    for (int round = 0; round < 300; ++round) {
        TestPeer &p = *peers[rng.bounded(4)];
        const QString key = QStringLiteral("hot-%1").arg(rng.bounded(10));
        if (rng.bounded(4) == 0)
            p->remove(key);
        else
            p->set(key, QStringLiteral("round %1 by %2").arg(round).arg(p.id()));
        if (rng.bounded(8) == 0)
            QCoreApplication::processEvents();
    }
    QList<TestPeer *> all;
    for (auto &p : peers)
        all.append(p.get());
    QTRY_VERIFY2_WITH_TIMEOUT(sameMaps(all), qPrintable(QStringLiteral("seed %1").arg(seed)), Timeout);
    // Same clocks and writers everywhere, not only the same values.
    for (TestPeer *p : all)
        QCOMPARE(DistributedMapPrivate::get(p->map.get())->state().digest(16), DistributedMapPrivate::get(peers[0]->map.get())->state().digest(16));
}

void tst_Sync::deltasDuringSyncAreNotLost()
{
    TestPeer a(m_url, Uri, QStringLiteral("a"));
    for (int i = 0; i < 20000; ++i)
        a->set(QStringLiteral("bulk-%1").arg(i), QStringLiteral("0123456789abcdef0123456789abcdef"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), Timeout);
    TestPeer writer(m_url, Uri, QStringLiteral("writer"));
    QTRY_VERIFY_WITH_TIMEOUT(writer->isReady(), Timeout);

    TestPeer b(m_url, Uri, QStringLiteral("b"));
    int written = 0;
    // Keep writing while b syncs: each write either is in the snapshot b
    // gets or reaches b live.
    QMetaObject::Connection tick = connect(b.map.get(), &DistributedMap::deltaObserved, writer.map.get(), [&] {
        const int n = written++;
        writer->set(QStringLiteral("live-%1").arg(n), n);
    });
    QTRY_VERIFY_WITH_TIMEOUT(b->isReady(), Timeout);
    disconnect(tick);
    QVERIFY(written > 0);
    // Wait on the sizes, which are cheap, then compare the maps once:
    // rebuilding three 20,000-key objects on every retry starves the
    // event loop the delivery needs (minutes under ASan).
    const int expected = 20000 + written;
    QTRY_VERIFY_WITH_TIMEOUT(a->size() == expected && b->size() == expected && writer->size() == expected, Timeout);
    QVERIFY(sameMaps({&a, &b, &writer}));
}

void tst_Sync::presenceJoinLeaveAndUpdate()
{
    TestPeer a(m_url, Uri, QStringLiteral("Ada"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), Timeout);
    QSignalSpy joined(a.map.get(), &DistributedMap::peerJoined);
    QSignalSpy left(a.map.get(), &DistributedMap::peerLeft);
    QSignalSpy presence(a.map.get(), &DistributedMap::peerPresenceChanged);
    auto b = std::make_unique<TestPeer>(m_url, Uri, QStringLiteral("Bob"));
    QTRY_VERIFY_WITH_TIMEOUT((*b)->isReady(), Timeout);
    QTRY_COMPARE_WITH_TIMEOUT(joined.count(), 1, Timeout);
    const auto peer = joined.at(0).at(0).value<DistributedMap::Peer>();
    QCOMPARE(peer.id, b->id());
    QCOMPARE(peer.presence.value(QStringLiteral("name")).toString(), QStringLiteral("Bob"));
    // The joiner got the current peer list when it opened.
    QCOMPARE((*b)->peers().size(), 1);
    QCOMPARE((*b)->peers().first().id, a.id());
    QCOMPARE((*b)->peers().first().presence.value(QStringLiteral("name")).toString(), QStringLiteral("Ada"));

    (*b)->setPresence({{QStringLiteral("name"), QStringLiteral("Bobby")}});
    QVERIFY(presence.wait(Timeout));
    QCOMPARE(a->peers().first().presence.value(QStringLiteral("name")).toString(), QStringLiteral("Bobby"));

    const quint64 bId = b->id();
    b.reset(); // closes the map and the connection
    QTRY_COMPARE_WITH_TIMEOUT(left.count(), 1, Timeout);
    QCOMPARE(left.at(0).at(0).toULongLong(), bId);
    QVERIFY(a->peers().isEmpty());
}

void tst_Sync::relayRestartReconnectsResyncsAndConverges()
{
    TestPeer a(m_url, Uri, QStringLiteral("a"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), Timeout);
    TestPeer b(m_url, Uri, QStringLiteral("b"));
    TestPeer c(m_url, Uri, QStringLiteral("c"));
    QTRY_VERIFY_WITH_TIMEOUT(b->isReady() && c->isReady(), Timeout);
    a->set(QStringLiteral("before"), 1);
    QTRY_VERIFY_WITH_TIMEOUT(c->contains(QStringLiteral("before")), Timeout);

    const quint16 port = m_relay->port();
    m_relay.reset();
    QTRY_VERIFY_WITH_TIMEOUT(a.connection->state() == Connection::Reconnecting
                                 && b.connection->state() == Connection::Reconnecting
                                 && c.connection->state() == Connection::Reconnecting,
                             Timeout);
    // Writes while the relay is down, including a conflict on one key.
    a->set(QStringLiteral("during-a"), QStringLiteral("a"));
    b->set(QStringLiteral("during-b"), QStringLiteral("b"));
    a->set(QStringLiteral("conflict"), QStringLiteral("a"));
    b->set(QStringLiteral("conflict"), QStringLiteral("b"));
    c->remove(QStringLiteral("before"));

    m_relay = std::make_unique<Relay>();
    QVERIFY(m_relay->listen(QHostAddress::LocalHost, port));
    QTRY_VERIFY_WITH_TIMEOUT(a.connection->state() == Connection::Connected
                                 && b.connection->state() == Connection::Connected
                                 && c.connection->state() == Connection::Connected,
                             Timeout);
    QList<TestPeer *> all{&a, &b, &c};
    QTRY_VERIFY_WITH_TIMEOUT(sameMaps(all), Timeout);
    QTRY_VERIFY_WITH_TIMEOUT(!a->isSyncing() && !b->isSyncing() && !c->isSyncing(), Timeout);
    QCOMPARE(c->value(QStringLiteral("during-a")).toString(), QStringLiteral("a"));
    QCOMPARE(c->value(QStringLiteral("during-b")).toString(), QStringLiteral("b"));
    QVERIFY(!a->contains(QStringLiteral("before")));
    QCOMPARE(a->value(QStringLiteral("conflict")), b->value(QStringLiteral("conflict")));
    // And live traffic flows again.
    c->set(QStringLiteral("after"), true);
    QTRY_VERIFY_WITH_TIMEOUT(a->contains(QStringLiteral("after")) && b->contains(QStringLiteral("after")), Timeout);
    QCOMPARE(a->peers().size(), 2);
}

void tst_Sync::responderLeavingMidSyncStillGivesFullState()
{
    auto a = std::make_unique<TestPeer>(m_url, Uri, QStringLiteral("a"));
    for (int i = 0; i < 40000; ++i)
        (*a)->set(QStringLiteral("key-%1").arg(i, 6, 10, QLatin1Char('0')), QStringLiteral("0123456789abcdef0123456789abcdef"));
    QTRY_VERIFY_WITH_TIMEOUT((*a)->isReady(), Timeout);
    auto b = std::make_unique<TestPeer>(m_url, Uri, QStringLiteral("b"));
    QTRY_VERIFY_WITH_TIMEOUT((*b)->isReady(), Timeout);
    QCOMPARE((*b)->size(), 40000);

    TestPeer c(m_url, Uri, QStringLiteral("c"));
    quint64 killed = 0;
    connect(c.map.get(), &DistributedMap::deltaObserved, this, [&](const DistributedMap::DeltaEvent &e) {
        if (killed || e.operation != DistributedMap::DeltaEvent::SyncChunk || e.direction != DistributedMap::DeltaEvent::Incoming)
            return;
        killed = e.peer;
        // Drop the responder after its first chunk, from the event loop.
        QTimer::singleShot(0, this, [&] {
            if (a && a->id() == killed)
                a.reset();
            else
                b.reset();
        });
    });
    QTRY_VERIFY_WITH_TIMEOUT(c->isReady(), Timeout);
    QVERIFY(killed != 0);
    QVERIFY(c->lastSyncSource() != killed);
    QCOMPARE(c->size(), 40000);
}

// The joiner learns who answers from the first chunk; a responder that
// leaves before sending one used to leave it waiting for its sync timeout.
// The timeout here is a minute, so only the relay's re-routing can make
// the joiner ready in time.
void tst_Sync::aResponderGoneBeforeItsFirstChunkDoesNotStallTheJoiner()
{
    TestPeer holder(m_url, Uri, QStringLiteral("holder"));
    QTRY_VERIFY_WITH_TIMEOUT(holder->isReady(), Timeout);
    holder->set(QStringLiteral("k"), 1);
    auto mute = std::make_unique<RelayTest::RawClient>(m_url); // ready, and never answers
    QVERIFY(mute->waitConnected() && mute->hello());
    const quint32 id = mute->open(Uri);
    mute->send(Control::encodeReady({id}));
    QVERIFY(mute->stillServed());
    // Someone else's request takes the holder's turn in the rotation, so
    // the joiner's request goes to the mute member.
    RelayTest::RawClient other(m_url);
    QVERIFY(other.waitConnected() && other.hello());
    QCOMPARE(other.open(Uri), id);
    other.sendBinary(RelayTest::frame(Wire::Type::SyncRequest, id, 0, Wire::encodeSyncRequest({1, 0, {}})));
    QTRY_VERIFY_WITH_TIMEOUT(!other.frames.isEmpty(), Timeout); // the holder answers it

    TestPeer joiner(m_url, Uri, QStringLiteral("joiner"), false);
    joiner->setSyncTimeout(60000);
    joiner.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(!mute->frames.isEmpty(), Timeout);
    Wire::Header header;
    QCOMPARE(Wire::decodeHeader(mute->frames.first(), &header), Wire::DecodeError::NoError);
    QCOMPARE(header.type, Wire::Type::SyncRequest);
    QCOMPARE(header.peer, joiner.id());
    mute.reset();
    QTRY_VERIFY_WITH_TIMEOUT(joiner->isReady(), Timeout);
    QCOMPARE(joiner->value(QStringLiteral("k")).toInt(), 1);
    QCOMPARE(joiner->lastSyncSource(), holder.id());
}

// A responder that stays connected but stops answering (half-open, hung)
// is one the relay cannot see: the joiner asks again, 2 s after the last
// chunk (5 s before the first: the relay may hold a request 3 s), and the
// relay routes the new request to the next member in turn.
void tst_Sync::aStalledResponderIsReplaced_data()
{
    QTest::addColumn<bool>("oneChunk");
    QTest::newRow("silent from the start") << false;
    QTest::newRow("silent after one chunk") << true;
}

void tst_Sync::aStalledResponderIsReplaced()
{
    QFETCH(bool, oneChunk);
    TestPeer holder(m_url, Uri, QStringLiteral("holder"));
    QTRY_VERIFY_WITH_TIMEOUT(holder->isReady(), Timeout);
    holder->set(QStringLiteral("k"), 1);
    RelayTest::RawClient mute(m_url); // ready, connected, and stuck
    QVERIFY(mute.waitConnected() && mute.hello());
    const quint32 id = mute.open(Uri);
    mute.send(Control::encodeReady({id}));
    QVERIFY(mute.stillServed());
    RelayTest::RawClient other(m_url); // takes the holder's turn in the rotation
    QVERIFY(other.waitConnected() && other.hello());
    QCOMPARE(other.open(Uri), id);
    other.sendBinary(RelayTest::frame(Wire::Type::SyncRequest, id, 0, Wire::encodeSyncRequest({1, 0, {}})));
    QTRY_VERIFY_WITH_TIMEOUT(!other.frames.isEmpty(), Timeout);

    TestPeer joiner(m_url, Uri, QStringLiteral("joiner")); // the default sync timeout
    QTRY_VERIFY_WITH_TIMEOUT(!mute.frames.isEmpty(), Timeout);
    Wire::Header header;
    QCOMPARE(Wire::decodeHeader(mute.frames.first(), &header), Wire::DecodeError::NoError);
    QCOMPARE(header.type, Wire::Type::SyncRequest);
    QCOMPARE(header.peer, joiner.id());
    if (oneChunk) {
        Wire::SyncRequest request;
        const QByteArray &f = mute.frames.first();
        QCOMPARE(Wire::decodeSyncRequest(f.constData() + Wire::HeaderSize, f.size() - Wire::HeaderSize, &request),
                 Wire::DecodeError::NoError);
        QByteArray chunk;
        Wire::appendSyncChunkHead(chunk, request.syncId, 0, false, QVector<quint64>(request.digest.size()));
        mute.sendBinary(RelayTest::frame(Wire::Type::SyncData, id, joiner.id(), chunk));
        QTRY_VERIFY_WITH_TIMEOUT(mute.frames.size() >= 2, Timeout); // its SyncAck: the chunk was taken
    }
    QTRY_VERIFY_WITH_TIMEOUT(joiner->isReady(), Timeout);
    QCOMPARE(joiner->value(QStringLiteral("k")).toInt(), 1);
    QCOMPARE(joiner->lastSyncSource(), holder.id());
    QVERIFY(mute.stillServed()); // never disconnected: only the joiner's timeout moved the sync on
}

// A value the relay would refuse used to get its writer disconnected, and
// after each reconnect the catch-up pushed it again. Now set() refuses it,
// and a stored one that cannot be sent is left out, so no peer is cut off.
void tst_Sync::aWriteLargerThanTheRelayAcceptsIsRefusedAndNothingIsCutOff()
{
    m_relay.reset();
    Relay::Options options;
    options.maxMessageBytes = 64 * 1024;
    m_relay = std::make_unique<Relay>(options);
    QVERIFY(m_relay->listen(QHostAddress::LocalHost, 0));
    m_url = m_relay->url();
    // A replica that already holds a value too large for this relay (from
    // a store written through a relay with a larger limit).
    TestPeer a(m_url, Uri, QStringLiteral("a"), false);
    Entry stored;
    stored.value = '"' + QByteArray(100 * 1024, 's') + '"';
    stored.hlc = a.internals()->clock().tick();
    stored.writer = 0x5;
    a.internals()->load({Wire::DecodedEntry{QStringLiteral("stored"), stored}});
    QSignalSpy aErrors(a.map.get(), &DistributedMap::errorOccurred);
    QSignalSpy aStates(a.connection.get(), &Connection::stateChanged);
    a.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), Timeout);
    TestPeer b(m_url, Uri, QStringLiteral("b"));
    QTRY_VERIFY_WITH_TIMEOUT(b->isReady(), Timeout);
    QCOMPARE(a.connection->maxMessageBytes(), qint64(64 * 1024));

    QSignalSpy bErrors(b.map.get(), &DistributedMap::errorOccurred);
    QVERIFY(!b->set(QStringLiteral("big"), QString(70 * 1024, QLatin1Char('x'))));
    QCOMPARE(b->error(), DistributedMap::TooLarge);
    QVERIFY(!b->contains(QStringLiteral("big")));
    QVERIFY(b->set(QStringLiteral("small"), 1));
    QTRY_COMPARE_WITH_TIMEOUT(a->value(QStringLiteral("small")).toInt(), 1, Timeout);
    // a served b without the stored value, said so once, and nobody was cut off.
    QVERIFY(!b->contains(QStringLiteral("stored")));
    QVERIFY(a->contains(QStringLiteral("stored")));
    int tooLarge = 0;
    for (const QList<QVariant> &e : std::as_const(aErrors))
        tooLarge += e.at(0).value<DistributedMap::Error>() == DistributedMap::TooLarge;
    QCOMPARE(tooLarge, 1);
    QCOMPARE(a.connection->state(), Connection::Connected);
    QCOMPARE(b.connection->state(), Connection::Connected);
    QCOMPARE(aStates.count(), 2); // connecting, connected: no reconnect
    QCOMPARE(m_relay->stats().cutOff, quint64(0));
}

void tst_Sync::largeStateIsChunkedAndSyncs()
{
    // 8 MB of state: far above one sync chunk, and above what the relay
    // would take as one message with a 1 MiB limit.
    m_relay.reset();
    Relay::Options options;
    options.maxMessageBytes = 1024 * 1024;
    m_relay = std::make_unique<Relay>(options);
    QVERIFY(m_relay->listen(QHostAddress::LocalHost, 0));
    m_url = m_relay->url();
    TestPeer a(m_url, Uri, QStringLiteral("a"), false);
    const QString big(1000, QLatin1Char('x'));
    for (int i = 0; i < 8000; ++i)
        a->set(QStringLiteral("big-%1").arg(i), big);
    a.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), Timeout);
    TestPeer b(m_url, Uri, QStringLiteral("b"));
    int chunks = 0;
    connect(b.map.get(), &DistributedMap::deltaObserved, this, [&chunks](const DistributedMap::DeltaEvent &e) {
        if (e.operation == DistributedMap::DeltaEvent::SyncChunk)
            ++chunks;
    });
    QTRY_VERIFY_WITH_TIMEOUT(b->isReady(), Timeout);
    QCOMPARE(b->size(), 8000);
    QVERIFY2(chunks >= 30, qPrintable(QString::number(chunks)));
    QCOMPARE(b->value(QStringLiteral("big-7999")).toString(), big);
}

void tst_Sync::aPeerWithAClockADayAheadFollowsTheRelay()
{
    TestPeer a(m_url, Uri, QStringLiteral("a"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), Timeout);
    TestPeer fast(m_url, Uri, QStringLiteral("fast"), false);
    fast.internals()->clock() = HybridClock([] { return QDateTime::currentMSecsSinceEpoch() + 24 * 3600 * 1000; });
    fast.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(fast->isReady(), Timeout);
    fast->set(QStringLiteral("k"), QStringLiteral("fast"));
    QTRY_VERIFY_WITH_TIMEOUT(a->contains(QStringLiteral("k")), Timeout);
    const qint64 stamped = HybridClock::physicalPart(a.internals()->state().find(QStringLiteral("k"))->hlc);
    QVERIFY2(qAbs(stamped - QDateTime::currentMSecsSinceEpoch()) < 60'000, qPrintable(QString::number(stamped)));
    // So a's next write, made after seeing it, wins as it should.
    a->set(QStringLiteral("k"), QStringLiteral("a, later"));
    QTRY_COMPARE_WITH_TIMEOUT(fast->value(QStringLiteral("k")).toString(), QStringLiteral("a, later"), Timeout);
}

void tst_Sync::resyncShipsOnlyWhatChanged()
{
    TestPeer a(m_url, Uri, QStringLiteral("a"));
    for (int i = 0; i < 20000; ++i)
        a->set(QStringLiteral("key-%1").arg(i), QStringLiteral("0123456789abcdef0123456789abcdef"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), Timeout);
    TestPeer b(m_url, Uri, QStringLiteral("b"));
    QTRY_VERIFY_WITH_TIMEOUT(b->isReady(), Timeout);
    const quint64 fullCopy = b.connection->bytesReceived();

    b.connection->close();
    for (int i = 0; i < 500; ++i)
        a->set(QStringLiteral("key-%1").arg(i * 40), QStringLiteral("changed while b was away"));
    b->set(QStringLiteral("offline-edit"), 1);
    const quint64 before = b.connection->bytesReceived() + b.connection->bytesSent();
    b.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(b.connection->state() == Connection::Connected && !b->isSyncing(), Timeout);
    QList<TestPeer *> both{&a, &b};
    QTRY_VERIFY_WITH_TIMEOUT(sameMaps(both), Timeout);
    QCOMPARE(a->value(QStringLiteral("offline-edit")).toInt(), 1);
    const quint64 resync = b.connection->bytesReceived() + b.connection->bytesSent() - before;
    qInfo("full copy %llu bytes, resync of 500 changes %llu bytes", fullCopy, resync);
    QVERIFY2(resync < fullCopy / 10, qPrintable(QStringLiteral("%1 of %2").arg(resync).arg(fullCopy)));
}

void tst_Sync::verifyRoundRepairsLostWritesOlderThanTheCatchUp()
{
    TestPeer a(m_url, Uri, QStringLiteral("a"));
    for (int i = 0; i < 300; ++i)
        a->set(QStringLiteral("key-%1").arg(i), i);
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), Timeout);
    TestPeer b(m_url, Uri, QStringLiteral("b"));
    QTRY_VERIFY_WITH_TIMEOUT(b->isReady(), Timeout);
    b.connection->close();
    // Writes older than anything b heard of, which b never got (as if their
    // deltas were lost): a catch-up by age cannot find them, the digest can.
    a.internals()->load({Wire::DecodedEntry{QStringLiteral("lost-set"), Entry{QByteArray("\"x\""), 5, 0xdead, false}},
             Wire::DecodedEntry{QStringLiteral("key-3"), Entry{QByteArray(), HybridClock::pack(QDateTime::currentMSecsSinceEpoch() - 60000, 0), 0xdead, true}}});
    // ...and b has one that a lacks.
    b.internals()->load({Wire::DecodedEntry{QStringLiteral("lost-in-b"), Entry{QByteArray("7"), 6, 0xbeef, false}}});
    b.connection->open();
    QList<TestPeer *> both{&a, &b};
    QTRY_VERIFY_WITH_TIMEOUT(sameMaps(both), Timeout);
    QCOMPARE(b->value(QStringLiteral("lost-set")).toString(), QStringLiteral("x"));
    QCOMPARE(a->value(QStringLiteral("lost-in-b")).toInt(), 7);
    // key-3 was written by a a moment ago: the older tombstone loses.
    QCOMPARE(b->value(QStringLiteral("key-3")).toInt(), 3);
    QCOMPARE(b.internals()->state().digest(64), a.internals()->state().digest(64));
}

void tst_Sync::aBurstOfFramesYieldsToTheEventLoopInOrder()
{
    // QWebSocket hands over every buffered frame in one go; the map applies
    // frames for a time budget per event-loop turn and keeps the rest for
    // the next turn. With a budget of 0, the first frame of a turn applies
    // at once and the others wait, in order.
    const QString uri = QStringLiteral("/inbox");
    TestPeer a(m_url, uri, QStringLiteral("A"));
    TestPeer b(m_url, uri, QStringLiteral("B"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady() && b->isReady() && a->peers().size() == 1, 10000);
    DistributedMapPrivate *d = a.internals();
    d->inboxBudgetMs = 0;
    QList<int> applied;
    connect(a.map.get(), &DistributedMap::valueSet, this, [&](const QJsonValue &value) { applied << value.toInt(); });
    QList<int> appliedWhenJoined;
    connect(a.map.get(), &DistributedMap::peerJoined, this, [&] { appliedWhenJoined = applied; });

    const Wire::Header header{Wire::Type::Delta, 0, d->replica.mapId(), b.id()};
    const quint64 base = quint64(QDateTime::currentMSecsSinceEpoch()) << 16;
    auto frameOf = [&](int n) {
        QByteArray frame;
        Wire::appendHeader(frame, header);
        Wire::appendEntry(frame, QStringLiteral("k"), Entry{QByteArray::number(n), base + quint64(n), b.id(), false});
        return frame;
    };
    for (int n = 1; n <= 3; ++n)
        d->frameReceived(header, frameOf(n));
    QCOMPARE(applied, QList<int>{1});

    // Anything else from the relay applies the waiting frames first.
    Control::Joined joined;
    joined.id = header.mapId;
    joined.peer = 0xC0FFEE;
    d->joined(joined);
    QCOMPARE(appliedWhenJoined, (QList<int>{1, 2, 3}));

    // The rest of a turn's frames go through on the next turns.
    for (int n = 4; n <= 6; ++n)
        d->frameReceived(header, frameOf(n));
    QCOMPARE(applied, (QList<int>{1, 2, 3}));
    QTRY_COMPARE_WITH_TIMEOUT(applied, (QList<int>{1, 2, 3, 4, 5, 6}), 10000);
    QCOMPARE(a->value(QStringLiteral("k")), QJsonValue(6));
}

QTEST_GUILESS_MAIN(tst_Sync)
#include "tst_sync.moc"
