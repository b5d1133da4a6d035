#include <QDateTime>
#include <QJsonDocument>
#include <QJsonObject>
#include <QElapsedTimer>
#include <QFile>
#include <QProcess>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QRegularExpression>
#include <QTest>

#include <csignal>

namespace {
constexpr int Timeout = 20000;

QString binary()
{
    return qEnvironmentVariable("DISTMAP_BINARY");
}

struct Result
{
    int exitCode = -1;
    QByteArray out;
    QByteArray err;
};

Result run(const QStringList &arguments, int timeoutMs = Timeout, const QString &stdoutFile = QString())
{
    QProcess p;
    if (!stdoutFile.isEmpty())
        p.setStandardOutputFile(stdoutFile);
    p.start(binary(), arguments);
    Result r;
    if (!p.waitForFinished(timeoutMs)) {
        p.kill();
        p.waitForFinished();
        r.err = "timed out";
        return r;
    }
    r.exitCode = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -2;
    r.out = p.readAllStandardOutput();
    r.err = p.readAllStandardError();
    return r;
}

} // namespace

// End to end through the real binary: a relay process and CLI peers.
class tst_Cli : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanupTestCase();

    void setGetDelDump();
    void setReadsJsonOrPlainStrings();
    void aLonePeerIsWarnedThatItsValueVanishes();
    void aWriteIsDoneWhenConfirmedAsAsked_data();
    void aWriteIsDoneWhenConfirmedAsAsked();
    void readersAnswerFromTheStoreWhenTheRelayIsDown();
    void watchPrintsEventsAsJsonLines();
    void badArguments_data();
    void badArguments();
    void unreachableRelayFailsFast();
    void helpForEveryCommand_data();
    void helpForEveryCommand();
    void relayRunsHeadlessAndStopsOnSigterm();
    void aValueLargerThanTheRelayAcceptsExitsSix();
    void historyDumpAtAndDiffReadTheStoreAlone();
    void badHistoryQuestions_data();
    void badHistoryQuestions();

private:
    // A store written by set/del with the relay down: k = 1, k = {"x":2},
    // other = "x", k deleted, in that order. Made once, by the first caller.
    QString historyStore();
    QStringList at(const QStringList &args) const { return args + QStringList{QStringLiteral("--url"), m_url}; }

    QProcess m_relay;
    QProcess m_holder; // a `watch` peer: holds /cli in memory, prints its events
    QProcess m_keeper; // a `keep` peer: stores /cli, so writes are confirmed durably
    QTemporaryDir m_dir;
    QString m_url;
};

static QString startRelay(QProcess &relay, const QStringList &extra = {})
{
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.remove(QStringLiteral("DISPLAY"));
    env.remove(QStringLiteral("QT_QPA_PLATFORM"));
    relay.setProcessEnvironment(env);
    relay.start(binary(), QStringList{QStringLiteral("relay"), QStringLiteral("--port"), QStringLiteral("0")} + extra);
    if (!relay.waitForStarted(Timeout))
        return {};
    QByteArray line;
    const bool listening = QTest::qWaitFor([&] {
        relay.waitForReadyRead(100);
        line += relay.readLine();
        return line.endsWith('\n');
    }, Timeout);
    if (!listening)
        return {};
    const QRegularExpressionMatch m = QRegularExpression(QStringLiteral("^listening on (ws://127\\.0\\.0\\.1:\\d+)\\n$"))
                                          .match(QString::fromUtf8(line));
    return m.hasMatch() ? m.captured(1) : QString();
}

