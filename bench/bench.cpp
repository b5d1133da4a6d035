#include "bench.h"

#include <QTcpSocket>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sys/resource.h>

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

double percentile(std::vector<double> &v, double p)
{
    if (v.empty())
        return 0;
    const size_t k = std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5));
    std::nth_element(v.begin(), v.begin() + qsizetype(k), v.end());
    return v[k];
}

namespace {

double median(std::vector<double> v)
{
    return percentile(v, 0.5);
}

} // namespace

void Bench::say(const QString &s)
{
    if (m_verbose)
        std::fprintf(stderr, "%s\n", qPrintable(s));
}

QJsonObject Bench::medianOf(const std::vector<QJsonObject> &results)
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

QUrl Bench::relayUrlFor(int peer) const
{
    const int relays = 1 + int(m_more.size());
    const int r = peer % relays;
    return r == 0 ? m_relay.url : m_more[size_t(r - 1)]->url;
}

double Bench::relaysCpuSeconds() const
{
    double cpu = m_relay.cpuSeconds();
    for (const RelayProcess *r : m_more)
        cpu += r->cpuSeconds();
    return cpu;
}

qint64 Bench::redisPublishes() const
{
    if (!m_redisPort)
        return -1;
    QTcpSocket socket;
    socket.connectToHost(QHostAddress::LocalHost, m_redisPort);
    if (!socket.waitForConnected(5000))
        return -1;
    socket.write("INFO commandstats\r\n");
    // One bulk string: "$<length>\r\n<text>\r\n".
    QByteArray reply;
    auto complete = [&] {
        const qsizetype head = reply.indexOf("\r\n");
        return head > 0 && reply.size() >= head + 2 + reply.mid(1, head - 1).toLongLong() + 2;
    };
    while (!complete() && socket.waitForReadyRead(2000))
        reply += socket.readAll();
    // "cmdstat_spublish:calls=N,usec=..."
    const int at = reply.indexOf("cmdstat_spublish:calls=");
    if (at < 0)
        return 0;
    const int from = at + int(qstrlen("cmdstat_spublish:calls="));
    return reply.mid(from, reply.indexOf(',', from) - from).toLongLong();
}
