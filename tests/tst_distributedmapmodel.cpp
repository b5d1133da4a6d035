// DistributedMapModel, the library's item model, over a map fed by a real
// relay on loopback: bursts of remote sets and deletes, and a resync after
// a disconnect, sorted by each column, all under QAbstractItemModelTester.
// A seeded run: the seed is printed; DISTMAP_SEED=S replays it.
#include "displayformat.h"
#include "distributedmapmodel.h"
#include "hybridclock.h"
#include "peerfixture.h"
#include "relay.h"
#include "sortkey.h"
#include "wire.h"

#include <QAbstractItemModelTester>
#include <QDateTime>
#include <QRandomGenerator>
#include <QSignalSpy>
#include <QTest>

namespace {

constexpr int Timeout = 30000;
const QString Uri = QStringLiteral("/model");

using NameOf = std::function<QString(quint64)>;

QStringList shownKeys(const DistributedMapModel &model)
{
    QStringList keys;
    for (int row = 0; row < model.rowCount(); ++row)
        keys.append(model.keyAt(row));
    return keys;
}

// The map's live keys in the model's order, worked out from the map's own
// entries: by the sort column, ties by key, descending as the reverse.
QStringList expectedOrder(const DistributedMapModel &model, const DistributedMap &map, const NameOf &nameOf)
{
    const MapState &state = DistributedMapPrivate::get(&map)->state();
    const auto sortKey = [&](const QString &key) {
        const EntryRef e = state.find(key);
        switch (model.sortColumn()) {
        case DistributedMapModel::ValueColumn:
            return SortKey::ofValue(e.valueView());
        case DistributedMapModel::WriterColumn:
            return SortKey::ofName(nameOf(e.writer()).toUtf8());
        case DistributedMapModel::WhenColumn:
            return SortKey::ofClock(e.hlc());
        }
        return SortKey();
    };
    QStringList keys = map.keys();
    std::sort(keys.begin(), keys.end(), [&](const QString &a, const QString &b) {
        const int c = SortKey::compare(sortKey(a), sortKey(b));
        return c != 0 ? c < 0 : a < b;
    });
    if (model.sortOrder() == Qt::DescendingOrder)
        std::reverse(keys.begin(), keys.end());
    return keys;
}

// The model's rows, which must be the map's live keys in the model's
// order, each found again by rowOf().
bool rowsMatchMap(const DistributedMapModel &model, const DistributedMap &map,
                  const NameOf &nameOf = &DisplayFormat::shortPeerId)
{
    const QStringList keys = expectedOrder(model, map, nameOf);
    if (shownKeys(model) != keys)
        return false;
    for (int row = 0; row < keys.size(); ++row) {
        if (model.rowOf(keys.at(row)) != row)
            return false;
    }
    return true;
}

// A writing peer and a viewing peer on one relay, and the viewer's model
// (5 ms batches) under QAbstractItemModelTester.
struct WatchedMap
{
    explicit WatchedMap(const QUrl &relay)
        : writer(relay, Uri, QStringLiteral("writer"))
        , viewer(relay, Uri, QStringLiteral("viewer"))
        , model(viewer.map.get())
        , tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest)
    {
        model.setBatchInterval(5);
    }
    bool isReady() const { return writer->isReady() && viewer->isReady(); }

    TestPeer writer;
    TestPeer viewer;
    DistributedMapModel model;
    QAbstractItemModelTester tester;
};

Wire::DecodedEntry entry(const char *key, const char *json, quint64 hlc, quint64 writer)
{
    return {QString::fromLatin1(key), Entry{QByteArray(json), hlc, writer, false}};
}

} // namespace

class tst_DistributedMapModel : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();
    void followsRemoteBurstsDeletesAndAResync_data();
    void followsRemoteBurstsDeletesAndAResync();
    void rolesDescribeEachKeysWrite();
    void setDataWritesToTheMap();
    void sortsByEachColumnInBothOrders_data();
    void sortsByEachColumnInBothOrders();
    void aRemoteUpdateMovesItsRow_data();
    void aRemoteUpdateMovesItsRow();
    void remoteInsertsAndDeletesKeepTheWriterOrder();
    void filterAndSortCombine();
    void aLargeMapFillsItsRowsOverSeveralTurns();

