#include "hybridclock.h"
#include "mapstate.h"

#include <QRandomGenerator>
#include <QTest>

#include <algorithm>
#include <random>

namespace {

Entry set(const char *json, quint64 hlc, quint64 writer)
{
    return Entry{QByteArray(json), hlc, writer, false};
}

Entry tomb(quint64 hlc, quint64 writer)
{
    return Entry{QByteArray(), hlc, writer, true};
}

struct Write
{
    QString key;
    Entry entry;
};

} // namespace

Q_DECLARE_METATYPE(Entry)
Q_DECLARE_METATYPE(MapState::Outcome)

class tst_MapState : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void apply_data();
    void apply();
    void sizeCountsLiveValuesOnly();
    void replacedValueIsReported();
    void convergesUnderAnyDeliveryOrder_data();
    void convergesUnderAnyDeliveryOrder();
    void mergingStatesIsAssociative();
    void digestIsEqualForEqualStatesAndOrderIndependent();
    void digestFoldsBucketsByXor();
    void digestChangesWithAnyWrite();
    void purgeDropsOnlyOldTombstones();
};

void tst_MapState::apply_data()
{
    QTest::addColumn<Entry>("first");
    QTest::addColumn<Entry>("second");
    QTest::addColumn<MapState::Outcome>("outcome");
    QTest::addColumn<QByteArray>("finalValue");
    QTest::addColumn<bool>("finalLive");

    QTest::newRow("a newer clock wins") << set("1", 10, 1) << set("2", 11, 1) << MapState::Outcome::Applied << QByteArray("2") << true;
    QTest::newRow("an older clock loses") << set("1", 10, 1) << set("2", 9, 2) << MapState::Outcome::Superseded << QByteArray("1") << true;
    QTest::newRow("equal clocks: the higher writer wins") << set("1", 10, 1) << set("2", 10, 2) << MapState::Outcome::Applied << QByteArray("2") << true;
    QTest::newRow("equal clocks: the lower writer loses") << set("1", 10, 2) << set("2", 10, 1) << MapState::Outcome::Superseded << QByteArray("1") << true;
    QTest::newRow("the same write twice is a duplicate") << set("1", 10, 1) << set("1", 10, 1) << MapState::Outcome::Duplicate << QByteArray("1") << true;
    QTest::newRow("a newer delete wins over a set") << set("1", 10, 1) << tomb(11, 2) << MapState::Outcome::Applied << QByteArray() << false;
    QTest::newRow("an older delete loses to a set") << set("1", 10, 1) << tomb(9, 2) << MapState::Outcome::Superseded << QByteArray("1") << true;
    QTest::newRow("a set newer than a tombstone revives the key") << tomb(10, 1) << set("3", 12, 1) << MapState::Outcome::Applied << QByteArray("3") << true;
    QTest::newRow("a set older than a tombstone stays deleted") << tomb(10, 1) << set("3", 8, 3) << MapState::Outcome::Superseded << QByteArray() << false;
}

void tst_MapState::apply()
{
    QFETCH(Entry, first);
    QFETCH(Entry, second);
    QFETCH(MapState::Outcome, outcome);
    QFETCH(QByteArray, finalValue);
    QFETCH(bool, finalLive);

    MapState state;
    QCOMPARE(state.apply(QStringLiteral("k"), first).outcome, MapState::Outcome::Applied);
    QCOMPARE(state.apply(QStringLiteral("k"), second).outcome, outcome);
    QCOMPARE(state.contains(QStringLiteral("k")), finalLive);
    QCOMPARE(state.find(QStringLiteral("k"))->value, finalValue);
    QCOMPARE(state.size(), finalLive ? 1 : 0);
    QCOMPARE(state.entryCount(), 1);
}

void tst_MapState::sizeCountsLiveValuesOnly()
{
    MapState state;
    state.apply(QStringLiteral("a"), set("1", 1, 1));
    state.apply(QStringLiteral("b"), set("2", 1, 1));
    state.apply(QStringLiteral("c"), tomb(1, 1));
    QCOMPARE(state.size(), 2);
    QCOMPARE(state.tombstoneCount(), 1);
    state.apply(QStringLiteral("a"), tomb(2, 1));
    QCOMPARE(state.size(), 1);
    QCOMPARE(state.tombstoneCount(), 2);
    QVERIFY(!state.contains(QStringLiteral("a")));
    QVERIFY(!state.contains(QStringLiteral("missing")));
}

