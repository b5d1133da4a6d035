#include "entrytable.h"
#include "wire.h"

#include <QHash>
#include <QRandomGenerator>
#include <QTest>

// EntryTable against a QHash oracle: every operation, growth past many
// powers of two, deletes that shift probe runs, copies that share records.

namespace {

QByteArray keyOf(quint32 n)
{
    // A few non-ASCII keys and an empty one among them.
    if (n == 0)
        return QByteArray();
    if (n % 7 == 0)
        return QStringLiteral("ключ-%1-鍵").arg(n).toUtf8();
    return "key-" + QByteArray::number(n);
}

Entry entryOf(QRandomGenerator &rng)
{
    Entry e;
    e.hlc = rng.generate64();
    e.writer = rng.generate64();
    e.tombstone = rng.bounded(5) == 0;
    if (!e.tombstone)
        e.value = QByteArray(int(rng.bounded(40)) + 1, char('a' + rng.bounded(26)));
    return e;
}

bool same(const EntryRef &ref, const Entry &e)
{
    return ref && ref.hlc() == e.hlc && ref.writer() == e.writer && ref.tombstone() == e.tombstone
        && ref.valueView() == QByteArrayView(e.value);
}

// The table holds exactly the oracle: every key found with its write, and
// iteration visits each key once.
void checkEqual(const EntryTable &table, const QHash<QByteArray, Entry> &oracle, const char *where)
{
    QVERIFY2(table.size() == oracle.size(), where);
    for (auto it = oracle.cbegin(); it != oracle.cend(); ++it)
        QVERIFY2(same(table.find(it.key()), it.value()), qPrintable(QStringLiteral("%1: key %2").arg(QLatin1String(where), QString::fromUtf8(it.key()))));
    QSet<QByteArray> seen;
    for (const EntryRef e : table) {
        const QByteArray key = e.utf8Key().toByteArray();
        QVERIFY2(!seen.contains(key), where);
        seen.insert(key);
        QVERIFY2(oracle.contains(key) && same(e, oracle.value(key)), where);
    }
    QVERIFY2(seen.size() == oracle.size(), where);
}

// Keys 0..n-1 with random writes, in both.
void fill(EntryTable &table, QHash<QByteArray, Entry> &oracle, quint32 n, QRandomGenerator &rng)
{
    for (quint32 i = 0; i < n; ++i) {
        const Entry e = entryOf(rng);
        table.store(table.locate(keyOf(i)), keyOf(i), e);
        oracle.insert(keyOf(i), e);
    }
}

} // namespace

class tst_EntryTable : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void emptyTable();
    void storeFindReplace();
    void matchesAHashUnderRandomOperations();
    void copiesShareRecordsAndStayUnchanged();
    void removeIfKeepsTheRest();
    void utf8KeyMatchesToUtf8();
    void eachTableHasItsOwnOrder();
    void theLayoutVersionChangesWhenSlotsMove();
};

void tst_EntryTable::emptyTable()
{
    EntryTable t;
    QCOMPARE(t.size(), 0);
    QVERIFY(!t.find("x"));
    QVERIFY(!t.remove("x"));
    QVERIFY(t.begin() == t.end());
    EntryTable copy(t);
    QVERIFY(copy.isEmpty());
    QCOMPARE(t.removeIf([](const EntryRef &) { return true; }), 0);
}

void tst_EntryTable::storeFindReplace()
{
    EntryTable t;
    const Entry first{QByteArray("\"one\""), 10, 1, false};
    auto pos = t.locate("k");
    QVERIFY(!pos.found);
    t.store(pos, "k", first);
    QVERIFY(same(t.find("k"), first));
    QCOMPARE(t.find("k").key(), QStringLiteral("k"));
    // A key may start with U+FEFF; it is not a byte order mark to drop.
    const QString bom = QStringLiteral("\uFEFFk");
    t.store(t.locate(EntryTable::Utf8Key(bom).view()), EntryTable::Utf8Key(bom).view(), first);
    QCOMPARE(t.find(EntryTable::Utf8Key(bom).view()).key(), bom);
    t.remove(EntryTable::Utf8Key(bom).view());

    const Entry gone{QByteArray(), 11, 2, true};
    pos = t.locate("k");
    QVERIFY(pos.found);
    t.store(pos, "k", gone);
    QCOMPARE(t.size(), 1);
    QVERIFY(same(t.find("k"), gone));
    QVERIFY(t.find("k").valueView().isEmpty());

    QVERIFY(t.remove("k"));
    QVERIFY(!t.find("k"));
    QCOMPARE(t.size(), 0);
}