private:
    std::unique_ptr<Relay> m_relay;
};

void tst_DistributedMapModel::init()
{
    m_relay = std::make_unique<Relay>();
    QVERIFY(m_relay->listen(QHostAddress::LocalHost, 0));
}

void tst_DistributedMapModel::cleanup()
{
    m_relay.reset();
}

void tst_DistributedMapModel::followsRemoteBurstsDeletesAndAResync_data()
{
    QTest::addColumn<int>("column");
    QTest::addColumn<Qt::SortOrder>("order");
    QTest::newRow("sorted by key") << int(DistributedMapModel::KeyColumn) << Qt::AscendingOrder;
    QTest::newRow("sorted by value, descending") << int(DistributedMapModel::ValueColumn) << Qt::DescendingOrder;
    QTest::newRow("sorted by writer") << int(DistributedMapModel::WriterColumn) << Qt::AscendingOrder;
    QTest::newRow("sorted by time, newest first") << int(DistributedMapModel::WhenColumn) << Qt::DescendingOrder;
}

void tst_DistributedMapModel::followsRemoteBurstsDeletesAndAResync()
{
    QFETCH(int, column);
    QFETCH(Qt::SortOrder, order);
    quint32 seed = quint32(qEnvironmentVariableIntValue("DISTMAP_SEED"));
    if (!seed)
        seed = QRandomGenerator::global()->bounded(1u, 1u << 30);
    qInfo("seed %u (replay with DISTMAP_SEED=%u)", seed, seed);
    QRandomGenerator rng(seed);

    WatchedMap watched(m_relay->url());
    QTRY_VERIFY_WITH_TIMEOUT(watched.isReady(), Timeout);
    TestPeer &writer = watched.writer;
    TestPeer &viewer = watched.viewer;
    DistributedMapModel &model = watched.model;
    model.sort(column, order);
    QSignalSpy resets(&model, &QAbstractItemModel::modelAboutToBeReset);
    QSignalSpy inserts(&model, &QAbstractItemModel::rowsInserted);
    QSignalSpy removes(&model, &QAbstractItemModel::rowsRemoved);
    // Persistent indexes must follow their keys through everything below:
    // one key never written again, one rewritten (so moved) every round.
    writer->set(QStringLiteral("anchor"), 0);
    writer->set(QStringLiteral("mover"), 0);
    QTRY_VERIFY_WITH_TIMEOUT(model.rowOf(QStringLiteral("anchor")) >= 0 && model.rowOf(QStringLiteral("mover")) >= 0,
                             Timeout);
    const QPersistentModelIndex anchor(model.indexOf(QStringLiteral("anchor")));
    const QPersistentModelIndex mover(model.indexOf(QStringLiteral("mover"), DistributedMapModel::ValueColumn));

    for (int round = 0; round < 6; ++round) {
        // A burst: new keys, overwrites and deletes in one event-loop pass,
        // a tenth of them the viewer's own (another writer, new values).
        const int writes = 50 + int(rng.bounded(2000));
        for (int i = 0; i < writes; ++i) {
            const QString key = QStringLiteral("k%1").arg(rng.bounded(3000));
            DistributedMap *by = rng.bounded(10) == 0 ? viewer.map.get() : writer.map.get();
            if (rng.bounded(100) < 25)
                by->remove(key);
            else
                by->set(key, int(rng.bounded(1000000)));
        }
        writer->set(QStringLiteral("mover"), int(rng.bounded(1000000)));
        QTRY_VERIFY_WITH_TIMEOUT(viewer->size() == writer->size() && model.pendingCount() == 0
                                     && rowsMatchMap(model, *viewer.map),
                                 Timeout);
        QCOMPARE(anchor.data(DistributedMapModel::KeyRole).toString(), QStringLiteral("anchor"));
        QCOMPARE(mover.data(DistributedMapModel::KeyRole).toString(), QStringLiteral("mover"));
        QCOMPARE(mover.column(), int(DistributedMapModel::ValueColumn));
    }

    // Away while the writer changes a lot, then back: the resync's
    // changes arrive as batches too.
    viewer.connection->close();
    QTRY_VERIFY_WITH_TIMEOUT(viewer->syncStatus().state == DistributedMap::SyncStatus::Offline, Timeout);
    for (int i = 0; i < 3000; ++i) {
        const QString key = QStringLiteral("k%1").arg(rng.bounded(4000));
        if (rng.bounded(100) < 40)
            writer->remove(key);
        else
            writer->set(key, QStringLiteral("v%1").arg(i));
    }
    viewer.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(viewer->syncStatus().state == DistributedMap::SyncStatus::Synced
                                 && viewer->size() == writer->size() && model.pendingCount() == 0
                                 && rowsMatchMap(model, *viewer.map),
                             Timeout);
    QCOMPARE(anchor.data(DistributedMapModel::KeyRole).toString(), QStringLiteral("anchor"));
    QCOMPARE(mover.data(DistributedMapModel::KeyRole).toString(), QStringLiteral("mover"));
    QCOMPARE(resets.size(), 0); // precise signals only, never a reset
    QVERIFY(inserts.size() > 0);
    QVERIFY(removes.size() > 0);
}

