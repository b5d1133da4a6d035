#include "maprouter.h"

void MapRouter::add(quint64 peer, bool remote)
{
    Member member;
    member.peer = peer;
    member.remote = remote;
    m_members.append(member);
}

void MapRouter::preferRemote(quint64 peer)
{
    const int i = indexOf(peer);
    if (i >= 0)
        m_members[i].preferRemote = true;
}

MapRouter::Decisions MapRouter::remove(quint64 peer, qint64 nowMs)
{
    const int index = indexOf(peer);
    if (index < 0)
        return {};
    m_members.remove(index);
    dropRequestOf(peer);
    // Requests it was asked to answer and had not started on: nobody else
    // will answer them, and their requesters do not know whom to blame.
    // They wait again from now, at the back, so the list stays in the order
    // requests started waiting.
    QVector<Request> orphans;
    for (int i = 0; i < m_requests.size();) {
        if (m_requests[i].responder == peer) {
            orphans.append(m_requests.takeAt(i));
            orphans.last().responder = 0;
            orphans.last().sinceMs = nowMs;
        } else {
            ++i;
        }
    }
    m_requests += orphans;
    return settle(nowMs);
}

MapRouter::Decisions MapRouter::setReady(quint64 peer, qint64 nowMs)
{
    const int index = indexOf(peer);
    if (index < 0)
        return {};
    m_members[index].ready = true;
    return settle(nowMs);
}

bool MapRouter::isReady(quint64 peer) const
{
    const int index = indexOf(peer);
    return index >= 0 && m_members[index].ready;
}

MapRouter::Decisions MapRouter::request(quint64 requester, const QByteArray &frame, qint64 nowMs)
{
    dropRequestOf(requester);
    Request r;
    r.requester = requester;
    r.frame = frame;
    r.sinceMs = nowMs;
    m_requests.append(r);
    return settle(nowMs);
}

void MapRouter::answered(quint64 responder, quint64 requester)
{
    for (int i = 0; i < m_requests.size(); ++i) {
        if (m_requests[i].requester == requester && m_requests[i].responder == responder) {
            m_requests.remove(i);
            return;
        }
    }
}

MapRouter::Decisions MapRouter::expire(qint64 nowMs)
{
    return settle(nowMs);
}

bool MapRouter::hasWaiting() const
{
    for (const Request &r : m_requests) {
        if (!r.responder)
            return true;
    }
    return false;
}

qint64 MapRouter::waitDeadline() const
{
    for (const Request &r : m_requests) {
        if (!r.responder)
            return r.sinceMs + m_waitMs;
    }
    return -1;
}

bool MapRouter::isWaiting(quint64 peer) const
{
    for (const Request &r : m_requests) {
        if (r.requester == peer && !r.responder)
            return true;
    }
    return false;
}

void MapRouter::dropRequestOf(quint64 requester)
{
    for (int i = 0; i < m_requests.size(); ++i) {
        if (m_requests[i].requester == requester) {
            m_requests.remove(i);
            return;
        }
    }
}

quint64 MapRouter::pick(quint64 requester)
{
    const int n = int(m_members.size());
    const int self = indexOf(requester);
    const quint64 lastSource = self >= 0 ? m_members[self].lastSource : 0;
    int start = m_cursor;
    for (int i = 0; lastSource && i < n; ++i) {
        if (m_members[i].peer == lastSource)
            start = i + 1;
    }
    // A first pass over the members on the preferred side, if there is one:
    // remote ones when the requester asked for one, local ones while the
    // remote ones cannot be reached.
    enum Side { Remote, Local, Any };
    const Side first = !m_remoteReachable                           ? Local
                       : self >= 0 && m_members[self].preferRemote ? Remote
                                                                   : Any;
    for (Side side : {first, Any}) {
        for (int step = 0; step < n; ++step) {
            const int i = (start + step) % n;
            const Member &m = m_members[i];
            if (m.peer == requester || !m.ready || !canServe(m.peer) || (side == Remote && !m.remote) || (side == Local && m.remote))
                continue;
            m_cursor = (i + 1) % n;
            if (self >= 0) {
                m_members[self].lastSource = m.peer;
                m_members[self].preferRemote = false;
            }
            return m.peer;
        }
        if (side == Any)
            break;
    }
    return 0;
}

bool MapRouter::mayStillServe(quint64 requester) const
{
    // A member that could serve, is not ready, and is not itself waiting
    // for someone: it opened the map and is syncing (or about to ask), and
    // may hold data nobody ready has. Waiting members wait for each other
    // in a cycle, so they do not count.
    for (const Member &m : m_members) {
        if (m.peer != requester && !m.ready && canServe(m.peer) && !isWaiting(m.peer))
            return true;
    }
    return false;
}

MapRouter::Decisions MapRouter::settle(qint64 nowMs)
{
    Decisions out;
    for (;;) {
        for (Request &r : m_requests) {
            if (r.responder)
                continue;
            if (const quint64 responder = pick(r.requester)) {
                r.responder = responder;
                out.append({Decision::Forward, r.requester, responder, r.frame});
            }
        }
        // What the oldest waiting request may wait for, every waiting one
        // may (waiting members are not counted), and it runs out of time
        // first: it alone decides whether anyone is told `alone` now.
        int oldest = -1;
        for (int i = 0; i < m_requests.size() && oldest < 0; ++i) {
            if (!m_requests[i].responder)
                oldest = i;
        }
        if (oldest < 0)
            break;
        const quint64 requester = m_requests[oldest].requester;
        if (nowMs - m_requests[oldest].sinceMs < m_waitMs && mayStillServe(requester))
            break;
        // Its state is the map's state now; the others may sync from it.
        m_requests.remove(oldest);
        const int self = indexOf(requester);
        if (self >= 0)
            m_members[self].ready = true;
        out.append({Decision::Alone, requester, 0, {}});
    }
    return out;
}

int MapRouter::indexOf(quint64 peer) const
{
    for (int i = 0; i < m_members.size(); ++i) {
        if (m_members[i].peer == peer)
            return i;
    }
    return -1;
}
