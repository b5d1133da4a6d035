// Crash test: a child (storewriter) writes to a store without end and
// reports what is durable; it is killed with SIGKILL at random moments, and
// after every kill the store must load and hold every write it acknowledged.
// The same file is reused from kill to kill, so each child also recovers
// the torn tail its predecessor left. DISTMAP_CRASH_KILLS sets the count
// (default 200; the slow-labelled run uses more; the history test a quarter
// of it, at most 100), DISTMAP_SEED replays.

#include "historyfile.h"
#include "historyindex.h"
#include "journal.h"
#include "jsontext.h"
#include "storefile.h"

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
#include <functional>
#include <map>
#include <sys/types.h>

namespace {

constexpr int Keys = 257;
constexpr qint64 OpsPerRun = 10000000; // op numbers of run c start at c * OpsPerRun

int killCount()
{
    return qEnvironmentVariableIsSet("DISTMAP_CRASH_KILLS") ? qEnvironmentVariableIntValue("DISTMAP_CRASH_KILLS") : 200;
}

quint32 seedFromEnvironment()
{
    return qEnvironmentVariableIsSet("DISTMAP_SEED") ? quint32(qgetenv("DISTMAP_SEED").toUInt())
                                                     : QRandomGenerator::global()->generate();
}

QString helperPath()
{
    return QCoreApplication::applicationDirPath() + QStringLiteral("/storewriter");
}

// Starts storewriter with args, hands every line it prints to onLine
// (false: an unexpected line), and kills it with SIGKILL after `target`
// acknowledgements: the child keeps writing in between, so the kill lands
// anywhere in its cycle. Lines already in the pipe are read after the kill.
// Returns the highest acknowledged op (-1: none), or sets error.
qint64 runUntilKilled(const QStringList &args, int target, const std::function<bool(const QByteArray &)> &onLine,
                      QString *error)
{
    QProcess child;
    child.setProcessChannelMode(QProcess::SeparateChannels);
    child.start(helperPath(), args);
    if (!child.waitForStarted(10000)) {
        *error = child.errorString();
        return -1;
    }
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
            } else if (!onLine(line)) {
                *error = QStringLiteral("child said: %1").arg(QString::fromUtf8(line));
                return false;
            }
        }
        return true;
    };
    while (acks < target) {
        if (!child.waitForReadyRead(20000) && child.state() == QProcess::Running) {
            *error = QStringLiteral("no progress from the child");
            break;
        }
        if (!readLines())
            break;
        if (child.state() != QProcess::Running) {
            *error = QStringLiteral("child exited: %1").arg(QString::fromUtf8(child.readAllStandardError()));
            break;
        }
    }
    ::kill(pid_t(child.processId()), SIGKILL);
    if (!child.waitForFinished(20000) && error->isEmpty())
        *error = QStringLiteral("the killed child did not finish");
    if (error->isEmpty() && child.exitStatus() != QProcess::CrashExit)
        *error = QStringLiteral("the child was not killed");
    if (error->isEmpty())
        readLines(); // acks already in the pipe count: the child made them
    return acked;
}

const QString Uri = QStringLiteral("/crash-test"); // storewriter's map

} // namespace

class tst_StoreCrash : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void acknowledgedWritesSurviveSigkill();
    void historySurvivesSigkill();
};