void tst_Cli::initTestCase()
{
    QVERIFY2(QFile::exists(binary()), "DISTMAP_BINARY must point to the distmap binary");
    m_url = startRelay(m_relay);
    QVERIFY(!m_url.isEmpty());
    m_holder.start(binary(), at({QStringLiteral("watch"), QStringLiteral("--map"), QStringLiteral("/cli")}));
    QVERIFY(QTest::qWaitFor([&] {
        m_holder.waitForReadyRead(100);
        return m_holder.canReadLine();
    }, Timeout));
    QVERIFY(m_holder.readLine().contains("\"event\":\"ready\""));
    m_keeper.setProcessChannelMode(QProcess::MergedChannels);
    m_keeper.start(binary(), at({QStringLiteral("keep"), QStringLiteral("--map"), QStringLiteral("/cli"), QStringLiteral("--store"),
                                 m_dir.filePath(QStringLiteral("keep"))}));
    QByteArray log;
    QVERIFY(QTest::qWaitFor([&] {
        m_keeper.waitForReadyRead(100);
        log += m_keeper.readAll();
        return log.contains("/cli: synced with peer") || log.contains("/cli: no other peer holds it");
    }, Timeout));
}

void tst_Cli::cleanupTestCase()
{
    for (QProcess *p : {&m_holder, &m_keeper, &m_relay}) {
        if (p->state() != QProcess::NotRunning) {
            p->terminate(); // SIGTERM to the PID we started
            if (!p->waitForFinished(Timeout))
                p->kill();
        }
    }
}

void tst_Cli::setGetDelDump()
{
    const QStringList map{QStringLiteral("--map"), QStringLiteral("/cli")};
    Result r = run(at(QStringList{QStringLiteral("set"), QStringLiteral("answer"), QStringLiteral("42")} + map));
    QCOMPARE(r.exitCode, 0);
    QVERIFY2(r.err.isEmpty(), r.err.constData()); // the holder keeps it: no warning
    r = run(at(QStringList{QStringLiteral("set"), QStringLiteral("obj"), QStringLiteral("{\"a\": [1, 2.5, null]}")} + map));
    QCOMPARE(r.exitCode, 0);

    r = run(at(QStringList{QStringLiteral("get"), QStringLiteral("answer")} + map));
    QCOMPARE(r.exitCode, 0);
    QCOMPARE(r.out, QByteArray("42\n"));
    r = run(at(QStringList{QStringLiteral("get"), QStringLiteral("obj")} + map));
    QCOMPARE(r.out, QByteArray("{\"a\":[1,2.5,null]}\n"));

    r = run(at(QStringList{QStringLiteral("dump")} + map));
    QCOMPARE(r.exitCode, 0);
    const QJsonObject dumped = QJsonDocument::fromJson(r.out).object();
    QCOMPARE(dumped.value(QStringLiteral("answer")).toInt(), 42);
    QVERIFY(dumped.value(QStringLiteral("obj")).isObject());
    // The compact dump is the stored texts streamed out; --pretty parses
    // and indents: the same object either way, one line or many.
    QVERIFY(r.out.endsWith("}\n") && r.out.count('\n') == 1);
    const Result pretty = run(at(QStringList{QStringLiteral("dump"), QStringLiteral("--pretty")} + map));
    QCOMPARE(pretty.exitCode, 0);
    QVERIFY(pretty.out.count('\n') > 2);
    QCOMPARE(QJsonDocument::fromJson(pretty.out).object(), dumped);
    // Output that cannot be written is an error, not a silent success.
    if (QFile::exists(QStringLiteral("/dev/full"))) {
        const Result full = run(at(QStringList{QStringLiteral("dump")} + map), Timeout, QStringLiteral("/dev/full"));
        QCOMPARE(full.exitCode, 8);
        QVERIFY2(full.err.contains("cannot write to standard output"), full.err.constData());
    }

    r = run(at(QStringList{QStringLiteral("del"), QStringLiteral("answer")} + map));
    QCOMPARE(r.exitCode, 0);
    r = run(at(QStringList{QStringLiteral("get"), QStringLiteral("answer")} + map));
    QCOMPARE(r.exitCode, 1);
    QVERIFY(r.err.contains("not found"));
    r = run(at(QStringList{QStringLiteral("del"), QStringLiteral("answer")} + map));
    QCOMPARE(r.exitCode, 1);
    QVERIFY(r.err.contains("not found"));
}

