// HistoryIndex against a brute-force model: random writes from a seed
// (printed; DISTMAP_SEED replays), inserted in shuffled order with
// duplicates, then every key history, "as of" over a random set of instants
// and diffs between them compared with a scan of all writes, before and
// after retention.

#include "historyindex.h"
#include "hybridclock.h"

#include <QRandomGenerator>
#include <QSet>
#include <QTest>

#include <algorithm>
#include <map>

namespace {

struct Write
{
    QString key;
    Entry entry;
};

bool olderThan(const Entry &a, const Entry &b)
{
    return b.newerThan(a);
}

Entry value(quint64 hlc, quint64 writer, const QByteArray &json)
{
    Entry e;
    e.hlc = hlc;
    e.writer = writer;
    e.value = json;
    return e;
}

Entry tombstone(quint64 hlc, quint64 writer)
{
    Entry e;
    e.hlc = hlc;
    e.writer = writer;
    e.tombstone = true;
    return e;
}

bool same(const Entry &a, const Entry &b)
{
    return a.sameWrite(b) && a.tombstone == b.tombstone && a.value == b.value;
}

bool same(const std::optional<Entry> &a, const std::optional<Entry> &b)
{
    return a.has_value() == b.has_value() && (!a || same(*a, *b));
}

// What a reader sees: a tombstone and no write at all both mean absent.
std::optional<QByteArray> visible(const std::optional<Entry> &e)
{
    if (!e || e->tombstone)
        return std::nullopt;
    return e->value;
}

QString describe(const Entry &e)
{
    return QStringLiteral("(%1,%2,%3)").arg(e.hlc).arg(e.writer).arg(e.tombstone ? QStringLiteral("deleted") : QString::fromUtf8(e.value));
}

QString describe(const std::optional<Entry> &e)
{
    return e ? describe(*e) : QStringLiteral("none");
}

// The model: every write in one list, every question answered by a scan.
class Model
{
public:
    QVector<Write> writes;

    QVector<Entry> keyHistory(const QString &key) const
    {
        QVector<Entry> out;
        for (const Write &w : writes) {
            if (w.key == key)
                out.append(w.entry);
        }
        std::sort(out.begin(), out.end(), olderThan);
        return out;
    }
    std::optional<Entry> at(const QString &key, quint64 instant) const
    {
        std::optional<Entry> best;
        for (const Write &w : writes) {
            if (w.key == key && w.entry.hlc <= instant && (!best || w.entry.newerThan(*best)))
                best = w.entry;
        }
        return best;
    }
    std::map<QString, QByteArray> asOf(quint64 instant) const
    {
        std::map<QString, Entry> newest;
        for (const Write &w : writes) {
            if (w.entry.hlc > instant)
                continue;
            auto it = newest.find(w.key);
            if (it == newest.end() || w.entry.newerThan(it->second))
                newest[w.key] = w.entry;
        }
        std::map<QString, QByteArray> out;
        for (const auto &[key, e] : newest) {
            if (!e.tombstone)
                out[key] = e.value;
        }
        return out;
    }
    QSet<QString> keysWrittenIn(quint64 from, quint64 to) const
    {
        QSet<QString> out;
        for (const Write &w : writes) {
            if (w.entry.hlc > from && w.entry.hlc <= to)
                out.insert(w.key);
        }
        return out;
    }
    QSet<QString> keys() const
    {
        QSet<QString> out;
        for (const Write &w : writes)
            out.insert(w.key);
        return out;
    }
    // What retain(windowStart) must leave: writes not older than the window,
    // and each key's state at the window start when it is a value.
    Model retained(quint64 windowStart) const
    {
        Model m;
        for (const Write &w : writes) {
            const std::optional<Entry> start = at(w.key, windowStart);
            if (w.entry.hlc >= windowStart || (start && start->sameWrite(w.entry) && !start->tombstone))
                m.writes.append(w);
        }
        return m;
    }
};

std::map<QString, QByteArray> toMap(const QVector<HistoryIndex::KeyedEntry> &entries)
{
    std::map<QString, QByteArray> out;
    for (const HistoryIndex::KeyedEntry &e : entries)
        out[e.key] = e.entry.value;
    return out;
}

quint32 seedFromEnvironment()
{
    return qEnvironmentVariableIsSet("DISTMAP_SEED") ? quint32(qgetenv("DISTMAP_SEED").toUInt())
                                                     : QRandomGenerator::global()->generate();
}

} // namespace

