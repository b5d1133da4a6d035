// bench_inspector: how the inspector keeps up (issue 3).
//
// 1. Memory: RSS of a 1,000,000-key map alone, then with the inspector's
//    map tab (keys model, peers, log, network picture) built and shown over it.
// 2. Sync: a writer holding 1,000,000 keys, the tab joins and syncs them over
//    a real relay; time until the keys view shows every row, worst event-loop stall.
// 3. Rate: the writer sends deltas at a target rate (90% updates, 10% new
//    keys); the tab applies them while a 10 ms probe timer measures how late
//    the GUI event loop answers. A rate "holds" when the tab applied it with
//    the loop answering within 50 ms.
// 4. Burst: the writer sends 100,000 deltas at once (90% updates, 10% new
//    keys); time until the keys model shows the last one, worst stall.
//
// With --sort-times, after 1, the shown model is sorted by each column in turn (the map's
// clocks and writers shuffled, so no column is already in order). With
// --sort COLUMN (and --descending), the tab of 2-4 is sorted so before it
// syncs: sorted by time, newest first, every update of the burst moves a
// row to the top.
//
// The relay and the writer run in a worker thread so the GUI thread carries
// only what the inspector itself does. Run with QT_QPA_PLATFORM=offscreen.

#include "benchutil.h"
#include "connection.h"
#include "distributedmap_p.h"
#include "distributedmap.h"
#include "keysmodel.h"
#include "mapview.h"
#include "relay.h"
#include "wire.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QHeaderView>
#include <QRandomGenerator>
#include <QTableView>
#include <QThread>
#include <QTimer>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <utility>
#include <vector>

namespace {

const QString MapUri = QStringLiteral("/bench-inspector");

// Heap in use: RSS keeps what the temporary entries freed, heap does not.
double heapMiB()
{
    return double(mallinfo2().uordblks) / (1024.0 * 1024.0);
}

double rssMiB()
{
    const qint64 kb = BenchUtil::statusKb(0, "VmRSS");
    return kb > 0 ? double(kb) / 1024.0 : 0;
}

QString keyName(int i)
{
    return QStringLiteral("user:%1").arg(i, 7, 10, QLatin1Char('0'));
}

QByteArray valueText(int i)
{
    return QByteArrayLiteral("{\"n\":") + QByteArray::number(i) + QByteArrayLiteral(",\"name\":\"user number ")
           + QByteArray::number(i) + QByteArrayLiteral("\"}");
}

QVector<Wire::DecodedEntry> makeEntries(int count, quint64 writer)
{
    QVector<Wire::DecodedEntry> entries;
    entries.reserve(count);
    const quint64 hlc = quint64(QDateTime::currentMSecsSinceEpoch() - 60000) << 16;
    for (int i = 0; i < count; ++i)
        entries.append({keyName(i), Entry{valueText(i), hlc + quint64(i), writer, false}});
    return entries;
}

// Writes whose clocks and writers (one of five) follow no key order.
QVector<Wire::DecodedEntry> makeShuffledEntries(int count)
{
    QVector<Wire::DecodedEntry> entries = makeEntries(count, 1);
    QRandomGenerator rng(17);
    for (int i = count - 1; i > 0; --i)
        std::swap(entries[i].entry.hlc, entries[int(rng.bounded(i + 1))].entry.hlc);
    for (auto &e : entries)
        e.entry.writer = 1 + rng.bounded(5);
    return entries;
}

const char *const ColumnNames[] = {"key", "value", "writer", "when"};

int columnNamed(const QString &name)
{
    for (int c = 0; c < KeysModel::ColumnCount; ++c) {
        if (name == QLatin1String(ColumnNames[c]))
            return c;
    }
    return -1;
}

// The GUI loop is the thing measured: look at it often.
constexpr int SliceMs = 5;

// Lives in the worker thread: the relay and the writing peer.
class Writer : public QObject
{
public:
    void setUp(int keys)
    {
        relay = new Relay(this);
        relay->listen(QHostAddress::LocalHost, 0);
        connection = new Connection(relay->url(), this);
        map = new DistributedMap(connection, MapUri, this);
        map->setPresence({{QStringLiteral("name"), QStringLiteral("writer")}});
        DistributedMapPrivate::get(map)->load(makeEntries(keys, connection->peerId()));
        m_nextNew = keys;
        connection->open();
        // Created here, in the worker thread, so it ticks there.
        m_tick = new QTimer(this);
        m_tick->setInterval(10);
        connect(m_tick, &QTimer::timeout, this, &Writer::writeSome);
    }
    void startRate(int perSecond)
    {
        m_perTick = std::max(1, perSecond / 100);
        m_written = 0;
        m_tick->start();
    }
    void stopRate() { m_tick->stop(); }
    // count deltas at once, the last a new key named endKey.
    void burst(int count, const QString &endKey)
    {
        auto *rng = QRandomGenerator::global();
        for (int i = 0; i < count - 1; ++i) {
            const bool fresh = rng->bounded(10) == 0;
            const int k = fresh ? m_nextNew++ : int(rng->bounded(m_nextNew));
            map->set(keyName(k), QJsonValue(qint64(rng->bounded(1000000))));
        }
        map->set(endKey, true);
        map->flush();
    }

