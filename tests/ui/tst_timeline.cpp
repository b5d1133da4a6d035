// The inspector's history panel and timeline with a store behind them: the
// store's past (writes from before the tab opened included) in the key
// history panel, restore as a new write kept by the store, and timeline
// steps (which move the table by what changed between two moments) always
// showing what a full snapshot of that moment shows. Random writes and
// moments from a seed (printed; DISTMAP_SEED replays), on a clock the test
// drives, so that moments a few milliseconds apart hold different writes.

#include "distributedmap.h"
#include "distributedmap_p.h"
#include "historyindex.h"
#include "hybridclock.h"
#include "keyhistorymodel.h"
#include "keysmodel.h"
#include "localstore.h"
#include "mapview.h"
#include "snapshotmodel.h"
#include "wire.h"

#include <QAbstractItemModelTester>
#include <QLabel>
#include <QRandomGenerator>
#include <QTabWidget>
#include <QTableView>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <memory>

namespace {

const QString MapUri = QStringLiteral("/timeline");
constexpr qint64 StartMs = 1'750'000'000'000;

quint32 seedFromEnvironment()
{
    return qEnvironmentVariableIsSet("DISTMAP_SEED") ? quint32(qgetenv("DISTMAP_SEED").toUInt())
                                                     : QRandomGenerator::global()->generate();
}

} // namespace

class tst_Timeline : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();
    void theKeyPanelShowsTheStoresPast();
    void everyStepShowsWhatAFullSnapshotShows();
    void docScreenshots();

private:
    // Opens the map, its store and a tab over both, with the clock at m_nowMs.
    void openTab();
    // Another peer's write of key at ms, as the relay would deliver it.
    Entry deliverRemoteWrite(const QString &key, qint64 ms, quint64 writer, const QByteArray &json);

    quint32 m_seed = 0;
    qint64 m_nowMs = StartMs;
    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<DistributedMap> m_map;
    std::unique_ptr<LocalStore> m_store;
    std::unique_ptr<MapView> m_view;
    std::vector<std::unique_ptr<QAbstractItemModelTester>> m_testers;
};

void tst_Timeline::initTestCase()
{
    m_seed = seedFromEnvironment();
    qInfo("seed %u (replay with DISTMAP_SEED=%u)", m_seed, m_seed);
}

void tst_Timeline::init()
{
    m_dir = std::make_unique<QTemporaryDir>();
    m_nowMs = StartMs;
    m_map = std::make_unique<DistributedMap>(nullptr, MapUri);
    DistributedMapPrivate::get(m_map.get())->clock() = HybridClock([this] { return m_nowMs; });
    m_store = std::make_unique<LocalStore>(m_dir->filePath(QStringLiteral("timeline.distmap")), MapUri);
    QVERIFY2(m_store->open() && m_store->attach(m_map.get()), qPrintable(m_store->errorString()));
}

void tst_Timeline::cleanup()
{
    m_testers.clear();
    m_view.reset();
    m_store.reset();
    m_map.reset();
}

void tst_Timeline::openTab()
{
    m_view = std::make_unique<MapView>(m_map.get());
    m_view->setStore(m_store.get());
    m_view->resize(1000, 700);
    m_view->show();
    const auto mode = QAbstractItemModelTester::FailureReportingMode::QtTest;
    m_testers.push_back(std::make_unique<QAbstractItemModelTester>(m_view->keyHistoryModel(), mode));
    m_testers.push_back(std::make_unique<QAbstractItemModelTester>(m_view->snapshotModel(), mode));
}

Entry tst_Timeline::deliverRemoteWrite(const QString &key, qint64 ms, quint64 writer, const QByteArray &json)
{
    Entry e;
    e.hlc = HybridClock::pack(ms, 0);
    e.writer = writer;
    e.value = json;
    QByteArray frame;
    Wire::Header header;
    header.peer = writer;
    Wire::appendHeader(frame, header);
    Wire::appendEntry(frame, key, e);
    DistributedMapPrivate::get(m_map.get())->frameReceived(header, frame);
    return e;
}