class tst_HistoryIndex : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void asOf_data();
    void asOf();
    void retain_data();
    void retain();
    void aDuplicateWriteIsRefused();
    void keyHistoryIsInClockOrderWhateverTheInsertOrder();
    void changesListEveryKeyWrittenInTheInterval();
    void windowStartForBytesKeepsTheNewestWritesThatFit();
    void randomWritesMatchTheModel();
    void keyOrderIsQStringOrder();
    void lostWritesStayMarkedThroughRetention();

private:
    quint32 m_seed = 0;
};

void tst_HistoryIndex::initTestCase()
{
    m_seed = seedFromEnvironment();
    qInfo("seed %u (replay with DISTMAP_SEED=%u)", m_seed, m_seed);
}

void tst_HistoryIndex::asOf_data()
{
    QTest::addColumn<QVector<Entry>>("writes"); // all of key "k"
    QTest::addColumn<quint64>("instant");
    QTest::addColumn<QByteArray>("expected"); // empty: absent

    QTest::newRow("no write yet means absent") << QVector<Entry>{value(10, 1, "1")} << quint64(9) << QByteArray();
    QTest::newRow("a write counts from its own instant") << QVector<Entry>{value(10, 1, "1")} << quint64(10) << QByteArray("1");
    QTest::newRow("the newest write at or before the instant wins")
        << QVector<Entry>{value(10, 1, "1"), value(20, 1, "2"), value(30, 1, "3")} << quint64(25) << QByteArray("2");
    QTest::newRow("a tombstone hides the key from its instant on")
        << QVector<Entry>{value(10, 1, "1"), tombstone(20, 1)} << quint64(20) << QByteArray();
    QTest::newRow("a value after a tombstone brings the key back")
        << QVector<Entry>{value(10, 1, "1"), tombstone(20, 1), value(30, 2, "3")} << quint64(31) << QByteArray("3");
    QTest::newRow("at one hlc the greater writer wins, as in the merge")
        << QVector<Entry>{value(10, 7, "seven"), value(10, 3, "three")} << quint64(10) << QByteArray("seven");
}

void tst_HistoryIndex::asOf()
{
    QFETCH(QVector<Entry>, writes);
    QFETCH(quint64, instant);
    QFETCH(QByteArray, expected);
    HistoryIndex index;
    for (const Entry &e : writes)
        QVERIFY(index.insert(QStringLiteral("k"), e));
    const QVector<HistoryIndex::KeyedEntry> state = index.asOf(instant);
    if (expected.isEmpty()) {
        QVERIFY(state.isEmpty());
        QVERIFY(!visible(index.at(QStringLiteral("k"), instant)));
    } else {
        QCOMPARE(state.size(), 1);
        QCOMPARE(state.first().entry.value, expected);
        QCOMPARE(*visible(index.at(QStringLiteral("k"), instant)), expected);
    }
}

void tst_HistoryIndex::retain_data()
{
    QTest::addColumn<QVector<Entry>>("writes");
    QTest::addColumn<quint64>("windowStart");
    QTest::addColumn<QVector<quint64>>("kept"); // hlcs left, in order

    const QVector<Entry> three{value(10, 1, "1"), value(20, 1, "2"), value(30, 1, "3")};
    QTest::newRow("the value at the window start stays, older ones go")
        << three << quint64(25) << QVector<quint64>{20, 30};
    QTest::newRow("a write exactly at the window start is inside it")
        << three << quint64(20) << QVector<quint64>{20, 30};
    QTest::newRow("a window before every write keeps them all") << three << quint64(5) << QVector<quint64>{10, 20, 30};
    QTest::newRow("a key untouched inside the window keeps its current value")
        << three << quint64(100) << QVector<quint64>{30};
    QTest::newRow("a tombstone at the window start goes: absent either way")
        << QVector<Entry>{value(10, 1, "1"), tombstone(20, 1), value(30, 1, "3")} << quint64(25) << QVector<quint64>{30};
    QTest::newRow("a deleted key with nothing in the window goes entirely")
        << QVector<Entry>{value(10, 1, "1"), tombstone(20, 1)} << quint64(25) << QVector<quint64>{};
}

