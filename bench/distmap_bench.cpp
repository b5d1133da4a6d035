// distmap-bench: measures the relay and the map the way the anchors in
// ../shared/anchors measure a node `ws` relay and y-websocket, so the figures
// can sit side by side. The relay runs as its own process (`distmap relay`),
// the peers in this one; relay CPU and RSS come from /proc/<pid>.

#include "benchutil.h"
#include "connection.h"
#include "control.h"
#include "distributedmap_p.h"
#include "distributedmap.h"
#include "relay.h"
#include "wire.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QDateTime>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QTextStream>
#include <QSocketNotifier>
#include <QTimer>
#include <QWebSocket>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <functional>
#include <malloc.h>
#include <memory>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

namespace {

qint64 nowNs()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return qint64(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double clientCpuSeconds()
{
    rusage u;
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// The relay under test: `distmap relay` started by us, or one given by URL
// (then CPU and memory figures are not available).
class RelayProcess
{
public:
    bool start(const QString &binary, const QStringList &extra)
    {
        m_process.setProcessChannelMode(QProcess::ForwardedErrorChannel);
        m_process.start(binary, QStringList{QStringLiteral("relay"), QStringLiteral("--port"), QStringLiteral("0"),
                                            QStringLiteral("--max-connections"), QStringLiteral("20000"),
                                            QStringLiteral("--max-per-address"), QStringLiteral("20000"),
                                            QStringLiteral("--max-message"), QString::number(64 * 1024 * 1024),
                                            // A benchmark writer is a flood by design.
                                            QStringLiteral("--max-rate"), QStringLiteral("0")} + extra);
        if (!m_process.waitForStarted(10000))
            return false;
        QByteArray line;
        BenchUtil::waitUntil([&] {
            m_process.waitForReadyRead(50);
            line += m_process.readLine();
            return line.endsWith('\n');
        }, 10000);
        const auto m = QRegularExpression(QStringLiteral("listening on (\\S+)")).match(QString::fromUtf8(line));
        if (!m.hasMatch())
            return false;
        url = QUrl(m.captured(1));
        pid = m_process.processId();
        return true;
    }
    void stop()
    {
        if (m_process.state() == QProcess::NotRunning)
            return;
        m_process.terminate(); // our own child, by PID
        if (!m_process.waitForFinished(10000))
            m_process.kill();
    }
    ~RelayProcess() { stop(); }

    double cpuSeconds() const
    {
        if (!pid)
            return 0;
        QFile f(QStringLiteral("/proc/%1/stat").arg(pid));
        if (!f.open(QIODevice::ReadOnly))
            return 0;
        const QByteArray stat = f.readAll();
        const QList<QByteArray> fields = stat.mid(stat.lastIndexOf(')') + 2).split(' ');
        // utime and stime are fields 14 and 15 of the whole line.
        return double(fields.value(11).toLongLong() + fields.value(12).toLongLong()) / double(sysconf(_SC_CLK_TCK));
    }
    double rssMb() const { return pid ? double(BenchUtil::statusKb(pid, "VmRSS")) / 1024.0 : 0; }
    double peakMb() const { return pid ? double(BenchUtil::statusKb(pid, "VmHWM")) / 1024.0 : 0; }

    QUrl url;
    qint64 pid = 0;

private:
    QProcess m_process;
};

struct Peer
{
    std::unique_ptr<Connection> connection;
    std::unique_ptr<DistributedMap> map;

    Peer(const QUrl &url, const QString &uri, bool open = true)
        : connection(std::make_unique<Connection>(url))
        , map(std::make_unique<DistributedMap>(connection.get(), uri))
    {
        if (open)
            connection->open();
    }
    ~Peer()
    {
        map.reset();
        connection.reset();
    }
    quint64 bytes() const { return connection->bytesReceived() + connection->bytesSent(); }
};

QString keyName(int i)
{
    return QStringLiteral("key-%1").arg(i % 10000, 6, 10, QLatin1Char('0'));
}

// 32 characters: "<seq>:<send time ns>" padded with '.', so a reader can
// tell which delta arrived and how long it took.
QString stampedValue(int seq)
{
    QString v = QStringLiteral("%1:%2:").arg(seq).arg(nowNs());
    v.resize(32, QLatin1Char('.'));
    return v;
}

double percentile(std::vector<double> &v, double p)
{
    if (v.empty())
        return 0;
    const size_t k = std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5));
    std::nth_element(v.begin(), v.begin() + qsizetype(k), v.end());
    return v[k];
}

double median(std::vector<double> v)
{
    return percentile(v, 0.5);
}

// A peer that floods the relay with deltas on a map of its own, and comes
// back as soon as the relay cuts it off: sustained abuse. The relay forwards
// its deltas to nobody, so what it costs the others is the relay's time.
class Flooder
{
public:
    Flooder(const QUrl &url, int index)
        : m_url(url), m_uri(QStringLiteral("/bench-flood-%1").arg(index))
    {
        QObject::connect(&m_socket, &QWebSocket::connected, &m_socket, [this] {
            m_socket.sendTextMessage(QString::fromUtf8(Control::encodeHello(Control::Hello())));
        });
        QObject::connect(&m_socket, &QWebSocket::textMessageReceived, &m_socket, [this](const QString &text) {
            Control::Message message;
            if (Control::decodeMessage(text.toUtf8(), &message) != Control::DecodeError::NoError)
                return;
            if (message.type == Control::Type::Welcome) {
                Control::Open open;
                open.map = m_uri;
                m_socket.sendTextMessage(QString::fromUtf8(Control::encodeOpen(open)));
            } else if (message.type == Control::Type::Opened) {
                Control::Opened opened;
                if (Control::decodeOpened(message.object, &opened) == Control::DecodeError::NoError)
                    m_mapId = opened.id;
            } else if (message.type == Control::Type::Error) {
                Control::Error error;
                if (Control::decodeError(message.object, &error) == Control::DecodeError::NoError
                    && error.code == Wire::ErrorCode::RateLimited)
                    ++rateLimited;
            }
        });
        QObject::connect(&m_socket, &QWebSocket::disconnected, &m_socket, [this] {
            m_mapId = 0;
            ++closes;
            if (m_running)
                QTimer::singleShot(0, &m_socket, [this] { m_socket.open(m_url); });
        });
        QObject::connect(&m_tick, &QTimer::timeout, &m_socket, [this] {
            if (!m_mapId)
                return;
            QByteArray frame;
            Wire::appendHeader(frame, {Wire::Type::Delta, 0, m_mapId, 0});
            Wire::appendEntry(frame, QStringLiteral("spam"), Entry{QByteArray("1"), 1, 1, false});
            for (int i = 0; i < 200 && m_socket.isValid(); ++i) {
                m_socket.sendBinaryMessage(frame);
                ++sent;
            }
        });
    }
    void start()
    {
        m_running = true;
        m_socket.open(m_url);
        m_tick.start(0);
    }
    void stop()
    {
        m_running = false;
        m_tick.stop();
        m_socket.abort();
    }

