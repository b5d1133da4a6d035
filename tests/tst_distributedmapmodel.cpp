// DistributedMapModel, the library's item model, over a map fed by a real
// relay on loopback: bursts of remote sets and deletes, and a resync after
// a disconnect, all under QAbstractItemModelTester. A seeded run: the seed
// is printed; DISTMAP_SEED=S replays it.
#include "distributedmapmodel.h"
#include "peerfixture.h"
#include "relay.h"

#include <QAbstractItemModelTester>
#include <QDateTime>
#include <QRandomGenerator>
#include <QSignalSpy>
#include <QTest>

namespace {

constexpr int Timeout = 30000;
const QString Uri = QStringLiteral("/model");

// The model's rows, which must be the map's live keys, sorted.
bool rowsMatchMap(const DistributedMapModel &model, const DistributedMap &map)
{
    QStringList keys = map.keys();
    keys.sort();
    if (model.rowCount() != keys.size())
        return false;
    for (int row = 0; row < keys.size(); ++row) {
        if (model.keyAt(row) != keys.at(row))
            return false;
    }
    return true;
}

} // namespace

class tst_DistributedMapModel : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();
    void followsRemoteBurstsDeletesAndAResync();
    void rolesDescribeEachKeysWrite();
    void setDataWritesToTheMap();

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

void tst_DistributedMapModel::followsRemoteBurstsDeletesAndAResync()
{
    quint32 seed = quint32(qEnvironmentVariableIntValue("DISTMAP_SEED"));
    if (!seed)
        seed = QRandomGenerator::global()->bounded(1u, 1u << 30);
    qInfo("seed %u (replay with DISTMAP_SEED=%u)", seed, seed);
    QRandomGenerator rng(seed);

    TestPeer writer(m_relay->url(), Uri, QStringLiteral("writer"));
    TestPeer viewer(m_relay->url(), Uri, QStringLiteral("viewer"));
    QTRY_VERIFY_WITH_TIMEOUT(writer->isReady() && viewer->isReady(), Timeout);

    DistributedMapModel model(viewer.map.get());
    model.setBatchInterval(5);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QSignalSpy resets(&model, &QAbstractItemModel::modelAboutToBeReset);
    QSignalSpy inserts(&model, &QAbstractItemModel::rowsInserted);
    QSignalSpy removes(&model, &QAbstractItemModel::rowsRemoved);
    // A persistent index must follow its key through everything below.
    writer->set(QStringLiteral("anchor"), 0);
    QTRY_VERIFY_WITH_TIMEOUT(model.rowOf(QStringLiteral("anchor")) >= 0, Timeout);
    const QPersistentModelIndex anchor(model.indexOf(QStringLiteral("anchor")));

    for (int round = 0; round < 6; ++round) {
        // A burst: new keys, overwrites and deletes in one event-loop pass.
        const int writes = 50 + int(rng.bounded(2000));
        for (int i = 0; i < writes; ++i) {
            const QString key = QStringLiteral("k%1").arg(rng.bounded(3000));
            if (rng.bounded(100) < 25)
                writer->remove(key);
            else
                writer->set(key, int(rng.bounded(1000000)));
        }
        QTRY_VERIFY_WITH_TIMEOUT(viewer->size() == writer->size() && model.pendingCount() == 0
                                     && rowsMatchMap(model, *viewer.map),
                                 Timeout);
        QCOMPARE(anchor.data(DistributedMapModel::KeyRole).toString(), QStringLiteral("anchor"));
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

QTEST_GUILESS_MAIN(tst_DistributedMapModel)
#include "tst_distributedmapmodel.moc"