void tst_Timeline::theKeyPanelShowsTheStoresPast()
{
    // Written before the tab opens: only the store knows these.
    for (int i = 1; i <= 4; ++i) {
        m_nowMs += 1000;
        m_map->set(QStringLiteral("k"), i);
    }
    m_nowMs += 1000;
    m_map->remove(QStringLiteral("k"));
    m_nowMs += 1000;
    m_map->set(QStringLiteral("k"), 5);
    openTab();
    m_view->keysModel()->flush();
    const QModelIndex row = m_view->keysModel()->indexOf(QStringLiteral("k"));
    QVERIFY(row.isValid());
    m_view->keysView()->setCurrentIndex(row);
    QTRY_COMPARE(m_view->keyHistoryModel()->key(), QStringLiteral("k"));
    KeyHistoryModel *panel = m_view->keyHistoryModel();
    QCOMPARE(panel->rowCount(), 6); // four sets, the delete, the set after it
    QVERIFY2(m_view->keyHistoryLabel()->text().contains(QLatin1String("kept by this map's store")),
             qPrintable(m_view->keyHistoryLabel()->text()));
    QCOMPARE(panel->writeAt(0).value, QByteArray("5"));
    QVERIFY(panel->writeAt(1).tombstone);
    QCOMPARE(panel->writeAt(5).value, QByteArray("1")); // oldest last

    // Restore the oldest: a new write, kept by the store as well.
    m_nowMs += 1000;
    m_view->keyHistoryView()->setCurrentIndex(panel->index(5, 0));
    QVERIFY(m_view->restoreSelectedWrite());
    QCOMPARE(m_map->value(QStringLiteral("k")), QJsonValue(1));
    QTRY_COMPARE(panel->rowCount(), 7);
    QCOMPARE(panel->writeAt(0).value, QByteArray("1"));
    QCOMPARE(m_store->history()->keyHistory(QStringLiteral("k")).size(), 7);

    // Another peer's write made before the restore, delivered after it:
    // it loses, the store keeps it as lost, and the panel marks it.
    const Entry late = deliverRemoteWrite(QStringLiteral("k"), m_nowMs - 500, 0xb0b, "\"late\"");
    QCOMPARE(m_map->value(QStringLiteral("k")), QJsonValue(1));
    QTRY_COMPARE(panel->rowCount(), 8);
    QCOMPARE(panel->writeAt(0).value, QByteArray("1")); // still current
    QCOMPARE(panel->writeAt(1).value, late.value);
    QVERIFY(panel->lostAt(1));
    QVERIFY(!panel->lostAt(0) && !panel->lostAt(2));
    QCOMPARE(panel->index(1, KeyHistoryModel::NoteColumn).data().toString(), QStringLiteral("lost a conflict"));
}

void tst_Timeline::everyStepShowsWhatAFullSnapshotShows()
{
    QRandomGenerator rng(m_seed);
    const int keys = 5 + int(rng.bounded(30));
    const int writes = 200 + int(rng.bounded(800));
    for (int i = 0; i < writes; ++i) {
        m_nowMs += 1 + rng.bounded(20);
        const QString key = QStringLiteral("key-%1").arg(rng.bounded(keys));
        if (rng.bounded(6) == 0)
            m_map->remove(key);
        else
            m_map->set(key, i);
    }
    openTab();
    const HistoryIndex *history = m_store->history();
    const SnapshotModel *shown = m_view->snapshotModel();
    // The rows in the table's order: by key, then newest first, then by
    // key descending.
    bool byTime = false;
    bool descending = false;
    auto check = [&](qint64 ms, const QString &where) {
        // Worked out from every write, apart from the index's queries.
        const quint64 at = HybridClock::pack(ms, 0xffff);
        QHash<QString, Entry> then;
        QSet<QString> changed;
        history->forEach([&](const QString &key, const Entry &e) {
            if (e.hlc <= at)
                then.insert(key, e); // a key's writes come oldest first
            else
                changed.insert(key);
        });
        QVector<HistoryIndex::KeyedEntry> expected;
        for (auto it = then.cbegin(); it != then.cend(); ++it) {
            if (!it->tombstone)
                expected.append({it.key(), it.value()});
        }
        std::sort(expected.begin(), expected.end(), [byTime](const auto &a, const auto &b) {
            if (byTime && a.entry.hlc != b.entry.hlc)
                return a.entry.hlc < b.entry.hlc;
            return a.key < b.key;
        });
        if (descending)
            std::reverse(expected.begin(), expected.end()); // descending reverses ties too
        QVERIFY2(shown->rowCount() == expected.size(),
                 qPrintable(QStringLiteral("%1: %2 rows, expected %3").arg(where).arg(shown->rowCount()).arg(expected.size())));
        for (int r = 0; r < expected.size(); ++r) {
            QVERIFY2(shown->keyAt(r) == expected[r].key && shown->entryAt(r).sameWrite(expected[r].entry),
                     qPrintable(QStringLiteral("%1: row %2 shows %3, expected %4").arg(where).arg(r).arg(shown->keyAt(r), expected[r].key)));
            QVERIFY2(shown->index(r, 0).data(SnapshotModel::ChangedSinceRole).toBool() == changed.contains(expected[r].key),
                     qPrintable(QStringLiteral("%1: the mark of %2").arg(where, expected[r].key)));
        }
        QVERIFY2(m_view->timelineBanner()->text().contains(QStringLiteral(" %1 key").arg(changed.size())),
                 qPrintable(where + QStringLiteral(": ") + m_view->timelineBanner()->text()));
    };
    qint64 ms = StartMs;
    for (int step = 0; step < 240; ++step) {
        if (step == 120) {
            byTime = descending = true;
            m_view->keysView()->sortByColumn(KeysModel::WhenColumn, Qt::DescendingOrder);
        } else if (step == 180) {
            byTime = false;
            m_view->keysView()->sortByColumn(KeysModel::KeyColumn, Qt::DescendingOrder);
        }
        // Mostly a step to a nearby moment, which moves the shown rows by
        // what changed (fewer writes than keys in between); now and then a
        // jump, which reads a whole snapshot: anywhere, or near the end,
        // where each key's last write is and the marks change.
        const qint64 span = m_nowMs - StartMs + 40;
        if (step == 0 || rng.bounded(8) == 0)
            ms = StartMs + qint64(rng.bounded(double(span)));
        else if (rng.bounded(8) == 0)
            ms = StartMs + span - qint64(rng.bounded(keys * 40));
        else
            ms = qBound(StartMs, ms + qint64(rng.bounded(keys * 16)) - keys * 8, StartMs + span);
        m_view->showMoment(ms);
        QVERIFY(!m_view->isLive());
        check(ms, QStringLiteral("seed %1 step %2 at +%3 ms").arg(m_seed).arg(step).arg(ms - StartMs));
        if (QTest::currentTestFailed())
            return;
        if (step % 15 == 14) {
            // A live write while the past is shown: the next step is read anew.
            m_nowMs += 5;
            m_map->set(QStringLiteral("key-0"), QStringLiteral("live %1").arg(step));
        }
    }
    m_view->goLive();
    QVERIFY(m_view->isLive());
}