void tst_HistoryIndex::retain()
{
    QFETCH(QVector<Entry>, writes);
    QFETCH(quint64, windowStart);
    QFETCH(QVector<quint64>, kept);
    HistoryIndex index;
    for (const Entry &e : writes)
        index.insert(QStringLiteral("k"), e);
    const qint64 bytesBefore = index.bytes();
    QCOMPARE(index.retain(windowStart), writes.size() - kept.size());
    QVector<quint64> hlcs;
    for (const Entry &e : index.keyHistory(QStringLiteral("k")))
        hlcs.append(e.hlc);
    QCOMPARE(hlcs, kept);
    QCOMPARE(index.size(), kept.size());
    QCOMPARE(index.keyCount(), kept.isEmpty() ? 0 : 1);
    QVERIFY(index.bytes() <= bytesBefore);
    QCOMPARE(index.bytes() == 0, kept.isEmpty());
    // Nothing older is left to drop.
    QCOMPARE(index.retain(windowStart), 0);
}

void tst_HistoryIndex::aDuplicateWriteIsRefused()
{
    HistoryIndex index;
    QVERIFY(index.insert(QStringLiteral("k"), value(10, 1, "1")));
    QVERIFY(index.insert(QStringLiteral("k"), value(20, 1, "2")));
    QVERIFY(!index.insert(QStringLiteral("k"), value(10, 1, "1")));
    QVERIFY(!index.insert(QStringLiteral("k"), value(20, 1, "2")));
    QVERIFY(index.insert(QStringLiteral("other"), value(10, 1, "1")));
    QCOMPARE(index.size(), 3);
    QCOMPARE(index.keyCount(), 2);
}

void tst_HistoryIndex::keyHistoryIsInClockOrderWhateverTheInsertOrder()
{
    HistoryIndex index;
    const QString k = QStringLiteral("k");
    index.insert(k, value(30, 1, "c"));
    index.insert(k, tombstone(10, 2));
    index.insert(k, value(20, 9, "b9"));
    index.insert(k, value(20, 3, "b3"));
    QVector<QString> order;
    for (const Entry &e : index.keyHistory(k))
        order.append(describe(e));
    QCOMPARE(order, (QVector<QString>{QStringLiteral("(10,2,deleted)"), QStringLiteral("(20,3,b3)"),
                                      QStringLiteral("(20,9,b9)"), QStringLiteral("(30,1,c)")}));
    QVERIFY(index.keyHistory(QStringLiteral("never written")).isEmpty());
    // The oldest and newest writes held, whatever the insert order.
    QCOMPARE(index.oldestHlc(), quint64(10));
    QCOMPARE(index.newestHlc(), quint64(30));
    QCOMPARE(HistoryIndex().oldestHlc(), quint64(0));
}

void tst_HistoryIndex::changesListEveryKeyWrittenInTheInterval()
{
    HistoryIndex index;
    index.insert(QStringLiteral("a"), value(10, 1, "1"));
    index.insert(QStringLiteral("a"), value(20, 1, "2"));
    index.insert(QStringLiteral("b"), value(15, 1, "1"));
    index.insert(QStringLiteral("b"), tombstone(25, 1));
    index.insert(QStringLiteral("c"), value(40, 1, "1"));
    QVector<HistoryIndex::Change> changes = index.changes(15, 25);
    std::sort(changes.begin(), changes.end(), [](const auto &x, const auto &y) { return x.key < y.key; });
    QCOMPARE(changes.size(), 2); // c is written after the interval
    QCOMPARE(changes[0].key, QStringLiteral("a"));
    QVERIFY(same(changes[0].before, value(10, 1, "1")));
    QVERIFY(same(changes[0].after, value(20, 1, "2")));
    QCOMPARE(changes[1].key, QStringLiteral("b"));
    QVERIFY(same(changes[1].before, value(15, 1, "1")));
    QVERIFY(changes[1].after->tombstone);
    QVERIFY(index.changes(25, 15).isEmpty());
    QVERIFY(index.changes(20, 20).isEmpty());
    const QVector<HistoryIndex::Change> born = index.changes(30, 40);
    QCOMPARE(born.size(), 1);
    QVERIFY(!born[0].before);
}

