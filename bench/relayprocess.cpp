#include "relayprocess.h"

#include "benchutil.h"

#include <QByteArray>
#include <QFile>
#include <QList>
#include <QRegularExpression>

#include <unistd.h>

bool RelayProcess::start(const QString &binary, const QStringList &extra)
{
    m_process.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    m_process.start(binary, QStringList{QStringLiteral("relay"), QStringLiteral("--port"), QStringLiteral("0"),
                                        QStringLiteral("--max-connections"), QStringLiteral("20000"),
                                        QStringLiteral("--max-per-address"), QStringLiteral("20000"),
                                        QStringLiteral("--max-message"), QString::number(64 * 1024 * 1024),
                                        // A benchmark writer is a flood by design.
                                        QStringLiteral("--max-rate"), QStringLiteral("0")} + extra);
    if (!m_process.waitForStarted(10000))
        return false;
    QByteArray line;
    BenchUtil::waitUntil([&] {
        m_process.waitForReadyRead(50);
        line += m_process.readLine();
        return line.endsWith('\n');
    }, 10000);
    const auto m = QRegularExpression(QStringLiteral("listening on (\\S+)")).match(QString::fromUtf8(line));
    if (!m.hasMatch())
        return false;
    url = QUrl(m.captured(1));
    pid = m_process.processId();
    return true;
}

void RelayProcess::stop()
{
    if (m_process.state() == QProcess::NotRunning)
        return;
    m_process.terminate(); // our own child, by PID
    if (!m_process.waitForFinished(10000))
        m_process.kill();
}

RelayProcess::~RelayProcess()
{
    stop();
}

double RelayProcess::cpuSeconds() const
{
    return cpuSecondsOf(pid);
}

double RelayProcess::cpuSecondsOf(qint64 pid)
{
    if (!pid)
        return 0;
    QFile f(QStringLiteral("/proc/%1/stat").arg(pid));
    if (!f.open(QIODevice::ReadOnly))
        return 0;
    const QByteArray stat = f.readAll();
    const QList<QByteArray> fields = stat.mid(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line.
    return double(fields.value(11).toLongLong() + fields.value(12).toLongLong()) / double(sysconf(_SC_CLK_TCK));
}

double RelayProcess::rssMb() const
{
    return pid ? double(BenchUtil::statusKb(pid, "VmRSS")) / 1024.0 : 0;
}

double RelayProcess::peakMb() const
{
    return pid ? double(BenchUtil::statusKb(pid, "VmHWM")) / 1024.0 : 0;
}
