// Fan-out (one writer, N readers), all-write (N peers each writing and
// reading) and unloaded latency (a window of one delta in flight).

#include "bench.h"

#include "benchutil.h"

#include <QLatin1Char>

#include <functional>

namespace {

// Unique per run (no run sends 100,000): two writers never write the same
// key at once, so no delta is superseded on the way and every reader
// counts every delta. (With keys reused every 10,000, all-write across
// relays stalled: concurrent writes of one key arrive in either order.)
QString keyName(int i)
{
    return QStringLiteral("key-%1").arg(i % 100000, 6, 10, QLatin1Char('0'));
}

// 32 characters: "<seq>:<send time ns>" padded with '.', so a reader can
// tell which delta arrived and how long it took.
QString stampedValue(int seq)
{
    QString v = QStringLiteral("%1:%2:").arg(seq).arg(nowNs());
    v.resize(32, QLatin1Char('.'));
    return v;
}

} // namespace

// writers: 1 (fan-out) or n (all-write: every peer writes and reads).
// unbatched: flush after every write, one delta per frame, as the
// anchors' clients send (the library would otherwise batch them).
bool Bench::throughput(const QString &name, int n, int messages, int window, bool allWrite, bool unbatched)
{
    std::vector<QJsonObject> results;
    for (int run = 0; run < m_runs; ++run) {
        QJsonObject r;
        if (!throughputRun(n, messages, window, allWrite, unbatched, run, &r))
            return false;
        results.push_back(r);
    }
    rows.append({name, {{QStringLiteral("n"), n}, {QStringLiteral("messages"), messages}, {QStringLiteral("window"), window}},
                 medianOf(results)});
    return true;
}