void tst_HistoryIndex::windowStartForBytesKeepsTheNewestWritesThatFit()
{
    HistoryIndex index;
    for (quint64 t = 1; t <= 100; ++t)
        index.insert(QStringLiteral("k%1").arg(t % 10), value(t * 10, 1, "12345"));
    const qint64 perWrite = index.bytes() / 100;
    QCOMPARE(index.windowStartForBytes(index.bytes()), quint64(0));
    const quint64 start = index.windowStartForBytes(perWrite * 30);
    QCOMPARE(start, quint64(700 + 1)); // the 30 writes at 710 ... 1000 fit
    index.retain(start);
    // Each key keeps its state at the window start too.
    QCOMPARE(index.size(), 30 + 10);
}

void tst_HistoryIndex::keyOrderIsQStringOrder()
{
    // Answers come sorted by key through a sort that reads a few units at a
    // time: keys that share long prefixes, end inside a pass, hold NULs,
    // Latin-1, the last BMP unit and surrogate pairs sort as QString does.
    QRandomGenerator rng(m_seed);
    const QVector<QString> units{QStringLiteral("a"), QStringLiteral("b"), QString(QChar(0)), QStringLiteral("\u00e9"),
                                 QString(QChar(0xffff)), QStringLiteral("\U0001F600"), QStringLiteral("-")};
    const QString prefix = QStringLiteral("a shared prefix, longer than a pass:");
    QSet<QString> keys{QString()};
    while (keys.size() < 3000) {
        QString key = rng.bounded(3) == 0 ? prefix : QString();
        const int length = int(rng.bounded(12));
        for (int i = 0; i < length; ++i)
            key += units[int(rng.bounded(units.size()))];
        keys.insert(key);
    }
    HistoryIndex index;
    for (const QString &key : std::as_const(keys))
        index.insert(key, value(HybridClock::pack(1'700'000'000'000, 0), 1, "1"));
    QStringList expected(keys.cbegin(), keys.cend());
    std::sort(expected.begin(), expected.end());
    QStringList got;
    for (const HistoryIndex::KeyedEntry &e : index.asOf(~quint64(0)))
        got.append(e.key);
    QCOMPARE(got, expected);
    // A key added later takes its place too.
    index.insert(prefix + QStringLiteral("c"), value(HybridClock::pack(1'700'000'000'001, 0), 1, "2"));
    expected.insert(std::lower_bound(expected.begin(), expected.end(), prefix + QStringLiteral("c")) - expected.begin(),
                    prefix + QStringLiteral("c"));
    got.clear();
    for (const HistoryIndex::Change &c : index.changes(0, ~quint64(0)))
        got.append(c.key);
    QCOMPARE(got, expected);
}