    Relay *relay = nullptr;
    Connection *connection = nullptr;
    DistributedMap *map = nullptr;
    std::atomic<qint64> written{0};

private:
    void writeSome()
    {
        auto *rng = QRandomGenerator::global();
        for (int i = 0; i < m_perTick; ++i) {
            const bool fresh = rng->bounded(10) == 0;
            const int k = fresh ? m_nextNew++ : int(rng->bounded(m_nextNew));
            map->set(keyName(k), QJsonValue(qint64(rng->bounded(1000000))));
        }
        m_written += m_perTick;
        written = m_written;
    }

    QTimer *m_tick = nullptr;
    int m_perTick = 0;
    qint64 m_written = 0;
    int m_nextNew = 0;
};

template<typename F>
void inThread(QObject *context, F &&f)
{
    QMetaObject::invokeMethod(context, std::forward<F>(f), Qt::BlockingQueuedConnection);
}

} // namespace

int main(int argc, char *argv[])
{
    QApplication app(argc, argv);
    QCommandLineParser parser;
    parser.addHelpOption();
    QCommandLineOption keysOption(QStringLiteral("keys"), QStringLiteral("Keys in the map (default 1000000)."),
                                  QStringLiteral("N"), QStringLiteral("1000000"));
    QCommandLineOption ratesOption(QStringLiteral("rates"), QStringLiteral("Delta rates to try (default 5000,10000,20000,40000)."),
                                   QStringLiteral("LIST"), QStringLiteral("5000,10000,20000,40000"));
    QCommandLineOption secondsOption(QStringLiteral("seconds"), QStringLiteral("Seconds per rate (default 4)."),
                                     QStringLiteral("S"), QStringLiteral("4"));
    QCommandLineOption sortOption(QStringLiteral("sort"),
                                  QStringLiteral("Sort the tab's keys by COLUMN (key, value, writer, when) before it syncs."),
                                  QStringLiteral("COLUMN"), QStringLiteral("key"));
    QCommandLineOption descendingOption(QStringLiteral("descending"), QStringLiteral("With --sort: in descending order."));
    QCommandLineOption sortTimesOption(QStringLiteral("sort-times"),
                                       QStringLiteral("Time sorting the map of 1. by each column (it leaves the heap "
                                                      "fragmented for what follows)."));
    parser.addOptions({keysOption, ratesOption, secondsOption, sortOption, descendingOption, sortTimesOption});
    parser.process(app);
    const int keys = parser.value(keysOption).toInt();
    const int seconds = parser.value(secondsOption).toInt();
    const int sortColumn = columnNamed(parser.value(sortOption));
    const Qt::SortOrder sortOrder = parser.isSet(descendingOption) ? Qt::DescendingOrder : Qt::AscendingOrder;
    if (sortColumn < 0)
        parser.showHelp(2);

    std::printf("bench_inspector: %d keys, platform %s\n", keys, qPrintable(QGuiApplication::platformName()));
    BenchUtil::LoopProbe probe;

    // 1. Memory of the map alone, then with the keys view over it.
    {
        const double before = heapMiB();
        DistributedMap map(nullptr, MapUri);
        DistributedMapPrivate::get(&map)->load(makeShuffledEntries(keys));
        const double withMap = heapMiB();
        QElapsedTimer t;
        t.start();
        probe.start();
        auto *model = new KeysModel(&map);
        auto *table = new QTableView;
        table->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
        table->verticalHeader()->hide();
        table->setModel(model);
        table->resize(1280, 600);
        table->show();
        QCoreApplication::processEvents();
        const qint64 shownMs = t.elapsed();
        // A large map's rows join over several turns (isFilling()).
        BenchUtil::waitUntil([&] { return !model->isFilling() && model->pendingCount() == 0; }, 120000, SliceMs);
        const qint64 filledMs = t.elapsed();
        probe.stop();
        BenchUtil::spin(200, SliceMs);
        const double withView = heapMiB();
        std::printf("memory (heap in use): map of %d keys %.0f MiB; keys model + table view over it +%.0f MiB "
                    "(shown in %lld ms, every row in %lld ms, rows %d; loop stall worst %d ms, p99 %d ms); "
                    "process RSS %.0f MiB\n",
                    keys, withMap - before, withView - withMap, shownMs, filledMs, model->rowCount(), probe.worst(),
                    probe.percentile(0.99), rssMiB());
        // Each column in turn, through the view as a header click does:
        // from the key order (where a session starts), the reverse, then
        // on to the next column (ties then compare keys), and back to key.
        const auto timed = [&](int column, Qt::SortOrder order) {
            t.restart();
            table->sortByColumn(column, order);
            QCoreApplication::processEvents();
            return t.elapsed();
        };
        const int columns[] = {KeysModel::ValueColumn, KeysModel::WriterColumn, KeysModel::WhenColumn};
        for (int i = 0; i < (parser.isSet(sortTimesOption) ? 3 : 0); ++i) {
            const int column = columns[i];
            const int next = columns[(i + 1) % 3];
            const qint64 fromKey = timed(column, Qt::AscendingOrder);
            const double heap = heapMiB() - withView;
            const qint64 reversed = timed(column, Qt::DescendingOrder);
            const qint64 fromOther = timed(next, Qt::AscendingOrder);
            const qint64 backToKey = timed(KeysModel::KeyColumn, Qt::AscendingOrder);
            std::printf("sort: %d keys by %s in %lld ms from the key order (heap +%.0f MiB), reversed in %lld ms; "
                        "then by %s in %lld ms; back to key in %lld ms\n",
                        model->rowCount(), ColumnNames[column], fromKey, heap, reversed, ColumnNames[next], fromOther,
                        backToKey);
        }
        delete table;
        delete model;
    }

    // 2. Sync a million keys over a real relay into a shown tab.
    QThread worker;
    worker.start();
    auto *writer = new Writer;
    writer->moveToThread(&worker);
    inThread(writer, [writer, keys] { writer->setUp(keys); });
    QUrl url;
    inThread(writer, [writer, &url] { url = writer->relay->url(); });

    const double rssBefore = rssMiB();
    Connection connection(url);
    DistributedMap map(&connection, MapUri);
    map.setPresence({{QStringLiteral("name"), QStringLiteral("inspector")}});
    auto *view = new MapView(&map);
    view->resize(1280, 800);
    view->show();
    view->keysView()->sortByColumn(sortColumn, sortOrder);
    std::printf("the tab's keys sorted by %s, %s\n", ColumnNames[sortColumn],
                sortOrder == Qt::AscendingOrder ? "ascending" : "descending");
    QElapsedTimer sync;
    sync.start();
    probe.start();
    connection.open();
    const bool synced = BenchUtil::waitUntil([&] { return view->keysModel()->rowCount() >= keys; }, 180000, SliceMs);
    probe.stop();
    std::printf("sync: %d keys into the keys view in %lld ms (%s); loop stall worst %d ms, p99 %d ms; "
                "RSS +%.0f MiB (map + tab), process %.0f MiB\n",
                view->keysModel()->rowCount(), sync.elapsed(), synced ? "complete" : "TIMED OUT", probe.worst(),
                probe.percentile(0.99), rssMiB() - rssBefore, rssMiB());

    // 3. Delta rates.
    qint64 applied = 0;
    QObject::connect(view->map(), &DistributedMap::deltaObserved, view, [&applied](const DistributedMap::DeltaEvent &e) {
        if (e.direction == DistributedMap::DeltaEvent::Incoming && e.operation != DistributedMap::DeltaEvent::SyncChunk)
            ++applied;
    });
    int best = 0;
    for (const QString &rateText : parser.value(ratesOption).split(QLatin1Char(','))) {
        const int rate = rateText.toInt();
        BenchUtil::spin(500, SliceMs);
        applied = 0;
        int batches = 0;
        auto batchConnection = QObject::connect(view->keysModel(), &KeysModel::batchApplied, view, [&batches] { ++batches; });
        inThread(writer, [writer, rate] { writer->startRate(rate); });
        probe.start();
        QElapsedTimer t;
        t.start();
        BenchUtil::spin(seconds * 1000, SliceMs);
        inThread(writer, [writer] { writer->stopRate(); });
        const qint64 sent = writer->written;
        // Let the tail arrive so the rate counts what was applied, not what was in flight.
        BenchUtil::waitUntil([&] { return applied >= sent; }, 10000, SliceMs);
        view->keysModel()->flush();
        const double elapsed = t.elapsed() / 1000.0;
        probe.stop();
        QObject::disconnect(batchConnection);
        const double appliedRate = applied / elapsed;
        const bool holds = probe.worst() <= 50 && applied >= sent;
        if (holds)
            best = std::max(best, int(appliedRate));
        std::printf("rate: target %6d/s sent %lld applied %lld (%.0f/s over %.1f s) in %d model batches; "
                    "loop lateness worst %d ms, p99 %d ms, p50 %d ms -> %s\n",
                    rate, sent, applied, appliedRate, elapsed, batches, probe.worst(), probe.percentile(0.99),
                    probe.percentile(0.5), holds ? "holds" : "does not hold");
    }
    // 4. A burst of 100,000 remote deltas.
    {
        const int count = 100000;
        const QString endKey = QStringLiteral("zz-burst-end");
        BenchUtil::spin(500, SliceMs);
        applied = 0;
        probe.start();
        QElapsedTimer t;
        t.start();
        QMetaObject::invokeMethod(writer, [writer, count, endKey] { writer->burst(count, endKey); }, Qt::QueuedConnection);
        const bool done = BenchUtil::waitUntil([&] { return applied >= count && view->keysModel()->rowOf(endKey) >= 0; },
                                               120000, SliceMs);
        const qint64 ms = t.elapsed();
        probe.stop();
        std::printf("burst: %d remote deltas applied to the keys model (table view shown) in %lld ms (%s, %.0f deltas/s); "
                    "loop lateness worst %d ms, p99 %d ms\n",
                    count, ms, done ? "complete" : "TIMED OUT", count * 1000.0 / std::max<qint64>(1, ms), probe.worst(),
                    probe.percentile(0.99));
    }

    std::printf("result: %d deltas/s applied to the keys view with the loop answering within 50 ms; "
                "keys view rows %d; process RSS %.0f MiB\n",
                best, view->keysModel()->rowCount(), rssMiB());

    delete view;
    writer->deleteLater();
    worker.quit();
    worker.wait();
    return 0;
}