void tst_DistributedMapModel::rolesDescribeEachKeysWrite()
{
    TestPeer writer(m_relay->url(), Uri, QStringLiteral("writer"));
    TestPeer viewer(m_relay->url(), Uri, QStringLiteral("viewer"));
    QTRY_VERIFY_WITH_TIMEOUT(writer->isReady() && viewer->isReady(), Timeout);
    DistributedMapModel model(viewer.map.get());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setWriterNameResolver([&](quint64 id) { return id == writer.id() ? QStringLiteral("Writer") : QString(); });

    const qint64 before = QDateTime::currentMSecsSinceEpoch();
    writer->set(QStringLiteral("remote"), QJsonObject{{QStringLiteral("n"), 1}});
    viewer->set(QStringLiteral("local"), QStringLiteral("mine"));
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 2, Timeout);

    const QModelIndex remote = model.indexOf(QStringLiteral("remote"));
    const QModelIndex local = model.indexOf(QStringLiteral("local"));
    QCOMPARE(remote.data(DistributedMapModel::KeyRole).toString(), QStringLiteral("remote"));
    QCOMPARE(remote.data(DistributedMapModel::ValueRole).toMap().value(QStringLiteral("n")).toInt(), 1);
    QCOMPARE(remote.data(DistributedMapModel::JsonTextRole).toByteArray(), QByteArray("{\"n\":1}"));
    QCOMPARE(remote.data(DistributedMapModel::WriterIdRole).toULongLong(), writer.id());
    QCOMPARE(remote.data(DistributedMapModel::WriterNameRole).toString(), QStringLiteral("Writer"));
    QCOMPARE(model.index(remote.row(), DistributedMapModel::WriterColumn).data().toString(), QStringLiteral("Writer"));
    QCOMPARE(remote.data(DistributedMapModel::LocalRole).toBool(), false);
    QCOMPARE(local.data(DistributedMapModel::LocalRole).toBool(), true);
    QCOMPARE(local.data(DistributedMapModel::ValueRole).toString(), QStringLiteral("mine"));
    const QDateTime when = remote.data(DistributedMapModel::TimeRole).toDateTime();
    QVERIFY(when.isValid());
    // The write's clock follows the relay's; on loopback within a second of ours.
    QVERIFY(qAbs(when.toMSecsSinceEpoch() - before) < 1000);
    QCOMPARE(model.roleNames().value(DistributedMapModel::ValueRole), QByteArray("value"));
}