void tst_HistoryIndex::randomWritesMatchTheModel()
{
    for (int round = 0; round < 40; ++round) {
        QRandomGenerator rng(m_seed + quint32(round));
        const int keys = 1 + int(rng.bounded(40));
        const int writers = 1 + int(rng.bounded(4));
        const int count = int(rng.bounded(2000));
        // Few distinct hlcs, so writers tie often.
        const qint64 baseMs = 1'700'000'000'000;
        const int spanMs = 1 + int(rng.bounded(300));
        Model model;
        QSet<QString> ids;
        QVector<Write> inserts;
        for (int i = 0; i < count; ++i) {
            Write w;
            w.key = QStringLiteral("key-%1").arg(rng.bounded(keys));
            const quint64 hlc = HybridClock::pack(baseMs + rng.bounded(spanMs), rng.bounded(3));
            const quint64 writer = 1 + rng.bounded(writers);
            const QString id = QStringLiteral("%1/%2/%3").arg(w.key).arg(hlc).arg(writer);
            if (ids.contains(id))
                continue;
            ids.insert(id);
            w.entry = rng.bounded(5) == 0 ? tombstone(hlc, writer) : value(hlc, writer, QByteArray::number(i));
            model.writes.append(w);
            inserts.append(w);
            if (rng.bounded(10) == 0)
                inserts.append(w); // delivered twice
        }
        std::shuffle(inserts.begin(), inserts.end(), rng);
        HistoryIndex index;
        qsizetype accepted = 0;
        for (const Write &w : std::as_const(inserts))
            accepted += index.insert(w.key, w.entry) ? 1 : 0;
        const QString where = QStringLiteral("seed %1 round %2").arg(m_seed).arg(round);
        QVERIFY2(accepted == model.writes.size(), qPrintable(where));
        QCOMPARE(index.size(), model.writes.size());

        // Instants: every write's hlc and its neighbours, and random ones.
        QVector<quint64> instants{0, HybridClock::pack(baseMs + spanMs + 1, 0)};
        for (int i = 0; i < 60 && !model.writes.isEmpty(); ++i) {
            const quint64 hlc = model.writes[int(rng.bounded(model.writes.size()))].entry.hlc;
            instants << hlc << hlc - 1 << hlc + 1 << HybridClock::pack(baseMs + rng.bounded(spanMs), rng.bounded(4));
        }

        auto check = [&](const HistoryIndex &idx, const Model &exact, const Model &full, quint64 windowStart,
                         const QString &when) {
            for (const QString &key : exact.keys()) {
                const QVector<Entry> expected = exact.keyHistory(key);
                const QVector<Entry> got = idx.keyHistory(key);
                bool equal = expected.size() == got.size();
                for (int i = 0; equal && i < got.size(); ++i)
                    equal = same(expected[i], got[i]);
                if (!equal)
                    QFAIL(qPrintable(QStringLiteral("%1 %2: history of %3 differs").arg(where, when, key)));
            }
            for (const quint64 t : std::as_const(instants)) {
                if (t < windowStart)
                    continue;
                const QVector<HistoryIndex::KeyedEntry> state = idx.asOf(t);
                if (toMap(state) != full.asOf(t))
                    QFAIL(qPrintable(QStringLiteral("%1 %2: as of %3 differs").arg(where, when).arg(t)));
                for (int i = 1; i < state.size(); ++i) {
                    if (!(state[i - 1].key < state[i].key))
                        QFAIL(qPrintable(QStringLiteral("%1 %2: as of %3 not sorted by key at %4").arg(where, when).arg(t).arg(i)));
                }
                // The snapshot: the same entries, each marked when its key
                // has a write after t, and every such key counted.
                const HistoryIndex::Snapshot snapshot = idx.snapshot(t);
                const QSet<QString> since = exact.keysWrittenIn(t, ~quint64(0));
                QCOMPARE(snapshot.entries.size(), state.size());
                QCOMPARE(snapshot.writtenSince.size(), state.size());
                QCOMPARE(snapshot.keysWrittenSince, since.size());
                for (int i = 0; i < state.size(); ++i) {
                    QCOMPARE(snapshot.entries[i].key, state[i].key);
                    QVERIFY(same(snapshot.entries[i].entry, state[i].entry));
                    QCOMPARE(snapshot.writtenSince[i], since.contains(state[i].key));
                }
            }
            for (int i = 0; i < 40; ++i) {
                quint64 from = instants[int(rng.bounded(instants.size()))];
                quint64 to = instants[int(rng.bounded(instants.size()))];
                if (from > to)
                    std::swap(from, to);
                if (from < windowStart)
                    continue;
                const QVector<HistoryIndex::Change> changes = idx.changes(from, to);
                QSet<QString> changed;
                for (const HistoryIndex::Change &c : changes) {
                    const QString what = QStringLiteral("%1 %2: diff (%3, %4] of %5").arg(where, when).arg(from).arg(to).arg(c.key);
                    QVERIFY2(!changed.contains(c.key), qPrintable(what + QStringLiteral(" listed twice")));
                    QVERIFY2(&c == changes.constData() || (&c - 1)->key < c.key, qPrintable(what + QStringLiteral(" out of key order")));
                    QVERIFY2(c.latest == exact.at(c.key, ~quint64(0))->hlc, qPrintable(what + QStringLiteral(": latest")));
                    changed.insert(c.key);
                    QVERIFY2(same(c.before, exact.at(c.key, from)),
                             qPrintable(what + QStringLiteral(": before %1, expected %2").arg(describe(c.before), describe(exact.at(c.key, from)))));
                    QVERIFY2(same(c.after, exact.at(c.key, to)), qPrintable(what + QStringLiteral(": after")));
                    QVERIFY2(visible(c.before) == visible(full.at(c.key, from)), qPrintable(what + QStringLiteral(": visible before")));
                    QVERIFY2(visible(c.after) == visible(full.at(c.key, to)), qPrintable(what + QStringLiteral(": visible after")));
                }
                QVERIFY2(changed == full.keysWrittenIn(from, to),
                         qPrintable(QStringLiteral("%1 %2: diff (%3, %4] lists other keys").arg(where, when).arg(from).arg(to)));
            }
        };
        check(index, model, model, 0, QStringLiteral("before retention"));
        if (QTest::currentTestFailed())
            return;

        // Retention, twice with a later window, as a store applies it.
        HistoryIndex retained = index;
        Model left = model;
        quint64 windowStart = 0;
        for (int step = 0; step < 2; ++step) {
            windowStart = qMax(windowStart, HybridClock::pack(baseMs + rng.bounded(spanMs + 1), rng.bounded(3)));
            const Model expected = left.retained(windowStart);
            QCOMPARE(retained.retain(windowStart), left.writes.size() - expected.writes.size());
            QCOMPARE(retained.size(), expected.writes.size());
            left = expected;
            check(retained, left, model, windowStart, QStringLiteral("after retention at %1").arg(windowStart));
            if (QTest::currentTestFailed())
                return;
        }
    }
}

