#include "tokenbucket.h"

#include <cmath>

TokenBucket::TokenBucket(int perSecond, int burst, qint64 nowNs)
    : m_perSecond(qMax(0, perSecond))
    , m_burst(qMax(1, burst))
    , m_tokens(m_burst)
    , m_refilledNs(nowNs)
{
}

double TokenBucket::tokens(qint64 nowNs) const
{
    if (!isLimited())
        return m_burst;
    return qMin(m_burst, m_tokens + double(nowNs - m_refilledNs) * 1e-9 * m_perSecond);
}

double TokenBucket::spend(qint64 nowNs)
{
    if (!isLimited())
        return m_burst;
    m_tokens = tokens(nowNs) - 1;
    m_refilledNs = nowNs;
    return m_tokens;
}

qint64 TokenBucket::nsUntil(double level, qint64 nowNs) const
{
    const double missing = qMin(level, m_burst) - tokens(nowNs);
    if (!isLimited() || missing <= 0)
        return 0;
    return qint64(std::ceil(missing / m_perSecond * 1e9));
}
