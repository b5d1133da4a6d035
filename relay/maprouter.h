#pragma once

#include <QByteArray>
#include <QVector>

#include <functional>

// The members of one map network, in the order they opened the map, and the
// routing of their sync requests (docs/PROTOCOL.md, section 8, step 3).
// Plain logic over peer ids and opaque frames, no sockets or timers: the
// relay routes with it, and tst_simulation runs the same routing over its
// simulated network.
//
// Requests spread two ways: first requests go to the ready members in turn
// (a cursor shared by the map), and a member's successive requests (its
// periodic digest rounds) go to the member after the one that answered its
// last, so two peers that share a stale write cannot keep comparing only
// with each other.
//
// A request is answered `alone` only when no other member may hold data:
// while a member that could serve is still syncing (it opened the map and
// is not ready yet), the request waits for it, up to waitMs. A request
// whose responder leaves before answering is routed again, so a joiner
// never waits on a responder that is gone.
class MapRouter
{
public:
    struct Member
    {
        quint64 peer = 0;
        bool ready = false;      // has sent `ready` or was told `alone`
        quint64 lastSource = 0;  // who answered its last sync request; 0: nobody yet
        bool remote = false;     // on another relay (with a bus)
        bool preferRemote = false; // its next request goes to a remote member if one can serve
    };

    // What the caller must do with a sync request.
    struct Decision
    {
        enum Kind { Forward, Alone };
        Kind kind = Forward;
        quint64 requester = 0;
        quint64 responder = 0; // Forward: send frame to this member
        QByteArray frame;      // Forward: the request, as the requester sent it
    };
    using Decisions = QVector<Decision>;

    // Which members may answer a sync request: the relay refuses read-only
    // and closing members. Empty (the default) accepts every member.
    using ServeFilter = std::function<bool(quint64 peer)>;
    void setServeFilter(ServeFilter filter) { m_canServe = std::move(filter); }
    // How long a request may wait for a member that is still syncing before
    // its requester is told it is alone (default 3 s).
    void setWaitMs(qint64 ms) { m_waitMs = ms; }

    // A member that opened the map; it is not ready until setReady() or a
    // request finds it alone. Adding a member twice is the caller's bug.
    // remote: it is on another relay of the bus.
    void add(quint64 peer, bool remote = false);
    // The member's next request is served by a remote member when a ready
    // one can serve. After the bus lost messages, every member on this
    // relay lacks the same ones, so a digest round between two of them
    // would find nothing.
    void preferRemote(quint64 peer);
    // Whether remote members can be reached now (the bus is up). While
    // not, local members serve first; a request only they could answer
    // still goes to a remote one, and is asked again after its timeout.
    void setRemoteReachable(bool reachable) { m_remoteReachable = reachable; }
    // The member left: its own request is dropped, and requests it had not
    // started answering go to another member (or wait, or are alone).
    Decisions remove(quint64 peer, qint64 nowMs = 0);
    bool contains(quint64 peer) const { return indexOf(peer) >= 0; }
    // The member finished its sync: requests waiting for one are routed.
    Decisions setReady(quint64 peer, qint64 nowMs = 0);
    bool isReady(quint64 peer) const;
    bool isEmpty() const { return m_members.isEmpty(); }
    int size() const { return int(m_members.size()); }
    const QVector<Member> &members() const { return m_members; }

    // A sync request from requester (it replaces any earlier one of its
    // own). A requester told `alone` is marked ready: its state is the
    // map's state, so the next peer that asks syncs from it.
    Decisions request(quint64 requester, const QByteArray &frame, qint64 nowMs = 0);
    // The responder sent its first chunk to requester: the request is
    // answered and no longer kept. If the responder leaves from now on, the
    // requester hears `left` and asks again itself.
    void answered(quint64 responder, quint64 requester);
    // Requests that waited past waitMs are answered `alone`.
    Decisions expire(qint64 nowMs);
    // Requests kept: waiting, or forwarded and not answered yet.
    int pendingRequests() const { return int(m_requests.size()); }
    bool hasWaiting() const;
    // When the oldest waiting request runs out of time; -1 if none waits.
    qint64 waitDeadline() const;

private:
    struct Request
    {
        quint64 requester = 0;
        quint64 responder = 0; // 0: waiting for a member to become ready
        QByteArray frame;
        qint64 sinceMs = 0;    // when it started waiting
    };

    int indexOf(quint64 peer) const;
    bool canServe(quint64 peer) const { return !m_canServe || m_canServe(peer); }
    bool isWaiting(quint64 peer) const;
    quint64 pick(quint64 requester);
    bool mayStillServe(quint64 requester) const;
    void dropRequestOf(quint64 requester);
    Decisions settle(qint64 nowMs);

    QVector<Member> m_members;
    QVector<Request> m_requests; // at most one per requester, in the order they started waiting
    ServeFilter m_canServe;
    qint64 m_waitMs = 3000;
    int m_cursor = 0;
    bool m_remoteReachable = true;
};