void tst_Cli::setReadsJsonOrPlainStrings()
{
    const QStringList map{QStringLiteral("--map"), QStringLiteral("/cli")};
    Result r = run(at(QStringList{QStringLiteral("set"), QStringLiteral("s"), QStringLiteral("plain words")} + map));
    QCOMPARE(r.exitCode, 2);
    QVERIFY(r.err.contains("not valid JSON"));
    QVERIFY(r.err.contains("--string"));
    r = run(at(QStringList{QStringLiteral("set"), QStringLiteral("--string"), QStringLiteral("s"), QStringLiteral("plain words")} + map));
    QCOMPARE(r.exitCode, 0);
    r = run(at(QStringList{QStringLiteral("get"), QStringLiteral("s")} + map));
    QCOMPARE(r.out, QByteArray("\"plain words\"\n"));
}

void tst_Cli::aLonePeerIsWarnedThatItsValueVanishes()
{
    const QStringList set{QStringLiteral("set"), QStringLiteral("k"), QStringLiteral("1"), QStringLiteral("--map"), QStringLiteral("/nobody-here")};
    // Nothing can confirm it: not done.
    Result r = run(at(set));
    QCOMPARE(r.exitCode, 7);
    QVERIFY2(r.err.contains("no other peer holds /nobody-here"), r.err.constData());
    // Asked not to wait for anyone: done, with the same warning.
    r = run(at(set + QStringList{QStringLiteral("--ack"), QStringLiteral("none")}));
    QCOMPARE(r.exitCode, 0);
    QVERIFY2(r.err.contains("no other peer holds /nobody-here"), r.err.constData());
}

// Another peer that holds the map in memory only (a `watch`, another CLI)
// does not make a write safe: by default the CLI waits for a peer that
// stores the map, and says so when there is none.
void tst_Cli::aWriteIsDoneWhenConfirmedAsAsked_data()
{
    QTest::addColumn<QString>("ack");
    QTest::addColumn<int>("exitCode");
    QTest::addColumn<QByteArray>("message");
    QTest::newRow("durable (the default): exit 7") << QString() << 7 << QByteArray("hold the change in memory only");
    QTest::newRow("durable: exit 7") << QStringLiteral("durable") << 7 << QByteArray("hold the change in memory only");
    QTest::newRow("peer: exit 0") << QStringLiteral("peer") << 0 << QByteArray();
    QTest::newRow("none: exit 0") << QStringLiteral("none") << 0 << QByteArray();
}

void tst_Cli::aWriteIsDoneWhenConfirmedAsAsked()
{
    QFETCH(QString, ack);
    QFETCH(int, exitCode);
    QFETCH(QByteArray, message);
    QProcess watcher;
    watcher.start(binary(), at({QStringLiteral("watch"), QStringLiteral("--map"), QStringLiteral("/memory-only")}));
    QVERIFY(QTest::qWaitFor([&] {
        watcher.waitForReadyRead(100);
        return watcher.canReadLine();
    }, Timeout));
    QStringList set{QStringLiteral("set"), QStringLiteral("k"), QStringLiteral("1"), QStringLiteral("--map"), QStringLiteral("/memory-only")};
    if (!ack.isEmpty())
        set += QStringList{QStringLiteral("--ack"), ack};
    const Result r = run(at(set));
    QVERIFY2(r.exitCode == exitCode, r.err.constData());
    if (!message.isEmpty())
        QVERIFY2(r.err.contains(message), r.err.constData());
    else
        QVERIFY2(r.err.isEmpty(), r.err.constData());
    // Either way the watcher got the write: exit 7 is about where it is kept.
    QByteArray events;
    QTRY_VERIFY_WITH_TIMEOUT((watcher.waitForReadyRead(10), events += watcher.readAll()).contains("\"key\":\"k\""), Timeout);
    watcher.terminate();
    QVERIFY(watcher.waitForFinished(Timeout));
}

