#pragma once

// What the workloads of distmap-bench share: the peers, the figures, and
// Bench, which runs the workloads (each in its own workload_*.cpp file)
// against one relay and collects one Row per table row.

#include "connection.h"
#include "distributedmap.h"
#include "relayprocess.h"

#include <QJsonObject>
#include <QList>
#include <QString>
#include <QUrl>

#include <memory>
#include <vector>

qint64 nowNs(); // monotonic clock
double clientCpuSeconds(); // user + system time of this process

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

double percentile(std::vector<double> &v, double p);

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

    // Federation (--relays N --redis): more relays on the same Redis. Peer i
    // of a workload connects to relay i % (1 + more.size()), the writer to
    // the first; relay CPU is the sum; Redis's CPU and its SPUBLISH count
    // are read around each run.
    void setFederation(const std::vector<RelayProcess *> &more, qint64 redisPid, quint16 redisPort)
    {
        m_more = more;
        m_redisPid = redisPid;
        m_redisPort = redisPort;
    }

    // workload_throughput.cpp: fan-out, all-write and unloaded latency.
    // writers: 1 (fan-out) or n (all-write: every peer writes and reads).
    // unbatched: flush after every write, one delta per frame, as the
    // anchors' clients send (the library would otherwise batch them).
    bool throughput(const QString &name, int n, int messages, int window, bool allWrite, bool unbatched = false);
    bool join(int keys); // workload_join.cpp
    bool resync(int keys, int changed); // workload_resync.cpp
    bool idleConnections(int count); // workload_memory.cpp
    bool peerMemory(int keys); // workload_memory.cpp
    bool flood(int flooders, int messages); // workload_flood.cpp
    bool steadyWriter(int perSecond, int seconds); // workload_flood.cpp
    bool heartbeats(int others, int seconds); // workload_heartbeats.cpp (with --redis)
    bool commandLine(const QString &binary, int keys); // workload_cli.cpp: dump, get, watch

private:
    void say(const QString &s);
    static QJsonObject medianOf(const std::vector<QJsonObject> &results);
    bool throughputRun(int n, int messages, int window, bool allWrite, bool unbatched, int run, QJsonObject *out);

    QUrl relayUrlFor(int peer) const;
    double relaysCpuSeconds() const;
    qint64 redisPublishes() const; // SPUBLISH calls so far; -1 without Redis

    RelayProcess &m_relay;
    std::vector<RelayProcess *> m_more;
    qint64 m_redisPid = 0;
    quint16 m_redisPort = 0;
    int m_runs;
    bool m_verbose;
};

// The flooding side of the flood workload (workload_flood.cpp), run as a
// child process by `--flood-url URL [--flooders N]`.
int runFlooders(const QUrl &url, int count);