    quint64 sent = 0;
    int closes = 0;
    int rateLimited = 0;

private:
    QUrl m_url;
    QString m_uri;
    QWebSocket m_socket;
    QTimer m_tick;
    quint32 m_mapId = 0;
    bool m_running = false;
};

struct Row
{
    QString workload;
    QJsonObject params;
    QJsonObject figures;
};

class Bench
{
public:
    Bench(RelayProcess &relay, int runs, bool verbose)
        : m_relay(relay), m_runs(runs), m_verbose(verbose)
    {
    }

    QList<Row> rows;

    // writers: 1 (fan-out) or n (all-write: every peer writes and reads).
    // unbatched: flush after every write, one delta per frame, as the
    // anchors' clients send (the library would otherwise batch them).
    bool throughput(const QString &name, int n, int messages, int window, bool allWrite, bool unbatched = false)
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

    bool join(int keys)
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

    bool resync(int keys, int changed)
    {
        std::vector<QJsonObject> results;
        for (int run = 0; run < m_runs; ++run) {
            const QString uri = QStringLiteral("/bench-resync-%1").arg(run);
            Peer a(m_relay.url, uri, false);
            for (int i = 0; i < keys; ++i)
                a.map->set(QStringLiteral("key-%1").arg(i, 7, 10, QLatin1Char('0')), QStringLiteral("0123456789abcdef0123456789abcdef"));
            a.connection->open();
            if (!BenchUtil::waitUntil([&] { return a.map->isReady(); }, 60000))
                return false;
            Peer b(m_relay.url, uri);
            if (!BenchUtil::waitUntil([&] { return b.map->isReady(); }, 60000))
                return false;
            b.connection->close();
            qint64 changedBytes = 0;
            const int step = qMax(1, keys / changed);
            for (int c = 0; c < changed; ++c) {
                const QString key = QStringLiteral("key-%1").arg((c * step) % keys, 7, 10, QLatin1Char('0'));
                a.map->set(key, QStringLiteral("changed-while-away-0123456789abc"));
                QByteArray encoded;
                Wire::appendEntry(encoded, key, *DistributedMapPrivate::get(a.map.get())->state().find(key));
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
                }, 60000))
                return false;
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