void tst_Cli::readersAnswerFromTheStoreWhenTheRelayIsDown()
{
    QTcpServer probe; // a port nothing listens on
    QVERIFY(probe.listen(QHostAddress::LocalHost, 0));
    const QString down = QStringLiteral("ws://127.0.0.1:%1").arg(probe.serverPort());
    probe.close();
    const QString file = m_dir.filePath(QStringLiteral("offline.distmap"));
    const QStringList offline{QStringLiteral("--url"), down, QStringLiteral("--store"), file, QStringLiteral("--timeout"), QStringLiteral("1000")};
    // Written into the store at once; no relay to send it to.
    Result r = run(QStringList{QStringLiteral("set"), QStringLiteral("kept"), QStringLiteral("[1,2]")} + offline);
    QCOMPARE(r.exitCode, 3);
    QVERIFY2(r.err.contains("saved in"), r.err.constData());

    r = run(QStringList{QStringLiteral("get"), QStringLiteral("kept")} + offline);
    QVERIFY2(r.exitCode == 0, r.err.constData());
    QCOMPARE(r.out, QByteArray("[1,2]\n"));
    QVERIFY2(r.err.contains("the relay is unreachable") && r.err.contains(file.toUtf8()), r.err.constData());
    r = run(QStringList{QStringLiteral("dump")} + offline);
    QVERIFY2(r.exitCode == 0, r.err.constData());
    QCOMPARE(r.out, QByteArray("{\"kept\":[1,2]}\n"));
    r = run(QStringList{QStringLiteral("get"), QStringLiteral("missing")} + offline);
    QCOMPARE(r.exitCode, 1);
    QVERIFY2(r.err.contains("not found"), r.err.constData());
}

void tst_Cli::watchPrintsEventsAsJsonLines()
{
    const QStringList map{QStringLiteral("--map"), QStringLiteral("/cli")};
    QCOMPARE(run(at(QStringList{QStringLiteral("set"), QStringLiteral("w"), QStringLiteral("\"x\"")} + map)).exitCode, 0);
    QList<QJsonObject> events;
    QTRY_VERIFY_WITH_TIMEOUT([&] {
        while (m_holder.canReadLine())
            events.append(QJsonDocument::fromJson(m_holder.readLine()).object());
        for (const QJsonObject &e : events) {
            if (e.value(QStringLiteral("event")) == QLatin1String("set") && e.value(QStringLiteral("key")) == QLatin1String("w"))
                return true;
        }
        return false;
    }(), Timeout);
    QStringList kinds;
    for (const QJsonObject &e : events)
        kinds.append(e.value(QStringLiteral("event")).toString());
    QVERIFY(kinds.contains(QStringLiteral("joined")));
    QVERIFY(kinds.contains(QStringLiteral("left")));
    for (const QJsonObject &e : events)
        QVERIFY(!e.isEmpty()); // every line is one JSON object
}

void tst_Cli::badArguments_data()
{
    QTest::addColumn<QStringList>("arguments");
    QTest::addColumn<int>("exitCode");
    QTest::addColumn<QByteArray>("message");
    QTest::newRow("an unknown command") << QStringList{QStringLiteral("frobnicate")} << 2 << QByteArray("unknown command");
    QTest::newRow("set without a value") << QStringList{QStringLiteral("set"), QStringLiteral("k")} << 2 << QByteArray("expected 2 argument");
    QTest::newRow("get without a key") << QStringList{QStringLiteral("get")} << 2 << QByteArray("expected 1 argument");
    QTest::newRow("an unknown option") << QStringList{QStringLiteral("dump"), QStringLiteral("--frob")} << 2 << QByteArray("Unknown option");
    QTest::newRow("a URL that is not ws") << QStringList{QStringLiteral("dump"), QStringLiteral("--url"), QStringLiteral("http://x")} << 2 << QByteArray("--url must look like");
    QTest::newRow("an empty map") << QStringList{QStringLiteral("dump"), QStringLiteral("--map"), QString()} << 2 << QByteArray("--map must not be empty");
    QTest::newRow("a bad ack") << QStringList{QStringLiteral("set"), QStringLiteral("k"), QStringLiteral("1"), QStringLiteral("--ack"), QStringLiteral("all")} << 2 << QByteArray("--ack must be none, peer or durable");
    QTest::newRow("a bad timeout") << QStringList{QStringLiteral("dump"), QStringLiteral("--timeout"), QStringLiteral("soon")} << 2 << QByteArray("--timeout");
    QTest::newRow("a relay port out of range") << QStringList{QStringLiteral("relay"), QStringLiteral("--port"), QStringLiteral("70000")} << 2 << QByteArray("--port must be");
    QTest::newRow("a relay host that is no address") << QStringList{QStringLiteral("relay"), QStringLiteral("--host"), QStringLiteral("not-an-ip")} << 2 << QByteArray("--host must be");
}

