// Join: a new peer syncs a map of `keys` keys from the one peer holding it.

#include "bench.h"

#include "benchutil.h"

#include <QJsonValue>
#include <QLatin1Char>

bool Bench::join(int keys)
{
    Peer holder(m_relay.url, QStringLiteral("/bench-join-%1").arg(keys), false);
    const QJsonValue value(QStringLiteral("0123456789abcdef0123456789abcdef"));
    for (int i = 0; i < keys; ++i)
        holder.map->set(QStringLiteral("key-%1").arg(i, 7, 10, QLatin1Char('0')), value);
    holder.connection->open();
    if (!BenchUtil::waitUntil([&] { return holder.map->isReady(); }, 60000))
        return false;
    std::vector<QJsonObject> results;
    for (int run = -1; run < m_runs; ++run) { // run -1 warms up
        const double cpu0 = m_relay.cpuSeconds();
        const qint64 t0 = nowNs();
        Peer joiner(m_relay.url, holder.map->uri());
        if (!BenchUtil::waitUntil([&] { return joiner.map->isReady(); }, 120000) || joiner.map->size() != keys)
            return false;
        const double ms = double(nowNs() - t0) / 1e6;
        if (run < 0)
            continue;
        results.push_back({{QStringLiteral("ms"), ms},
                           {QStringLiteral("wireMB"), double(joiner.bytes()) / 1e6},
                           {QStringLiteral("keysPerSecond"), double(keys) / (ms / 1000.0)},
                           {QStringLiteral("relayCpuMs"), (m_relay.cpuSeconds() - cpu0) * 1000.0}});
    }
    // Let the relay settle, then see what the map left behind in it.
    BenchUtil::spin(300);
    QJsonObject f = medianOf(results);
    f.insert(QStringLiteral("relayRssAfterMB"), m_relay.rssMb());
    f.insert(QStringLiteral("relayPeakMB"), m_relay.peakMb());
    rows.append({QStringLiteral("join"), {{QStringLiteral("keys"), keys}}, f});
    say(QStringLiteral("join %1 keys: %2 ms").arg(keys).arg(f.value(QStringLiteral("ms")).toDouble(), 0, 'f', 1));
    return true;
}
