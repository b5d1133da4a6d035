// Soak: a `distmap relay` process and 8 peers writing steadily for a long
// time (DISTMAP_SOAK_SECONDS, default 3600), with peers dropping and
// reconnecting. At every check (DISTMAP_SOAK_CHECKS, default 4, evenly
// spaced) writes pause, the peers must converge, and the relay's and this
// process's memory are recorded; from the first check to the last, neither
// may grow by 10 % or more (resident memory). Label `long`: not in the
// default suite.

#include "peerfixture.h"
#include "distributedmap_p.h"

#include <QElapsedTimer>
#include <QFile>
#include <QProcess>
#include <QRandomGenerator>
#include <QRegularExpression>
#include <QTest>

#include <malloc.h>

namespace {

qint64 rssKb(qint64 pid)
{
    QFile f(pid ? QStringLiteral("/proc/%1/status").arg(pid) : QStringLiteral("/proc/self/status"));
    if (!f.open(QIODevice::ReadOnly))
        return -1;
    for (const QByteArray &line : f.readAll().split('\n')) {
        if (line.startsWith("VmRSS:"))
            return line.mid(6).trimmed().split(' ').first().toLongLong();
    }
    return -1;
}

} // namespace

class tst_Soak : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void steadyWritesWithChurn();
};

void tst_Soak::steadyWritesWithChurn()
{
    const int seconds = qEnvironmentVariableIsSet("DISTMAP_SOAK_SECONDS") ? qEnvironmentVariableIntValue("DISTMAP_SOAK_SECONDS") : 3600;
    const int checks = qEnvironmentVariableIsSet("DISTMAP_SOAK_CHECKS") ? qEnvironmentVariableIntValue("DISTMAP_SOAK_CHECKS") : 4;
    const quint32 seed = QRandomGenerator::global()->generate();
    qInfo("seed %u, %d s, %d checks", seed, seconds, checks);
    QRandomGenerator rng(seed);

    QProcess relay;
    relay.start(qEnvironmentVariable("DISTMAP_BINARY"), {QStringLiteral("relay"), QStringLiteral("--port"), QStringLiteral("0")});
    QVERIFY(relay.waitForStarted(10000));
    QVERIFY(QTest::qWaitFor([&] { return relay.canReadLine() || relay.waitForReadyRead(100); }, 10000));
    const auto match = QRegularExpression(QStringLiteral("listening on (\\S+)")).match(QString::fromUtf8(relay.readLine()));
    QVERIFY(match.hasMatch());
    const QUrl url(match.captured(1));

    std::vector<std::unique_ptr<TestPeer>> peers;
    for (int i = 0; i < 8; ++i) {
        peers.push_back(std::make_unique<TestPeer>(url, QStringLiteral("/soak"), QStringLiteral("p%1").arg(i)));
        peers.back()->map->setAntiEntropyInterval(20000);
    }
    QTRY_VERIFY_WITH_TIMEOUT(std::all_of(peers.begin(), peers.end(), [](auto &p) { return p->map->isReady(); }), 30000);

    quint64 writes = 0;
    bool writing = true;
    QTimer writer;
    writer.setInterval(5); // 8 writes every 5 ms; about 720 writes/s measured (coarse timers)
    connect(&writer, &QTimer::timeout, this, [&] {
        if (!writing)
            return;
        for (int k = 0; k < 8; ++k) {
            TestPeer &p = *peers[rng.bounded(8)];
            const QString key = QStringLiteral("key-%1").arg(rng.bounded(5000));
            if (rng.bounded(100) < 20)
                p->remove(key);
            else
                p->set(key, QStringLiteral("%1 by %2").arg(writes).arg(p.id()));
            ++writes;
        }
    });
    QTimer churn;
    churn.setInterval(7000);
    int reconnects = 0;
    connect(&churn, &QTimer::timeout, this, [&] {
        TestPeer &p = *peers[rng.bounded(8)];
        if (p.connection->state() == Connection::Connected) {
            p.connection->close();
            QTimer::singleShot(int(rng.bounded(3000)), p.connection.get(), [&p, &reconnects] {
                p.connection->open();
                ++reconnects;
            });
        }
    });
    writer.start();
    churn.start();

    auto converged = [&] {
        const QVector<quint64> first = DistributedMapPrivate::get(peers[0]->map.get())->state().digest(64);
        for (auto &p : peers) {
            if (p->connection->state() != Connection::Connected || p->map->isSyncing() || DistributedMapPrivate::get(p->map.get())->state().digest(64) != first)
                return false;
        }
        return true;
    };
    QVector<qint64> relayRss, selfRss, selfHeap;
    QElapsedTimer clock;
    clock.start();
    for (int c = 1; c <= checks; ++c) {
        const qint64 due = qint64(seconds) * 1000 * c / checks;
        while (clock.elapsed() < due)
            QTest::qWait(int(qMin<qint64>(1000, due - clock.elapsed())));
        writing = false;
        churn.stop();
        for (auto &p : peers) {
            if (p->connection->state() == Connection::Closed)
                p->connection->open();
        }
        // Lost deltas are repaired by the digest rounds: ask for one now.
        QTRY_VERIFY_WITH_TIMEOUT(std::all_of(peers.begin(), peers.end(), [](auto &p) {
            return p->connection->state() == Connection::Connected && !p->map->isSyncing();
        }), 60000);
        for (auto &p : peers)
            p->map->verify();
        QTRY_VERIFY2_WITH_TIMEOUT(converged(), qPrintable(QStringLiteral("seed %1, check %2").arg(seed).arg(c)), 60000);
        malloc_trim(0);
        relayRss.append(rssKb(relay.processId()));
        selfRss.append(rssKb(0));
        selfHeap.append(qint64(mallinfo2().uordblks / 1024));
        qInfo("check %d at %lld s: %llu writes, %d reconnects, %d keys, relay RSS %lld KB, peers RSS %lld KB (heap %lld KB)",
              c, clock.elapsed() / 1000, writes, reconnects, peers[0]->map->size(), relayRss.last(), selfRss.last(), selfHeap.last());
        writing = true;
        churn.start();
    }
    writer.stop();
    churn.stop();
    if (checks >= 2) {
        // Drift from the first check (maps full, buffers warm) to the last,
        // in resident memory. The heap in use is logged but not asserted: it
        // swings by a quarter from one check to the next with whatever syncs
        // and socket buffers happen to be alive (12.1, 12.2, 9.4 MB in a
        // heaptrack run), with no upward trend.
        QVERIFY2(relayRss.last() < relayRss.first() * 11 / 10,
                 qPrintable(QStringLiteral("relay RSS %1 -> %2 KB").arg(relayRss.first()).arg(relayRss.last())));
        QVERIFY2(selfRss.last() < selfRss.first() * 11 / 10,
                 qPrintable(QStringLiteral("peers' RSS %1 -> %2 KB").arg(selfRss.first()).arg(selfRss.last())));
    }
    peers.clear();
    relay.terminate();
    QVERIFY(relay.waitForFinished(10000));
}

int main(int argc, char *argv[])
{
    // QtTest stops a test function after 5 minutes by default; this one
    // runs for an hour on purpose.
    if (!qEnvironmentVariableIsSet("QTEST_FUNCTION_TIMEOUT"))
        qputenv("QTEST_FUNCTION_TIMEOUT", "7500000");
    QCoreApplication app(argc, argv);
    tst_Soak test;
    return QTest::qExec(&test, argc, argv);
}
#include "tst_soak.moc"