void tst_Cli::badArguments()
{
    QFETCH(QStringList, arguments);
    QFETCH(int, exitCode);
    QFETCH(QByteArray, message);
    const Result r = run(arguments);
    QCOMPARE(r.exitCode, exitCode);
    QVERIFY2(r.err.contains(message), r.err.constData());
}

void tst_Cli::unreachableRelayFailsFast()
{
    // A port nothing listens on: bind one, note it, close it.
    QTcpServer probe;
    QVERIFY(probe.listen(QHostAddress::LocalHost, 0));
    const quint16 port = probe.serverPort();
    probe.close();
    QElapsedTimer timer;
    timer.start();
    const Result r = run({QStringLiteral("get"), QStringLiteral("k"), QStringLiteral("--timeout"), QStringLiteral("2000"),
                          QStringLiteral("--url"), QStringLiteral("ws://127.0.0.1:%1").arg(port)});
    QCOMPARE(r.exitCode, 3);
    QVERIFY2(r.err.contains("cannot reach") || r.err.contains("refused"), r.err.constData());
    QVERIFY(timer.elapsed() < 15000);
}

void tst_Cli::helpForEveryCommand_data()
{
    QTest::addColumn<QString>("command");
    for (const char *c : {"relay", "set", "get", "del", "dump", "watch", "history", "diff"})
        QTest::newRow(c) << QString::fromLatin1(c);
}

void tst_Cli::helpForEveryCommand()
{
    QFETCH(QString, command);
    const Result r = run({command, QStringLiteral("--help")});
    QCOMPARE(r.exitCode, 0);
    QVERIFY(r.out.contains("Usage:"));
    QVERIFY(r.out.contains("--help"));
}

void tst_Cli::relayRunsHeadlessAndStopsOnSigterm()
{
    QProcess relay;
    const QString url = startRelay(relay, {QStringLiteral("--log")});
    QVERIFY(!url.isEmpty());
    // No peer to confirm the write: only the relay's forwarding is asked for.
    QCOMPARE(run({QStringLiteral("set"), QStringLiteral("k"), QStringLiteral("1"), QStringLiteral("--ack"), QStringLiteral("none"),
                  QStringLiteral("--url"), url}).exitCode, 0);
    QByteArray log;
    // The CLI exits before the relay has seen the socket close: wait for it.
    QTRY_VERIFY_WITH_TIMEOUT((log += relay.readAllStandardOutput()).contains("disconnect"), Timeout);
    relay.terminate();
    QVERIFY(relay.waitForFinished(Timeout));
    QCOMPARE(relay.exitStatus(), QProcess::NormalExit);
    QCOMPARE(relay.exitCode(), 0);
    log += relay.readAllStandardOutput();
    QVERIFY2(log.contains("connect 127.0.0.1"), log.constData());
    QVERIFY(log.contains("open /distributed-map"));
    QVERIFY(log.contains("is alone"));
    QVERIFY(log.contains("disconnect"));
}

// The relay announces its limit; a larger write is refused by the writer
// itself with a clear message, instead of getting it cut off by the relay.
void tst_Cli::aValueLargerThanTheRelayAcceptsExitsSix()
{
    QProcess relay;
    const QString url = startRelay(relay, {QStringLiteral("--max-message"), QStringLiteral("4096")});
    QVERIFY(!url.isEmpty());
    const QStringList at{QStringLiteral("--url"), url, QStringLiteral("--map"), QStringLiteral("/big")};
    Result r = run(QStringList{QStringLiteral("set"), QStringLiteral("big"), QStringLiteral("--string"), QString(8000, QLatin1Char('x'))} + at);
    QCOMPARE(r.exitCode, 6);
    QVERIFY2(r.err.contains("accepts messages of at most 4096 bytes"), r.err.constData());
    r = run(QStringList{QStringLiteral("set"), QStringLiteral("small"), QStringLiteral("1"), QStringLiteral("--ack"), QStringLiteral("none")} + at);
    QCOMPARE(r.exitCode, 0);
    relay.terminate();
    QVERIFY(relay.waitForFinished(Timeout));
}

