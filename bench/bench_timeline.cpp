// bench_timeline: the inspector over a store with a long history (issue 17).
//
// Writes WRITES values over KEYS keys into a store that keeps all of them
// (history uncapped), opens it as the inspector does (LocalStore, then a
// map tab with the store behind its history), and moves the timeline: the
// first step back (the table switches to the past: a full snapshot), then
// STEPS steps back to the oldest write and STEPS steps forward again, then
// random jumps. Each step is MapView::showMoment, what the slider calls
// once per event-loop turn, plus the event-loop pass that repaints. Run
// with QT_QPA_PLATFORM=offscreen.
//
// Usage: bench_timeline [--writes N] [--keys K] [--steps S]

#include "benchutil.h"
#include "distributedmap.h"
#include "keysmodel.h"
#include "historyindex.h"
#include "hybridclock.h"
#include "localstore.h"
#include "mapview.h"
#include "snapshotmodel.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QJsonObject>
#include <QRandomGenerator>
#include <QTemporaryDir>

#include <algorithm>
#include <cstdio>
#include <vector>

namespace {

const QString MapUri = QStringLiteral("/bench-timeline");

double msSince(const QElapsedTimer &timer)
{
    return double(timer.nsecsElapsed()) / 1e6;
}

struct Steps
{
    std::vector<double> ms;
    void add(double v) { ms.push_back(v); }
    void print(const char *label) const
    {
        if (ms.empty())
            return;
        std::vector<double> sorted = ms;
        std::sort(sorted.begin(), sorted.end());
        double total = 0;
        for (const double v : sorted)
            total += v;
        std::printf("%s: %zu steps, mean %.1f ms, median %.1f ms, worst %.1f ms\n", label, sorted.size(),
                    total / double(sorted.size()), sorted[sorted.size() / 2], sorted.back());
    }
};

} // namespace

int main(int argc, char *argv[])
{
    QApplication app(argc, argv);
    QCommandLineParser parser;
    parser.addHelpOption();
    const QCommandLineOption writesOption(QStringLiteral("writes"), QStringLiteral("Writes kept (default 10000000)."),
                                          QStringLiteral("N"), QStringLiteral("10000000"));
    const QCommandLineOption keysOption(QStringLiteral("keys"), QStringLiteral("Keys written (default 100000)."),
                                        QStringLiteral("K"), QStringLiteral("100000"));
    const QCommandLineOption stepsOption(QStringLiteral("steps"), QStringLiteral("Steps each way (default 100)."),
                                         QStringLiteral("S"), QStringLiteral("100"));
    parser.addOptions({writesOption, keysOption, stepsOption});
    parser.process(app);
    const qint64 writes = parser.value(writesOption).toLongLong();
    const int keys = parser.value(keysOption).toInt();
    const int steps = parser.value(stepsOption).toInt();
    if (writes <= 0 || keys <= 0 || steps <= 0) {
        std::fprintf(stderr, "bench_timeline: --writes, --keys and --steps take positive numbers\n");
        return 2;
    }
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("timeline.distmap"));
    LocalStore::Options options;
    options.historyMaxBytes = 0; // keep every write: the library caps history at 16 MiB by default
    std::printf("bench_timeline: %lld writes over %d keys, platform %s\n", writes, keys, qPrintable(QGuiApplication::platformName()));

    {
        DistributedMap map(nullptr, MapUri);
        LocalStore store(path, MapUri, options);
        if (!store.open() || !store.attach(&map)) {
            std::fprintf(stderr, "bench_timeline: %s\n", qPrintable(store.errorString()));
            return 1;
        }
        QElapsedTimer timer;
        timer.start();
        for (qint64 i = 0; i < writes; ++i) {
            map.set(QStringLiteral("key-%1").arg(i % keys), QJsonObject{{QStringLiteral("n"), double(i)}});
            if (i % 1000 == 999)
                QCoreApplication::processEvents();
        }
        store.compact();
        std::printf("written and compacted in %.1f s\n", msSince(timer) / 1000.0);
    }

    // Open as the inspector does: the store read in a worker thread, then
    // the map made and the store attached, then the tab, whose rows join
    // in batches. A 10 ms timer measures how late the loop answers.
    BenchUtil::LoopProbe probe;
    probe.start();
    QElapsedTimer timer;
    timer.start();
    LocalStore store(path, MapUri, options);
    bool opened = false, ok = false;
    QObject::connect(&store, &LocalStore::openFinished, [&](bool success) {
        opened = true;
        ok = success;
    });
    store.openInBackground();
    BenchUtil::waitUntil([&] { return opened; }, 600000, 5);
    const double readMs = msSince(timer);
    timer.restart();
    DistributedMap map(nullptr, MapUri);
    if (!ok || !store.attach(&map)) {
        std::fprintf(stderr, "bench_timeline: %s\n", qPrintable(store.errorString()));
        return 1;
    }
    const double attachMs = msSince(timer);
    QCoreApplication::processEvents(); // the tab comes in the next turn, as in the inspector
    timer.restart();
    auto *view = new MapView(&map);
    view->setStore(&store);
    view->resize(1280, 800);
    view->show();
    QCoreApplication::processEvents();
    const double shownMs = msSince(timer);
    BenchUtil::waitUntil([&] { return !view->keysModel()->isFilling() && view->keysModel()->pendingCount() == 0; }, 600000, 5);
    const double filledMs = msSince(timer);
    probe.stop();
    std::printf("store read in a worker thread in %.0f ms (%lld writes in history); attached in %.0f ms; tab shown in "
                "%.0f ms, its %d rows in %.0f ms; loop stall worst %d ms, p99 %d ms\n",
                readMs, qint64(store.history()->size()), attachMs, shownMs, view->keysModel()->rowCount(), filledMs,
                probe.worst(), probe.percentile(0.99));

    const HistoryIndex *history = store.history();
    const qint64 oldest = HybridClock::physicalPart(history->oldestHlc());
    const qint64 newest = HybridClock::physicalPart(history->newestHlc());
    const qint64 span = qMax<qint64>(1, newest - oldest);
    auto step = [&](qint64 ms) {
        QElapsedTimer t;
        t.start();
        view->showMoment(ms);
        QCoreApplication::processEvents();
        return msSince(t);
    };
    std::printf("history spans %.1f s: a step of 1/%d is %.0f ms of writes, about %lld writes\n", double(span) / 1000.0,
                steps, double(span) / steps, writes / steps);

    const double firstMs = step(newest - span / steps);
    std::printf("first step back (the full snapshot): %.1f ms, %d rows\n", firstMs, view->snapshotModel()->rowCount());
    Steps back, forward, jumps;
    for (int i = 2; i <= steps; ++i)
        back.add(step(newest - span * i / steps));
    for (int i = steps - 1; i >= 0; --i)
        forward.add(step(newest - span * i / steps));
    QRandomGenerator rng(7);
    for (int i = 0; i < 20; ++i)
        jumps.add(step(oldest + qint64(rng.bounded(double(span)))));
    back.print("steps back");
    forward.print("steps forward");
    jumps.print("random jumps");
    view->goLive();
    delete view;
    return 0;
}
