// What an operator runs: `distmap relay` and `distmap keep` as processes,
// scraped over HTTP (/metrics checked by Prometheus' own promtool),
// configured from a file, reloaded with SIGHUP, logging JSON lines.
#include "httpget.h"
#include "rawclient.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>

using namespace RelayTest;

namespace {

QString binary() { return qEnvironmentVariable("DISTMAP_BINARY"); }

// Starts `distmap ARGS` and waits for the stdout line matching `pattern`;
// returns its first capture, or an empty string (the process output is in *log).
QString startAndWait(QProcess &process, const QStringList &arguments, const QString &pattern, QByteArray *log)
{
    process.start(binary(), arguments);
    if (!process.waitForStarted(Timeout))
        return {};
    const QRegularExpression re(pattern);
    QString captured;
    (void)QTest::qWaitFor([&] {
        process.waitForReadyRead(50);
        *log += process.readAllStandardOutput();
        const QRegularExpressionMatch m = re.match(QString::fromUtf8(*log));
        if (m.hasMatch())
            captured = m.captured(1);
        return m.hasMatch() || process.state() == QProcess::NotRunning;
    }, Timeout);
    return captured;
}

struct Finished
{
    int exitCode = -1;
    QByteArray out;
    QByteArray err;
};

Finished runToEnd(const QStringList &arguments)
{
    QProcess p;
    p.start(binary(), arguments);
    Finished f;
    if (!p.waitForFinished(Timeout)) {
        p.kill();
        p.waitForFinished();
        return f;
    }
    f.exitCode = p.exitCode();
    f.out = p.readAllStandardOutput();
    f.err = p.readAllStandardError();
    return f;
}

void stop(QProcess &process)
{
    process.terminate(); // SIGTERM to our own child, by its PID
    if (!process.waitForFinished(Timeout))
        process.kill();
}

} // namespace

class tst_Operations : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void relayMetricsPassPromtool();
    void configFileOptionsAndErrors();
    void sighupReloadsLimitsFromTheConfig();
    void jsonLogLines();
    void keeperMetrics();

private:
    QString writeFile(const QString &name, const QByteArray &text);
    bool promtoolAccepts(const QByteArray &metrics, QByteArray *output);
    QTemporaryDir m_dir;
};

void tst_Operations::initTestCase()
{
    QVERIFY(!binary().isEmpty());
    QVERIFY(m_dir.isValid());
}

QString tst_Operations::writeFile(const QString &name, const QByteArray &text)
{
    const QString path = m_dir.filePath(name);
    QFile file(path);
    if (file.open(QIODevice::WriteOnly | QIODevice::Truncate))
        file.write(text);
    return path;
}

bool tst_Operations::promtoolAccepts(const QByteArray &metrics, QByteArray *output)
{
    // Debian's prometheus package; scripts/setup.sh installs it.
    const QString promtool = QStandardPaths::findExecutable(QStringLiteral("promtool"));
    if (promtool.isEmpty()) {
        *output = "promtool not found (apt-get install prometheus)";
        return false;
    }
    QProcess p;
    p.start(promtool, {QStringLiteral("check"), QStringLiteral("metrics")});
    p.write(metrics);
    p.closeWriteChannel();
    if (!p.waitForFinished(Timeout))
        return false;
    *output = p.readAll();
    return p.exitCode() == 0;
}

void tst_Operations::relayMetricsPassPromtool()
{
    QProcess relay;
    QByteArray log;
    const QString url = startAndWait(relay, {QStringLiteral("relay"), QStringLiteral("--port"), QStringLiteral("0")},
                                     QStringLiteral("listening on (ws://\\S+)"), &log);
    QVERIFY2(!url.isEmpty(), log.constData());
    const quint16 port = quint16(QUrl(url).port());
    // Some traffic first, so the counters are not all zero.
    RawClient a{QUrl(url)};
    QVERIFY(a.waitConnected() && a.hello() && a.open(QStringLiteral("/ops")));
    const HttpGet::Reply reply = HttpGet::get(port, "/metrics");
    QCOMPARE(reply.status, 200);
    QCOMPARE(HttpGet::sample(reply.body, "distmap_relay_peers"), 1.0);
    QByteArray output;
    QVERIFY2(promtoolAccepts(reply.body, &output), (output + "\n" + reply.body).constData());
    qInfo("promtool check metrics: %s", output.isEmpty() ? "no findings" : output.constData());
    stop(relay);
}