void tst_Timeline::docScreenshots()
{
    // docs/inspector-history.png and docs/inspector-timeline.png, taken
    // from the state this test builds: DISTMAP_SCREENSHOTS=docs.
    const QString dir = qEnvironmentVariable("DISTMAP_SCREENSHOTS");
    if (dir.isEmpty())
        QSKIP("set DISTMAP_SCREENSHOTS=DIR to save the inspector's timeline and key history screenshots");
    const QList<QPair<QString, QJsonValue>> writes{
        {QStringLiteral("theme"), QStringLiteral("light")},
        {QStringLiteral("language"), QStringLiteral("en")},
        {QStringLiteral("counter"), 1},
        {QStringLiteral("owner"), QJsonObject{{QStringLiteral("name"), QStringLiteral("Grace")}}},
        {QStringLiteral("counter"), 2},
        {QStringLiteral("theme"), QStringLiteral("dark")},
        {QStringLiteral("counter"), 3},
        {QStringLiteral("region"), QStringLiteral("eu-west")},
        {QStringLiteral("language"), QStringLiteral("fr")},
        {QStringLiteral("counter"), 4},
        {QStringLiteral("theme"), QStringLiteral("solarized")},
    };
    // The slider ends at the wall clock: the writes end a few seconds ago.
    m_nowMs = QDateTime::currentMSecsSinceEpoch() - 1700 * (writes.size() + 3);
    for (const auto &[key, value] : writes) {
        m_nowMs += 1700;
        m_map->set(key, value);
    }
    m_nowMs += 1700;
    m_map->remove(QStringLiteral("region"));
    // A write another peer made offline before the last theme, delivered
    // after it: it loses, and the key history says so.
    deliverRemoteWrite(QStringLiteral("theme"), m_nowMs - 2500, 0x5eedb0b0c0ffee01, "\"high-contrast\"");
    QCOMPARE(m_map->value(QStringLiteral("theme")), QJsonValue(QStringLiteral("solarized")));

    openTab();
    m_view->resize(1000, 900);
    // The keys panel (table, timeline, value and history), not the network.
    QWidget *panel = m_view->keysView()->parentWidget()->parentWidget()->parentWidget();
    auto *tabs = m_view->findChild<QTabWidget *>();
    QVERIFY(tabs);
    m_view->keysModel()->flush();
    m_view->keysView()->setCurrentIndex(m_view->keysModel()->indexOf(QStringLiteral("theme")));
    QTRY_COMPARE(m_view->keyHistoryModel()->key(), QStringLiteral("theme"));
    tabs->setCurrentWidget(m_view->keyHistoryView()->parentWidget());
    QTRY_VERIFY(m_view->keyHistoryModel()->lostAt(1));
    QVERIFY(panel->grab().save(dir + QStringLiteral("/inspector-history.png")));

    // Dragged back to between the third and fourth counter writes.
    m_view->keysView()->setCurrentIndex(m_view->keysModel()->indexOf(QStringLiteral("counter")));
    tabs->setCurrentIndex(0);
    m_view->timeline()->setValue(m_view->timeline()->maximum() * 62 / 100);
    QTRY_VERIFY(!m_view->isLive());
    QTRY_VERIFY(m_view->timelineBanner()->isVisible());
    QVERIFY(panel->grab().save(dir + QStringLiteral("/inspector-timeline.png")));
}

QTEST_MAIN(tst_Timeline)
#include "tst_timeline.moc"