bool Bench::throughputRun(int n, int messages, int window, bool allWrite, bool unbatched, int run, QJsonObject *out)
{
    const QString uri = QStringLiteral("/bench-%1-%2-%3").arg(allWrite ? QStringLiteral("all") : QStringLiteral("fan")).arg(n).arg(run);
    const int writers = allWrite ? n : 1;
    const int receivers = allWrite ? n - 1 : n; // deliveries per delta
    std::vector<std::unique_ptr<Peer>> peers;
    for (int i = 0; i < (allWrite ? n : n + 1); ++i) {
        peers.push_back(std::make_unique<Peer>(relayUrlFor(i), uri));
        QObject::connect(peers.back()->connection.get(), &Connection::errorOccurred, peers.back()->connection.get(),
                         [this](Connection::Error, const QString &message) { say(QStringLiteral("peer: %1").arg(message)); });
        if (!BenchUtil::waitUntil([&] { return peers.back()->map->isReady(); }, 30000))
            return false;
    }
    const int warmup = qMin(2000, messages);
    const int perWriter = (messages + warmup) / writers;
    const int total = perWriter * writers;
    const int windowPerWriter = qMax(1, window / writers);
    std::vector<quint8> arrived(size_t(total), 0);
    std::vector<int> sent(size_t(writers), 0), inflight(size_t(writers), 0);
    std::vector<double> latencies;
    latencies.reserve(size_t(messages) * size_t(receivers));
    int completed = 0;
    qint64 tFirst = 0, tLast = 0;
    double cpu0 = 0, client0 = 0, redisCpu0 = 0;
    qint64 publishes0 = 0;
    quint64 frames0 = 0;
    const int warmPerWriter = warmup / writers;

    std::function<void(int)> pump = [&](int w) {
        while (inflight[size_t(w)] < windowPerWriter && sent[size_t(w)] < perWriter) {
            const int local = sent[size_t(w)]++;
            if (local == warmPerWriter && w == 0 && tFirst == 0) {
                tFirst = nowNs();
                cpu0 = relaysCpuSeconds();
                redisCpu0 = RelayProcess::cpuSecondsOf(m_redisPid);
                publishes0 = redisPublishes();
                client0 = clientCpuSeconds();
                for (int x = 0; x < writers; ++x)
                    frames0 += peers[size_t(allWrite ? x : 0)]->connection->framesSent();
            }
            const int seq = w * perWriter + local;
            ++inflight[size_t(w)];
            Peer &p = *peers[size_t(allWrite ? w : 0)];
            p.map->set(keyName(seq), stampedValue(seq));
            if (unbatched)
                p.map->flush();
        }
    };
    for (size_t i = 0; i < peers.size(); ++i) {
        if (!allWrite && i == 0)
            continue; // the writer does not read in fan-out
        QObject::connect(peers[i]->map.get(), &DistributedMap::changed, peers[i]->map.get(),
                         [&](const DistributedMap::Change &c) {
            if (c.source != DistributedMap::Source::Delta)
                return;
            // "\"<seq>:<ns>:...\""
            const QByteArray &v = c.value;
            const int colon = v.indexOf(':');
            const int colon2 = v.indexOf(':', colon + 1);
            const int seq = v.mid(1, colon - 1).toInt();
            const qint64 sentNs = v.mid(colon + 1, colon2 - colon - 1).toLongLong();
            const int w = seq / perWriter;
            if (seq - w * perWriter >= warmPerWriter)
                latencies.push_back(double(nowNs() - sentNs) / 1e6);
            if (++arrived[size_t(seq)] == receivers) {
                --inflight[size_t(w)];
                ++completed;
                tLast = nowNs();
                pump(w);
            }
        });
    }
    // Writes stamped later than they are sent would flatter latency: stamp
    // at set() time, flush happens in the same event-loop pass.
    for (int w = 0; w < writers; ++w)
        pump(w);
    if (!BenchUtil::waitUntil([&] { return completed == total; }, 120000)) {
        say(QStringLiteral("run stalled at %1 of %2").arg(completed).arg(total));
        for (size_t i = 0; i < peers.size(); ++i)
            say(QStringLiteral("  peer %1: state %2, %3 bytes in, %4 frames out, syncing %5")
                    .arg(i).arg(int(peers[i]->connection->state())).arg(peers[i]->connection->bytesReceived())
                    .arg(peers[i]->connection->framesSent()).arg(peers[i]->map->isSyncing()));
        for (int seq = 0; seq < total; ++seq) {
            if (arrived[size_t(seq)] != 0 && arrived[size_t(seq)] != receivers) {
                say(QStringLiteral("  seq %1 reached %2 of %3 readers").arg(seq).arg(arrived[size_t(seq)]).arg(receivers));
                break;
            }
        }
        return false;
    }
    const double seconds = double(tLast - tFirst) / 1e9;
    const double deliveries = double(total - warmup) * receivers;
    const double relayCpu = relaysCpuSeconds() - cpu0;
    const double redisCpu = RelayProcess::cpuSecondsOf(m_redisPid) - redisCpu0;
    const qint64 publishes = redisPublishes() - publishes0;
    quint64 frames = 0;
    for (int x = 0; x < writers; ++x)
        frames += peers[size_t(allWrite ? x : 0)]->connection->framesSent();
    frames -= frames0;
    const double clientCpu = clientCpuSeconds() - client0;
    *out = {{QStringLiteral("deliveriesPerSecond"), deliveries / seconds},
            {QStringLiteral("p50ms"), percentile(latencies, 0.5)},
            {QStringLiteral("p99ms"), percentile(latencies, 0.99)},
            {QStringLiteral("p90ms"), percentile(latencies, 0.90)},
            {QStringLiteral("p95ms"), percentile(latencies, 0.95)},
            {QStringLiteral("p98ms"), percentile(latencies, 0.98)},
            {QStringLiteral("relayCpuUsPerDelivery"), relayCpu * 1e6 / deliveries},
            {QStringLiteral("relayCpuPercent"), 100.0 * relayCpu / seconds},
            {QStringLiteral("clientCpuPercent"), 100.0 * clientCpu / seconds},
            {QStringLiteral("relayRssMB"), m_relay.rssMb()},
            // The library batches the writes of one event-loop pass into
            // one frame; this says how much that did here.
            {QStringLiteral("deltasPerFrame"), double(total - warmup) / double(qMax<quint64>(1, frames))}};
    if (m_redisPid) {
        // Frames crossing the bus per frame the writers sent: 1 when each
        // routed message is published once, whatever the number of relays.
        out->insert(QStringLiteral("busPublishesPerFrame"), double(publishes) / double(qMax<quint64>(1, frames)));
        out->insert(QStringLiteral("redisCpuUsPerPublish"), redisCpu * 1e6 / double(qMax<qint64>(1, publishes)));
        out->insert(QStringLiteral("redisCpuPercent"), 100.0 * redisCpu / seconds);
    }
    say(QStringLiteral("%1 n=%2 w=%3: %4 deliveries/s").arg(allWrite ? "all-write" : "fan-out").arg(n).arg(window)
            .arg(deliveries / seconds, 0, 'f', 0));
    return true;
}
