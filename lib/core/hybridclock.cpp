#include "hybridclock.h"

#include <QDateTime>

HybridClock::HybridClock(PhysicalSource source)
    : m_source(std::move(source))
{
    if (!m_source)
        m_source = [] { return QDateTime::currentMSecsSinceEpoch(); };
}

qint64 HybridClock::physicalNow() const
{
    return m_source() + m_offsetMs;
}

quint64 HybridClock::pack(qint64 ms, quint32 logical)
{
    return (quint64(qMax<qint64>(ms, 0)) << LogicalBits) | (logical & 0xffff);
}

quint64 HybridClock::tick()
{
    // In the packed form the HLC send rule reduces to max(last + 1, pt):
    // when physical time has not passed the last timestamp the logical
    // counter advances; a counter overflow carries into the millisecond
    // part, which keeps timestamps unique and ordered.
    const quint64 physical = pack(physicalNow(), 0);
    m_last = qMax(m_last + 1, physical);
    return m_last;
}

void HybridClock::observe(quint64 remote)
{
    m_last = qMax(m_last, remote);
}