void tst_Operations::configFileOptionsAndErrors()
{
    // The file sets the metrics port off the public one; the command line's --port wins over the file's.
    const QString config = writeFile(QStringLiteral("relay.conf"),
                                     "# test relay\n[relay]\nport = 1\nmetrics-listen = 127.0.0.1:0\nno-http = true\n");
    QProcess relay;
    QByteArray log;
    const QString metrics = startAndWait(relay, {QStringLiteral("relay"), QStringLiteral("--config"), config, QStringLiteral("--port"),
                                                 QStringLiteral("0")},
                                         QStringLiteral("metrics on (http://\\S+)/metrics"), &log);
    QVERIFY2(!metrics.isEmpty(), log.constData());
    const QRegularExpressionMatch m = QRegularExpression(QStringLiteral("listening on ws://127.0.0.1:(\\d+)")).match(QString::fromUtf8(log));
    QVERIFY2(m.hasMatch() && m.captured(1) != QLatin1String("1"), log.constData());
    const quint16 publicPort = quint16(m.captured(1).toUInt());
    QCOMPARE(HttpGet::get(quint16(QUrl(metrics).port()), "/readyz").status, 200);
    QCOMPARE(HttpGet::get(publicPort, "/metrics").status == 200, false); // no-http, and metrics moved away
    stop(relay);

    // Errors name the file and line.
    const QString unknown = writeFile(QStringLiteral("unknown.conf"), "[relay]\nport = 0\nmax-rat = 10\n");
    Finished f = runToEnd({QStringLiteral("relay"), QStringLiteral("--config"), unknown});
    QCOMPARE(f.exitCode, 2);
    QVERIFY2(f.err.contains(unknown.toUtf8() + ":3: unknown key 'max-rat'"), f.err.constData());
    const QString badValue = writeFile(QStringLiteral("bad.conf"), "[relay]\nport = 0\nmax-rate = fast\n");
    f = runToEnd({QStringLiteral("relay"), QStringLiteral("--config"), badValue});
    QCOMPARE(f.exitCode, 2);
    QVERIFY2(f.err.contains("--max-rate must be a number, at least 0 (from " + badValue.toUtf8() + ":3)"), f.err.constData());
    f = runToEnd({QStringLiteral("relay"), QStringLiteral("--config"), m_dir.filePath(QStringLiteral("none.conf"))});
    QCOMPARE(f.exitCode, 2);
    QVERIFY2(f.err.contains("cannot read"), f.err.constData());
    f = runToEnd({QStringLiteral("keep"), QStringLiteral("--config"), writeFile(QStringLiteral("keep.conf"), "[keep]\nmap = /a\nstore\n")});
    QCOMPARE(f.exitCode, 2);
    QVERIFY2(f.err.contains("keep.conf:3: expected 'key = value'"), f.err.constData());
}

void tst_Operations::sighupReloadsLimitsFromTheConfig()
{
    const QString config = writeFile(QStringLiteral("limits.conf"), "[relay]\nport = 0\nmax-rate = 1\nburst = 3\n");
    QProcess relay;
    QByteArray log;
    const QString url = startAndWait(relay, {QStringLiteral("relay"), QStringLiteral("--config"), config},
                                     QStringLiteral("listening on (ws://\\S+)"), &log);
    QVERIFY2(!url.isEmpty(), log.constData());
    writeFile(QStringLiteral("limits.conf"), "[relay]\nport = 0\nmax-rate = 100000\nburst = 100000\nhost = 127.0.0.2\n");
    QCOMPARE(::kill(pid_t(relay.processId()), SIGHUP), 0); // our own child, by its PID
    QByteArray err;
    QVERIFY(QTest::qWaitFor([&] {
        relay.waitForReadyRead(50);
        err += relay.readAllStandardError();
        return err.contains("only a restart applies it");
    }, Timeout));
    QVERIFY2(err.contains("changed: max-rate, burst"), err.constData());
    QVERIFY2(err.contains("restart applies it: host/port"), err.constData());
    // Under the old limits these would be slowed to a ping a second.
    RawClient a{QUrl(url)};
    QVERIFY(a.waitConnected() && a.hello());
    for (int i = 0; i < 50; ++i)
        a.send(Control::encodePing({i}));
    QVERIFY(a.stillServed());
    // A file that no longer parses changes nothing, and says so.
    writeFile(QStringLiteral("limits.conf"), "[relay]\nmax-rate = 1\nbogus = 1\n");
    QCOMPARE(::kill(pid_t(relay.processId()), SIGHUP), 0);
    QVERIFY(QTest::qWaitFor([&] {
        relay.waitForReadyRead(50);
        err += relay.readAllStandardError();
        return err.contains("not reloading");
    }, Timeout));
    for (int i = 0; i < 50; ++i)
        a.send(Control::encodePing({i}));
    QVERIFY(a.stillServed());
    stop(relay);
}