void tst_EntryTable::matchesAHashUnderRandomOperations()
{
    const quint32 seed = QRandomGenerator::global()->generate();
    qInfo("seed %u", seed);
    QRandomGenerator rng(seed);
    for (int round = 0; round < 4; ++round) {
        EntryTable table;
        QHash<QByteArray, Entry> oracle;
        // Key ranges from dense (many replaces, long probe runs after
        // deletes) to sparse (growth through several sizes).
        const quint32 keySpace = quint32(50) << (round * 3);
        for (int op = 0; op < 20000; ++op) {
            const QByteArray key = keyOf(rng.bounded(keySpace));
            const quint32 kind = rng.bounded(10);
            if (kind < 6) {
                const Entry e = entryOf(rng);
                table.store(table.locate(key), key, e);
                oracle.insert(key, e);
            } else if (kind < 9) {
                QCOMPARE(table.remove(key), oracle.remove(key));
            } else {
                QVERIFY(table.find(key) ? oracle.contains(key) : !oracle.contains(key));
            }
        }
        checkEqual(table, oracle, "after random operations");
        if (QTest::currentTestFailed())
            QFAIL(qPrintable(QStringLiteral("seed %1 round %2").arg(seed).arg(round)));
    }
}

void tst_EntryTable::copiesShareRecordsAndStayUnchanged()
{
    EntryTable table;
    QHash<QByteArray, Entry> oracle;
    QRandomGenerator rng(7);
    fill(table, oracle, 3000, rng);
    const EntryTable snapshot(table);
    // A record is shared, not copied: the same bytes at the same address.
    // (As pointers: QCOMPARE on two char pointers would compare C strings.)
    QVERIFY(static_cast<const void *>(snapshot.find(keyOf(5)).valueView().data())
            == static_cast<const void *>(table.find(keyOf(5)).valueView().data()));

    // Changing the original (replaces, deletes, growth) leaves the copy as it was.
    for (quint32 i = 0; i < 3000; i += 2)
        table.store(table.locate(keyOf(i)), keyOf(i), entryOf(rng));
    for (quint32 i = 1; i < 3000; i += 4)
        table.remove(keyOf(i));
    for (quint32 i = 3000; i < 9000; ++i)
        table.store(table.locate(keyOf(i)), keyOf(i), entryOf(rng));
    checkEqual(snapshot, oracle, "the snapshot");

    // A ref from the snapshot stays valid after the original drops the key.
    const EntryRef kept = snapshot.find(keyOf(1));
    QVERIFY(!table.find(keyOf(1)));
    QVERIFY(same(kept, oracle.value(keyOf(1))));

    // Records inserted from another table, then the source goes away.
    EntryTable candidates;
    {
        EntryTable source(snapshot);
        for (const EntryRef e : source)
            candidates.insert(e);
    }
    checkEqual(candidates, oracle, "inserted refs");

    // Assignment and move.
    EntryTable assigned;
    assigned = candidates;
    EntryTable moved(std::move(candidates));
    QVERIFY(candidates.isEmpty());
    checkEqual(assigned, oracle, "assigned");
    checkEqual(moved, oracle, "moved");
    moved = std::move(assigned);
    checkEqual(moved, oracle, "move-assigned");
}

void tst_EntryTable::removeIfKeepsTheRest()
{
    EntryTable table;
    QHash<QByteArray, Entry> oracle;
    QRandomGenerator rng(11);
    fill(table, oracle, 5000, rng);
    const EntryTable before(table);
    qsizetype expected = 0;
    for (auto it = oracle.begin(); it != oracle.end();) {
        if (it->tombstone) {
            it = oracle.erase(it);
            ++expected;
        } else {
            ++it;
        }
    }
    QVERIFY(expected > 0);
    QCOMPARE(table.removeIf([](const EntryRef &e) { return e.tombstone(); }), expected);
    checkEqual(table, oracle, "after removeIf");
    QCOMPARE(before.size(), 5000);
}

