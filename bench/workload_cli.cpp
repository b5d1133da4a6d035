// The command-line peers against a map of `keys` keys: how long `distmap
// dump`, `get` and `watch` (until its ready line) take from process start
// to exit (to the line for watch), next to the library's own join and the
// cost of starting the binary at all.

#include "bench.h"

#include "benchutil.h"

#include <QFile>
#include <QJsonValue>
#include <QLatin1Char>
#include <QProcess>

#include <cstdio>

#include <sys/resource.h>

namespace {

// Runs `binary arguments` to its end; the wall time in ms, or -1 on failure.
// *outBytes gets the size of what it printed.
double timeProcess(const QString &binary, const QStringList &arguments, qint64 *outBytes = nullptr)
{
    QProcess p;
    const qint64 t0 = nowNs();
    p.start(binary, arguments);
    if (!p.waitForStarted(10000))
        return -1;
    qint64 bytes = 0;
    // The event loop runs meanwhile: the holder in this process answers the
    // child's sync. Output is read as it comes, so a full pipe never stalls it.
    if (!BenchUtil::waitUntil([&] {
            bytes += p.readAllStandardOutput().size();
            return p.state() == QProcess::NotRunning;
        }, 120000, 1))
        return -1;
    bytes += p.readAllStandardOutput().size();
    const double ms = double(nowNs() - t0) / 1e6;
    if (p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0) {
        std::fprintf(stderr, "distmap %s: exit %d: %s\n", qPrintable(arguments.value(0)), p.exitCode(), p.readAllStandardError().constData());
        return -1;
    }
    if (outBytes)
        *outBytes = bytes;
    return ms;
}

// Starts `distmap watch` and times it to its ready line (after a set line
// per key the sync brought); then ends it.
double timeWatchReady(const QString &binary, const QStringList &arguments)
{
    QProcess p;
    const qint64 t0 = nowNs();
    p.start(binary, arguments);
    if (!p.waitForStarted(10000))
        return -1;
    // Only the unread tail is searched (plus a needle's length of overlap):
    // searching all of a 1,000,000-line output each time was quadratic.
    static const QByteArray needle("\"event\":\"ready\"");
    QByteArray tail;
    const bool ready = BenchUtil::waitUntil([&] {
        tail += p.readAllStandardOutput();
        const bool found = tail.contains(needle);
        if (tail.size() > needle.size())
            tail = tail.right(needle.size());
        return found;
    }, 120000, 1);
    const double ms = double(nowNs() - t0) / 1e6;
    p.terminate(); // our own child, by PID
    p.waitForFinished(10000);
    return ready ? ms : -1;
}

// One more run of `binary arguments` under /usr/bin/time, for that
// command's own peak resident set (MB); -1 without /usr/bin/time.
double peakRssMb(const QString &binary, const QStringList &arguments)
{
    const QString time = QStringLiteral("/usr/bin/time");
    if (!QFile::exists(time))
        return -1;
    QProcess p;
    p.setStandardOutputFile(QProcess::nullDevice());
    p.start(time, QStringList{QStringLiteral("-f"), QStringLiteral("maxrss %M")} + QStringList{binary} + arguments);
    if (!p.waitForStarted(10000) || !BenchUtil::waitUntil([&] { return p.state() == QProcess::NotRunning; }, 120000, 1))
        return -1;
    const QList<QByteArray> lines = p.readAllStandardError().trimmed().split('\n');
    const QByteArray last = lines.isEmpty() ? QByteArray() : lines.last();
    return last.startsWith("maxrss ") ? last.mid(7).toDouble() / 1024.0 : -1;
}

// The largest resident set of any child reaped so far (Linux: kB).
double childPeakMb()
{
    rusage usage{};
    getrusage(RUSAGE_CHILDREN, &usage);
    return double(usage.ru_maxrss) / 1024.0;
}

} // namespace

bool Bench::commandLine(const QString &binary, int keys)
{
    const QString uri = QStringLiteral("/bench-cli-%1").arg(keys);
    Peer holder(m_relay.url, uri, false);
    const QJsonValue value(QStringLiteral("0123456789abcdef0123456789abcdef"));
    for (int i = 0; i < keys; ++i)
        holder.map->set(QStringLiteral("key-%1").arg(i, 7, 10, QLatin1Char('0')), value);
    holder.connection->open();
    if (!BenchUtil::waitUntil([&] { return holder.map->isReady(); }, 60000))
        return false;
    const QStringList at{QStringLiteral("--url"), m_relay.url.toString(), QStringLiteral("--map"), uri};
    std::vector<QJsonObject> results;
    qint64 dumpBytes = 0;
    for (int run = -1; run < m_runs; ++run) { // run -1 warms up (page cache)
        const double start = timeProcess(binary, {QStringLiteral("--help")});
        const qint64 t0 = nowNs();
        Peer joiner(m_relay.url, uri);
        if (!BenchUtil::waitUntil([&] { return joiner.map->isReady(); }, 120000) || joiner.map->size() != keys)
            return false;
        const double join = double(nowNs() - t0) / 1e6;
        const double dump = timeProcess(binary, QStringList{QStringLiteral("dump")} + at, &dumpBytes);
        const double get = timeProcess(binary, QStringList{QStringLiteral("get"), QStringLiteral("key-0000001")} + at);
        const double watch = timeWatchReady(binary, QStringList{QStringLiteral("watch")} + at);
        if (start < 0 || dump < 0 || get < 0 || watch < 0) {
            say(QStringLiteral("cli: a command failed (start %1, dump %2, get %3, watch %4 ms; -1 failed)")
                    .arg(start).arg(dump).arg(get).arg(watch));
            return false;
        }
        if (run < 0)
            continue;
        results.push_back({{QStringLiteral("processStartMs"), start},
                           {QStringLiteral("libraryJoinMs"), join},
                           {QStringLiteral("dumpMs"), dump},
                           {QStringLiteral("getMs"), get},
                           {QStringLiteral("watchReadyMs"), watch}});
    }
    QJsonObject f = medianOf(results);
    f.insert(QStringLiteral("dumpMB"), double(dumpBytes) / 1e6);
    f.insert(QStringLiteral("dumpPeakRssMB"), peakRssMb(binary, QStringList{QStringLiteral("dump")} + at));
    f.insert(QStringLiteral("childPeakMB"), childPeakMb());
    rows.append({QStringLiteral("cli"), {{QStringLiteral("keys"), keys}}, f});
    say(QStringLiteral("cli %1 keys: dump %2 ms (peak RSS %8 MB, output %9 MB), get %3 ms, watch ready %4 ms (join %5 ms + start %6 ms); largest child RSS %7 MB")
            .arg(keys)
            .arg(f.value(QStringLiteral("dumpMs")).toDouble(), 0, 'f', 1)
            .arg(f.value(QStringLiteral("getMs")).toDouble(), 0, 'f', 1)
            .arg(f.value(QStringLiteral("watchReadyMs")).toDouble(), 0, 'f', 1)
            .arg(f.value(QStringLiteral("libraryJoinMs")).toDouble(), 0, 'f', 1)
            .arg(f.value(QStringLiteral("processStartMs")).toDouble(), 0, 'f', 1)
            .arg(f.value(QStringLiteral("childPeakMB")).toDouble(), 0, 'f', 0)
            .arg(f.value(QStringLiteral("dumpPeakRssMB")).toDouble(), 0, 'f', 0)
            .arg(f.value(QStringLiteral("dumpMB")).toDouble(), 0, 'f', 1));
    return true;
}
