// distmap-bench: measures the relay and the map the way the anchors in
// ../shared/anchors measure a node `ws` relay and y-websocket, so the figures
// can sit side by side. The relay runs as its own process (`distmap relay`),
// the peers in this one; relay CPU and RSS come from /proc/<pid>.
//
// This file reads the command line and runs the workloads; bench.h has
// what they share, workload_*.cpp one workload each, report.cpp the output.

#include "bench.h"
#include "benchutil.h"
#include "relay.h"
#include "relayprocess.h"
#include "report.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QProcess>

#include <cstdio>
#include <memory>
#include <vector>
#include <cstdlib>

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
        QStringLiteral("Comma-separated: fanout, allwrite, latency, flood, join, resync, memory, cli, heartbeats (--redis), all (default all)."), QStringLiteral("LIST"), QStringLiteral("all"));
    const QCommandLineOption runsOption(QStringLiteral("runs"), QStringLiteral("Runs per row; medians are reported (default 3)."), QStringLiteral("N"), QStringLiteral("3"));
    const QCommandLineOption smokeOption(QStringLiteral("smoke"), QStringLiteral("Tiny sizes, one run: checks the bench still works (CI)."));
    const QCommandLineOption jsonOption(QStringLiteral("json"), QStringLiteral("Also write the rows as JSON to FILE."), QStringLiteral("FILE"));
    const QCommandLineOption bigOption(QStringLiteral("join-million"), QStringLiteral("Include the 1,000,000-key join (on by default unless --smoke)."));
    const QCommandLineOption relaysOption(QStringLiteral("relays"),
        QStringLiteral("Federate N relays through a redis-server this bench starts (with --redis; fanout, allwrite and latency only)."),
        QStringLiteral("N"), QStringLiteral("1"));
    const QCommandLineOption redisOption(QStringLiteral("redis"), QStringLiteral("Run the relays on a Redis bus (docs/SCALING.md)."));
    parser.addOptions({binaryOption, workloadOption, runsOption, smokeOption, jsonOption, bigOption, relaysOption, redisOption});
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
                     QStringLiteral("resync"), QStringLiteral("memory"), QStringLiteral("cli")};
    const QString binary = parser.isSet(binaryOption) ? parser.value(binaryOption)
                                                      : QCoreApplication::applicationDirPath() + QStringLiteral("/distmap");
    // --redis: a redis-server of our own on a free loopback port, and every
    // relay on it.
    const bool redis = parser.isSet(redisOption);
    const int relayCount = parser.value(relaysOption).toInt();
    if (relayCount < 1 || relayCount > 16 || (relayCount > 1 && !redis)) {
        std::fprintf(stderr, "distmap-bench: --relays takes 1 to 16, and more than 1 needs --redis\n");
        return 2;
    }
    QProcess redisServer;
    QStringList relayArguments;
    quint16 redisPort = 0;
    if (redis) {
        redisPort = BenchUtil::freePort();
        redisServer.start(QStringLiteral("redis-server"), {QStringLiteral("--port"), QString::number(redisPort), QStringLiteral("--bind"),
                                                           QStringLiteral("127.0.0.1"), QStringLiteral("--save"), QString(),
                                                           QStringLiteral("--appendonly"), QStringLiteral("no")});
        if (!redisServer.waitForStarted(10000) || !BenchUtil::waitUntil([&] { return BenchUtil::canConnect(redisPort); }, 10000)) {
            std::fprintf(stderr, "distmap-bench: could not start redis-server\n");
            return 3;
        }
        relayArguments = {QStringLiteral("--redis"), QStringLiteral("redis://127.0.0.1:%1").arg(redisPort)};
    }
    RelayProcess relay;
    if (!relay.start(binary, relayArguments)) {
        std::fprintf(stderr, "distmap-bench: could not start '%s relay'\n", qPrintable(binary));
        return 3;
    }
    std::vector<std::unique_ptr<RelayProcess>> moreRelays;
    std::vector<RelayProcess *> more;
    for (int r = 1; r < relayCount; ++r) {
        moreRelays.push_back(std::make_unique<RelayProcess>());
        if (!moreRelays.back()->start(binary, relayArguments)) {
            std::fprintf(stderr, "distmap-bench: could not start relay %d\n", r + 1);
            return 3;
        }
        more.push_back(moreRelays.back().get());
    }
    BenchUtil::spin(redis ? 1000 : 200); // the relays meet on the bus
    const double idleRss = relay.rssMb();
    Bench bench(relay, runs, true);
    if (redis)
        bench.setFederation(more, redisServer.processId(), redisPort);
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
            // Longer than the rate cutoff, so a writer at the target rate
            // would be cut off if the relay took it for a flood.
            good = good && floodBench.steadyWriter(smoke ? 10000 : 100000, smoke ? 1 : Relay::Options().rateCutoffMs / 1000 + 5);
            bench.rows.append(floodBench.rows);
            limited.stop();
        } else if (w == QLatin1String("heartbeats")) {
            if (!redis) {
                std::fprintf(stderr, "distmap-bench: the heartbeats workload needs --redis\n");
                return 2;
            }
            good = good && bench.heartbeats(smoke ? 10 : 100, smoke ? 4 : 20);
        } else if (w == QLatin1String("cli")) {
            good = good && bench.commandLine(binary, smoke ? 1000 : 100000);
            if (!smoke && parser.isSet(bigOption))
                good = good && bench.commandLine(binary, 1000000);
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
    if (parser.isSet(jsonOption))
        writeJson(parser.value(jsonOption), bench.rows, idleRss);
    relay.stop();
    moreRelays.clear();
    if (redis) {
        redisServer.kill(); // ours
        redisServer.waitForFinished(5000);
    }
    if (!good) {
        std::fprintf(stderr, "distmap-bench: a workload failed (see above)\n");
        return 1;
    }
    return 0;
}