void tst_StoreCrash::acknowledgedWritesSurviveSigkill()
{
    QVERIFY2(QFile::exists(helperPath()), qPrintable(helperPath()));
    const int kills = killCount();
    const quint32 seed = seedFromEnvironment();
    qInfo("seed %u (replay with DISTMAP_SEED=%u), %d kills", seed, seed, kills);
    QRandomGenerator rng(seed);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString path = dir.filePath(QStringLiteral("crash.distmap"));

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
        QString error;
        // A small compaction threshold puts kills inside snapshot writes too.
        const qint64 acked = runUntilKilled({path, QString::number(first), mode, batchMs, QStringLiteral("32768")},
                                            1 + int(rng.bounded(12)), [](const QByteArray &) { return false; }, &error);
        QVERIFY2(error.isEmpty(), qPrintable(QStringLiteral("run %1: %2").arg(run).arg(error)));
        for (qint64 op = first; op <= acked; ++op) {
            const int key = int(op % Keys);
            lastAcked.insert(key, op);
            if (op % 5 != 4)
                everSet.insert(key);
        }
        ackedOps += acked - first + 1;

        const Journal::ReadResult r = readStoreFile(path, Uri);
        QVERIFY2(r.error == Journal::Error::NoError, qPrintable(QStringLiteral("run %1: %2").arg(run).arg(r.message)));
        if (!r.damage.isEmpty() && !r.tornTailOnly())
            QFAIL(qPrintable(QStringLiteral("run %1: damage inside the file at %2").arg(run).arg(r.damage.first().offset)));
        tornTails += r.damage.isEmpty() ? 0 : 1;
        for (auto it = lastAcked.cbegin(); it != lastAcked.cend(); ++it) {
            const QString key = QStringLiteral("k%1").arg(it.key());
            const EntryRef e = r.state.find(key);
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

void tst_StoreCrash::historySurvivesSigkill()
{
    // The child prints each write's clock before the write can reach the
    // file (batched mode only). After each kill the file's history must be
    // exactly the writes acknowledged so far plus, per run, an unbroken run
    // of the unacknowledged writes after them (appends are in order), and
    // every query must answer as a scan of those writes does.
    QVERIFY2(QFile::exists(helperPath()), qPrintable(helperPath()));
    // Each child reloads the whole history, which only grows here: the
    // long run gets more kills, but not ten times more.
    const int kills = qBound(1, killCount() / 4, 100);
    const quint32 seed = seedFromEnvironment();
    qInfo("seed %u (replay with DISTMAP_SEED=%u), %d kills", seed, seed, kills);
    QRandomGenerator rng(seed);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString path = dir.filePath(QStringLiteral("history.distmap"));

    // The model: per key, hlc -> op of every write the file must hold.
    // Op o writes key k(o % Keys): a tombstone when o % 5 == 4, else o.
    std::map<int, std::map<quint64, qint64>> model;
    qsizetype modelSize = 0;
    QVector<quint64> instants;
    auto opOf = [](const Entry &e) { return e.tombstone ? -1 : qint64(JsonText::decode(e.value).toDouble()); };
    auto keyName = [](int k) { return QStringLiteral("k%1").arg(k); };
    qint64 checkedWrites = 0;
    int indexed = 0; // kills after which the history index was usable
    for (int run = 0; run < kills; ++run) {
        const qint64 first = qint64(run) * OpsPerRun;
        QVector<QPair<qint64, quint64>> printed; // op, hlc, in op order
        QString error;
        const qint64 acked = runUntilKilled(
            {path, QString::number(first), QStringLiteral("batched"), QString::number(rng.bounded(4)), QStringLiteral("32768"),
             QStringLiteral("writes")},
            1 + int(rng.bounded(12)),
            [&printed](const QByteArray &line) {
                const QList<QByteArray> parts = line.split(' ');
                if (parts.size() != 3 || parts[0] != "write")
                    return false;
                printed.append({parts[1].toLongLong(), parts[2].toULongLong()});
                return true;
            },
            &error);
        QVERIFY2(error.isEmpty(), qPrintable(QStringLiteral("run %1: %2").arg(run).arg(error)));

        HistoryIndex history;
        const Journal::ReadResult r = readStoreFile(path, Uri, &history);
        QVERIFY2(r.error == Journal::Error::NoError, qPrintable(QStringLiteral("run %1: %2").arg(run).arg(r.message)));
        QVERIFY2(r.damage.isEmpty() || r.tornTailOnly(), qPrintable(QStringLiteral("run %1: damage inside the file").arg(run)));
        // Which of this run's writes reached the file: every acknowledged
        // one, then a prefix of the rest.
        bool gap = false;
        for (const auto &[op, hlc] : std::as_const(printed)) {
            const int k = int(op % Keys);
            const std::optional<Entry> e = history.at(keyName(k), hlc);
            const bool present = e && e->hlc == hlc && e->tombstone == (op % 5 == 4) && (e->tombstone || opOf(*e) == op);
            const QString where = QStringLiteral("run %1 op %2 (acked up to %3)").arg(run).arg(op).arg(acked);
            QVERIFY2(present || op > acked, qPrintable(where + QStringLiteral(": an acknowledged write is missing")));
            QVERIFY2(!present || !gap, qPrintable(where + QStringLiteral(": present after a lost write")));
            gap = gap || !present;
            if (present) {
                model[k][hlc] = op;
                ++modelSize;
                instants << hlc - 1 << hlc << hlc + 1;
            }
        }
        // Nothing else is there, and every key's history is the model's.
        QCOMPARE(history.size(), modelSize);
        for (const auto &[k, writes] : model) {
            const QVector<Entry> got = history.keyHistory(keyName(k));
            QCOMPARE(qsizetype(got.size()), qsizetype(writes.size()));
            auto it = writes.begin();
            for (const Entry &e : got) {
                QVERIFY2(e.hlc == it->first && opOf(e) == (it->second % 5 == 4 ? -1 : it->second),
                         qPrintable(QStringLiteral("run %1 key %2: history differs at hlc %3").arg(run).arg(k).arg(e.hlc)));
                ++it;
            }
            // The state is the newest write of each key.
            const EntryRef current = r.state.find(keyName(k));
            QVERIFY2(current && current->hlc == writes.rbegin()->first,
                     qPrintable(QStringLiteral("run %1 key %2: the state is not the newest write").arg(run).arg(k)));
            checkedWrites += got.size();
        }
        // The CLI's reader, through the history index when the last
        // compaction's index survived the kill, answers alike.
        QFile image(path);
        QFile indexFile(HistoryFileIndex::pathFor(path));
        QVERIFY(image.open(QIODevice::ReadOnly));
        const QByteArray bytes = image.readAll();
        const QByteArray index = indexFile.open(QIODevice::ReadOnly) ? indexFile.readAll() : QByteArray();
        HistoryFile file;
        QVERIFY(file.open(bytes.constData(), bytes.size(), index, Uri));
        indexed += file.usesIndex() ? 1 : 0;
        auto sameWrites = [](const QVector<Entry> &a, const QVector<Entry> &b) {
            return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const Entry &x, const Entry &y) {
                return x.sameWrite(y) && x.tombstone == y.tombstone && x.value == y.value;
            });
        };
        for (int k = 0; k < Keys; ++k) {
            QVERIFY2(sameWrites(file.keyHistory(keyName(k)), history.keyHistory(keyName(k))),
                     qPrintable(QStringLiteral("run %1 key %2: HistoryFile differs (index %3)").arg(run).arg(k).arg(file.indexProblem())));
        }
        auto keyedWrites = [](QVector<HistoryIndex::KeyedEntry> list) {
            QStringList out;
            for (const HistoryIndex::KeyedEntry &e : list)
                out << QStringLiteral("%1@%2").arg(e.key).arg(e.entry.hlc);
            out.sort();
            return out;
        };
        for (int i = 0; i < 5 && !instants.isEmpty(); ++i) {
            const quint64 t = instants[int(rng.bounded(instants.size()))];
            QCOMPARE(keyedWrites(file.asOf(t)), keyedWrites(history.asOf(t)));
        }

        // The key's newest write at t: (hlc, op).
        auto modelAt = [&model](int k, quint64 t) -> std::optional<std::pair<quint64, qint64>> {
            const auto &writes = model[k];
            auto it = writes.upper_bound(t);
            if (it == writes.begin())
                return std::nullopt;
            return *(--it);
        };
        for (int i = 0; i < 20 && !instants.isEmpty(); ++i) {
            const quint64 t = instants[int(rng.bounded(instants.size()))];
            std::map<int, qint64> expected;
            for (const auto &entry : model) {
                const auto write = modelAt(entry.first, t);
                if (write && write->second % 5 != 4)
                    expected[entry.first] = write->second;
            }
            std::map<int, qint64> got;
            for (const HistoryIndex::KeyedEntry &e : history.asOf(t))
                got[e.key.mid(1).toInt()] = opOf(e.entry);
            QVERIFY2(got == expected, qPrintable(QStringLiteral("run %1: as of %2 differs").arg(run).arg(t)));

            const quint64 from = qMin(t, instants[int(rng.bounded(instants.size()))]);
            QSet<int> changed;
            for (const HistoryIndex::Change &c : history.changes(from, t)) {
                const int k = c.key.mid(1).toInt();
                changed.insert(k);
                const auto before = modelAt(k, from);
                const auto after = modelAt(k, t);
                const QString where = QStringLiteral("run %1: diff (%2, %3] of k%4").arg(run).arg(from).arg(t).arg(k);
                QVERIFY2(c.before.has_value() == before.has_value() && (!before || c.before->hlc == before->first),
                         qPrintable(where + QStringLiteral(": before")));
                QVERIFY2(c.after && after && c.after->hlc == after->first, qPrintable(where + QStringLiteral(": after")));
            }
            QSet<int> expectedChanged;
            for (const auto &[k, writes] : model) {
                auto it = writes.upper_bound(from);
                if (it != writes.end() && it->first <= t)
                    expectedChanged.insert(k);
            }
            QVERIFY2(changed == expectedChanged, qPrintable(QStringLiteral("run %1: diff (%2, %3] lists other keys").arg(run).arg(from).arg(t)));
        }
    }
    qInfo("%d kills, %lld history entries checked, %lld writes held at the end; the history index was in use after %d kills",
          kills, checkedWrites, qint64(modelSize), indexed);
}

QTEST_GUILESS_MAIN(tst_StoreCrash)
#include "tst_storecrash.moc"
