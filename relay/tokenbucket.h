#pragma once

#include <QtGlobal>

// A token bucket: take() succeeds while the bucket holds a token, and the
// bucket refills continuously at perSecond tokens a second up to burst.
// The relay keeps one per connection over every message it sends; O(1),
// one clock reading per message. Time is passed in (nanoseconds on any
// monotonic clock) so tests can drive it.
class TokenBucket
{
public:
    TokenBucket() = default; // unlimited
    // Starts full. perSecond <= 0 means unlimited.
    TokenBucket(int perSecond, int burst, qint64 nowNs);

    // Takes one token; false (and nothing taken) when the bucket is empty.
    bool take(qint64 nowNs);
    double tokens() const { return m_tokens; }

private:
    double m_perSecond = 0;
    double m_burst = 0;
    double m_tokens = 0;
    qint64 m_refilledNs = 0;
};