void tst_DistributedMapModel::setDataWritesToTheMap()
{
    TestPeer writer(m_relay->url(), Uri, QStringLiteral("writer"));
    TestPeer viewer(m_relay->url(), Uri, QStringLiteral("viewer"));
    QTRY_VERIFY_WITH_TIMEOUT(writer->isReady() && viewer->isReady(), Timeout);
    DistributedMapModel model(viewer.map.get());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    writer->set(QStringLiteral("todo"), QStringLiteral("buy milk"));
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 1, Timeout);
    const QModelIndex row = model.index(0, DistributedMapModel::ValueColumn);
    QVERIFY(model.flags(row) & Qt::ItemIsEditable);
    QVERIFY(!(model.flags(model.index(0, DistributedMapModel::KeyColumn)) & Qt::ItemIsEditable));

    QVERIFY(model.setData(row, QVariantMap{{QStringLiteral("done"), true}}, DistributedMapModel::ValueRole));
    QTRY_VERIFY_WITH_TIMEOUT(writer->value<QVariantMap>(QStringLiteral("todo")).value(QStringLiteral("done")).toBool(),
                             Timeout);
    QVERIFY(model.setData(row, QStringLiteral("[1,2]"), Qt::EditRole)); // JSON text
    QTRY_COMPARE_WITH_TIMEOUT(writer->value(QStringLiteral("todo")).toArray().size(), 2, Timeout);
    QVERIFY(!model.setData(row, QStringLiteral("not json"), Qt::EditRole));
    QVERIFY(!model.setData(row, QVariant(QDateTime::currentDateTime()), DistributedMapModel::ValueRole));
    QTRY_VERIFY_WITH_TIMEOUT(row.data(DistributedMapModel::LocalRole).toBool(), Timeout);
}

void tst_DistributedMapModel::sortsByEachColumnInBothOrders_data()
{
    QTest::addColumn<int>("column");
    QTest::addColumn<Qt::SortOrder>("order");
    QTest::addColumn<QString>("keys");
    QTest::newRow("by key, descending") << int(DistributedMapModel::KeyColumn) << Qt::DescendingOrder << "jihgfedcba";
    // null, true, 9, 10 (b and i tie: by key), "Pear", "pear" (a and j), [1], {}
    QTest::newRow("by value: JSON type, then content, ties by key")
        << int(DistributedMapModel::ValueColumn) << Qt::AscendingOrder << "dgcbifajhe";
    QTest::newRow("by value, descending: the reverse") << int(DistributedMapModel::ValueColumn) << Qt::DescendingOrder
                                                       << "ehjafibcgd";
    // Cy before ann before bob: by code point.
    QTest::newRow("by writer's name, ties by key") << int(DistributedMapModel::WriterColumn) << Qt::AscendingOrder
                                                   << "cfibdgjaeh";
    QTest::newRow("by writer's name, descending") << int(DistributedMapModel::WriterColumn) << Qt::DescendingOrder
                                                  << "heajgdbifc";
    QTest::newRow("by time, ties by key") << int(DistributedMapModel::WhenColumn) << Qt::AscendingOrder << "hibecdagfj";
    QTest::newRow("by time, newest first") << int(DistributedMapModel::WhenColumn) << Qt::DescendingOrder << "jfgadcebih";
}

void tst_DistributedMapModel::sortsByEachColumnInBothOrders()
{
    QFETCH(int, column);
    QFETCH(Qt::SortOrder, order);
    QFETCH(QString, keys);
    // Known writes, loaded as a store would: values of every JSON type,
    // three writers, clocks with ties.
    DistributedMap map(nullptr, Uri);
    DistributedMapPrivate::get(&map)->load({
        entry("a", "\"pear\"", 300, 2), entry("b", "10", 100, 1), entry("c", "9", 200, 3),
        entry("d", "null", 200, 1), entry("e", "{\"x\":1}", 100, 2), entry("f", "\"Pear\"", 400, 3),
        entry("g", "true", 300, 1), entry("h", "[1]", 50, 2), entry("i", "1e1", 50, 3),
        entry("j", "\"pear\"", 400, 1),
    });
    DistributedMapModel model(&map);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    const QStringList names{{}, QStringLiteral("ann"), QStringLiteral("bob"), QStringLiteral("Cy")};
    model.setWriterNameResolver([&](quint64 id) { return names.value(int(id)); });
    QCOMPARE(shownKeys(model).join(QString()), QStringLiteral("abcdefghij"));
    const QPersistentModelIndex e(model.indexOf(QStringLiteral("e"), DistributedMapModel::WhenColumn));
    QSignalSpy resets(&model, &QAbstractItemModel::modelAboutToBeReset);

    model.sort(column, order);
    QCOMPARE(model.sortColumn(), column);
    QCOMPARE(model.sortOrder(), order);
    QCOMPARE(shownKeys(model).join(QString()), keys);
    for (int row = 0; row < keys.size(); ++row)
        QCOMPARE(model.rowOf(keys.mid(row, 1)), row);
    QCOMPARE(model.indexOf(QStringLiteral("e")).row(), keys.indexOf(QLatin1Char('e')));
    QCOMPARE(e.row(), keys.indexOf(QLatin1Char('e')));
    QCOMPARE(e.column(), int(DistributedMapModel::WhenColumn));
    QCOMPARE(resets.size(), 0);

    // Back to the key: the first order again.
    model.sort(DistributedMapModel::KeyColumn, Qt::AscendingOrder);
    QCOMPARE(shownKeys(model).join(QString()), QStringLiteral("abcdefghij"));
    QCOMPARE(e.row(), 4);

    // From another column's order (ties then compare keys): the same.
    const int other = column == DistributedMapModel::ValueColumn ? DistributedMapModel::WriterColumn
                                                                  : DistributedMapModel::ValueColumn;
    model.sort(other, Qt::DescendingOrder);
    model.sort(column, order);
    QCOMPARE(shownKeys(model).join(QString()), keys);
    QCOMPARE(e.row(), keys.indexOf(QLatin1Char('e')));
}

