#pragma once

// Helpers the benchmarks in bench/ share: waiting on the event loop, and
// memory figures from /proc.

#include <QByteArray>
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QFile>
#include <QList>
#include <QString>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTimer>

#include <functional>
#include <vector>
#include <algorithm>

namespace BenchUtil {

// Runs the event loop until done() is true (returns true) or timeoutMs have
// passed (returns false). done() is checked again after each call to
// processEvents, which handles events for at most sliceMs.
inline bool waitUntil(const std::function<bool()> &done, int timeoutMs, int sliceMs = 20)
{
    QElapsedTimer timer;
    timer.start();
    while (!done()) {
        if (timer.elapsed() > timeoutMs)
            return false;
        QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, sliceMs);
    }
    return true;
}

// Runs the event loop for ms milliseconds: lets sockets and timers settle.
// A loopback port nothing listens on (for a server we start).
inline quint16 freePort()
{
    QTcpServer probe;
    probe.listen(QHostAddress::LocalHost, 0);
    return probe.serverPort();
}

inline bool canConnect(quint16 port)
{
    QTcpSocket s;
    s.connectToHost(QHostAddress::LocalHost, port);
    return s.waitForConnected(200);
}

inline void spin(int ms, int sliceMs = 20)
{
    waitUntil([] { return false; }, ms, sliceMs);
}

// A "kB" field of /proc/<pid>/status (pid 0: this process), such as VmRSS
// or VmHWM; -1 if it cannot be read.
inline qint64 statusKb(qint64 pid, const char *field)
{
    QFile f(pid ? QStringLiteral("/proc/%1/status").arg(pid) : QStringLiteral("/proc/self/status"));
    if (!f.open(QIODevice::ReadOnly))
        return -1;
    const QByteArray prefix = QByteArray(field) + ':';
    for (const QByteArray &line : f.readAll().split('\n')) {
        if (line.startsWith(prefix))
            return line.mid(prefix.size()).trimmed().split(' ').first().toLongLong();
    }
    return -1;
}

// Measures how late a 10 ms timer fires: the GUI's answer time.
class LoopProbe : public QObject
{
public:
    LoopProbe()
    {
        m_timer.setTimerType(Qt::PreciseTimer);
        m_timer.setInterval(10);
        connect(&m_timer, &QTimer::timeout, this, [this] {
            const qint64 gap = m_clock.restart();
            m_lateness.push_back(int(gap - 10));
        });
    }
    void start()
    {
        m_lateness.clear();
        m_clock.start();
        m_timer.start();
    }
    void stop() { m_timer.stop(); }
    int worst() const { return m_lateness.empty() ? 0 : *std::max_element(m_lateness.begin(), m_lateness.end()); }
    int percentile(double p) const
    {
        if (m_lateness.empty())
            return 0;
        std::vector<int> sorted = m_lateness;
        std::sort(sorted.begin(), sorted.end());
        return sorted[std::min(sorted.size() - 1, size_t(p * sorted.size()))];
    }

private:
    QTimer m_timer;
    QElapsedTimer m_clock;
    std::vector<int> m_lateness;
};

} // namespace BenchUtil