    bool idleConnections(int count)
    {
        const double before = m_relay.rssMb();
        std::vector<std::unique_ptr<QWebSocket>> sockets;
        int welcomed = 0;
        for (int i = 0; i < count; ++i) {
            auto s = std::make_unique<QWebSocket>();
            QWebSocket *raw = s.get();
            QObject::connect(raw, &QWebSocket::connected, raw, [raw] {
                raw->sendTextMessage(QString::fromUtf8(Control::encodeHello(Control::Hello())));
            });
            QObject::connect(raw, &QWebSocket::textMessageReceived, raw, [&welcomed](const QString &text) {
                Control::Message message;
                if (Control::decodeMessage(text.toUtf8(), &message) == Control::DecodeError::NoError
                    && message.type == Control::Type::Welcome)
                    ++welcomed;
            });
            raw->open(m_relay.url);
            sockets.push_back(std::move(s));
            if (i % 200 == 199)
                BenchUtil::waitUntil([&] { return welcomed > i - 400; }, 30000);
        }
        if (!BenchUtil::waitUntil([&] { return welcomed == count; }, 120000)) {
            say(QStringLiteral("only %1 of %2 idle connections were welcomed").arg(welcomed).arg(count));
            return false;
        }
        BenchUtil::spin(500);
        const double after = m_relay.rssMb();
        rows.append({QStringLiteral("idle-connections"), {{QStringLiteral("connections"), count}},
                     {{QStringLiteral("relayRssIdleMB"), before},
                      {QStringLiteral("relayRssMB"), after},
                      {QStringLiteral("kbPerConnection"), (after - before) * 1024.0 / count}}});
        for (auto &s : sockets)
            s->abort();
        sockets.clear();
        BenchUtil::spin(500);
        return true;
    }

    bool peerMemory(int keys)
    {
        // Heap bytes in use, not RSS: freed memory from earlier workloads
        // stays in the process and would hide the map's growth.
        const double before = double(mallinfo2().uordblks);
        qint64 payload = 0;
        {
            Connection connection(m_relay.url); // never opened: memory of the map alone
            DistributedMap map(&connection, QStringLiteral("/bench-memory"));
            const QJsonValue value(QStringLiteral("0123456789abcdef0123456789abcdef"));
            for (int i = 0; i < keys; ++i) {
                const QString key = QStringLiteral("key-%1").arg(i, 7, 10, QLatin1Char('0'));
                map.set(key, value);
                payload += key.toUtf8().size() + 34; // the key and the value's JSON text
            }
            const double after = double(mallinfo2().uordblks);
            const double perKey = (after - before) / keys;
            rows.append({QStringLiteral("peer-memory"), {{QStringLiteral("keys"), keys}},
                         {{QStringLiteral("bytesPerKey"), perKey},
                          {QStringLiteral("payloadBytesPerKey"), double(payload) / keys},
                          {QStringLiteral("overheadBytesPerKey"), perKey - double(payload) / keys}}});
        }
        return true;
    }

