#include "deltalogdelegate.h"
#include "deltalogfilter.h"
#include "deltalogmodel.h"
#include "mapstate.h"

#include <QAbstractItemModelTester>
#include <QBuffer>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSignalSpy>
#include <QtTest>

namespace {
DistributedMap::DeltaEvent setEvent(const QString &key, int value, quint64 peer = 0x1111000000000000ULL,
                                    MapState::Outcome outcome = MapState::Outcome::Applied)
{
    DistributedMap::DeltaEvent e;
    e.direction = DistributedMap::DeltaEvent::Incoming;
    e.operation = DistributedMap::DeltaEvent::Set;
    e.peer = peer;
    e.writer = peer;
    e.key = key;
    e.value = QByteArray::number(value);
    e.hlc = (quint64(1700000000000) << 16) + quint64(value);
    e.outcome = outcome;
    return e;
}
} // namespace

class tst_DeltaLogModel : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void deltasArriveInBatches();
    void theRowCapHoldsAndTrimsTheOldest();
    void loweringTheCapDropsTheOldest();
    void pausedDeltasWaitAndAppearOnResume();
    void clearEmptiesTheLog();
    void exportsOneJsonObjectPerLine();
    void supersededRowsAreHighlighted();
    void filterByKeyPeerOrOperation_data();
    void filterByKeyPeerOrOperation();
};

void tst_DeltaLogModel::deltasArriveInBatches()
{
    DeltaLogModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QSignalSpy inserted(&model, &QAbstractItemModel::rowsInserted);
    for (int i = 0; i < 100; ++i)
        model.append(setEvent(QStringLiteral("k%1").arg(i), i));
    QCOMPARE(model.rowCount(), 0);
    QTRY_COMPARE(model.rowCount(), 100);
    QCOMPARE(inserted.size(), 1);
    QCOMPARE(model.index(99, DeltaLogModel::KeyColumn).data().toString(), QStringLiteral("k99"));
}

void tst_DeltaLogModel::theRowCapHoldsAndTrimsTheOldest()
{
    DeltaLogModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setCapacity(50);
    for (int batch = 0; batch < 7; ++batch) {
        for (int i = 0; i < 30; ++i)
            model.append(setEvent(QStringLiteral("k%1").arg(batch * 30 + i), batch * 30 + i));
        model.flush();
        QVERIFY(model.rowCount() <= 50);
    }
    QCOMPARE(model.rowCount(), 50);
    QCOMPARE(model.index(0, DeltaLogModel::KeyColumn).data().toString(), QStringLiteral("k160"));
    QCOMPARE(model.index(49, DeltaLogModel::KeyColumn).data().toString(), QStringLiteral("k209"));
    QCOMPARE(model.droppedCount(), quint64(160));
}

void tst_DeltaLogModel::loweringTheCapDropsTheOldest()
{
    DeltaLogModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    for (int i = 0; i < 40; ++i)
        model.append(setEvent(QStringLiteral("k%1").arg(i), i));
    model.flush();
    model.setCapacity(10);
    QCOMPARE(model.rowCount(), 10);
    QCOMPARE(model.index(0, DeltaLogModel::KeyColumn).data().toString(), QStringLiteral("k30"));
    model.append(setEvent(QStringLiteral("next"), 1));
    model.flush();
    QCOMPARE(model.rowCount(), 10);
    QCOMPARE(model.index(9, DeltaLogModel::KeyColumn).data().toString(), QStringLiteral("next"));
}

void tst_DeltaLogModel::pausedDeltasWaitAndAppearOnResume()
{
    DeltaLogModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setPaused(true);
    for (int i = 0; i < 5; ++i)
        model.append(setEvent(QStringLiteral("k%1").arg(i), i));
    model.flush();
    QCOMPARE(model.rowCount(), 0);
    QCOMPARE(model.pendingCount(), 5);
    model.setPaused(false);
    QCOMPARE(model.rowCount(), 5);
}

void tst_DeltaLogModel::clearEmptiesTheLog()
{
    DeltaLogModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.append(setEvent(QStringLiteral("k"), 1));
    model.flush();
    model.clear();
    QCOMPARE(model.rowCount(), 0);
    model.append(setEvent(QStringLiteral("after"), 2));
    model.flush();
    QCOMPARE(model.rowCount(), 1);
}

