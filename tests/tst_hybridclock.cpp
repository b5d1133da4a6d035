#include "hybridclock.h"
#include "mapstate.h"

#include <QTest>

class tst_HybridClock : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void ticksFollowPhysicalTime();
    void logicalCounterAdvancesWhenTimeStands();
    void neverGoesBackwardsWhenPhysicalTimeDoes();
    void observeOrdersLaterWritesAfterRemoteOnes();
    void writeAfterSeeingAFastClockWinsWithHlc();
    void plainWallClockLwwLosesThatWrite();
    void counterOverflowCarriesIntoMilliseconds();
    void packingRoundTrips();
};

void tst_HybridClock::ticksFollowPhysicalTime()
{
    qint64 now = 1'000'000;
    HybridClock clock([&now] { return now; });
    const quint64 a = clock.tick();
    QCOMPARE(HybridClock::physicalPart(a), 1'000'000);
    QCOMPARE(HybridClock::logicalPart(a), 0u);
    now = 1'000'005;
    const quint64 b = clock.tick();
    QCOMPARE(HybridClock::physicalPart(b), 1'000'005);
    QCOMPARE(HybridClock::logicalPart(b), 0u);
    QVERIFY(b > a);
}

void tst_HybridClock::logicalCounterAdvancesWhenTimeStands()
{
    HybridClock clock([] { return qint64(42); });
    const quint64 a = clock.tick();
    const quint64 b = clock.tick();
    const quint64 c = clock.tick();
    QCOMPARE(HybridClock::physicalPart(c), 42);
    QCOMPARE(HybridClock::logicalPart(b), 1u);
    QCOMPARE(HybridClock::logicalPart(c), 2u);
    QVERIFY(a < b && b < c);
}

void tst_HybridClock::neverGoesBackwardsWhenPhysicalTimeDoes()
{
    qint64 now = 5000;
    HybridClock clock([&now] { return now; });
    const quint64 a = clock.tick();
    now = 1000; // NTP step backwards
    const quint64 b = clock.tick();
    QVERIFY(b > a);
    QCOMPARE(HybridClock::physicalPart(b), 5000);
}

void tst_HybridClock::observeOrdersLaterWritesAfterRemoteOnes()
{
    HybridClock clock([] { return qint64(100); });
    const quint64 remote = HybridClock::pack(900, 7);
    clock.observe(remote);
    const quint64 next = clock.tick();
    QVERIFY(next > remote);
    QCOMPARE(HybridClock::physicalPart(next), 900);
    QCOMPARE(HybridClock::logicalPart(next), 8u);
    // Observing an older timestamp changes nothing.
    clock.observe(HybridClock::pack(1, 0));
    QVERIFY(clock.tick() > next);
}

// Peer A's clock runs an hour ahead. A writes k; B receives that write and
// then overwrites k. B's write happened after A's, so it must win everywhere.
void tst_HybridClock::writeAfterSeeingAFastClockWinsWithHlc()
{
    const qint64 realNow = 1'700'000'000'000;
    HybridClock clockA([realNow] { return realNow + 3'600'000; });
    HybridClock clockB([realNow] { return realNow; });
    Entry fromA{QByteArrayLiteral("\"a\""), clockA.tick(), 0xA, false};

    MapState replicaB;
    replicaB.apply(QStringLiteral("k"), fromA);
    clockB.observe(fromA.hlc);
    Entry fromB{QByteArrayLiteral("\"b\""), clockB.tick(), 0xB, false};

    MapState replicaA;
    replicaA.apply(QStringLiteral("k"), fromA);
    QCOMPARE(replicaA.apply(QStringLiteral("k"), fromB).outcome, MapState::Outcome::Applied);
    QCOMPARE(replicaB.apply(QStringLiteral("k"), fromB).outcome, MapState::Outcome::Applied);
    QCOMPARE(replicaA.find(QStringLiteral("k"))->value, QByteArrayLiteral("\"b\""));
    QCOMPARE(replicaB.find(QStringLiteral("k"))->value, QByteArrayLiteral("\"b\""));
}

// The same story with plain wall-clock timestamps: B's later write loses,
// which is the bug the HLC exists to prevent.
void tst_HybridClock::plainWallClockLwwLosesThatWrite()
{
    const qint64 realNow = 1'700'000'000'000;
    Entry fromA{QByteArrayLiteral("\"a\""), quint64(realNow + 3'600'000) << 16, 0xA, false};
    Entry fromB{QByteArrayLiteral("\"b\""), quint64(realNow) << 16, 0xB, false}; // no observe()
    MapState replica;
    replica.apply(QStringLiteral("k"), fromA);
    QCOMPARE(replica.apply(QStringLiteral("k"), fromB).outcome, MapState::Outcome::Superseded);
    QCOMPARE(replica.find(QStringLiteral("k"))->value, QByteArrayLiteral("\"a\""));
}

void tst_HybridClock::counterOverflowCarriesIntoMilliseconds()
{
    HybridClock clock([] { return qint64(10); });
    clock.observe(HybridClock::pack(10, 0xffff));
    const quint64 next = clock.tick();
    QCOMPARE(HybridClock::physicalPart(next), 11);
    QCOMPARE(HybridClock::logicalPart(next), 0u);
}

void tst_HybridClock::packingRoundTrips()
{
    const quint64 packed = HybridClock::pack(1'700'000'000'123, 513);
    QCOMPARE(HybridClock::physicalPart(packed), 1'700'000'000'123);
    QCOMPARE(HybridClock::logicalPart(packed), 513u);
}

QTEST_APPLESS_MAIN(tst_HybridClock)
#include "tst_hybridclock.moc"