namespace {

QVector<QJsonObject> jsonLines(const QByteArray &out)
{
    QVector<QJsonObject> lines;
    for (const QByteArray &line : out.split('\n')) {
        if (!line.isEmpty())
            lines.append(QJsonDocument::fromJson(line).object());
    }
    return lines;
}

} // namespace

QString tst_Cli::historyStore()
{
    const QString file = m_dir.filePath(QStringLiteral("history.distmap"));
    if (QFile::exists(file))
        return file;
    QTcpServer probe; // a port nothing listens on: the relay is down throughout
    if (!probe.listen(QHostAddress::LocalHost, 0))
        return {};
    const QString down = QStringLiteral("ws://127.0.0.1:%1").arg(probe.serverPort());
    probe.close();
    const QStringList offline{QStringLiteral("--url"), down, QStringLiteral("--store"), file, QStringLiteral("--map"),
                              QStringLiteral("/history"), QStringLiteral("--timeout"), QStringLiteral("300")};
    const QList<QStringList> edits{
        {QStringLiteral("set"), QStringLiteral("k"), QStringLiteral("1")},
        {QStringLiteral("set"), QStringLiteral("k"), QStringLiteral("{\"x\":2}")},
        {QStringLiteral("set"), QStringLiteral("other"), QStringLiteral("\"x\"")},
        {QStringLiteral("del"), QStringLiteral("k")},
    };
    for (const QStringList &edit : edits) {
        // Saved in the store at once; exit 3, as no relay answers.
        const Result r = run(edit + offline);
        if (r.exitCode != 3 || !r.err.contains("saved in"))
            return {};
    }
    return file;
}