void tst_DistributedMapModel::aRemoteUpdateMovesItsRow_data()
{
    QTest::addColumn<int>("column");
    QTest::addColumn<Qt::SortOrder>("order");
    QTest::addColumn<int>("rowAfter");
    QTest::newRow("sorted by value, a bigger value moves the row down")
        << int(DistributedMapModel::ValueColumn) << Qt::AscendingOrder << 9;
    QTest::newRow("sorted by time, newest first, a new write moves the row to the top")
        << int(DistributedMapModel::WhenColumn) << Qt::DescendingOrder << 0;
}

void tst_DistributedMapModel::aRemoteUpdateMovesItsRow()
{
    QFETCH(int, column);
    QFETCH(Qt::SortOrder, order);
    QFETCH(int, rowAfter);
    WatchedMap watched(m_relay->url());
    QTRY_VERIFY_WITH_TIMEOUT(watched.isReady(), Timeout);
    TestPeer &writer = watched.writer;
    DistributedMapModel &model = watched.model;
    for (int i = 0; i < 10; ++i)
        writer->set(QStringLiteral("k%1").arg(i), i);
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 10, Timeout);
    model.sort(column, order);
    QVERIFY(rowsMatchMap(model, *watched.viewer.map));
    const QPersistentModelIndex moved(model.indexOf(QStringLiteral("k3"), DistributedMapModel::ValueColumn));
    const QPersistentModelIndex still(model.indexOf(QStringLiteral("k5")));
    QVERIFY(moved.row() != rowAfter);
    QSignalSpy moves(&model, &QAbstractItemModel::rowsMoved);
    QSignalSpy resets(&model, &QAbstractItemModel::modelAboutToBeReset);
    QSignalSpy layouts(&model, &QAbstractItemModel::layoutChanged);

    writer->set(QStringLiteral("k3"), 100);
    QTRY_COMPARE_WITH_TIMEOUT(model.keyAt(rowAfter), QStringLiteral("k3"), Timeout);
    QVERIFY(rowsMatchMap(model, *watched.viewer.map));
    QCOMPARE(model.index(rowAfter, DistributedMapModel::ValueColumn).data().toString(), QStringLiteral("100"));
    // One precise move; the selection follows it.
    QCOMPARE(moves.size(), 1);
    QCOMPARE(layouts.size(), 0);
    QCOMPARE(resets.size(), 0);
    QCOMPARE(moved.row(), rowAfter);
    QCOMPARE(moved.column(), int(DistributedMapModel::ValueColumn));
    QCOMPARE(moved.data(DistributedMapModel::KeyRole).toString(), QStringLiteral("k3"));
    QCOMPARE(still.data(DistributedMapModel::KeyRole).toString(), QStringLiteral("k5"));
}

