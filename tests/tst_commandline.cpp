// The command line's plain parts: the --config file (ConfigFile,
// CommandConfig), the log line formats (LogOutput) and the Prometheus
// text writer (MetricsWriter).
#include "commandconfig.h"
#include "configfile.h"
#include "logoutput.h"
#include "metricswriter.h"

#include <QCommandLineOption>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>

class tst_CommandLine : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void sectionsCommentsAndQuotes();
    void badLinesNameTheirLine_data();
    void badLinesNameTheirLine();
    void entriesBecomeArgumentsTheCommandLineWins();
    void unknownKeysAndBadSwitchesAreErrors();
    void expandPutsTheFileFirstAndRemembersLines();
    void textAndJsonLogLines();
    void metricsTextFormat();
    void labelValuesAreEscaped();

private:
    const QList<QCommandLineOption> m_options{
        QCommandLineOption(QStringLiteral("port"), QStringLiteral("p"), QStringLiteral("P"), QStringLiteral("7357")),
        QCommandLineOption(QStringLiteral("max-rate"), QStringLiteral("r"), QStringLiteral("N")),
        QCommandLineOption(QStringLiteral("url"), QStringLiteral("u"), QStringLiteral("URL")),
        QCommandLineOption(QStringLiteral("log"), QStringLiteral("a switch")),
        QCommandLineOption(QStringLiteral("no-http"), QStringLiteral("a switch")),
        QCommandLineOption(QStringLiteral("config"), QStringLiteral("c"), QStringLiteral("FILE")),
    };
};

void tst_CommandLine::sectionsCommentsAndQuotes()
{
    ConfigFile file;
    QString error;
    QVERIFY2(file.parse("# a relay\n[relay]\nport = 7400\n; comment\n  max-rate=0  \nurl = \" ws://a \"\n\n[keep]\nport = 1\n",
                        QStringLiteral("relay"), &error),
             qPrintable(error));
    QCOMPARE(file.entries().size(), 3);
    QCOMPARE(file.entries()[0].key, QStringLiteral("port"));
    QCOMPARE(file.entries()[0].value, QStringLiteral("7400"));
    QCOMPARE(file.entries()[0].line, 3);
    QCOMPARE(file.entries()[1].value, QStringLiteral("0"));
    QCOMPARE(file.entries()[1].line, 5);
    QCOMPARE(file.entries()[2].value, QStringLiteral(" ws://a "));
    // The [keep] section is the keeper's: not read for the relay.
    QVERIFY(file.parse("[keep]\nport = 1\n", QStringLiteral("relay"), &error));
    QVERIFY(file.entries().isEmpty());
}

void tst_CommandLine::badLinesNameTheirLine_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QString>("expected");
    QTest::newRow("outside a section") << QByteArray("port = 1\n") << QStringLiteral("config:1: 'port' is outside a section");
    QTest::newRow("unknown section") << QByteArray("[relay]\nport=1\n[rleay]\n") << QStringLiteral("config:3: unknown section [rleay]");
    QTest::newRow("no equals") << QByteArray("[relay]\n\nport 7400\n") << QStringLiteral("config:3: expected 'key = value'");
    QTest::newRow("open header") << QByteArray("[relay\n") << QStringLiteral("config:1: a section header must look like [relay]");
    QTest::newRow("empty key") << QByteArray("[relay]\n= 3\n") << QStringLiteral("config:2: expected 'key = value'");
}

void tst_CommandLine::badLinesNameTheirLine()
{
    QFETCH(QByteArray, text);
    QFETCH(QString, expected);
    ConfigFile file;
    QString error;
    QVERIFY(!file.parse(text, QStringLiteral("relay"), &error));
    QVERIFY2(error.startsWith(expected), qPrintable(error));
}

void tst_CommandLine::entriesBecomeArgumentsTheCommandLineWins()
{
    ConfigFile file;
    QString error;
    QVERIFY(file.parse("[relay]\nport = 7400\nmax-rate = 0\nurl = ws://a\nurl = ws://b\nlog = yes\nno-http = false\n",
                       QStringLiteral("relay"), &error));
    QStringList arguments;
    QList<QPair<QString, QString>> sources;
    QVERIFY2(file.toArguments(m_options, {QStringLiteral("port")}, &arguments, &sources, &error), qPrintable(error));
    QCOMPARE(arguments, (QStringList{QStringLiteral("--max-rate=0"), QStringLiteral("--url=ws://a"), QStringLiteral("--url=ws://b"),
                                     QStringLiteral("--log")}));
    QCOMPARE(sources.size(), 5); // all but the port the command line gives
    QCOMPARE(sources[0], qMakePair(QStringLiteral("max-rate"), QStringLiteral("config:3")));
}

void tst_CommandLine::unknownKeysAndBadSwitchesAreErrors()
{
    ConfigFile file;
    QString error;
    QStringList arguments;
    QList<QPair<QString, QString>> sources;
    QVERIFY(file.parse("[relay]\nport = 1\nmax-rat = 5\n", QStringLiteral("relay"), &error));
    QVERIFY(!file.toArguments(m_options, {}, &arguments, &sources, &error));
    QCOMPARE(error, QStringLiteral("config:3: unknown key 'max-rat'"));
    QVERIFY(file.parse("[relay]\nlog = maybe\n", QStringLiteral("relay"), &error));
    QVERIFY(!file.toArguments(m_options, {}, &arguments, &sources, &error));
    QCOMPARE(error, QStringLiteral("config:2: log is a switch: its value must be true or false, not 'maybe'"));
    // A file cannot name another file, and short names are not keys.
    QVERIFY(file.parse("[relay]\nconfig = other.conf\n", QStringLiteral("relay"), &error));
    QVERIFY(!file.toArguments(m_options, {}, &arguments, &sources, &error));
    QVERIFY(file.parse("[relay]\np = 1\n", QStringLiteral("relay"), &error));
    QVERIFY(!file.toArguments(m_options, {}, &arguments, &sources, &error));
}

