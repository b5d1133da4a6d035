// Faults with real processes (issue 5, test 2): a `distmap relay`, four
// peers (faultpeer), each behind its own faultproxy. Every round the peers
// write, a seeded generator injects faults through the proxies (delay,
// blackhole, drop, reset, refuse), then the relay is killed with SIGKILL
// and restarted on the same port. Checked every round: every peer
// reconnects and resyncs, and all converge (equal digests, every write
// present). At the end every acknowledged write is on every peer.
//
// DISTMAP_FAULT_ROUNDS (default 5; the `slow` variant runs 40) and
// DISTMAP_FAULT_SEED (default: random, printed) replay a run.
#include "faultharness.h"

#include <QDateTime>
#include <QProcess>
#include <QRandomGenerator>
#include <QSet>
#include <QTest>

#include <algorithm>
#include <csignal>
#include <functional>
#include <memory>

namespace {

constexpr int Peers = 4;
constexpr int KeysPerWrite = 10;
const QString MapUri = QStringLiteral("/faults");

qint64 now() { return QDateTime::currentMSecsSinceEpoch(); }

} // namespace

using namespace FaultHarness;

class tst_Faults : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void peersSurviveFaultsAndRelayKills();

private:
    std::unique_ptr<Child> startRelay(quint16 port);
    quint16 m_relayPort = 0;
};

std::unique_ptr<Child> tst_Faults::startRelay(quint16 port)
{
    return startRelayProcess(port, &m_relayPort);
}