void tst_MapState::replacedValueIsReported()
{
    MapState state;
    MapState::Result r = state.apply(QStringLiteral("k"), set("\"old\"", 1, 1));
    QVERIFY(!r.hadValue);
    r = state.apply(QStringLiteral("k"), set("\"new\"", 2, 1));
    QVERIFY(r.hadValue);
    QCOMPARE(r.oldValue, QByteArray("\"old\""));
    r = state.apply(QStringLiteral("k"), tomb(3, 1));
    QVERIFY(r.hadValue);
    QCOMPARE(r.oldValue, QByteArray("\"new\""));
    r = state.apply(QStringLiteral("k"), tomb(4, 1));
    QVERIFY(!r.hadValue);
}

void tst_MapState::convergesUnderAnyDeliveryOrder_data()
{
    QTest::addColumn<quint32>("seed");
    for (quint32 seed = 1; seed <= 200; ++seed)
        QTest::newRow(qPrintable(QStringLiteral("seed %1").arg(seed))) << seed;
}

// N replicas write concurrently with skewed clocks; every write reaches every
// replica in its own shuffled order, some twice. All replicas must end equal,
// and each key must hold the write with the highest (hlc, writer).
void tst_MapState::convergesUnderAnyDeliveryOrder()
{
    QFETCH(quint32, seed);
    QRandomGenerator rng(seed);
    const int replicas = 2 + int(rng.bounded(5));
    const int keys = 1 + int(rng.bounded(30));
    const int ops = 50 + int(rng.bounded(300));

    QVector<qint64> now(replicas);
    QVector<HybridClock> clocks;
    QVector<MapState> states(replicas);
    for (int r = 0; r < replicas; ++r) {
        now[r] = 1'000'000 + rng.bounded(100'000); // skew up to 100 s
        clocks.append(HybridClock([&now, r] { return now[r]; }));
    }
    QVector<Write> writes;
    for (int i = 0; i < ops; ++i) {
        const int r = int(rng.bounded(replicas));
        now[r] += rng.bounded(3); // time sometimes stands still
        const QString key = QStringLiteral("k%1").arg(rng.bounded(keys));
        Entry e = rng.bounded(100) < 30 ? tomb(0, quint64(r + 1))
                                         : set(QByteArray::number(i).constData(), 0, quint64(r + 1));
        e.hlc = clocks[r].tick();
        states[r].apply(key, e);
        writes.append({key, e});
        // Sometimes a replica hears a write early, as live deltas do.
        if (rng.bounded(4) == 0) {
            const int other = int(rng.bounded(replicas));
            states[other].apply(key, e);
            clocks[other].observe(e.hlc);
        }
    }
    for (int r = 0; r < replicas; ++r) {
        QVector<Write> delivery = writes;
        for (int d = 0; d < ops / 10; ++d)
            delivery.append(writes[int(rng.bounded(ops))]);
        std::shuffle(delivery.begin(), delivery.end(), std::mt19937(rng.generate()));
        for (const Write &w : std::as_const(delivery))
            states[r].apply(w.key, w.entry);
    }
    QHash<QString, Entry> oracle;
    for (const Write &w : std::as_const(writes)) {
        auto it = oracle.find(w.key);
        if (it == oracle.end() || w.entry.newerThan(*it))
            oracle.insert(w.key, w.entry);
    }
    for (int r = 0; r < replicas; ++r) {
        QVERIFY2(states[r].entryCount() == oracle.size(), qPrintable(QStringLiteral("seed %1 replica %2").arg(seed).arg(r)));
        for (auto it = oracle.cbegin(); it != oracle.cend(); ++it) {
            const EntryRef e = states[r].find(it.key());
            QVERIFY2(e && e->sameWrite(*it) && e->value == it->value && e->tombstone == it->tombstone,
                     qPrintable(QStringLiteral("seed %1 replica %2 key %3").arg(seed).arg(r).arg(it.key())));
        }
        QCOMPARE(states[r].digest(64), states[0].digest(64));
    }
}

void tst_MapState::mergingStatesIsAssociative()
{
    const quint32 seed = 4242;
    QRandomGenerator rng(seed);
    QVector<MapState> parts(3);
    for (int i = 0; i < 300; ++i) {
        const QString key = QStringLiteral("k%1").arg(rng.bounded(40));
        const Entry e = rng.bounded(3) == 0 ? tomb(rng.bounded(50), rng.bounded(4) + 1)
                                             : set(QByteArray::number(i).constData(), rng.bounded(50), rng.bounded(4) + 1);
        parts[int(rng.bounded(3))].apply(key, e);
    }
    auto merge = [](MapState into, const MapState &from) {
        for (const EntryRef e : from.entries())
            into.apply(e.utf8Key(), *e);
        return into;
    };
    const MapState left = merge(merge(parts[0], parts[1]), parts[2]);
    const MapState right = merge(parts[0], merge(parts[1], parts[2]));
    const MapState swapped = merge(merge(parts[2], parts[0]), parts[1]);
    QCOMPARE(left.digest(1024), right.digest(1024));
    QCOMPARE(left.digest(1024), swapped.digest(1024));
    QCOMPARE(left.size(), right.size());
}

void tst_MapState::digestIsEqualForEqualStatesAndOrderIndependent()
{
    MapState a, b;
    for (int i = 0; i < 100; ++i)
        a.apply(QStringLiteral("key-%1").arg(i), set("1", quint64(i), 1));
    for (int i = 99; i >= 0; --i)
        b.apply(QStringLiteral("key-%1").arg(i), set("1", quint64(i), 1));
    for (int n : {1, 2, 16, 1024, 65536})
        QCOMPARE(a.digest(n), b.digest(n));
    QCOMPARE(MapState().digest(8), QVector<quint64>(8, 0));
}

void tst_MapState::digestFoldsBucketsByXor()
{
    MapState a;
    for (int i = 0; i < 500; ++i)
        a.apply(QStringLiteral("key-%1").arg(i), set("1", quint64(i) + 1, 7));
    const QVector<quint64> fine = a.digest(256);
    const QVector<quint64> coarse = a.digest(16);
    for (int b = 0; b < 16; ++b) {
        quint64 folded = 0;
        for (int f = b; f < 256; f += 16)
            folded ^= fine[f];
        QCOMPARE(coarse[b], folded);
    }
}

void tst_MapState::digestChangesWithAnyWrite()
{
    MapState a;
    a.apply(QStringLiteral("x"), set("1", 5, 1));
    const QVector<quint64> before = a.digest(4);
    MapState b = a;
    b.apply(QStringLiteral("x"), tomb(6, 1));
    QVERIFY(b.digest(4) != before);
    MapState c = a;
    c.apply(QStringLiteral("x"), set("1", 5, 2)); // same clock, other writer
    QVERIFY(c.digest(4) != before);
    // Only the key's bucket changes.
    const int bucket = MapState::bucketOf(MapState::keyHash(QStringLiteral("x")), 4);
    for (int i = 0; i < 4; ++i)
        QCOMPARE(b.digest(4)[i] != before[i], i == bucket);
}

void tst_MapState::purgeDropsOnlyOldTombstones()
{
    MapState state;
    state.apply(QStringLiteral("old"), tomb(HybridClock::pack(1000, 0), 1));
    state.apply(QStringLiteral("young"), tomb(HybridClock::pack(5000, 0), 1));
    state.apply(QStringLiteral("value"), set("1", HybridClock::pack(10, 0), 1));
    QCOMPARE(state.purgeTombstones(HybridClock::pack(2000, 0)), 1);
    QVERIFY(!state.find(QStringLiteral("old")));
    QVERIFY(state.find(QStringLiteral("young")));
    QVERIFY(state.contains(QStringLiteral("value")));
    QCOMPARE(state.entryCount(), 2);
}

QTEST_APPLESS_MAIN(tst_MapState)
#include "tst_mapstate.moc"
