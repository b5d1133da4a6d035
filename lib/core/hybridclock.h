#pragma once

#include <QtGlobal>
#include <functional>

// A hybrid logical clock (Kulkarni et al., 2014) packed into one 64-bit
// number: the upper 48 bits are physical milliseconds since the Unix epoch,
// the lower 16 bits a logical counter. Packed timestamps compare as plain
// integers, which is what the merge rule and the wire format need.
//
// Not thread-safe; each replica owns one clock.
class HybridClock
{
public:
    using PhysicalSource = std::function<qint64()>; // milliseconds since epoch

    static constexpr int LogicalBits = 16;

    // Default source: the system's wall clock.
    explicit HybridClock(PhysicalSource source = {});

    // Timestamp for a local event (a write). Strictly greater than every
    // timestamp this clock has issued or observed.
    quint64 tick();

    // Merges a timestamp seen in a remote write, so the next tick() orders
    // after it even when the remote clock runs ahead of ours.
    void observe(quint64 remote);

    quint64 last() const { return m_last; }

    // Offset added to the physical source, e.g. to follow the relay's clock.
    void setOffset(qint64 offsetMs) { m_offsetMs = offsetMs; }
    qint64 physicalNow() const;     // source + offset
    qint64 sourceNow() const { return m_source(); }

    static quint64 pack(qint64 ms, quint32 logical);
    static qint64 physicalPart(quint64 hlc) { return qint64(hlc >> LogicalBits); }
    static quint32 logicalPart(quint64 hlc) { return quint32(hlc & 0xffff); }

private:
    PhysicalSource m_source;
    qint64 m_offsetMs = 0;
    quint64 m_last = 0;
};
