#include "keysmodel.h"

#include "distributedmap.h"
#include "jsontext.h"

#include <QAbstractItemModelTester>
#include <QJsonObject>
#include <QSignalSpy>
#include <QTableView>
#include <QtTest>

// The keys model over a map with no connection: local writes reach the
// model through the same changed() signal remote ones do.
class tst_KeysModel : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();
    void startsWithTheMapsLiveKeysSorted();
    void aFewNewKeysArriveAsRowInserts();
    void aBurstOfNewKeysArrivesInOneBatch();
    void aBurstOfRemovalsKeepsTheOrder();
    void updatesRepaintWithoutStructuralChanges();
    void persistentIndexFollowsItsKeyThroughABurst();
    void sortsByKeyDescending();
    void filtersByKeyOrValue_data();
    void filtersByKeyOrValue();
    void setDataStoresJsonAndRefusesInvalidText_data();
    void setDataStoresJsonAndRefusesInvalidText();
    void onlyTheValueColumnIsEditable();
    void localWritesDoNotFlash();

private:
    void settle() { m_model->flush(); }

    DistributedMap *m_map = nullptr;
    KeysModel *m_model = nullptr;
    QAbstractItemModelTester *m_tester = nullptr;
};

void tst_KeysModel::init()
{
    m_map = new DistributedMap(nullptr, QStringLiteral("/test"));
    m_model = new KeysModel(m_map);
    m_tester = new QAbstractItemModelTester(m_model, QAbstractItemModelTester::FailureReportingMode::QtTest);
}

void tst_KeysModel::cleanup()
{
    delete m_tester;
    delete m_model;
    delete m_map;
}