void tst_DeltaLogModel::exportsOneJsonObjectPerLine()
{
    DeltaLogModel model;
    model.append(setEvent(QStringLiteral("a"), 1));
    model.append(setEvent(QStringLiteral("b"), 2, 0x2222000000000000ULL, MapState::Outcome::Superseded));
    DistributedMap::DeltaEvent chunk;
    chunk.operation = DistributedMap::DeltaEvent::SyncChunk;
    chunk.count = 7;
    model.append(chunk);
    model.flush();
    QBuffer buffer;
    buffer.open(QIODevice::WriteOnly);
    QCOMPARE(model.writeJsonLines(&buffer), 3);
    const QList<QByteArray> lines = buffer.data().trimmed().split('\n');
    QCOMPARE(lines.size(), 3);
    const QJsonObject second = QJsonDocument::fromJson(lines.at(1)).object();
    QCOMPARE(second.value(QStringLiteral("key")).toString(), QStringLiteral("b"));
    QCOMPARE(second.value(QStringLiteral("value")).toInt(), 2);
    QCOMPARE(second.value(QStringLiteral("outcome")).toString(), QStringLiteral("superseded"));
    QCOMPARE(second.value(QStringLiteral("peer")).toString(), QStringLiteral("2222000000000000"));
    const QJsonObject third = QJsonDocument::fromJson(lines.at(2)).object();
    QCOMPARE(third.value(QStringLiteral("operation")).toString(), QStringLiteral("sync chunk"));
    QCOMPARE(third.value(QStringLiteral("entries")).toInt(), 7);
}

void tst_DeltaLogModel::supersededRowsAreHighlighted()
{
    DeltaLogModel model;
    model.append(setEvent(QStringLiteral("won"), 1));
    model.append(setEvent(QStringLiteral("lost"), 2, 0x1111000000000000ULL, MapState::Outcome::Superseded));
    model.flush();
    // The model gives the outcome; the log view's delegate picks the colour.
    QCOMPARE(model.index(1, 0).data(DeltaLogModel::OutcomeRole).toInt(), int(MapState::Outcome::Superseded));
    const QPalette palette;
    QVERIFY(!DeltaLogDelegate::background(model.index(0, 0), palette).isValid());
    QVERIFY(DeltaLogDelegate::background(model.index(1, 0), palette).isValid());
    QCOMPARE(model.index(1, DeltaLogModel::OutcomeColumn).data().toString(), QStringLiteral("superseded"));
}

void tst_DeltaLogModel::filterByKeyPeerOrOperation_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<int>("operation");
    QTest::addColumn<bool>("supersededOnly");
    QTest::addColumn<int>("rows");
    QTest::newRow("no filter shows all") << QString() << -1 << false << 4;
    QTest::newRow("a key substring") << "user" << -1 << false << 2;
    QTest::newRow("a peer id prefix") << "2222" << -1 << false << 1;
    QTest::newRow("deletes only") << QString() << int(DistributedMap::DeltaEvent::Delete) << false << 1;
    QTest::newRow("superseded only") << QString() << -1 << true << 1;
}

void tst_DeltaLogModel::filterByKeyPeerOrOperation()
{
    QFETCH(QString, text);
    QFETCH(int, operation);
    QFETCH(bool, supersededOnly);
    QFETCH(int, rows);
    DeltaLogModel model;
    DeltaLogFilter filter;
    filter.setSourceModel(&model);
    QAbstractItemModelTester tester(&filter, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.append(setEvent(QStringLiteral("user:1"), 1));
    model.append(setEvent(QStringLiteral("user:2"), 2, 0x1111000000000000ULL, MapState::Outcome::Superseded));
    model.append(setEvent(QStringLiteral("other"), 3, 0x2222000000000000ULL));
    DistributedMap::DeltaEvent del = setEvent(QStringLiteral("gone"), 4);
    del.operation = DistributedMap::DeltaEvent::Delete;
    model.append(del);
    model.flush();
    filter.setText(text);
    filter.setOperation(operation);
    filter.setSupersededOnly(supersededOnly);
    QCOMPARE(filter.rowCount(), rows);
}

QTEST_MAIN(tst_DeltaLogModel)
#include "tst_deltalogmodel.moc"