void tst_CommandLine::expandPutsTheFileFirstAndRemembersLines()
{
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("relay.conf"));
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("[relay]\nmax-rate = 100\nport = 9\n");
    f.close();
    CommandConfig config;
    QString error;
    QVERIFY2(config.expand({QStringLiteral("distmap relay"), QStringLiteral("--config"), path, QStringLiteral("--port"), QStringLiteral("0")},
                           m_options, QStringLiteral("relay"), &error),
             qPrintable(error));
    QCOMPARE(config.arguments(), (QStringList{QStringLiteral("distmap relay"), QStringLiteral("--max-rate=100"), QStringLiteral("--config"),
                                              path, QStringLiteral("--port"), QStringLiteral("0")}));
    QCOMPARE(config.origin(QStringLiteral("max-rate")), QStringLiteral(" (from %1:2)").arg(path));
    QCOMPARE(config.origin(QStringLiteral("port")), QString());
    QVERIFY(!config.expand({QStringLiteral("distmap relay"), QStringLiteral("--config=") + dir.filePath(QStringLiteral("missing"))},
                           m_options, QStringLiteral("relay"), &error));
    QVERIFY2(error.startsWith(QStringLiteral("cannot read ")), qPrintable(error));
}

void tst_CommandLine::textAndJsonLogLines()
{
    const QDateTime time(QDate(2026, 12, 5), QTime(14, 2, 17, 5), Qt::UTC);
    QCOMPARE(LogOutput::formatLine(LogOutput::Format::Text, QtInfoMsg, "distmap.relay", QStringLiteral("connect 127.0.0.1:5"), time),
             QByteArray("2026-12-05T14:02:17.005Z distmap.relay: connect 127.0.0.1:5\n"));
    QCOMPARE(LogOutput::formatLine(LogOutput::Format::Text, QtWarningMsg, "distmap.store", QStringLiteral("two\nlines"), time),
             QByteArray("2026-12-05T14:02:17.005Z warning distmap.store: two\\nlines\n"));
    const QByteArray json = LogOutput::formatLine(LogOutput::Format::Json, QtWarningMsg, "distmap.bus", QStringLiteral("say \"hi\"\n"), time);
    QVERIFY(json.endsWith('\n'));
    QCOMPARE(json.count('\n'), 1); // one object per line, whatever the message holds
    const QJsonObject o = QJsonDocument::fromJson(json).object();
    QCOMPARE(o.value(QStringLiteral("time")).toString(), QStringLiteral("2026-12-05T14:02:17.005Z"));
    QCOMPARE(o.value(QStringLiteral("level")).toString(), QStringLiteral("warning"));
    QCOMPARE(o.value(QStringLiteral("category")).toString(), QStringLiteral("distmap.bus"));
    QCOMPARE(o.value(QStringLiteral("message")).toString(), QStringLiteral("say \"hi\"\n"));
    LogOutput::Format format;
    QVERIFY(LogOutput::parseFormat(QStringLiteral("json"), &format) && format == LogOutput::Format::Json);
    QVERIFY(!LogOutput::parseFormat(QStringLiteral("xml"), &format));
}

void tst_CommandLine::metricsTextFormat()
{
    MetricsWriter w;
    w.counter("distmap_x_total", "Things done.", 12);
    w.gauge("distmap_lag_seconds", "A lag.", 0.25);
    w.family("distmap_cut_total", "counter", "Cut, by reason.")
        .sample("distmap_cut_total", {{"reason", "backlog"}}, 3)
        .sample("distmap_cut_total", {{"reason", "heartbeat"}, {"relay", "a"}}, 0);
    QCOMPARE(w.text(), QByteArray("# HELP distmap_x_total Things done.\n# TYPE distmap_x_total counter\ndistmap_x_total 12\n"
                                  "# HELP distmap_lag_seconds A lag.\n# TYPE distmap_lag_seconds gauge\ndistmap_lag_seconds 0.25\n"
                                  "# HELP distmap_cut_total Cut, by reason.\n# TYPE distmap_cut_total counter\n"
                                  "distmap_cut_total{reason=\"backlog\"} 3\ndistmap_cut_total{reason=\"heartbeat\",relay=\"a\"} 0\n"));
    QCOMPARE(MetricsWriter::formatValue(1e15), QByteArray("1000000000000000"));
    QCOMPARE(MetricsWriter::formatValue(qQNaN()), QByteArray("NaN"));
    QCOMPARE(MetricsWriter::formatValue(-qInf()), QByteArray("-Inf"));
}

void tst_CommandLine::labelValuesAreEscaped()
{
    QCOMPARE(MetricsWriter::escapeLabelValue("/a\"b\\c\nd"), QByteArray("/a\\\"b\\\\c\\nd"));
    MetricsWriter w;
    w.family("m", "gauge", "Help with a \\ and a\nnewline.");
    QVERIFY(w.text().startsWith("# HELP m Help with a \\\\ and a\\nnewline.\n"));
}

QTEST_GUILESS_MAIN(tst_CommandLine)
#include "tst_commandline.moc"
