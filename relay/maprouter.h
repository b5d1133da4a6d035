#pragma once

#include <QVector>

#include <functional>

// The members of one map network, in the order they opened the map, and the
// choice of which member answers a sync request (docs/PROTOCOL.md, section
// 8, step 3). Plain logic over peer ids, no sockets: the relay routes with
// it, and tst_simulation runs the same routing over its simulated network.
//
// Requests spread two ways: first requests go to the ready members in turn
// (a cursor shared by the map), and a member's successive requests (its
// periodic digest rounds) go to the member after the one that answered its
// last, so two peers that share a stale write cannot keep comparing only
// with each other.
class MapRouter
{
public:
    struct Member
    {
        quint64 peer = 0;
        bool ready = false;      // has sent `ready` or was told `alone`
        quint64 lastSource = 0;  // who answered its last sync request; 0: nobody yet
    };

    // A member that opened the map; it is not ready until setReady() or
    // route() finds it alone. Adding a member twice is the caller's bug.
    void add(quint64 peer);
    void remove(quint64 peer);
    bool contains(quint64 peer) const { return indexOf(peer) >= 0; }
    void setReady(quint64 peer);
    bool isReady(quint64 peer) const;
    bool isEmpty() const { return m_members.isEmpty(); }
    int size() const { return int(m_members.size()); }
    const QVector<Member> &members() const { return m_members; }

    // Who should answer requester's sync request: a ready member other than
    // the requester that canServe accepts (the relay refuses read-only and
    // closing members; empty accepts all). Returns 0 when there is none,
    // and then marks the requester ready: its state is the map's state, so
    // the next peer that asks syncs from it instead of also being alone.
    quint64 route(quint64 requester, const std::function<bool(quint64 peer)> &canServe = {});

private:
    int indexOf(quint64 peer) const;

    QVector<Member> m_members;
    int m_cursor = 0;
};