    // Unloaded latency of real peers while flooders hammer the relay (which
    // runs with its default rate limit here).
    bool flood(int flooders, int messages)
    {
        // The flooders run in a process of their own, so they compete with
        // the real peers for the relay, not for this process's event loop.
        QProcess floodProcess;
        floodProcess.start(QCoreApplication::applicationFilePath(),
                           {QStringLiteral("--flood-url"), m_relay.url.toString(), QStringLiteral("--flooders"), QString::number(flooders)});
        if (!floodProcess.waitForStarted(10000))
            return false;
        BenchUtil::spin(1000); // let the flood build up
        QJsonObject r;
        const bool ok = throughputRun(10, messages, 1, false, false, 0, &r);
        floodProcess.terminate(); // our own child, by PID; it prints its counts
        if (!floodProcess.waitForFinished(10000))
            floodProcess.kill();
        const QList<QByteArray> counts = floodProcess.readAllStandardOutput().trimmed().split(' ');
        const quint64 sent = counts.value(0).toULongLong();
        const int closes = counts.value(1).toInt();
        const int limited = counts.value(2).toInt();
        if (!ok)
            return false;
        r.insert(QStringLiteral("floodMessages"), double(sent));
        r.insert(QStringLiteral("floodCutOffs"), closes);
        r.insert(QStringLiteral("floodRateLimitedErrors"), limited);
        rows.append({QStringLiteral("unloaded, during a flood"), {{QStringLiteral("n"), 10}, {QStringLiteral("messages"), messages},
                                                                    {QStringLiteral("window"), 1}, {QStringLiteral("flooders"), flooders}}, r});
        say(QStringLiteral("flood: %1 flood messages sent, %2 cut-offs, p99 %3 ms").arg(sent).arg(closes)
                .arg(r.value(QStringLiteral("p99ms")).toDouble()));
        return true;
    }

private:
    void say(const QString &s)
    {
        if (m_verbose)
            std::fprintf(stderr, "%s\n", qPrintable(s));
    }

    static QJsonObject medianOf(const std::vector<QJsonObject> &results)
    {
        QJsonObject out;
        if (results.empty())
            return out;
        for (const QString &k : results.front().keys()) {
            std::vector<double> v;
            for (const QJsonObject &r : results)
                v.push_back(r.value(k).toDouble());
            out.insert(k, median(v));
        }
        out.insert(QStringLiteral("runs"), int(results.size()));
        return out;
    }

