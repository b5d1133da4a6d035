// History figures for issue 17: a store that keeps every write of
// N writes over K keys (default 10,000,000 over 100,000): disk bytes per
// write against the journal's, load time, and the time of the history
// questions, in the library (an index in memory, as the inspector has it)
// in place through the store's history index (as the CLI does), and through
// the CLI itself, on the compacted file and again with a journal tail.
//
// Usage: bench_history [--writes N] [--keys K] [--dir DIR] [--distmap PATH]

#include "connection.h"
#include "distributedmap.h"
#include "distributedmap_p.h"
#include "historyfile.h"
#include "historyindex.h"
#include "hybridclock.h"
#include "localstore.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonObject>
#include <QProcess>
#include <QRandomGenerator>
#include <QTemporaryDir>

#include <cstdio>

namespace {

const QString Uri = QStringLiteral("/bench-history");
const QUrl Nowhere(QStringLiteral("ws://127.0.0.1:9"));

QJsonObject valueFor(qint64 i)
{
    return {{QStringLiteral("n"), double(i)}, {QStringLiteral("by"), QStringLiteral("bench")}};
}

qint64 residentKiB()
{
    QFile status(QStringLiteral("/proc/self/status"));
    if (!status.open(QIODevice::ReadOnly))
        return 0;
    for (const QByteArray &line : status.readAll().split('\n')) {
        if (line.startsWith("VmRSS:"))
            return line.mid(6).trimmed().split(' ').first().toLongLong();
    }
    return 0;
}

// Writes `writes` values over `keys` keys through a map into a store,
// returning to the event loop every 1000 writes as an application does;
// then flushes and compacts. Returns the file's size.
qint64 writeStore(const QString &path, qint64 writes, int keys, const LocalStore::Options &options, double *seconds)
{
    QFile::remove(path);
    Connection connection(Nowhere);
    DistributedMap map(&connection, Uri);
    LocalStore store(path, Uri, options);
    if (!store.open() || !store.attach(&map)) {
        std::fprintf(stderr, "bench_history: %s\n", qPrintable(store.errorString()));
        return -1;
    }
    QElapsedTimer timer;
    timer.start();
    for (qint64 i = 0; i < writes; ++i) {
        map.set(QStringLiteral("key-%1").arg(i % keys), valueFor(i));
        if (i % 1000 == 999)
            QCoreApplication::processEvents();
    }
    store.flush();
    *seconds = double(timer.nsecsElapsed()) / 1e9;
    return QFileInfo(path).size();
}

double msSince(const QElapsedTimer &timer)
{
    return double(timer.nsecsElapsed()) / 1e6;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    qint64 writes = 10'000'000;
    int keys = 100'000;
    QString dirPath;
    QString distmap = QCoreApplication::applicationDirPath() + QStringLiteral("/../distmap");
    const QStringList args = app.arguments();
    for (int i = 1; i + 1 < args.size(); i += 2) {
        if (args[i] == QLatin1String("--writes"))
            writes = args[i + 1].toLongLong();
        else if (args[i] == QLatin1String("--keys"))
            keys = args[i + 1].toInt();
        else if (args[i] == QLatin1String("--dir"))
            dirPath = args[i + 1];
        else if (args[i] == QLatin1String("--distmap"))
            distmap = args[i + 1];
    }
    if (writes <= 0 || keys <= 0) {
        std::fprintf(stderr, "usage: bench_history [--writes N] [--keys K] [--dir DIR] [--distmap PATH]\n");
        return 2;
    }
    QTemporaryDir temp;
    const QString dir = dirPath.isEmpty() ? temp.path() : dirPath;
    std::printf("history of %lld writes over %d keys, store in %s\n", writes, keys, qPrintable(dir));

    // The journal's bytes per write: history off and no compaction, so the
    // file is the header and one entries record per batch of writes.
    const qint64 sample = qMin<qint64>(writes, 1'000'000);
    LocalStore::Options journalOnly;
    journalOnly.historyRetentionMs = 0;
    journalOnly.compactionMinBytes = qint64(1) << 40;
    double seconds = 0;
    const qint64 journalBytes = writeStore(dir + QStringLiteral("/journal.distmap"), sample, keys, journalOnly, &seconds);
    QFile::remove(dir + QStringLiteral("/journal.distmap"));
    const double journalPerWrite = double(journalBytes) / double(sample);
    std::printf("journal (history off, never compacted): %.1f bytes per write (%lld writes)\n", journalPerWrite, sample);

    const QString path = dir + QStringLiteral("/history.distmap");
    // Uncapped: the library caps history at 16 MiB by default, which would
    // keep only the newest writes of the 10,000,000.
    LocalStore::Options history;
    history.historyMaxBytes = 0;
    const qint64 fileBytes = writeStore(path, writes, keys, history, &seconds);
    if (fileBytes < 0)
        return 1;
    std::printf("writes with history: %.1f s (%.0f writes/s)\n", seconds, double(writes) / seconds);
    std::printf("store with history, as the writer left it: %lld bytes = %.1f bytes per write (%.2fx the journal)\n",
                fileBytes, double(fileBytes) / double(writes), double(fileBytes) / double(writes) / journalPerWrite);
    std::fflush(stdout);

    qint64 compactedBytes = 0;
    quint64 firstHlc = 0, lastHlc = 0;
    // Open as the inspector does: the index in memory.
    {
        QElapsedTimer timer;
        timer.start();
        Connection connection(Nowhere);
        DistributedMap map(&connection, Uri);
        LocalStore store(path, Uri, history);
        if (!store.open() || !store.attach(&map)) {
            std::fprintf(stderr, "bench_history: %s\n", qPrintable(store.errorString()));
            return 1;
        }
        const double openMs = msSince(timer);
        const HistoryIndex &index = *store.history();
        // The whole process: the writer's map and index above were freed,
        // but the heap may keep their pages.
        std::printf("open + attach: %.0f ms; %lld writes in history; process resident %lld MiB\n", openMs,
                    qint64(index.size()), residentKiB() / 1024);
        // A compacted file: snapshot plus history records.
        timer.restart();
        store.compact();
        const qint64 compacted = QFileInfo(path).size();
        compactedBytes = compacted;
        firstHlc = index.oldestHlc();
        lastHlc = index.newestHlc();
        std::printf("compaction: %.0f ms, %lld bytes = %.1f bytes per write (%.2fx the journal)\n", msSince(timer), compacted,
                    double(compacted) / double(writes), double(compacted) / double(writes) / journalPerWrite);

        // Instants spread over the writes: the clock value of a write
        // taken from a random key's history.
        QRandomGenerator rng(17);
        QVector<quint64> instants;
        for (int i = 0; i < 20; ++i) {
            const QVector<Entry> h = index.keyHistory(QStringLiteral("key-%1").arg(rng.bounded(keys)));
            instants.append(h.at(int(rng.bounded(h.size()))).hlc);
        }
        double worst = 0, total = 0;
        qsizetype live = 0;
        for (const quint64 t : std::as_const(instants)) {
            timer.restart();
            live = index.asOf(t).size();
            const double ms = msSince(timer);
            worst = qMax(worst, ms);
            total += ms;
        }
        std::printf("asOf (in memory): %.1f ms mean, %.1f ms worst over %d instants (%lld keys live)\n",
                    total / instants.size(), worst, int(instants.size()), qint64(live));

        worst = total = 0;
        const int lookups = 1000;
        qsizetype count = 0;
        for (int i = 0; i < lookups; ++i) {
            const QString key = QStringLiteral("key-%1").arg(rng.bounded(keys));
            timer.restart();
            count += index.keyHistory(key).size();
            const double ms = msSince(timer);
            worst = qMax(worst, ms);
            total += ms;
        }
        std::printf("keyHistory (in memory): %.3f ms mean, %.3f ms worst over %d keys (%.0f writes each)\n", total / lookups,
                    worst, lookups, double(count) / lookups);

        std::sort(instants.begin(), instants.end());
        timer.restart();
        const qsizetype changed = index.changes(instants.first(), instants.last()).size();
        std::printf("changes (in memory) over %.1f s of writes: %.0f ms, %lld keys\n",
                    double(HybridClock::physicalPart(instants.last()) - HybridClock::physicalPart(instants.first())) / 1000.0,
                    msSince(timer), qint64(changed));
        const quint64 oneSecond = HybridClock::pack(1000, 0);
        timer.restart();
        const qsizetype recent = index.changes(instants.last() - oneSecond, instants.last()).size();
        std::printf("changes (in memory) over 1 s of writes: %.1f ms, %lld keys\n", msSince(timer), qint64(recent));
    }

    // The CLI's way: the file in place, through its index (HistoryFile).
    auto fileQuestions = [&](const char *label) {
        QFile file(path);
        QFile indexFile(HistoryFileIndex::pathFor(path));
        if (!file.open(QIODevice::ReadOnly))
            return;
        const qint64 indexBytes = indexFile.size();
        QElapsedTimer timer;
        timer.start();
        const char *data = reinterpret_cast<const char *>(file.map(0, file.size()));
        // Mapped, as the CLI maps it.
        QByteArray index;
        const uchar *mapped = indexFile.open(QIODevice::ReadOnly) && indexBytes > 0 ? indexFile.map(0, indexBytes) : nullptr;
        if (mapped)
            index = QByteArray::fromRawData(reinterpret_cast<const char *>(mapped), qsizetype(indexBytes));
        HistoryFile history;
        history.open(data, file.size(), index, QString());
        const double openMs = msSince(timer);
        std::printf("%s: index %lld bytes (%.1f per write), used: %s; open (map the file and the index, check the index and the tail): %.1f ms\n",
                    label, indexBytes, double(indexBytes) / double(writes), history.usesIndex() ? "yes" : "no", openMs);
        QRandomGenerator rng(29);
        double worst = 0, total = 0;
        const int lookups = 200;
        qsizetype count = 0;
        for (int i = 0; i < lookups; ++i) {
            const QString key = QStringLiteral("key-%1").arg(rng.bounded(keys));
            timer.restart();
            count += history.keyHistory(key).size();
            const double ms = msSince(timer);
            worst = qMax(worst, ms);
            total += ms;
        }
        std::printf("%s: keyHistory %.3f ms mean, %.3f ms worst over %d keys (%.0f writes each)\n", label, total / lookups,
                    worst, lookups, double(count) / lookups);
        const quint64 newest = HybridClock::pack(QDateTime::currentMSecsSinceEpoch() + 1000, 0);
        for (const double fraction : {1.0, 0.5, 0.0}) {
            // An instant that far into the writes, by wall-clock time.
            const quint64 t = firstHlc + quint64(double(lastHlc - firstHlc) * fraction);
            timer.restart();
            const qsizetype live = history.asOf(qMin(t, newest)).size();
            std::printf("%s: asOf at %.0f%% of the writes: %.0f ms, %lld keys\n", label, fraction * 100, msSince(timer), qint64(live));
        }
    };

    // The CLI: a new process that maps the file and answers.
    auto cli = [&](const QStringList &arguments, const char *label) {
        if (!QFileInfo::exists(distmap)) {
            std::printf("CLI figures skipped: no %s (pass --distmap PATH)\n", qPrintable(distmap));
            return;
        }
        double best = 1e9, worst = 0;
        for (int run = 0; run < 5; ++run) {
            QProcess p;
            p.setStandardOutputFile(QProcess::nullDevice());
            QElapsedTimer timer;
            timer.start();
            p.start(distmap, arguments);
            p.waitForFinished(-1);
            best = qMin(best, msSince(timer));
            worst = qMax(worst, msSince(timer));
            if (p.exitCode() != 0)
                std::printf("CLI %s: exit %d\n", label, p.exitCode());
        }
        std::printf("CLI %s: %.0f ms best, %.0f ms worst of 5\n", label, best, worst);
    };
    auto cliQuestions = [&](const char *when) {
        const QString atHalf = QStringLiteral("hlc:%1").arg(firstHlc + (lastHlc - firstHlc) / 2);
        const QString label = QString::fromLatin1(when);
        cli({QStringLiteral("dump"), QStringLiteral("--at"), QStringLiteral("-1s"), QStringLiteral("--store"), path},
            qPrintable(label + QStringLiteral(" dump --at -1s")));
        cli({QStringLiteral("dump"), QStringLiteral("--at"), atHalf, QStringLiteral("--store"), path},
            qPrintable(label + QStringLiteral(" dump --at (halfway)")));
        cli({QStringLiteral("history"), QStringLiteral("key-7"), QStringLiteral("--store"), path},
            qPrintable(label + QStringLiteral(" history key-7")));
        cli({QStringLiteral("--version")}, "--version (process start)");
    };
    fileQuestions("compacted file");
    cliQuestions("compacted:");

    // A journal tail: writes after the compaction are outside the index and
    // read whole by every question.
    {
        Connection connection(Nowhere);
        DistributedMap map(&connection, Uri);
        LocalStore store(path, Uri, history);
        if (!store.open() || !store.attach(&map))
            return 1;
        const qint64 tailWrites = qMax<qint64>(1, writes / 20);
        for (qint64 i = 0; i < tailWrites; ++i) {
            map.set(QStringLiteral("key-%1").arg(i % keys), valueFor(writes + i));
            if (i % 1000 == 999)
                QCoreApplication::processEvents();
        }
        store.flush();
        std::printf("after %lld more writes (a tail of %lld bytes outside the index):\n", tailWrites,
                    QFileInfo(path).size() - compactedBytes);
    }
    fileQuestions("file with a tail");
    cliQuestions("with a tail:");
    return 0;
}