void tst_DistributedMapModel::remoteInsertsAndDeletesKeepTheWriterOrder()
{
    TestPeer ann(m_relay->url(), Uri, QStringLiteral("ann"));
    TestPeer bob(m_relay->url(), Uri, QStringLiteral("bob"));
    TestPeer viewer(m_relay->url(), Uri, QStringLiteral("viewer"));
    QTRY_VERIFY_WITH_TIMEOUT(ann->isReady() && bob->isReady() && viewer->isReady(), Timeout);
    const NameOf nameOf = [&](quint64 id) {
        return id == ann.id() ? QStringLiteral("ann") : id == bob.id() ? QStringLiteral("bob") : QStringLiteral("?");
    };
    DistributedMapModel model(viewer.map.get());
    model.setBatchInterval(5);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setWriterNameResolver(nameOf);
    model.sort(DistributedMapModel::WriterColumn, Qt::AscendingOrder);
    // The writers' keys interleave so that the writer order is not the key order.
    ann->set(QStringLiteral("z1"), 1);
    ann->set(QStringLiteral("z2"), 1);
    bob->set(QStringLiteral("a1"), 1);
    bob->set(QStringLiteral("a2"), 1);
    QTRY_COMPARE_WITH_TIMEOUT(shownKeys(model), (QStringList{"z1", "z2", "a1", "a2"}), Timeout);
    QVERIFY(rowsMatchMap(model, *viewer.map, nameOf));
    const QPersistentModelIndex a2(model.indexOf(QStringLiteral("a2")));
    QSignalSpy inserts(&model, &QAbstractItemModel::rowsInserted);
    QSignalSpy removes(&model, &QAbstractItemModel::rowsRemoved);
    QSignalSpy moves(&model, &QAbstractItemModel::rowsMoved);
    QSignalSpy resets(&model, &QAbstractItemModel::modelAboutToBeReset);

    bob->set(QStringLiteral("m"), 1); // among bob's rows, after a2
    QTRY_COMPARE_WITH_TIMEOUT(shownKeys(model), (QStringList{"z1", "z2", "a1", "a2", "m"}), Timeout);
    QCOMPARE(inserts.size(), 1);
    QCOMPARE(inserts.first().at(1).toInt(), 4);

    ann->remove(QStringLiteral("z1"));
    QTRY_COMPARE_WITH_TIMEOUT(shownKeys(model), (QStringList{"z2", "a1", "a2", "m"}), Timeout);
    QCOMPARE(removes.size(), 1);
    QCOMPARE(removes.first().at(1).toInt(), 0);
    QCOMPARE(a2.row(), 2);

    bob->set(QStringLiteral("z2"), 2); // now bob's: it moves to his rows
    QTRY_COMPARE_WITH_TIMEOUT(shownKeys(model), (QStringList{"a1", "a2", "m", "z2"}), Timeout);
    QCOMPARE(moves.size(), 1);
    QCOMPARE(a2.row(), 1);
    QVERIFY(rowsMatchMap(model, *viewer.map, nameOf));
    QCOMPARE(resets.size(), 0);
}

void tst_DistributedMapModel::filterAndSortCombine()
{
    WatchedMap watched(m_relay->url());
    QTRY_VERIFY_WITH_TIMEOUT(watched.isReady(), Timeout);
    TestPeer &writer = watched.writer;
    DistributedMapModel &model = watched.model;
    writer->set(QStringLiteral("fruit:1"), QStringLiteral("pear"));
    writer->set(QStringLiteral("fruit:2"), QStringLiteral("apple"));
    writer->set(QStringLiteral("fruit:3"), QStringLiteral("banana"));
    writer->set(QStringLiteral("veg:1"), QStringLiteral("aubergine"));
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 4, Timeout);

    // Filter then sort, and sort then filter: the same rows in the same order.
    model.setFilterText(QStringLiteral("FRUIT"));
    model.sort(DistributedMapModel::ValueColumn, Qt::AscendingOrder);
    QCOMPARE(shownKeys(model), (QStringList{"fruit:2", "fruit:3", "fruit:1"}));
    model.setFilterText(QString());
    QCOMPARE(shownKeys(model), (QStringList{"fruit:2", "veg:1", "fruit:3", "fruit:1"}));
    model.setFilterText(QStringLiteral("fruit"));
    QCOMPARE(shownKeys(model), (QStringList{"fruit:2", "fruit:3", "fruit:1"}));

    // Remote changes: a new match lands in its place, a changed value
    // moves, a key that stops matching goes.
    writer->set(QStringLiteral("fruit:4"), QStringLiteral("cherry"));
    writer->set(QStringLiteral("veg:2"), QStringLiteral("artichoke")); // filtered out
    QTRY_COMPARE_WITH_TIMEOUT(shownKeys(model), (QStringList{"fruit:2", "fruit:3", "fruit:4", "fruit:1"}), Timeout);
    writer->set(QStringLiteral("fruit:2"), QStringLiteral("quince"));
    QTRY_COMPARE_WITH_TIMEOUT(shownKeys(model), (QStringList{"fruit:3", "fruit:4", "fruit:1", "fruit:2"}), Timeout);
    model.setFilterText(QStringLiteral("e")); // key or value: pear, cherry, quince, aubergine, artichoke
    QCOMPARE(shownKeys(model), (QStringList{"veg:2", "veg:1", "fruit:4", "fruit:1", "fruit:2"}));
    writer->set(QStringLiteral("fruit:4"), QStringLiteral("fig"));
    QTRY_COMPARE_WITH_TIMEOUT(shownKeys(model), (QStringList{"veg:2", "veg:1", "fruit:1", "fruit:2"}), Timeout);
}