    bool throughputRun(int n, int messages, int window, bool allWrite, bool unbatched, int run, QJsonObject *out)
    {
        const QString uri = QStringLiteral("/bench-%1-%2-%3").arg(allWrite ? QStringLiteral("all") : QStringLiteral("fan")).arg(n).arg(run);
        const int writers = allWrite ? n : 1;
        const int receivers = allWrite ? n - 1 : n; // deliveries per delta
        std::vector<std::unique_ptr<Peer>> peers;
        for (int i = 0; i < (allWrite ? n : n + 1); ++i) {
            peers.push_back(std::make_unique<Peer>(m_relay.url, uri));
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
        double cpu0 = 0, client0 = 0;
        quint64 frames0 = 0;
        const int warmPerWriter = warmup / writers;

        std::function<void(int)> pump = [&](int w) {
            while (inflight[size_t(w)] < windowPerWriter && sent[size_t(w)] < perWriter) {
                const int local = sent[size_t(w)]++;
                if (local == warmPerWriter && w == 0 && tFirst == 0) {
                    tFirst = nowNs();
                    cpu0 = m_relay.cpuSeconds();
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
        const double relayCpu = m_relay.cpuSeconds() - cpu0;
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
        say(QStringLiteral("%1 n=%2 w=%3: %4 deliveries/s").arg(allWrite ? "all-write" : "fan-out").arg(n).arg(window)
                .arg(deliveries / seconds, 0, 'f', 0));
        return true;
    }

    RelayProcess &m_relay;
    int m_runs;
    bool m_verbose;
};

QString fmt(const QJsonObject &o, const char *key, int decimals = 1)
{
    return o.contains(QLatin1String(key)) ? QString::number(o.value(QLatin1String(key)).toDouble(), 'f', decimals) : QStringLiteral("-");
}

void printTable(const QList<Row> &rows, double idleRss)
{
    QTextStream out(stdout);
    out << "\nrelay RSS idle: " << QString::number(idleRss, 'f', 1) << " MB\n\n";
    out << "| workload | N | msgs | W | deliveries/s | p50 ms | p99 ms | relay CPU µs/delivery | relay CPU % | client CPU % | deltas/frame |\n";
    out << "|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const Row &r : rows) {
        if (!r.figures.contains(QLatin1String("deliveriesPerSecond")))
            continue;
        out << "| " << r.workload << " | " << r.params.value(QLatin1String("n")).toInt() << " | "
            << r.params.value(QLatin1String("messages")).toInt() << " | " << r.params.value(QLatin1String("window")).toInt()
            << " | " << fmt(r.figures, "deliveriesPerSecond", 0) << " | " << fmt(r.figures, "p50ms", 3) << " | "
            << fmt(r.figures, "p99ms", 3) << " | " << fmt(r.figures, "relayCpuUsPerDelivery", 2) << " | "
            << fmt(r.figures, "relayCpuPercent", 0) << " | " << fmt(r.figures, "clientCpuPercent", 0) << " | "
            << fmt(r.figures, "deltasPerFrame", 1) << " |\n";
    }
    out << "\n| join: keys | connect→ready ms | wire MB | keys/s | relay CPU ms | relay RSS after MB | relay peak MB |\n|---|---|---|---|---|---|---|\n";
    for (const Row &r : rows) {
        if (r.workload != QLatin1String("join"))
            continue;
        out << "| " << r.params.value(QLatin1String("keys")).toInt() << " | " << fmt(r.figures, "ms") << " | "
            << fmt(r.figures, "wireMB", 2) << " | " << fmt(r.figures, "keysPerSecond", 0) << " | " << fmt(r.figures, "relayCpuMs", 0)
            << " | " << fmt(r.figures, "relayRssAfterMB") << " | " << fmt(r.figures, "relayPeakMB") << " |\n";
    }
    for (const Row &r : rows) {
        if (r.workload == QLatin1String("resync")) {
            out << "\nresync: " << r.params.value(QLatin1String("changed")).toInt() << " of " << r.params.value(QLatin1String("keys")).toInt()
                << " keys changed: " << fmt(r.figures, "bytes", 0) << " bytes exchanged (changed entries "
                << fmt(r.figures, "changedEntryBytes", 0) << " B, ratio " << fmt(r.figures, "ratio", 2) << ", budget "
                << fmt(r.figures, "budgetBytes", 0) << " B), converged in " << fmt(r.figures, "ms") << " ms\n";
        } else if (r.workload == QLatin1String("idle-connections")) {
            out << "idle connections: " << r.params.value(QLatin1String("connections")).toInt() << " held, relay RSS "
                << fmt(r.figures, "relayRssMB") << " MB (idle " << fmt(r.figures, "relayRssIdleMB") << " MB), "
                << fmt(r.figures, "kbPerConnection", 2) << " KB per connection\n";
        } else if (r.workload == QLatin1String("unloaded, during a flood")) {
            out << "flood: " << r.params.value(QLatin1String("flooders")).toInt() << " flooders sent "
                << fmt(r.figures, "floodMessages", 0) << " messages and were cut off " << fmt(r.figures, "floodCutOffs", 0)
                << " times (" << fmt(r.figures, "floodRateLimitedErrors", 0) << " rate-limited errors seen); the real peers' p50 "
                << fmt(r.figures, "p50ms", 3) << " ms, p99 " << fmt(r.figures, "p99ms", 3) << " ms\n";
        } else if (r.workload == QLatin1String("peer-memory")) {
            out << "peer memory: " << fmt(r.figures, "bytesPerKey", 0) << " bytes per key at " << r.params.value(QLatin1String("keys")).toInt()
                << " keys; " << fmt(r.figures, "overheadBytesPerKey", 0) << " beyond the key and value ("
                << fmt(r.figures, "payloadBytesPerKey", 0) << " B)\n";
        }
    }
    out.flush();
}

} // namespace

// --flood-url URL: the flooding side of the flood workload, run as a child
// process; on SIGTERM it prints "sent cut-offs rate-limited-errors".
static int runFlooders(const QUrl &url, int count)
{
    std::vector<std::unique_ptr<Flooder>> flooders;
    for (int i = 0; i < count; ++i) {
        flooders.push_back(std::make_unique<Flooder>(url, i));
        flooders.back()->start();
    }
    static int pipeFds[2];
    if (::pipe(pipeFds) != 0)
        return 1;
    std::signal(SIGTERM, [](int) { [[maybe_unused]] auto n = ::write(pipeFds[1], "x", 1); });
    QSocketNotifier notifier(pipeFds[0], QSocketNotifier::Read);
    QObject::connect(&notifier, &QSocketNotifier::activated, &notifier, [] { QCoreApplication::quit(); });
    QCoreApplication::exec();
    quint64 sent = 0;
    int closes = 0, limited = 0;
    for (auto &f : flooders) {
        f->stop();
        sent += f->sent;
        closes += f->closes;
        limited += f->rateLimited;
    }
    std::printf("%llu %d %d\n", static_cast<unsigned long long>(sent), closes, limited);
    return 0;
}

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    for (int i = 1; i + 1 < argc; ++i) {
        if (qstrcmp(argv[i], "--flood-url") == 0) {
            const int count = i + 3 < argc && qstrcmp(argv[i + 2], "--flooders") == 0 ? atoi(argv[i + 3]) : 3;
            return runFlooders(QUrl(QString::fromLocal8Bit(argv[i + 1])), qMax(1, count));
        }
    }
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Benchmarks the distmap relay and map (see docs/BENCHMARKS.md)."));
    parser.addHelpOption();
    const QCommandLineOption binaryOption(QStringLiteral("distmap"), QStringLiteral("Path of the distmap binary (default: next to this one)."), QStringLiteral("PATH"));
    const QCommandLineOption workloadOption(QStringLiteral("workload"),
        QStringLiteral("Comma-separated: fanout, allwrite, latency, flood, join, resync, memory, all (default all)."), QStringLiteral("LIST"), QStringLiteral("all"));
    const QCommandLineOption runsOption(QStringLiteral("runs"), QStringLiteral("Runs per row; medians are reported (default 3)."), QStringLiteral("N"), QStringLiteral("3"));
    const QCommandLineOption smokeOption(QStringLiteral("smoke"), QStringLiteral("Tiny sizes, one run: checks the bench still works (CI)."));
    const QCommandLineOption jsonOption(QStringLiteral("json"), QStringLiteral("Also write the rows as JSON to FILE."), QStringLiteral("FILE"));
    const QCommandLineOption bigOption(QStringLiteral("join-million"), QStringLiteral("Include the 1,000,000-key join (on by default unless --smoke)."));
    parser.addOptions({binaryOption, workloadOption, runsOption, smokeOption, jsonOption, bigOption});
    parser.process(app);

    const bool smoke = parser.isSet(smokeOption);
    bool ok = false;
    const int runs = smoke ? 1 : parser.value(runsOption).toInt(&ok);
    if (!smoke && (!ok || runs < 1)) {
        std::fprintf(stderr, "distmap-bench: --runs must be a positive number\n");
        return 2;
    }
    QStringList workloads = parser.value(workloadOption).split(QLatin1Char(','), Qt::SkipEmptyParts);
    if (workloads.contains(QStringLiteral("all")))
        workloads = {QStringLiteral("fanout"), QStringLiteral("allwrite"), QStringLiteral("latency"), QStringLiteral("flood"), QStringLiteral("join"),
                     QStringLiteral("resync"), QStringLiteral("memory")};
    const QString binary = parser.isSet(binaryOption) ? parser.value(binaryOption)
                                                      : QCoreApplication::applicationDirPath() + QStringLiteral("/distmap");
    RelayProcess relay;
    if (!relay.start(binary, {})) {
        std::fprintf(stderr, "distmap-bench: could not start '%s relay'\n", qPrintable(binary));
        return 3;
    }
    BenchUtil::spin(200);
    const double idleRss = relay.rssMb();
    Bench bench(relay, runs, true);
    bool good = true;
    for (const QString &w : std::as_const(workloads)) {
        if (w == QLatin1String("fanout")) {
            good = good && bench.throughput(QStringLiteral("fan-out"), 1, smoke ? 500 : 100000, 100, false);
            good = good && bench.throughput(QStringLiteral("fan-out"), 10, smoke ? 500 : 50000, 100, false);
            good = good && bench.throughput(QStringLiteral("fan-out"), 50, smoke ? 200 : 20000, 100, false);
            good = good && bench.throughput(QStringLiteral("fan-out, 1 delta/frame"), 10, smoke ? 500 : 50000, 100, false, true);
            good = good && bench.throughput(QStringLiteral("fan-out, 1 delta/frame"), 50, smoke ? 200 : 20000, 100, false, true);
        } else if (w == QLatin1String("allwrite")) {
            good = good && bench.throughput(QStringLiteral("all-write"), 10, smoke ? 500 : 50000, 100, true);
        } else if (w == QLatin1String("latency")) {
            good = good && bench.throughput(QStringLiteral("fan-out, unloaded"), 10, smoke ? 200 : 5000, 1, false);
        } else if (w == QLatin1String("join")) {
            good = good && bench.join(smoke ? 1000 : 10000);
            if (!smoke) {
                good = good && bench.join(100000);
                good = good && bench.join(1000000);
            }
        } else if (w == QLatin1String("resync")) {
            good = good && bench.resync(smoke ? 5000 : 100000, smoke ? 1000 : 20000);
        } else if (w == QLatin1String("flood")) {
            // A second relay with the default limits (the first runs without
            // a rate limit so benchmark writers are not cut off).
            RelayProcess limited;
            if (!limited.start(binary, {QStringLiteral("--max-rate"), QString::number(Relay::Options().messagesPerSecond)})) {
                std::fprintf(stderr, "distmap-bench: could not start a rate-limited relay\n");
                return 3;
            }
            Bench floodBench(limited, runs, true);
            good = good && floodBench.flood(qEnvironmentVariableIsSet("BENCH_FLOODERS") ? qEnvironmentVariableIntValue("BENCH_FLOODERS") : 3, smoke ? 200 : 5000);
            bench.rows.append(floodBench.rows);
            limited.stop();
        } else if (w == QLatin1String("memory")) {
            good = good && bench.idleConnections(smoke ? 50 : 10000);
            good = good && bench.peerMemory(smoke ? 10000 : 1000000);
        } else {
            std::fprintf(stderr, "distmap-bench: unknown workload '%s'\n", qPrintable(w));
            return 2;
        }
        if (!good)
            break;
    }
    printTable(bench.rows, idleRss);
    if (parser.isSet(jsonOption)) {
        QJsonArray array;
        for (const Row &r : std::as_const(bench.rows))
            array.append(QJsonObject{{QStringLiteral("workload"), r.workload}, {QStringLiteral("params"), r.params}, {QStringLiteral("figures"), r.figures}});
        QFile f(parser.value(jsonOption));
        if (f.open(QIODevice::WriteOnly))
            f.write(QJsonDocument(QJsonObject{{QStringLiteral("relayRssIdleMB"), idleRss},
                                              {QStringLiteral("date"), QDateTime::currentDateTimeUtc().toString(Qt::ISODate)},
                                              {QStringLiteral("rows"), array}}).toJson());
    }
    relay.stop();
    if (!good) {
        std::fprintf(stderr, "distmap-bench: a workload failed (see above)\n");
        return 1;
    }
    return 0;
}