void tst_Faults::peersSurviveFaultsAndRelayKills()
{
    const int rounds = qEnvironmentVariableIsSet("DISTMAP_FAULT_ROUNDS") ? qEnvironmentVariableIntValue("DISTMAP_FAULT_ROUNDS") : 5;
    const quint32 seed = qEnvironmentVariableIsSet("DISTMAP_FAULT_SEED") ? quint32(qEnvironmentVariable("DISTMAP_FAULT_SEED").toUInt())
                                                                        : QRandomGenerator::global()->generate();
    qInfo("seed %u, %d rounds (replay: DISTMAP_FAULT_SEED=%u DISTMAP_FAULT_ROUNDS=%d)", seed, rounds, seed, rounds);
    QRandomGenerator rng(seed);

    std::unique_ptr<Child> relay = startRelay(0);
    QVERIFY(relay);

    std::vector<std::unique_ptr<Child>> proxies;
    std::vector<std::unique_ptr<Child>> peers;
    for (int i = 0; i < Peers; ++i) {
        proxies.push_back(std::make_unique<Child>(QStringLiteral("proxy%1").arg(i), binaryDir() + QStringLiteral("/faultproxy"),
                                                  QStringList{QStringLiteral("0"), QString::number(m_relayPort)}));
        const QString line = proxies.back()->waitLine([](const QString &l) { return l.startsWith(QLatin1String("listening ")); });
        QVERIFY2(!line.isEmpty(), "the proxy did not start");
        const QString url = QStringLiteral("ws://127.0.0.1:%1").arg(line.mid(10));
        peers.push_back(std::make_unique<Child>(QStringLiteral("peer%1").arg(i), binaryDir() + QStringLiteral("/faultpeer"),
                                                QStringList{url, MapUri, QStringLiteral("100"), QStringLiteral("1000")}));
    }
    std::vector<int> cursor(Peers, 0);
    for (auto &p : peers)
        QVERIFY2(!p->waitLine([](const QString &l) { return l.startsWith(QLatin1String("synced ")); }).isEmpty(),
                 qPrintable(p->name() + QStringLiteral(" never synced")));

    auto proxyCommand = [&](int i, const QString &command) {
        int from = int(proxies[i]->lines().size());
        proxies[i]->send(command);
        return !proxies[i]->waitLine([&](const QString &l) { return l.startsWith(QLatin1String("ok ")); }, &from).isEmpty();
    };

    QStringList written;                 // every batch prefix
    QHash<QString, int> writer;          // prefix -> peer
    int keys = 0;
    auto write = [&](int peer, const QString &prefix) {
        peers[peer]->send(QStringLiteral("write %1 %2").arg(prefix).arg(KeysPerWrite));
        written.append(prefix);
        writer.insert(prefix, peer);
        keys += KeysPerWrite;
    };
    // Polls digests until every peer holds every key written and all agree.
    auto converged = [&]() -> bool {
        QSet<QString> digests;
        for (int i = 0; i < Peers; ++i) {
            int from = int(peers[i]->lines().size());
            peers[i]->send(QStringLiteral("digest"));
            const QString d = peers[i]->waitLine([](const QString &l) { return l.startsWith(QLatin1String("digest ")); }, &from);
            const QStringList f = d.split(QLatin1Char(' '));
            if (f.size() != 4 || f[2].toInt() != keys)
                return false;
            digests.insert(f[3]);
        }
        return digests.size() == 1;
    };

    QHash<QString, int> faultCounts;
    QVector<qint64> reconnectMs;   // relay restart started -> peer resynced
    QVector<qint64> killToSyncMs;  // SIGKILL -> peer resynced
    QVector<qint64> convergeMs;    // last fault of the round healed -> all converged
    const QStringList faults{QStringLiteral("delay"), QStringLiteral("blackhole"), QStringLiteral("drop"),
                             QStringLiteral("reset"), QStringLiteral("refuse")};

    for (int round = 0; round < rounds; ++round) {
        // Writes before the faults, on some peers.
        for (int i = 0; i < Peers; ++i) {
            if (rng.bounded(2))
                write(i, QStringLiteral("r%1-p%2-a").arg(round).arg(i));
        }
        // Proxy faults on a random non-empty subset of peers, with writes
        // made while they last.
        const QString fault = faults[int(rng.bounded(faults.size()))];
        QVector<int> hit;
        for (int i = 0; i < Peers; ++i) {
            if (rng.bounded(2) || (i == Peers - 1 && hit.isEmpty()))
                hit.append(i);
        }
        for (int i : hit) {
            QString command = fault;
            if (fault == QLatin1String("delay"))
                command += QStringLiteral(" %1").arg(50 + rng.bounded(400));
            else if (fault == QLatin1String("refuse"))
                command += QStringLiteral(" on");
            QVERIFY(proxyCommand(i, command));
            if (fault == QLatin1String("refuse"))
                QVERIFY(proxyCommand(i, QStringLiteral("reset"))); // and make them try
            faultCounts[fault] += 1;
        }
        write(int(rng.bounded(Peers)), QStringLiteral("r%1-during").arg(round));
        QTest::qWait(200 + int(rng.bounded(1300))); // the fault's duration is part of the scenario
        for (int i : hit) {
            QVERIFY(proxyCommand(i, QStringLiteral("refuse off")));
            QVERIFY(proxyCommand(i, QStringLiteral("pass")));
        }

        // Kill the relay; write while it is down; restart on the same port.
        const qint64 killedAt = now();
        ::kill(pid_t(relay->process().processId()), SIGKILL); // our own child, by pid
        QVERIFY(relay->process().waitForFinished(10000));
        faultCounts[QStringLiteral("relay SIGKILL")] += 1;
        write(int(rng.bounded(Peers)), QStringLiteral("r%1-down").arg(round));
        QTest::qWait(int(rng.bounded(500)));
        // Times count from the restart command: a peer may be back before
        // the relay's "listening" line has reached us.
        const qint64 restartedAt = now();
        relay = startRelay(m_relayPort);
        QVERIFY2(relay, "the relay did not restart on its port");

        // Every peer reconnects and resyncs after the restart.
        for (int i = 0; i < Peers; ++i) {
            const QString synced = peers[i]->waitLine([restartedAt](const QString &l) {
                return l.startsWith(QLatin1String("synced ")) && l.mid(7).toLongLong() >= restartedAt;
            }, &cursor[i]);
            QVERIFY2(!synced.isEmpty(), qPrintable(QStringLiteral("seed %1 round %2: %3 did not resync").arg(seed).arg(round).arg(peers[i]->name())));
            reconnectMs.append(synced.mid(7).toLongLong() - restartedAt);
            killToSyncMs.append(synced.mid(7).toLongLong() - killedAt);
        }
        // And all converge on every write made so far.
        QElapsedTimer timer;
        timer.start();
        bool ok = false;
        while (!(ok = converged()) && timer.elapsed() < ConditionTimeoutMs)
            QTest::qWait(20);
        QVERIFY2(ok, qPrintable(QStringLiteral("seed %1 round %2: peers did not converge").arg(seed).arg(round)));
        convergeMs.append(now() - restartedAt);
        const qint64 slowest = *std::max_element(reconnectMs.cend() - Peers, reconnectMs.cend());
        qInfo("round %d: %s on %lld peer(s), slowest resync %lld ms, converged %lld ms after the restart", round,
              qPrintable(fault), qint64(hit.size()), slowest, convergeMs.last());
        if (slowest > 3000) {
            // Say what the slow peer went through, for the report.
            for (int i = 0; i < Peers; ++i) {
                if (reconnectMs[reconnectMs.size() - Peers + i] == slowest) {
                    for (const QString &l : peers[i]->lines().mid(qMax(0, int(peers[i]->lines().size()) - 12)))
                        qInfo("  %s: %s", qPrintable(peers[i]->name()), qPrintable(l));
                }
            }
        }
    }

    // Every acknowledged write is on every peer.
    QSet<QString> acked;
    for (auto &p : peers) {
        for (const QString &l : p->lines()) {
            if (l.startsWith(QLatin1String("acked ")))
                acked.insert(l.mid(6));
        }
    }
    for (int i = 0; i < Peers; ++i) {
        for (const QString &prefix : std::as_const(written)) {
            int from = int(peers[i]->lines().size());
            peers[i]->send(QStringLiteral("count %1 %2").arg(prefix).arg(KeysPerWrite));
            const QString c = peers[i]->waitLine([&](const QString &l) { return l.startsWith(QStringLiteral("count %1 ").arg(prefix)); }, &from);
            QVERIFY2(c == QStringLiteral("count %1 %2").arg(prefix).arg(KeysPerWrite),
                     qPrintable(QStringLiteral("seed %1: %2 lacks writes of %3 (%4)%5").arg(seed).arg(peers[i]->name(), prefix, c,
                                acked.contains(prefix) ? QStringLiteral(", acknowledged") : QString())));
        }
    }

    QStringList counts;
    for (auto it = faultCounts.cbegin(); it != faultCounts.cend(); ++it)
        counts.append(QStringLiteral("%1 %2").arg(it.key()).arg(it.value()));
    counts.sort();
    qInfo("seed %u: %d rounds, %d peers, %lld batches written (%d keys), %lld acknowledged", seed, rounds, Peers,
          qint64(written.size()), keys, qint64(acked.size()));
    qInfo("faults: %s", qPrintable(counts.join(QStringLiteral(", "))));
    qInfo("relay restart to peer resynced (ms): median %.0f, max %lld, n %lld", median(reconnectMs),
          *std::max_element(reconnectMs.cbegin(), reconnectMs.cend()), qint64(reconnectMs.size()));
    qInfo("SIGKILL to resynced (ms): median %.0f, max %lld", median(killToSyncMs),
          *std::max_element(killToSyncMs.cbegin(), killToSyncMs.cend()));
    qInfo("converged after the round's last fault (ms): median %.0f, max %lld", median(convergeMs),
          *std::max_element(convergeMs.cbegin(), convergeMs.cend()));
    // The targets (issue 5): medians, so one slow round on a loaded
    // machine does not fail the run; the maxima are reported above.
    QVERIFY2(median(reconnectMs) <= 3000, "median reconnect over 3 s");
    QVERIFY2(median(convergeMs) <= 5000, "median convergence over 5 s");

    for (auto &p : peers)
        p->send(QStringLiteral("quit"));
    for (auto &p : peers)
        p->process().waitForFinished(5000);
}

QTEST_GUILESS_MAIN(tst_Faults)
#include "tst_faults.moc"
