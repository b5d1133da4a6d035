// Helper for tst_storecrash (not a test): writes to a store without end and
// prints "durable N" once every operation up to N is durable, until it is
// killed. Operation i touches key k(i % 257): a delete when i % 5 == 4,
// otherwise a set to i, so the parent can replay what each ack covers.
// With "writes" it also prints "write OP HLC" for every op that wrote
// something, before the write can reach the file (batched mode writes the
// file from the event loop only), so the parent knows each write's clock.
//
// Usage: storewriter PATH FIRST-OP every|batched BATCH-MS COMPACT-BYTES [writes]

#include "connection.h"
#include "distributedmap.h"
#include "distributedmap_p.h"
#include "localstore.h"

#include <QCoreApplication>
#include <QTimer>

#include <cstdio>
#include <deque>

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    const bool printWrites = args.size() == 7 && args[6] == QLatin1String("writes");
    if (args.size() != 6 && !printWrites) {
        std::fprintf(stderr, "usage: storewriter PATH FIRST-OP every|batched BATCH-MS COMPACT-BYTES [writes]\n");
        return 2;
    }
    LocalStore::Options options;
    options.durability = args[3] == QLatin1String("every") ? LocalStore::Durability::EveryWrite : LocalStore::Durability::Batched;
    options.batchIntervalMs = args[4].toInt();
    options.compactionMinBytes = args[5].toLongLong();
    options.tombstoneMaxAgeMs = 0; // the parent's model keeps every tombstone
    // The parent checks the history only when it asks for the writes, and
    // then every write must stay (no cap: 50 runs can pass the default
    // 16 MiB). Otherwise a cap keeps the file small from kill to kill, and
    // puts kills inside compactions that drop history.
    options.historyMaxBytes = printWrites ? 0 : 256 * 1024;

    const QString uri = QStringLiteral("/crash-test");
    Connection connection(QUrl(QStringLiteral("ws://127.0.0.1:9"))); // never opened
    DistributedMap map(&connection, uri);
    LocalStore store(args[1], uri, options);
    if (!store.open() || !store.attach(&map)) {
        std::printf("error %s\n", qPrintable(store.errorString()));
        return 1;
    }

    struct Pending
    {
        quint64 seq;
        qint64 op;
    };
    std::deque<Pending> pending;
    qint64 next = args[2].toLongLong();
    qint64 acked = -1;
    auto report = [&] {
        while (!pending.empty() && pending.front().seq <= store.durableSeq()) {
            acked = pending.front().op;
            pending.pop_front();
        }
        if (acked >= 0) {
            std::printf("durable %lld\n", acked);
            std::fflush(stdout);
            acked = -1;
        }
    };
    QObject::connect(&store, &LocalStore::durable, &store, report);

    QTimer burst;
    burst.setInterval(0);
    QObject::connect(&burst, &QTimer::timeout, &map, [&] {
        for (int n = 0; n < 50; ++n, ++next) {
            const QString key = QStringLiteral("k%1").arg(next % 257);
            const bool wrote = next % 5 == 4 ? map.remove(key) // a no-op when the key is not live
                                             : map.set(key, double(next));
            if (wrote && printWrites)
                std::printf("write %lld %llu\n", next,
                            static_cast<unsigned long long>(DistributedMapPrivate::get(&map)->state().find(key)->hlc));
            // Ops that wrote nothing are covered by the last write's seq.
            pending.push_back({store.lastSeq(), next});
            report();
        }
        std::fflush(stdout);
    });
    burst.start();
    return app.exec();
}
