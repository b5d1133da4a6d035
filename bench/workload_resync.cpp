// Resync: a peer comes back after `changed` of `keys` keys changed while it
// was offline; what it exchanges to converge, next to the changed entries.

#include "bench.h"

#include "benchutil.h"
#include "distributedmap_p.h"
#include "wire.h"

#include <QLatin1Char>
#include <QVector>

#include <cstdio>

bool Bench::resync(int keys, int changed)
{
    std::vector<QJsonObject> results;
    for (int run = 0; run < m_runs; ++run) {
        const QString uri = QStringLiteral("/bench-resync-%1").arg(run);
        Peer a(m_relay.url, uri, false);
        for (int i = 0; i < keys; ++i)
            a.map->set(QStringLiteral("key-%1").arg(i, 7, 10, QLatin1Char('0')), QStringLiteral("0123456789abcdef0123456789abcdef"));
        a.connection->open();
        if (!BenchUtil::waitUntil([&] { return a.map->isReady(); }, 60000)) {
            std::fprintf(stderr, "resync: the first peer never became ready\n");
            return false;
        }
        Peer b(m_relay.url, uri);
        if (!BenchUtil::waitUntil([&] { return b.map->isReady(); }, 60000)) {
            std::fprintf(stderr, "resync: the second peer never became ready\n");
            return false;
        }
        b.connection->close();
        qint64 changedBytes = 0;
        const int step = qMax(1, keys / changed);
        for (int c = 0; c < changed; ++c) {
            const QString key = QStringLiteral("key-%1").arg((c * step) % keys, 7, 10, QLatin1Char('0'));
            a.map->set(key, QStringLiteral("changed-while-away-0123456789abc"));
            QByteArray encoded;
            Wire::appendEntry(encoded, DistributedMapPrivate::get(a.map.get())->state().find(key));
            changedBytes += encoded.size();
        }
        BenchUtil::spin(100); // let a's deltas drain
        const quint64 before = b.bytes();
        const qint64 t0 = nowNs();
        b.connection->open();
        const QVector<quint64> target = DistributedMapPrivate::get(a.map.get())->state().digest(1024);
        if (!BenchUtil::waitUntil([&] {
                return b.connection->state() == Connection::Connected && !b.map->isSyncing()
                    && DistributedMapPrivate::get(b.map.get())->state().digest(1024) == target;
            }, 60000)) {
            // Why, for the flake this has shown now and then on a loaded machine.
            std::fprintf(stderr, "resync: no convergence in 60 s: b %s (state %d, last error: %s), syncing %d, %d of %d keys, digest %s\n",
                         b.connection->state() == Connection::Connected ? "connected" : "not connected", int(b.connection->state()),
                         b.connection->errorString().isEmpty() ? "none" : qPrintable(b.connection->errorString()),
                         int(b.map->isSyncing()), b.map->size(), a.map->size(),
                         DistributedMapPrivate::get(b.map.get())->state().digest(1024) == target ? "equal" : "differs");
            return false;
        }
        const double ms = double(nowNs() - t0) / 1e6;
        const double bytes = double(b.bytes() - before);
        results.push_back({{QStringLiteral("ms"), ms},
                           {QStringLiteral("bytes"), bytes},
                           {QStringLiteral("changedEntryBytes"), double(changedBytes)},
                           {QStringLiteral("ratio"), bytes / double(changedBytes)},
                           {QStringLiteral("budgetBytes"), 1.5 * double(changedBytes) + 65536.0}});
    }
    rows.append({QStringLiteral("resync"), {{QStringLiteral("keys"), keys}, {QStringLiteral("changed"), changed}}, medianOf(results)});
    return true;
}