void tst_Operations::jsonLogLines()
{
    const QString tokens = writeFile(QStringLiteral("tokens"), "secret-token-0123456789 rw /*\n");
    QProcess relay;
    QByteArray log;
    const QString url = startAndWait(relay, {QStringLiteral("relay"), QStringLiteral("--port"), QStringLiteral("0"), QStringLiteral("--log"),
                                             QStringLiteral("--log-format"), QStringLiteral("json"), QStringLiteral("--tokens"), tokens},
                                     QStringLiteral("listening on (ws://\\S+)"), &log);
    QVERIFY2(!url.isEmpty(), log.constData());
    QUrl withToken(url);
    withToken.setQuery(QStringLiteral("token=secret-token-0123456789"));
    {
        RawClient a(withToken);
        QVERIFY(a.waitConnected() && a.hello() && a.open(QStringLiteral("/logged")));
        QUrl bad(url);
        bad.setQuery(QStringLiteral("token=wrong-token-0123456789"));
        RawClient wrong(bad);
        QVERIFY(wrong.waitError(int(Wire::ErrorCode::Unauthorized)));
    }
    QVERIFY(QTest::qWaitFor([&] {
        relay.waitForReadyRead(50);
        log += relay.readAllStandardOutput();
        return log.count("disconnect") >= 2;
    }, Timeout));
    stop(relay);
    log += relay.readAllStandardOutput() + relay.readAllStandardError();
    int objects = 0;
    for (const QByteArray &line : log.split('\n')) {
        if (line.isEmpty() || line.startsWith("listening on"))
            continue;
        QJsonParseError error;
        const QJsonObject o = QJsonDocument::fromJson(line, &error).object();
        QVERIFY2(error.error == QJsonParseError::NoError, line.constData());
        QVERIFY(o.contains(QStringLiteral("time")) && o.contains(QStringLiteral("level")) && o.contains(QStringLiteral("message")));
        QVERIFY2(o.value(QStringLiteral("category")).toString().startsWith(QStringLiteral("distmap.")), line.constData());
        ++objects;
    }
    QVERIFY2(objects >= 4, log.constData()); // connects, the open, the refusal, the disconnects
    QVERIFY(log.contains("open /logged"));
    QVERIFY(!log.contains("secret-token") && !log.contains("wrong-token")); // never a token in a log line
}

void tst_Operations::keeperMetrics()
{
    QProcess relay;
    QByteArray relayLog;
    const QString url = startAndWait(relay, {QStringLiteral("relay"), QStringLiteral("--port"), QStringLiteral("0")},
                                     QStringLiteral("listening on (ws://\\S+)"), &relayLog);
    QVERIFY2(!url.isEmpty(), relayLog.constData());
    QProcess keeper;
    QByteArray log;
    const QString metrics = startAndWait(keeper, {QStringLiteral("keep"), QStringLiteral("--url"), url, QStringLiteral("--map"),
                                                  QStringLiteral("/kept"), QStringLiteral("--store"), m_dir.filePath(QStringLiteral("store")),
                                                  QStringLiteral("--metrics-listen"), QStringLiteral("127.0.0.1:0")},
                                         QStringLiteral("metrics on (http://\\S+)/metrics"), &log);
    QVERIFY2(!metrics.isEmpty(), log.constData());
    const quint16 port = quint16(QUrl(metrics).port());
    const Finished set = runToEnd({QStringLiteral("set"), QStringLiteral("k"), QStringLiteral("\"v\""), QStringLiteral("--url"), url,
                                   QStringLiteral("--map"), QStringLiteral("/kept")});
    QCOMPARE(set.exitCode, 0); // acknowledged durable: by the keeper
    HttpGet::Reply reply;
    QTRY_COMPARE_WITH_TIMEOUT((reply = HttpGet::get(port, "/metrics"), HttpGet::sample(reply.body, "distmap_keep_keys{map=\"/kept\"}")), 1.0,
                              Timeout);
    QCOMPARE(HttpGet::sample(reply.body, "distmap_keep_connected{map=\"/kept\"}"), 1.0);
    QVERIFY(HttpGet::sample(reply.body, "distmap_keep_store_bytes{map=\"/kept\"}") > 0);
    QVERIFY(HttpGet::sample(reply.body, "distmap_keep_fsync_seconds_count{map=\"/kept\"}") >= 1);
    QVERIFY(HttpGet::sample(reply.body, "distmap_keep_last_sync_timestamp_seconds{map=\"/kept\"}") > 1.7e9);
    QByteArray output;
    QVERIFY2(promtoolAccepts(reply.body, &output), (output + "\n" + reply.body).constData());
    QCOMPARE(HttpGet::get(port, "/healthz").status, 200);
    stop(keeper);
    stop(relay);
}

QTEST_GUILESS_MAIN(tst_Operations)
#include "tst_operations.moc"