void tst_Cli::historyDumpAtAndDiffReadTheStoreAlone()
{
    const QString file = historyStore();
    QVERIFY(!file.isEmpty());
    const QStringList store{QStringLiteral("--store"), file};

    // Every write of k, oldest first, the delete included.
    Result r = run(QStringList{QStringLiteral("history"), QStringLiteral("k")} + store);
    QVERIFY2(r.exitCode == 0, r.err.constData());
    const QVector<QJsonObject> writes = jsonLines(r.out);
    QCOMPARE(writes.size(), 3);
    QCOMPARE(writes[0].value(QStringLiteral("value")), QJsonValue(1));
    QCOMPARE(writes[1].value(QStringLiteral("value")), QJsonValue(QJsonObject{{QStringLiteral("x"), 2}}));
    QCOMPARE(writes[2].value(QStringLiteral("deleted")), QJsonValue(true));
    QVERIFY(!writes[2].contains(QStringLiteral("value")));
    QVector<quint64> hlcs;
    for (const QJsonObject &w : writes) {
        hlcs.append(w.value(QStringLiteral("hlc")).toString().toULongLong());
        QCOMPARE(w.value(QStringLiteral("writer")).toString(), writes[0].value(QStringLiteral("writer")).toString());
        QCOMPARE(w.value(QStringLiteral("writer")).toString().size(), 16);
        const QDateTime time = QDateTime::fromString(w.value(QStringLiteral("time")).toString(), Qt::ISODateWithMs);
        QVERIFY2(time.isValid() && qAbs(time.msecsTo(QDateTime::currentDateTimeUtc())) < 10 * 60 * 1000,
                 qPrintable(w.value(QStringLiteral("time")).toString()));
    }
    QVERIFY(hlcs[0] < hlcs[1] && hlcs[1] < hlcs[2]);

    auto dumpAt = [&](const QString &time) {
        const Result d = run(QStringList{QStringLiteral("dump"), QStringLiteral("--at"), time} + store);
        return d.exitCode == 0 ? d.out : QByteArray("exit ") + QByteArray::number(d.exitCode) + ": " + d.err;
    };
    QCOMPARE(dumpAt(QStringLiteral("hlc:%1").arg(hlcs[0] - 1)), QByteArray("{}\n"));
    QCOMPARE(dumpAt(QStringLiteral("hlc:%1").arg(hlcs[0])), QByteArray("{\"k\":1}\n"));
    QCOMPARE(dumpAt(QStringLiteral("hlc:%1").arg(hlcs[1])), QByteArray("{\"k\":{\"x\":2}}\n"));
    // An ISO time stands for the end of its millisecond.
    QCOMPARE(dumpAt(writes[1].value(QStringLiteral("time")).toString()), QByteArray("{\"k\":{\"x\":2}}\n"));
    QCOMPARE(dumpAt(QStringLiteral("now")), QByteArray("{\"other\":\"x\"}\n"));
    QCOMPARE(dumpAt(QStringLiteral("-1d")), QByteArray("{}\n")); // before the store existed
    // Pretty, and through the dump command's own --map check.
    r = run(QStringList{QStringLiteral("dump"), QStringLiteral("--at"), QStringLiteral("-0s"), QStringLiteral("--pretty"),
                        QStringLiteral("--map"), QStringLiteral("/history")} + store);
    QVERIFY2(r.exitCode == 0, r.err.constData());
    QCOMPARE(QJsonDocument::fromJson(r.out).object(), (QJsonObject{{QStringLiteral("other"), QStringLiteral("x")}}));
    QVERIFY(r.out.contains("\n    \"other\""));

    // Between the first write and now: k was removed (its value at the
    // start was 1), other was added.
    r = run(QStringList{QStringLiteral("diff"), QStringLiteral("--from"), QStringLiteral("hlc:%1").arg(hlcs[0])} + store);
    QVERIFY2(r.exitCode == 0, r.err.constData());
    QVector<QJsonObject> changes = jsonLines(r.out);
    QCOMPARE(changes.size(), 2);
    QCOMPARE(changes[0].value(QStringLiteral("key")), QJsonValue(QStringLiteral("k")));
    QCOMPARE(changes[0].value(QStringLiteral("change")), QJsonValue(QStringLiteral("removed")));
    QCOMPARE(changes[0].value(QStringLiteral("before")), QJsonValue(1));
    QVERIFY(!changes[0].contains(QStringLiteral("after")));
    QCOMPARE(changes[0].value(QStringLiteral("hlc")).toString().toULongLong(), hlcs[2]); // the delete
    QCOMPARE(changes[1].value(QStringLiteral("key")), QJsonValue(QStringLiteral("other")));
    QCOMPARE(changes[1].value(QStringLiteral("change")), QJsonValue(QStringLiteral("added")));
    QCOMPARE(changes[1].value(QStringLiteral("after")), QJsonValue(QStringLiteral("x")));
    // Over the second write only: k changed.
    r = run(QStringList{QStringLiteral("diff"), QStringLiteral("--from"), QStringLiteral("hlc:%1").arg(hlcs[0]),
                        QStringLiteral("--to"), QStringLiteral("hlc:%1").arg(hlcs[1])} + store);
    changes = jsonLines(r.out);
    QCOMPARE(changes.size(), 1);
    QCOMPARE(changes[0].value(QStringLiteral("change")), QJsonValue(QStringLiteral("changed")));
    QCOMPARE(changes[0].value(QStringLiteral("before")), QJsonValue(1));
    QCOMPARE(changes[0].value(QStringLiteral("after")), QJsonValue(QJsonObject{{QStringLiteral("x"), 2}}));
    // Nothing happened in the last day before the store: no lines.
    r = run(QStringList{QStringLiteral("diff"), QStringLiteral("--from"), QStringLiteral("-2d"), QStringLiteral("--to"),
                        QStringLiteral("-1d")} + store);
    QCOMPARE(r.exitCode, 0);
    QCOMPARE(r.out, QByteArray());
}

