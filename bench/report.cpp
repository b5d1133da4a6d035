#include "report.h"

#include <QDateTime>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLatin1String>
#include <QTextStream>

namespace {

QString fmt(const QJsonObject &o, const char *key, int decimals = 1)
{
    return o.contains(QLatin1String(key)) ? QString::number(o.value(QLatin1String(key)).toDouble(), 'f', decimals) : QStringLiteral("-");
}

} // namespace

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
    bool federated = false;
    for (const Row &r : rows)
        federated = federated || r.figures.contains(QLatin1String("busPublishesPerFrame"));
    if (federated) {
        out << "\n| federated workload | N | bus publishes per frame sent | Redis CPU µs/publish | Redis CPU % |\n|---|---|---|---|---|\n";
        for (const Row &r : rows) {
            if (!r.figures.contains(QLatin1String("busPublishesPerFrame")))
                continue;
            out << "| " << r.workload << " | " << r.params.value(QLatin1String("n")).toInt() << " | "
                << fmt(r.figures, "busPublishesPerFrame", 3) << " | " << fmt(r.figures, "redisCpuUsPerPublish", 2) << " | "
                << fmt(r.figures, "redisCpuPercent", 0) << " |\n";
        }
    }
    for (const Row &r : rows) {
        if (r.workload == QLatin1String("heartbeats"))
            out << "\nheartbeats of " << r.params.value(QLatin1String("relays")).toInt() << " other relays for "
                << fmt(r.figures, "seconds", 0) << " s: " << fmt(r.figures, "relayCpuPercent", 3) << " % of a core per relay, Redis "
                << fmt(r.figures, "redisCpuPercent", 3) << " %\n";
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

void writeJson(const QString &path, const QList<Row> &rows, double idleRss)
{
    QJsonArray array;
    for (const Row &r : rows)
        array.append(QJsonObject{{QStringLiteral("workload"), r.workload}, {QStringLiteral("params"), r.params}, {QStringLiteral("figures"), r.figures}});
    QFile f(path);
    if (f.open(QIODevice::WriteOnly))
        f.write(QJsonDocument(QJsonObject{{QStringLiteral("relayRssIdleMB"), idleRss},
                                          {QStringLiteral("date"), QDateTime::currentDateTimeUtc().toString(Qt::ISODate)},
                                          {QStringLiteral("rows"), array}}).toJson());
}
