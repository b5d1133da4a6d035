#pragma once

// Helpers every benchmark in bench/ shares: waiting on the event loop.

#include <QCoreApplication>
#include <QElapsedTimer>

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
inline void spin(int ms, int sliceMs = 20)
{
    waitUntil([] { return false; }, ms, sliceMs);
}

} // namespace BenchUtil