void tst_Cli::badHistoryQuestions_data()
{
    QTest::addColumn<QStringList>("arguments"); // the store is appended where "STORE" stands
    QTest::addColumn<int>("exitCode");
    QTest::addColumn<QByteArray>("message");
    const QString store = QStringLiteral("STORE");
    QTest::newRow("a time that is no time") << QStringList{QStringLiteral("dump"), QStringLiteral("--at"), QStringLiteral("yesterday"), QStringLiteral("--store"), store}
                                            << 2 << QByteArray("--at: 'yesterday' is not a time: use ISO 8601");
    QTest::newRow("a relative time without a unit") << QStringList{QStringLiteral("diff"), QStringLiteral("--from"), QStringLiteral("-10"), QStringLiteral("--store"), store}
                                                    << 2 << QByteArray("--from: '-10' is not a time");
    QTest::newRow("a bad --to") << QStringList{QStringLiteral("diff"), QStringLiteral("--from"), QStringLiteral("-1h"), QStringLiteral("--to"), QStringLiteral("2024-13-45"), QStringLiteral("--store"), store}
                                << 2 << QByteArray("--to: '2024-13-45' is not a time");
    QTest::newRow("diff needs --from") << QStringList{QStringLiteral("diff"), QStringLiteral("--store"), store} << 2 << QByteArray("--from TIME is required");
    QTest::newRow("diff backwards") << QStringList{QStringLiteral("diff"), QStringLiteral("--from"), QStringLiteral("-1h"), QStringLiteral("--to"), QStringLiteral("-2h"), QStringLiteral("--store"), store}
                                    << 2 << QByteArray("--from is after --to");
    QTest::newRow("history needs a store") << QStringList{QStringLiteral("history"), QStringLiteral("k")} << 2 << QByteArray("--store FILE is required");
    QTest::newRow("dump --at needs a store") << QStringList{QStringLiteral("dump"), QStringLiteral("--at"), QStringLiteral("now")} << 2 << QByteArray("--store FILE is required");
    QTest::newRow("history needs a key") << QStringList{QStringLiteral("history"), QStringLiteral("--store"), store} << 2 << QByteArray("expected 1 argument");
    QTest::newRow("a key never written exits 1") << QStringList{QStringLiteral("history"), QStringLiteral("never"), QStringLiteral("--store"), store}
                                                 << 1 << QByteArray("holds no write of 'never'");
    QTest::newRow("another map's store is refused") << QStringList{QStringLiteral("history"), QStringLiteral("k"), QStringLiteral("--map"), QStringLiteral("/other"), QStringLiteral("--store"), store}
                                                    << 4 << QByteArray("the store holds map '/history', not '/other'");
    QTest::newRow("a missing store is an error, not created") << QStringList{QStringLiteral("history"), QStringLiteral("k"), QStringLiteral("--store"), QStringLiteral("MISSING")}
                                                              << 4 << QByteArray("missing.distmap");
    QTest::newRow("a file that is no store") << QStringList{QStringLiteral("dump"), QStringLiteral("--at"), QStringLiteral("now"), QStringLiteral("--store"), QStringLiteral("GARBAGE")}
                                             << 4 << QByteArray("not a distmap store");
}

void tst_Cli::badHistoryQuestions()
{
    QFETCH(QStringList, arguments);
    QFETCH(int, exitCode);
    QFETCH(QByteArray, message);
    const QString store = historyStore();
    QVERIFY(!store.isEmpty());
    const QString missing = m_dir.filePath(QStringLiteral("missing.distmap"));
    const QString garbage = m_dir.filePath(QStringLiteral("garbage.distmap"));
    QFile file(garbage);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write("{\"not\": \"a store\"}\n");
    file.close();
    for (QString &a : arguments) {
        if (a == QLatin1String("STORE"))
            a = store;
        else if (a == QLatin1String("MISSING"))
            a = missing;
        else if (a == QLatin1String("GARBAGE"))
            a = garbage;
    }
    const Result r = run(arguments);
    QCOMPARE(r.exitCode, exitCode);
    QVERIFY2(r.err.contains(message), r.err.constData());
    QCOMPARE(r.out, QByteArray());
    QVERIFY(!QFile::exists(missing));
}

QTEST_GUILESS_MAIN(tst_Cli)
#include "tst_cli.moc"
