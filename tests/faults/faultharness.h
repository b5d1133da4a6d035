// Shared by the tests that drive real processes (tst_faults, tst_chaos): a
// child process read line by line, and a `distmap relay` started on a port.
#pragma once

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QProcess>
#include <QTest>
#include <QUrl>

#include <algorithm>
#include <functional>
#include <memory>

namespace FaultHarness {

constexpr int ConditionTimeoutMs = 60000; // generous: a noisy shared 2-core machine

// A child process whose stdout is read line by line.
class Child
{
public:
    Child(const QString &name, const QString &program, const QStringList &arguments) : m_name(name)
    {
        m_process.setProgram(program);
        m_process.setArguments(arguments);
        m_process.setProcessChannelMode(QProcess::ForwardedErrorChannel);
        QObject::connect(&m_process, &QProcess::readyReadStandardOutput, [this] {
            while (m_process.canReadLine())
                m_lines.append(QString::fromUtf8(m_process.readLine()).trimmed());
        });
        m_process.start();
        m_process.waitForStarted(ConditionTimeoutMs);
    }
    ~Child()
    {
        if (m_process.state() != QProcess::NotRunning) {
            m_process.kill(); // our own child, by its handle
            m_process.waitForFinished(5000);
        }
    }
    QString name() const { return m_name; }
    QProcess &process() { return m_process; }
    void send(const QString &line) { m_process.write((line + QLatin1Char('\n')).toUtf8()); }
    // Waits for a line (from `from` on) that matches; returns it, or empty.
    QString waitLine(const std::function<bool(const QString &)> &match, int *from = nullptr, int timeoutMs = ConditionTimeoutMs)
    {
        int start = from ? *from : 0;
        QString found;
        auto scan = [&] {
            for (int i = start; i < m_lines.size(); ++i) {
                if (match(m_lines[i])) {
                    found = m_lines[i];
                    if (from)
                        *from = i + 1;
                    return true;
                }
            }
            return false;
        };
        QElapsedTimer timer;
        timer.start();
        while (!scan() && timer.elapsed() < timeoutMs && m_process.state() == QProcess::Running)
            QTest::qWait(10);
        if (found.isEmpty() && !scan() && m_process.state() == QProcess::Running)
            reportStuck();
        return found;
    }
    const QStringList &lines() const { return m_lines; }

private:
    void reportStuck() const;

    QString m_name;
    QProcess m_process;
    QStringList m_lines;
};

// A child that runs but does not answer is the bug a hang hides: say which
// one, and show where its threads are (when gdb is there).
inline void reportStuck(const QString &name, qint64 pid, const QStringList &lastLines = {})
{
    qWarning("%s (pid %lld) is running but did not answer in time; its last lines: %s", qPrintable(name), pid,
             qPrintable(lastLines.join(QLatin1String(" | "))));
    QProcess gdb;
    gdb.start(QStringLiteral("gdb"), {QStringLiteral("-batch"), QStringLiteral("-p"), QString::number(pid), QStringLiteral("-ex"),
                                      QStringLiteral("thread apply all bt")});
    if (gdb.waitForFinished(60000))
        qWarning("%s", gdb.readAllStandardOutput().constData());
}

inline void Child::reportStuck() const
{
    FaultHarness::reportStuck(m_name, m_process.processId(), m_lines.mid(qMax(0, int(m_lines.size()) - 5)));
}

inline QString binaryDir() { return QCoreApplication::applicationDirPath(); }

inline double median(QVector<qint64> v)
{
    if (v.isEmpty())
        return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? double(v[v.size() / 2]) : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2.0;
}

// `distmap relay` on port (0: any); *actualPort gets the port it took.
// The port may be busy for a moment after a kill on a loaded machine: retry.
inline std::unique_ptr<Child> startRelayProcess(quint16 port, quint16 *actualPort)
{
    const QString distmap = qEnvironmentVariable("DISTMAP_BINARY");
    for (int attempt = 0; attempt < 50; ++attempt) {
        auto relay = std::make_unique<Child>(QStringLiteral("relay"), distmap,
                                             QStringList{QStringLiteral("relay"), QStringLiteral("--port"), QString::number(port)});
        const QString line = relay->waitLine([](const QString &l) { return l.startsWith(QLatin1String("listening on ")); });
        if (!line.isEmpty()) {
            *actualPort = quint16(QUrl(line.mid(13)).port());
            return relay;
        }
        relay.reset();
        QTest::qWait(100);
    }
    return nullptr;
}

} // namespace FaultHarness
