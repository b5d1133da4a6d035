#include "maprouter.h"

void MapRouter::add(quint64 peer)
{
    Member member;
    member.peer = peer;
    m_members.append(member);
}

void MapRouter::remove(quint64 peer)
{
    const int index = indexOf(peer);
    if (index >= 0)
        m_members.remove(index);
}

void MapRouter::setReady(quint64 peer)
{
    const int index = indexOf(peer);
    if (index >= 0)
        m_members[index].ready = true;
}

bool MapRouter::isReady(quint64 peer) const
{
    const int index = indexOf(peer);
    return index >= 0 && m_members[index].ready;
}

quint64 MapRouter::route(quint64 requester, const std::function<bool(quint64 peer)> &canServe)
{
    const int n = int(m_members.size());
    const int self = indexOf(requester);
    const quint64 lastSource = self >= 0 ? m_members[self].lastSource : 0;
    int start = m_cursor;
    for (int i = 0; lastSource && i < n; ++i) {
        if (m_members[i].peer == lastSource)
            start = i + 1;
    }
    for (int step = 0; step < n; ++step) {
        const int i = (start + step) % n;
        const Member &m = m_members[i];
        if (m.peer == requester || !m.ready || (canServe && !canServe(m.peer)))
            continue;
        m_cursor = (i + 1) % n;
        if (self >= 0)
            m_members[self].lastSource = m.peer;
        return m.peer;
    }
    if (self >= 0)
        m_members[self].ready = true;
    return 0;
}

int MapRouter::indexOf(quint64 peer) const
{
    for (int i = 0; i < m_members.size(); ++i) {
        if (m_members[i].peer == peer)
            return i;
    }
    return -1;
}
