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

#include <functional>

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

} // namespace BenchUtil
