#pragma once

#include <QtGlobal>

// A token bucket that may go into debt: spend() takes one token even from
// an empty bucket, because the relay has already read the message it pays
// for; the debt tells how long to stop reading the connection. The bucket
// refills continuously at perSecond tokens a second up to burst. O(1), one
// clock reading per message. Time is passed in (nanoseconds on any
// monotonic clock) so tests can drive it.
class TokenBucket
{
public:
    TokenBucket() = default; // unlimited
    // Starts full. perSecond <= 0 means unlimited.
    TokenBucket(int perSecond, int burst, qint64 nowNs);

    bool isLimited() const { return m_perSecond > 0; }
    int perSecond() const { return int(m_perSecond); }
    int burst() const { return int(m_burst); }

    // Takes one token; returns the tokens left, negative while in debt.
    // An unlimited bucket never runs out.
    double spend(qint64 nowNs);
    // The tokens the bucket holds at nowNs (it does not change).
    double tokens(qint64 nowNs) const;
    // Nanoseconds from nowNs until the bucket holds `level` tokens again;
    // 0 if it already does (level is capped at the burst).
    qint64 nsUntil(double level, qint64 nowNs) const;

private:
    double m_perSecond = 0;
    double m_burst = 0;
    double m_tokens = 0;
    qint64 m_refilledNs = 0;
};