void tst_HistoryIndex::lostWritesStayMarkedThroughRetention()
{
    HistoryIndex index;
    // d first: retention removes the key, and the others' ids move.
    QVERIFY(index.insert(QStringLiteral("d"), tombstone(3, 1)));
    QVERIFY(index.insert(QStringLiteral("a"), value(10, 1, "1")));
    QVERIFY(index.insert(QStringLiteral("a"), value(30, 1, "3")));
    QVERIFY(index.insert(QStringLiteral("a"), value(20, 2, "2"), true)); // arrived after 30
    QVERIFY(index.insert(QStringLiteral("b"), value(5, 2, "x"), true));
    QVERIFY(index.insert(QStringLiteral("b"), tombstone(8, 1)));
    QVERIFY(index.insert(QStringLiteral("b"), value(40, 1, "y")));
    // Delivered again, as lost or not: the first word stands.
    QVERIFY(!index.insert(QStringLiteral("a"), value(30, 1, "3"), true));
    QVERIFY(!index.insert(QStringLiteral("a"), value(20, 2, "2"), false));
    QCOMPARE(index.lostCount(), 2);
    QVector<bool> lost;
    QCOMPARE(index.keyHistory(QStringLiteral("a"), &lost).size(), 3);
    QCOMPARE(lost, (QVector<bool>{false, true, false}));
    QVERIFY(index.isLost(QStringLiteral("b"), value(5, 2, "x")));
    QVERIFY(!index.isLost(QStringLiteral("b"), value(40, 1, "y")));
    QVERIFY(!index.isLost(QStringLiteral("nope"), value(5, 2, "x")));
    int visited = 0, visitedLost = 0;
    index.forEach([&](const QString &, const Entry &, bool l) {
        ++visited;
        visitedLost += l ? 1 : 0;
    });
    QCOMPARE(visited, 7);
    QCOMPARE(visitedLost, 2);

    // From 25: d's tombstone, a@10, and b@5 and b@8 (b was deleted at 25)
    // go; a@20 is a's value at 25 and stays, still lost.
    QCOMPARE(index.retain(25), 4);
    QCOMPARE(index.keyCount(), 2);
    QCOMPARE(index.lostCount(), 1);
    QCOMPARE(index.keyHistory(QStringLiteral("a"), &lost).size(), 2);
    QCOMPARE(lost, (QVector<bool>{true, false}));
    QCOMPARE(index.keyHistory(QStringLiteral("b"), &lost).size(), 1);
    QCOMPARE(lost, (QVector<bool>{false}));
}

QTEST_APPLESS_MAIN(tst_HistoryIndex)
#include "tst_historyindex.moc"