void tst_KeysModel::startsWithTheMapsLiveKeysSorted()
{
    delete m_tester;
    delete m_model;
    m_map->set(QStringLiteral("b"), 2);
    m_map->set(QStringLiteral("a"), 1);
    m_map->set(QStringLiteral("gone"), 3);
    m_map->remove(QStringLiteral("gone"));
    m_model = new KeysModel(m_map);
    m_tester = new QAbstractItemModelTester(m_model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(m_model->rowCount(), 2);
    QCOMPARE(m_model->keyAt(0), QStringLiteral("a"));
    QCOMPARE(m_model->keyAt(1), QStringLiteral("b"));
    QCOMPARE(m_model->index(1, KeysModel::ValueColumn).data().toString(), QStringLiteral("2"));
}

void tst_KeysModel::aFewNewKeysArriveAsRowInserts()
{
    QSignalSpy inserted(m_model, &QAbstractItemModel::rowsInserted);
    QSignalSpy layout(m_model, &QAbstractItemModel::layoutChanged);
    m_map->set(QStringLiteral("k2"), 2);
    m_map->set(QStringLiteral("k1"), 1);
    QCOMPARE(m_model->rowCount(), 0); // batched, not per delta
    QCOMPARE(m_model->pendingCount(), 2);
    QTRY_COMPARE(m_model->rowCount(), 2);
    QCOMPARE(inserted.size(), 2);
    QCOMPARE(layout.size(), 0);
    QCOMPARE(m_model->keyAt(0), QStringLiteral("k1"));
}

void tst_KeysModel::aBurstOfNewKeysArrivesInOneBatch()
{
    m_map->set(QStringLiteral("m"), 0);
    settle();
    QSignalSpy inserted(m_model, &QAbstractItemModel::rowsInserted);
    QSignalSpy reset(m_model, &QAbstractItemModel::modelReset);
    for (int i = 0; i < 500; ++i)
        m_map->set(QStringLiteral("key%1").arg(i, 4, 10, QLatin1Char('0')), i);
    settle();
    QCOMPARE(m_model->rowCount(), 501);
    QCOMPARE(inserted.size(), 1);
    QCOMPARE(reset.size(), 0);
    QStringList keys;
    for (int row = 0; row < m_model->rowCount(); ++row)
        keys.append(m_model->keyAt(row));
    QStringList sorted = keys;
    std::sort(sorted.begin(), sorted.end());
    QCOMPARE(keys, sorted);
}

void tst_KeysModel::aBurstOfRemovalsKeepsTheOrder()
{
    for (int i = 0; i < 300; ++i)
        m_map->set(QStringLiteral("key%1").arg(i, 4, 10, QLatin1Char('0')), i);
    settle();
    QSignalSpy removed(m_model, &QAbstractItemModel::rowsRemoved);
    for (int i = 0; i < 300; i += 3)
        m_map->remove(QStringLiteral("key%1").arg(i, 4, 10, QLatin1Char('0')));
    settle();
    QCOMPARE(m_model->rowCount(), 200);
    QCOMPARE(removed.size(), 1);
    QCOMPARE(m_model->keyAt(0), QStringLiteral("key0001"));
    QCOMPARE(m_model->keyAt(199), QStringLiteral("key0299"));
    QCOMPARE(m_model->rowOf(QStringLiteral("key0003")), -1);
}

void tst_KeysModel::updatesRepaintWithoutStructuralChanges()
{
    for (int i = 0; i < 50; ++i)
        m_map->set(QStringLiteral("k%1").arg(i), i);
    settle();
    QSignalSpy changed(m_model, &QAbstractItemModel::dataChanged);
    QSignalSpy inserted(m_model, &QAbstractItemModel::rowsInserted);
    for (int round = 0; round < 10; ++round) {
        for (int i = 0; i < 50; ++i)
            m_map->set(QStringLiteral("k%1").arg(i), round * 100 + i);
    }
    settle();
    QCOMPARE(changed.size(), 1);
    QCOMPARE(inserted.size(), 0);
    QCOMPARE(m_model->indexOf(QStringLiteral("k7"), KeysModel::ValueColumn).data().toString(), QStringLiteral("907"));
}

void tst_KeysModel::persistentIndexFollowsItsKeyThroughABurst()
{
    m_map->set(QStringLiteral("mmm"), 1);
    settle();
    const QPersistentModelIndex tracked = m_model->index(0, KeysModel::ValueColumn);
    for (int i = 0; i < 100; ++i)
        m_map->set(QStringLiteral("a%1").arg(i), i); // all sort before "mmm"
    settle();
    QVERIFY(tracked.isValid());
    QCOMPARE(tracked.row(), 100);
    QCOMPARE(tracked.data(KeysModel::KeyRole).toString(), QStringLiteral("mmm"));
    for (int i = 0; i < 100; i += 2)
        m_map->remove(QStringLiteral("a%1").arg(i));
    settle();
    QCOMPARE(tracked.row(), 50);
    QCOMPARE(tracked.column(), int(KeysModel::ValueColumn));
}

void tst_KeysModel::sortsByKeyDescending()
{
    for (const char *key : {"b", "a", "c"})
        m_map->set(QString::fromLatin1(key), 0);
    settle();
    const QPersistentModelIndex a = m_model->indexOf(QStringLiteral("a"));
    m_model->sort(KeysModel::KeyColumn, Qt::DescendingOrder);
    QCOMPARE(m_model->keyAt(0), QStringLiteral("c"));
    QCOMPARE(a.row(), 2);
    m_map->set(QStringLiteral("bb"), 0);
    settle();
    QCOMPARE(m_model->keyAt(1), QStringLiteral("bb"));
    m_model->sort(KeysModel::ValueColumn, Qt::AscendingOrder); // every value ties: by key
    QCOMPARE(m_model->keyAt(0), QStringLiteral("a"));
    QCOMPARE(a.row(), 0);
}

void tst_KeysModel::filtersByKeyOrValue_data()
{
    QTest::addColumn<QString>("filter");
    QTest::addColumn<QStringList>("shown");
    QTest::newRow("an empty filter shows every key") << QString() << QStringList{"alpha", "beta", "gamma"};
    QTest::newRow("a key substring matches whatever the case") << "ALP" << QStringList{"alpha"};
    QTest::newRow("a value substring matches too") << "needle" << QStringList{"gamma"};
    QTest::newRow("nothing matching shows nothing") << "zzz" << QStringList{};
}

void tst_KeysModel::filtersByKeyOrValue()
{
    QFETCH(QString, filter);
    QFETCH(QStringList, shown);
    m_map->set(QStringLiteral("alpha"), 1);
    m_map->set(QStringLiteral("beta"), 2);
    m_map->set(QStringLiteral("gamma"), QJsonObject{{QStringLiteral("text"), QStringLiteral("a Needle here")}});
    settle();
    m_model->setFilterText(filter);
    QStringList keys;
    for (int row = 0; row < m_model->rowCount(); ++row)
        keys.append(m_model->keyAt(row));
    QCOMPARE(keys, shown);
}

void tst_KeysModel::setDataStoresJsonAndRefusesInvalidText_data()
{
    QTest::addColumn<QVariant>("input");
    QTest::addColumn<bool>("accepted");
    QTest::addColumn<QByteArray>("stored");
    QTest::newRow("JSON text is parsed") << QVariant(QStringLiteral("{\"a\": [1, 2]}")) << true << QByteArray("{\"a\":[1,2]}");
    QTest::newRow("a bare number is JSON") << QVariant(QStringLiteral("42")) << true << QByteArray("42");
    QTest::newRow("plain words are refused") << QVariant(QStringLiteral("hello world")) << false << QByteArray("1");
    QTest::newRow("a QJsonValue string stores plain text")
        << QVariant::fromValue(QJsonValue(QStringLiteral("hello world"))) << true << QByteArray("\"hello world\"");
}

void tst_KeysModel::setDataStoresJsonAndRefusesInvalidText()
{
    QFETCH(QVariant, input);
    QFETCH(bool, accepted);
    QFETCH(QByteArray, stored);
    m_map->set(QStringLiteral("k"), 1);
    settle();
    QCOMPARE(m_model->setData(m_model->index(0, KeysModel::ValueColumn), input), accepted);
    QCOMPARE(JsonText::encode(m_map->value(QStringLiteral("k"))), stored);
}

void tst_KeysModel::onlyTheValueColumnIsEditable()
{
    m_map->set(QStringLiteral("k"), 1);
    settle();
    QVERIFY(m_model->flags(m_model->index(0, KeysModel::ValueColumn)) & Qt::ItemIsEditable);
    QVERIFY(!(m_model->flags(m_model->index(0, KeysModel::KeyColumn)) & Qt::ItemIsEditable));
    QVERIFY(!m_model->setData(m_model->index(0, KeysModel::KeyColumn), QStringLiteral("1")));
}

void tst_KeysModel::localWritesDoNotFlash()
{
    m_map->set(QStringLiteral("k"), 1);
    settle();
    QVERIFY(!m_model->isFlashing(QStringLiteral("k")));
    QCOMPARE(m_model->index(0, 0).data(KeysModel::FlashRole).toReal(), 0.0);
}

QTEST_MAIN(tst_KeysModel)
#include "tst_keysmodel.moc"