void tst_EntryTable::utf8KeyMatchesToUtf8()
{
    const QString keys[] = {QString(), QStringLiteral("plain"), QStringLiteral("ключ"), QStringLiteral("鍵/😀"),
                            QStringLiteral("mixed-é-end"), QString(300, QChar(u'ж'))};
    for (const QString &key : keys)
        QCOMPARE(EntryTable::Utf8Key(key).view(), QByteArrayView(key.toUtf8()));
    // A lone surrogate becomes U+FFFD, as Wire::appendEntry sends it (toUtf8
    // would write '?'): the stored key is the one peers receive.
    QCOMPARE(EntryTable::Utf8Key(QStringLiteral("a") + QChar(0xD800)).view(), QByteArrayView("a\xEF\xBF\xBD"));
    QByteArray wire;
    Wire::appendEntry(wire, QString(QChar(0xD800)), Entry{QByteArray("1"), 1, 1, false});
    QCOMPARE(QByteArrayView(wire).sliced(Wire::EntryFixedSize, 3), QByteArrayView("\xEF\xBF\xBD"));
}

void tst_EntryTable::eachTableHasItsOwnOrder()
{
    // Filling a table in another one's slot order must not follow that
    // order: with a shared hash seed it packs keys into long probe runs
    // (a 1,000,000-key sync in one process took 35 s). Two tables of the
    // same keys iterate in different orders; a copy keeps its source's.
    EntryTable a, b;
    for (quint32 i = 0; i < 1000; ++i) {
        a.store(a.locate(keyOf(i)), keyOf(i), Entry{QByteArray("1"), i, 1, false});
        b.store(b.locate(keyOf(i)), keyOf(i), Entry{QByteArray("1"), i, 1, false});
    }
    auto order = [](const EntryTable &t) {
        QList<QByteArray> keys;
        for (const EntryRef e : t)
            keys.append(e.utf8Key().toByteArray());
        return keys;
    };
    QVERIFY(order(a) != order(b));
    QCOMPARE(order(EntryTable(a)), order(a));
}

void tst_EntryTable::theLayoutVersionChangesWhenSlotsMove()
{
    EntryTable t;
    const Entry e{QByteArray("1"), 1, 1, false};
    t.store(t.locate("a"), "a", e);
    quint64 v = t.layoutVersion();
    // A new write of a key, or a new key with room to spare: no slot moves.
    t.store(t.locate("a"), "a", Entry{QByteArray("2"), 2, 1, false});
    t.store(t.locate("b"), "b", e);
    QCOMPARE(t.layoutVersion(), v);
    // Growth rehashes.
    const qsizetype capacity = t.capacity();
    for (int i = 0; t.capacity() == capacity; ++i)
        t.store(t.locate(QByteArray::number(i)), QByteArray::number(i), e);
    QVERIFY(t.layoutVersion() != v);
    v = t.layoutVersion();
    QVERIFY(t.remove("a"));
    QVERIFY(t.layoutVersion() != v);
    v = t.layoutVersion();
    QVERIFY(t.removeIf([](const EntryRef &r) { return r.utf8Key() == QByteArrayView("b"); }) == 1);
    QVERIFY(t.layoutVersion() != v);
    // Another table moved in: never the version the old contents had.
    v = t.layoutVersion();
    EntryTable other;
    other.store(other.locate("z"), "z", e);
    const quint64 otherVersion = other.layoutVersion();
    t = std::move(other);
    QVERIFY(t.layoutVersion() != v && t.layoutVersion() != otherVersion);
    // The slots hold what iteration visits.
    int seen = 0;
    for (qsizetype i = 0; i < t.capacity(); ++i)
        seen += t.slot(i) ? 1 : 0;
    QCOMPARE(seen, int(t.size()));
}

QTEST_APPLESS_MAIN(tst_EntryTable)
#include "tst_entrytable.moc"
