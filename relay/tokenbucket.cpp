#include "tokenbucket.h"

TokenBucket::TokenBucket(int perSecond, int burst, qint64 nowNs)
    : m_perSecond(qMax(0, perSecond))
    , m_burst(burst)
    , m_tokens(burst)
    , m_refilledNs(nowNs)
{
}

bool TokenBucket::take(qint64 nowNs)
{
    if (m_perSecond <= 0)
        return true;
    m_tokens = qMin(m_burst, m_tokens + double(nowNs - m_refilledNs) * 1e-9 * m_perSecond);
    m_refilledNs = nowNs;
    if (m_tokens < 1)
        return false;
    m_tokens -= 1;
    return true;
}
