// Local store figures for docs/PERSISTENCE.md: writes per second with each
// durability setting, and open + load time of a large store.
//
// Usage: bench_store [--keys N] [--writes N] [--dir DIR]
// The store files go to DIR (default: a temporary directory), so run it on
// the disk you care about: fdatasync cost is the disk's, not the code's.

#include "connection.h"
#include "distributedmap_p.h"
#include "distributedmap.h"
#include "journal.h"
#include "localstore.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonObject>
#include <QTemporaryDir>

#include <cstdio>

namespace {

const QString Uri = QStringLiteral("/bench");
const QUrl Nowhere(QStringLiteral("ws://127.0.0.1:9"));

QJsonObject valueFor(int i)
{
    return {{QStringLiteral("n"), i}, {QStringLiteral("name"), QStringLiteral("item %1").arg(i)}};
}

// Sets `writes` keys (cycling over 10,000) and waits until all are durable.
void measureWrites(const QString &path, const char *label, const LocalStore::Options &options, int writes)
{
    QFile::remove(path);
    Connection connection(Nowhere);
    DistributedMap map(&connection, Uri);
    LocalStore store(path, Uri, options);
    if (!store.open() || !store.attach(&map)) {
        std::fprintf(stderr, "bench_store: %s\n", qPrintable(store.errorString()));
        return;
    }
    QElapsedTimer timer;
    timer.start();
    for (int i = 0; i < writes; ++i) {
        map.set(QStringLiteral("key-%1").arg(i % 10000), valueFor(i));
        // An application returns to its event loop between edits; batches
        // form there.
        if (i % 100 == 99)
            QCoreApplication::processEvents();
    }
    while (store.durableSeq() < store.lastSeq())
        QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 50);
    const qint64 ms = qMax<qint64>(1, timer.elapsed());
    std::printf("%-34s %8d writes in %6lld ms = %9.0f writes/s, all durable\n", label, writes, ms, writes * 1000.0 / ms);
    std::fflush(stdout);
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QStringList args = app.arguments();
    int keys = 1000000;
    int writes = 200000;
    QString dirPath;
    for (int i = 1; i + 1 < args.size(); i += 2) {
        if (args[i] == QLatin1String("--keys"))
            keys = args[i + 1].toInt();
        else if (args[i] == QLatin1String("--writes"))
            writes = args[i + 1].toInt();
        else if (args[i] == QLatin1String("--dir"))
            dirPath = args[i + 1];
    }
    QTemporaryDir temp;
    if (dirPath.isEmpty())
        dirPath = temp.path();
    const QString path = dirPath + QStringLiteral("/bench.distmap");

    LocalStore::Options every;
    every.durability = LocalStore::Durability::EveryWrite;
    measureWrites(path, "EveryWrite (fdatasync per write)", every, qMin(writes, 5000));
    for (int ms : {0, 10, 100}) {
        LocalStore::Options batched;
        batched.durability = LocalStore::Durability::Batched;
        batched.batchIntervalMs = ms;
        measureWrites(path, qPrintable(QStringLiteral("Batched %1 ms").arg(ms)), batched, writes);
    }

    // A store of `keys` keys, written as one snapshot the way compaction does.
    QFile::remove(path);
    {
        QElapsedTimer timer;
        timer.start();
        Connection connection(Nowhere);
        DistributedMap map(&connection, Uri);
        QVector<Wire::DecodedEntry> entries;
        entries.reserve(keys);
        const quint64 writer = connection.peerId();
        for (int i = 0; i < keys; ++i) {
            Entry e;
            e.value = QStringLiteral("{\"n\":%1,\"name\":\"item %1\"}").arg(i).toUtf8();
            e.hlc = DistributedMapPrivate::get(&map)->clock().tick();
            e.writer = writer;
            entries.append({QStringLiteral("key-%1").arg(i, 7, 10, QLatin1Char('0')), e});
        }
        DistributedMapPrivate::get(&map)->load(entries);
        entries.clear();
        LocalStore store(path, Uri);
        if (!store.open() || !store.attach(&map))
            return 1;
        const qint64 built = timer.elapsed();
        timer.restart();
        store.compact();
        std::printf("%d-key store: %lld bytes; built in %lld ms, snapshot written in %lld ms\n", keys,
                    qlonglong(QFileInfo(path).size()), built, timer.elapsed());
    }
    {
        QElapsedTimer timer;
        timer.start();
        QFile file(path);
        file.open(QIODevice::ReadOnly);
        const QByteArray image = file.readAll();
        const qint64 readMs = timer.elapsed();
        timer.restart();
        const Journal::ReadResult r = Journal::read(image.constData(), image.size(), Uri);
        std::printf("Journal::read of %d entries: %lld ms (+ %lld ms reading the file)\n", r.state.entryCount(),
                    timer.elapsed(), readMs);
    }
    {
        QElapsedTimer timer;
        timer.start();
        Connection connection(Nowhere);
        DistributedMap map(&connection, Uri);
        LocalStore store(path, Uri);
        if (!store.open())
            return 1;
        const qint64 openMs = timer.elapsed();
        store.attach(&map);
        std::printf("LocalStore open + attach of %d keys: %lld ms (open %lld ms, load into the map %lld ms)\n", map.size(),
                    timer.elapsed(), openMs, timer.elapsed() - openMs);
    }
    return 0;
}
