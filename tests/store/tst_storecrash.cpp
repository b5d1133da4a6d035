// Crash test: a child (storewriter) writes to a store without end and
// reports what is durable; it is killed with SIGKILL at random moments, and
// after every kill the store must load and hold every write it acknowledged.
// The same file is reused from kill to kill, so each child also recovers
// the torn tail its predecessor left. DISTMAP_CRASH_KILLS sets the count
// (default 200; the slow-labelled run uses more), DISTMAP_SEED replays.

#include "journal.h"
#include "jsontext.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QFile>
#include <QHash>
#include <QProcess>
#include <QRandomGenerator>
#include <QSet>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>
#include <sys/types.h>

namespace {

constexpr int Keys = 257;
constexpr qint64 OpsPerRun = 10000000; // op numbers of run c start at c * OpsPerRun

} // namespace

class tst_StoreCrash : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void acknowledgedWritesSurviveSigkill();
};

void tst_StoreCrash::acknowledgedWritesSurviveSigkill()
{
    const QString helper = QCoreApplication::applicationDirPath() + QStringLiteral("/storewriter");
    QVERIFY2(QFile::exists(helper), qPrintable(helper));
    const int kills = qEnvironmentVariableIsSet("DISTMAP_CRASH_KILLS") ? qEnvironmentVariableIntValue("DISTMAP_CRASH_KILLS") : 200;
    const quint32 seed = qEnvironmentVariableIsSet("DISTMAP_SEED") ? quint32(qgetenv("DISTMAP_SEED").toUInt())
                                                                   : QRandomGenerator::global()->generate();
    qInfo("seed %u (replay with DISTMAP_SEED=%u), %d kills", seed, seed, kills);
    QRandomGenerator rng(seed);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString path = dir.filePath(QStringLiteral("crash.distmap"));
    const QString uri = QStringLiteral("/crash-test");

    QHash<int, qint64> lastAcked; // key -> last acknowledged op on it
    QSet<int> everSet;            // keys with an acknowledged set
    QElapsedTimer clock;
    clock.start();
    int tornTails = 0;
    qint64 ackedOps = 0;
    const QStringList modes{QStringLiteral("every"), QStringLiteral("batched"), QStringLiteral("batched")};
    for (int run = 0; run < kills; ++run) {
        const QString mode = modes[int(rng.bounded(modes.size()))];
        const QString batchMs = QString::number(rng.bounded(4));
        const qint64 first = qint64(run) * OpsPerRun;
        QProcess child;
        child.setProcessChannelMode(QProcess::SeparateChannels);
        // A small compaction threshold puts kills inside snapshot writes too.
        child.start(helper, {path, QString::number(first), mode, batchMs, QStringLiteral("32768")});
        QVERIFY2(child.waitForStarted(10000), qPrintable(child.errorString()));

        // Kill after a random number of acknowledgements: the child keeps
        // writing in between, so the kill lands anywhere in its cycle.
        const int target = 1 + int(rng.bounded(12));
        int acks = 0;
        qint64 acked = -1;
        QByteArray buffer;
        auto readLines = [&] {
            buffer += child.readAllStandardOutput();
            int nl;
            while ((nl = buffer.indexOf('\n')) >= 0) {
                const QByteArray line = buffer.left(nl);
                buffer.remove(0, nl + 1);
                if (line.startsWith("durable ")) {
                    acked = line.mid(8).toLongLong();
                    ++acks;
                } else {
                    QFAIL(qPrintable(QStringLiteral("run %1: child said: %2").arg(run).arg(QString::fromUtf8(line))));
                }
            }
        };
        while (acks < target) {
            QVERIFY2(child.waitForReadyRead(20000) || child.state() != QProcess::Running,
                     qPrintable(QStringLiteral("run %1: no progress from the child").arg(run)));
            readLines();
            if (QTest::currentTestFailed())
                return;
            QVERIFY2(child.state() == QProcess::Running,
                     qPrintable(QStringLiteral("run %1: child exited: %2").arg(run).arg(QString::fromUtf8(child.readAllStandardError()))));
        }
        ::kill(pid_t(child.processId()), SIGKILL);
        QVERIFY(child.waitForFinished(20000));
        QCOMPARE(child.exitStatus(), QProcess::CrashExit);
        readLines(); // acks already in the pipe count: the child made them
        if (QTest::currentTestFailed())
            return;
        for (qint64 op = first; op <= acked; ++op) {
            const int key = int(op % Keys);
            lastAcked.insert(key, op);
            if (op % 5 != 4)
                everSet.insert(key);
        }
        ackedOps += acked - first + 1;

        QFile file(path);
        QVERIFY(file.open(QIODevice::ReadOnly));
        const QByteArray image = file.readAll();
        file.close();
        const Journal::ReadResult r = Journal::read(image.constData(), image.size(), uri);
        QVERIFY2(r.error == Journal::Error::NoError, qPrintable(QStringLiteral("run %1: %2").arg(run).arg(r.message)));
        if (!r.damage.isEmpty() && !r.tornTailOnly())
            QFAIL(qPrintable(QStringLiteral("run %1: damage inside the file at %2").arg(run).arg(r.damage.first().offset)));
        tornTails += r.damage.isEmpty() ? 0 : 1;
        for (auto it = lastAcked.cbegin(); it != lastAcked.cend(); ++it) {
            const QString key = QStringLiteral("k%1").arg(it.key());
            const Entry *e = r.state.find(key);
            const qint64 op = it.value();
            const QString where = QStringLiteral("run %1 key %2 last acked op %3").arg(run).arg(key).arg(op);
            if (op % 5 != 4) {
                // A set: that value or a later write (a later delete leaves
                // a tombstone, which is newer by construction).
                QVERIFY2(e, qPrintable(where + QStringLiteral(": missing")));
                if (!e->tombstone) {
                    const qint64 v = qint64(JsonText::decode(e->value).toDouble());
                    QVERIFY2(v >= op && v % Keys == it.key(), qPrintable(where + QStringLiteral(": holds %1").arg(v)));
                }
            } else if (everSet.contains(it.key())) {
                // A delete of a key that was set: a tombstone or a later set.
                QVERIFY2(e, qPrintable(where + QStringLiteral(": missing after a delete")));
                if (!e->tombstone)
                    QVERIFY2(qint64(JsonText::decode(e->value).toDouble()) > op, qPrintable(where + QStringLiteral(": delete lost")));
            }
        }
    }
    qInfo("%d kills, %lld acknowledged ops checked, %d torn tails recovered, %lld ms", kills, ackedOps, tornTails,
          clock.elapsed());
}

QTEST_GUILESS_MAIN(tst_StoreCrash)
#include "tst_storecrash.moc"