void tst_DistributedMapModel::aLargeMapFillsItsRowsOverSeveralTurns()
{
    // The viewer holds 120,000 keys before it connects, as a store would
    // have loaded them; a model over it must not sort them all in one go.
    const int keys = 120000;
    TestPeer viewer(m_relay->url(), Uri, QStringLiteral("viewer"), false);
    QVector<Wire::DecodedEntry> entries;
    entries.reserve(keys);
    const quint64 hlc = HybridClock::pack(QDateTime::currentMSecsSinceEpoch() - 60000, 0);
    for (int i = 0; i < keys; ++i)
        entries.append({QStringLiteral("key-%1").arg(i, 6, 10, QLatin1Char('0')), Entry{QByteArray::number(i), hlc + quint64(i), 0x51, false}});
    viewer.internals()->load(entries);
    viewer.connection->open();
    TestPeer writer(m_relay->url(), Uri, QStringLiteral("writer"));
    QTRY_VERIFY_WITH_TIMEOUT(viewer->isReady() && writer->isReady() && writer->size() == keys, Timeout);

    DistributedMapModel model(viewer.map.get());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setBatchInterval(5);
    QVERIFY(model.isFilling());
    QCOMPARE(model.rowCount(), 0);
    // While it fills: a new key, a removed one and a changed one, then
    // 80,000 more keys, enough for the viewer's table to grow (a rehash
    // moves every slot under the walk).
    writer->set(QStringLiteral("key-new"), 1);
    writer->remove(QStringLiteral("key-000007"));
    writer->set(QStringLiteral("key-119999"), QStringLiteral("changed"));
    QSignalSpy batches(&model, &DistributedMapModel::batchApplied);
    const int more = 80000;
    for (int i = 0; i < more; ++i)
        writer->set(QStringLiteral("more-%1").arg(i), i);
    QTRY_VERIFY_WITH_TIMEOUT(!model.isFilling() && model.pendingCount() == 0 && viewer->contains(QStringLiteral("key-new"))
                                 && !viewer->contains(QStringLiteral("key-000007"))
                                 && viewer->value(QStringLiteral("key-119999")) == QJsonValue(QStringLiteral("changed"))
                                 && viewer->size() == keys + more,
                             Timeout);
    model.flush();
    QVERIFY2(batches.size() > 5, qPrintable(QString::number(batches.size()))); // not in one go
    QCOMPARE(model.rowCount(), keys + more);
    QVERIFY(rowsMatchMap(model, *viewer.map));
    QCOMPARE(model.index(model.rowOf(QStringLiteral("key-119999")), DistributedMapModel::ValueColumn).data().toString(),
             QStringLiteral("\"changed\""));

    // A filter over a large map fills the same way.
    model.setFilterText(QStringLiteral("KEY-0001"));
    QVERIFY(model.isFilling());
    QTRY_VERIFY_WITH_TIMEOUT(!model.isFilling() && model.pendingCount() == 0, Timeout);
    model.flush();
    QCOMPARE(model.rowCount(), 100); // key-000100 .. key-000199
    QCOMPARE(model.keyAt(0), QStringLiteral("key-000100"));
    QCOMPARE(model.keyAt(99), QStringLiteral("key-000199"));
}

QTEST_GUILESS_MAIN(tst_DistributedMapModel)
#include "tst_distributedmapmodel.moc"
