// Deterministic simulation: real Replica objects (the whole peer protocol)
// over a seeded in-process network and a model of the relay that routes
// with the relay's own MapRouter. The network drops, duplicates, delays and
// reorders messages, peers disconnect, the relay restarts; virtual time
// drives the clocks and the sync timeouts. After healing, every replica must
// hold the same map, and every key must hold the write with the highest
// (hlc, writer) ever made.
//
// A second run checks acknowledged writes: writers that confirm each write
// with their peers (write acknowledgements) and crash, losing all they
// hold, while keepers that store the map stay; every write a keeper
// confirmed as durable must be on every keeper at the end.
//
// A third run federates three relays over a simulated Redis bus that
// loses what is published while a relay is off it, and checks the bus's
// healing and its membership (docs/SCALING.md).
//
// DISTMAP_SIM_SEEDS=N runs seeds 1..N (default 200, 100 for the
// acknowledged writes); DISTMAP_SIM_SEED=S replays one seed;
// DISTMAP_SIM_TRACE=KEY (federated run) logs the faults and KEY's writes.

#include "control.h"
#include "maprouter.h"
#include "replica.h"
#include "wire.h"

#include <QRandomGenerator>
#include <QTest>

#include <algorithm>
#include <array>
#include <deque>
#include <functional>
#include <memory>
#include <set>

namespace {

struct Message
{
    bool binary = false;
    QByteArray bytes;
    Control::Message control; // decoded once, when sent
};

struct Faults
{
    int lossPercent = 10;    // routed (binary) messages only: TCP loses nothing while up
    int duplicatePercent = 5;
    int reorderPercent = 5;  // within one link; links are always interleaved at random
    bool on = true;
};

class Simulation;

struct Write
{
    QString key;
    Entry entry;
};

// Who knew what, per key: for each writer (by peer index), the newest of
// its writes of the key a peer had seen, directly or through a write whose
// writer had. A write's own vector is what its writer knew when writing it.
// The checker for conflict reports: a reported conflict must be two writes
// neither of whose writers had seen the other. Sync chunks' beaten entries
// are not observed here, so "seen" is a lower bound: the check can only be
// too lenient, never fail a true conflict.
constexpr int MaxSimPeers = 8;
using KeyClock = std::array<quint64, MaxSimPeers>;

struct CausalTracker
{
    QHash<QPair<quint64, quint64>, KeyClock> writeClocks; // (hlc, writer) -> what its writer knew
    int conflicts = 0;
    QStringList violations;
};

class SimPeer : public Replica::Host
{
public:
    SimPeer(Simulation *sim, int index, quint64 id, qint64 skewMs);

    quint64 peerId() const override { return m_id; }
    void sendFrame(const QByteArray &frame) override;
    void sendControl(const QByteArray &text) override;
    void flushRequested() override { m_flushWanted = true; }
    void syncTimerRequested(qint64 ms) override;
    // A keeper's state outlives everything here, like a store on disk: it
    // confirms writes as durable at once.
    bool onAckRequested(quint64 writer, const QVector<quint64> &hlcs) override
    {
        if (!keeper)
            return false;
        replica->acknowledge(writer, hlcs, true);
        return true;
    }
    void onEntryApplied(const QString &key, const Entry &entry, Replica::Source source) override;
    void onDeltaObserved(const Replica::DeltaEvent &event) override;
    void onConflict(const Replica::Conflict &conflict) override;
    void observe(const QString &key, quint64 hlc, quint64 writer);
    CausalTracker *causal = nullptr;
    QHash<QString, KeyClock> known;

    void onWriteAcknowledged(const QString &key, int, bool durable) override
    {
        // Settled now; the key's current write is the one confirmed (a
        // newer write of another peer would have superseded it, unreported).
        if (durable && acknowledged)
            acknowledged->append({key, *replica->state().find(key)});
    }

    Simulation *sim;
    bool keeper = false;
    QVector<Write> *acknowledged = nullptr;
    int index;
    quint64 m_id;
    qint64 skew;
    bool connected = false;
    int relay = 0; // the relay it is (or was last) connected to
    bool m_flushWanted = false;
    qint64 syncDeadline = -1;
    qint64 reconnectAt = -1;
    std::unique_ptr<Replica> replica;
};

// One message between relays on the bus (docs/SCALING.md, "What crosses the
// bus"), as the relays' model here needs it.
struct SimBusMessage
{
    enum Kind { Frame, Joined, Left, Ready, Roster, Hello };
    Kind kind = Frame;
    int from = 0;            // sending relay
    quint64 incarnation = 0;
    quint64 seq = 0;         // per sender, map messages only
    quint64 peer = 0;        // subject; Frame: origin
    quint64 target = 0;      // Frame: addressed peer, 0 = every member
    bool ready = false;      // Joined
    QByteArray frame;
};

// A relay of the model: the relay's own MapRouter for the map's members,
// local and remote, and what relay.cpp and relayfederation.cpp keep of
// the other relays.
struct SimRelay
{
    bool alive = true;
    bool busUp = true;
    quint64 incarnation = 1;
    quint64 nextSeq = 1;      // of its messages on the map's channel
    std::set<int> connected;  // peers connected here, by index
    MapRouter router;
    struct Remote
    {
        int relay = 0;
        quint64 incarnation = 0;
        qint64 unconfirmedSince = -1;
    };
    QHash<quint64, Remote> remote;
    QHash<int, QPair<quint64, quint64>> heard; // other relay -> (incarnation, last seq on the map's channel)
    std::deque<SimBusMessage> inbox;               // what Redis has yet to hand this relay
    qint64 rosterUntil = 0;
    std::vector<std::pair<quint64, QByteArray>> held; // sync requests waiting for the rosters
    int localCount() const { return router.size() - int(remote.size()); }
    // A local peer has the map open: a MapNet exists, the channel is subscribed.
    bool hasMap() const { return localCount() > 0; }
};

class Simulation
{
public:
    // relays > 1: federated over a simulated bus (relays and Redis fail,
    // peers move between relays).
    Simulation(quint32 seed, int peers, const Faults &faults, int relays = 1)
        : rng(seed), faults(faults), relays(size_t(relays))
    {
        for (int i = 0; i < peers; ++i) {
            const qint64 skew = qint64(rng.bounded(2000)) - 1000; // ±1 s
            auto p = std::make_unique<SimPeer>(this, i, 0x1000 + quint64(i), skew);
            p->replica = std::make_unique<Replica>(p.get(), QStringLiteral("/sim"));
            this->peers.push_back(std::move(p));
            toRelay.emplace_back();
            toPeer.emplace_back();
        }
    }

    QRandomGenerator rng;
    Faults faults;
    struct Counters
    {
        int delivered = 0, lost = 0, duplicated = 0, reordered = 0, disconnects = 0, restarts = 0, timeouts = 0;
        int busDelivered = 0, busOutages = 0, gaps = 0, pruned = 0;
    } counters;
    qint64 now = 1'700'000'000'000; // virtual milliseconds
    std::vector<std::unique_ptr<SimPeer>> peers;
    std::vector<std::deque<Message>> toRelay; // one link per peer, each way
    std::vector<std::deque<Message>> toPeer;
    std::vector<SimRelay> relays;
    bool federated() const { return relays.size() > 1; }
    bool trace = qEnvironmentVariableIsSet("DISTMAP_SIM_TRACE");
    void note(const QString &what) const
    {
        if (trace)
            qInfo("%lld: %s", now % 1000000, qPrintable(what));
    }

    // Timers of the relays and the bus, in virtual time.
    struct Timer
    {
        qint64 at;
        std::function<void()> run;
    };
    std::vector<Timer> timers;
    void after(qint64 ms, std::function<void()> run) { timers.push_back({now + ms, std::move(run)}); }

    static constexpr quint32 MapId = 1;
    // The relay's timeouts (relay.h, redisbus.h).
    static constexpr qint64 RosterWaitMs = 150, RosterConfirmMs = 2000, RelayTimeoutMs = 6000;

    // --- peers ---------------------------------------------------------
    void connect(int i)
    {
        SimPeer &p = *peers[size_t(i)];
        if (p.connected)
            return;
        // With several relays a peer has every URL and takes a live one.
        std::vector<int> alive;
        for (size_t r = 0; r < relays.size(); ++r) {
            if (relays[r].alive)
                alive.push_back(int(r));
        }
        if (alive.empty()) {
            p.reconnectAt = now + 100;
            return;
        }
        p.relay = federated() ? alive[rng.bounded(int(alive.size()))] : 0;
        note(QStringLiteral("peer %1 connects to relay %2").arg(i).arg(p.relay));
        p.connected = true;
        p.reconnectAt = -1;
        relays[size_t(p.relay)].connected.insert(i);
        p.replica->connectionUp();
    }

    void disconnect(int i, qint64 reconnectDelay)
    {
        SimPeer &p = *peers[size_t(i)];
        if (!p.connected)
            return;
        ++counters.disconnects;
        note(QStringLiteral("peer %1 disconnects from relay %2").arg(i).arg(p.relay));
        p.connected = false;
        p.syncDeadline = -1;
        toRelay[size_t(i)].clear();
        toPeer[size_t(i)].clear();
        relayDrop(i);
        p.replica->connectionDown();
        p.reconnectAt = now + reconnectDelay;
    }

    // No more faults; every relay and peer is back; runs until nothing is
    // in flight.
    bool heal()
    {
        faults.on = false;
        for (auto &p : peers) {
            if (!p->connected)
                p->reconnectAt = now;
        }
        return settle(2'000'000);
    }

    // The relay process restarts: its peers lose their connections, and it
    // forgets everything (a new incarnation). Alone, it is back at once;
    // federated, after downMs, while its peers go to the others.
    void restartRelay(int r = 0, qint64 downMs = 0)
    {
        ++counters.restarts;
        note(QStringLiteral("relay %1 restarts, down for %2 ms").arg(r).arg(downMs));
        SimRelay &relay = relays[size_t(r)];
        const std::set<int> was = relay.connected;
        for (int i : was) {
            SimPeer &p = *peers[size_t(i)];
            p.connected = false;
            p.syncDeadline = -1;
            toRelay[size_t(i)].clear();
            toPeer[size_t(i)].clear();
            p.replica->connectionDown();
            p.reconnectAt = now + 50 + qint64(rng.bounded(500));
        }
        const quint64 old = relay.incarnation;
        relay = SimRelay();
        relay.incarnation = old + 1;
        if (!federated())
            return;
        relay.alive = false;
        relay.busUp = false;
        relay.router.setRemoteReachable(false);
        // The others declare it dead after 6 s of silence, unless its new
        // incarnation speaks first (which drops the old one's peers too).
        for (size_t s = 0; s < relays.size(); ++s) {
            if (int(s) != r)
                after(RelayTimeoutMs, [this, s, r, old] { dropPeersOf(int(s), r, old); });
        }
        after(downMs, [this, r] {
            relays[size_t(r)].alive = true;
            busReconnected(r);
        });
    }

    // Relay r loses Redis for downMs: what it publishes meanwhile is lost,
    // and so is what Redis had not handed it yet.
    void busOutage(int r, qint64 downMs)
    {
        SimRelay &relay = relays[size_t(r)];
        if (!relay.alive || !relay.busUp)
            return;
        ++counters.busOutages;
        note(QStringLiteral("relay %1 loses the bus for %2 ms").arg(r).arg(downMs));
        relay.busUp = false;
        relay.router.setRemoteReachable(false);
        relay.inbox.clear();
        const quint64 incarnation = relay.incarnation;
        after(downMs, [this, r, incarnation] {
            if (relays[size_t(r)].incarnation == incarnation && relays[size_t(r)].alive)
                busReconnected(r);
        });
    }

    // --- relay model -----------------------------------------------------
    void toPeerControl(int i, const QByteArray &text)
    {
        Message message;
        Control::decodeMessage(text, &message.control);
        toPeer[size_t(i)].push_back(message);
    }
    void toPeerFrame(int i, const QByteArray &f) { toPeer[size_t(i)].push_back({true, f, {}}); }

    quint64 idOf(int i) const { return peers[size_t(i)]->m_id; }
    int indexOf(quint64 id) const
    {
        for (const auto &p : peers) {
            if (p->m_id == id)
                return p->index;
        }
        Q_UNREACHABLE();
        return -1;
    }
    // A member of the map connected to relay r (not a remote one).
    bool isLocal(const SimRelay &relay, quint64 id) const { return relay.router.contains(id) && !relay.remote.contains(id); }
    std::vector<int> localMembers(const SimRelay &relay) const
    {
        std::vector<int> out;
        for (const MapRouter::Member &m : relay.router.members()) {
            if (!relay.remote.contains(m.peer))
                out.push_back(indexOf(m.peer));
        }
        return out;
    }
    void toLocalMembers(const SimRelay &relay, const QByteArray &control, quint64 except = 0)
    {
        for (int i : localMembers(relay)) {
            if (idOf(i) != except)
                toPeerControl(i, control);
        }
    }

    // The process dies and a new one takes its place: everything the
    // replica held is gone, and the new one has a new peer id.
    void crash(int i, quint64 newId, qint64 restartDelay)
    {
        SimPeer &p = *peers[size_t(i)];
        disconnect(i, restartDelay);
        const bool acks = p.replica->writeAcknowledgements();
        p.m_id = newId;
        p.replica = std::make_unique<Replica>(&p, QStringLiteral("/sim"));
        SimPeer *raw = &p;
        p.replica->clock() = HybridClock([raw] { return raw->sim->now + raw->skew; });
        p.replica->setWriteAcknowledgements(acks);
    }

    void relayDrop(int i)
    {
        const int r = peers[size_t(i)]->relay;
        SimRelay &relay = relays[size_t(r)];
        relay.connected.erase(i);
        leaveMap(r, idOf(i));
    }

    void leaveMap(int r, quint64 self)
    {
        SimRelay &relay = relays[size_t(r)];
        if (!isLocal(relay, self))
            return;
        const MapRouter::Decisions decisions = relay.router.remove(self, now);
        toLocalMembers(relay, Control::encodeLeft({MapId, self}));
        publish(r, {SimBusMessage::Left, 0, 0, 0, self, 0, false, {}});
        carryOut(r, decisions);
        if (relay.localCount() == 0) { // the MapNet goes, and the channel with it
            relay.router = MapRouter();
            relay.router.setRemoteReachable(relay.busUp);
            relay.remote.clear();
            relay.held.clear();
            relay.rosterUntil = 0;
            for (auto &h : relay.heard)
                h.second = 0;
        }
    }

    void carryOut(int r, const MapRouter::Decisions &decisions)
    {
        SimRelay &relay = relays[size_t(r)];
        for (const MapRouter::Decision &d : decisions) {
            if (d.kind == MapRouter::Decision::Forward) {
                if (relay.remote.contains(d.responder))
                    publish(r, {SimBusMessage::Frame, 0, 0, 0, d.requester, d.responder, false, d.frame});
                else
                    toPeerFrame(indexOf(d.responder), d.frame);
            } else {
                toPeerControl(indexOf(d.requester), Control::encodeAlone({MapId, 0}));
            }
        }
    }

    void relayReceive(int i, const Message &msg)
    {
        const int r = peers[size_t(i)]->relay;
        SimRelay &relay = relays[size_t(r)];
        if (!relay.connected.count(i))
            return;
        const quint64 self = idOf(i);
        if (!msg.binary) {
            switch (msg.control.type) {
            case Control::Type::Open: {
                // Moved here from a relay not yet known to be dead: that
                // entry goes, this connection is the peer now.
                if (relay.remote.contains(self))
                    removeRemote(r, self);
                Control::Opened opened{QStringLiteral("/sim"), MapId, true, {}};
                for (const MapRouter::Member &m : relay.router.members()) {
                    if (m.peer != self)
                        opened.peers.append(Control::PeerInfo{m.peer, {}});
                }
                toLocalMembers(relay, Control::encodeJoined({MapId, self, {}}), self);
                const bool first = !relay.hasMap();
                if (!relay.router.contains(self))
                    relay.router.add(self);
                toPeerControl(i, Control::encodeOpened(opened));
                if (first && federated() && relay.busUp) {
                    // Learn the other relays' members before answering a sync request.
                    publish(r, {SimBusMessage::Roster, 0, 0, 0, 0, 0, false, {}});
                    relay.rosterUntil = now + RosterWaitMs;
                }
                publish(r, {SimBusMessage::Joined, 0, 0, 0, self, 0, relay.router.isReady(self), {}});
                break;
            }
            case Control::Type::Ready:
                publish(r, {SimBusMessage::Ready, 0, 0, 0, self, 0, false, {}});
                carryOut(r, relay.router.setReady(self, now));
                break;
            case Control::Type::Close:
                leaveMap(r, self);
                break;
            default:
                break;
            }
            return;
        }
        Wire::Header h;
        if (Wire::decodeHeader(msg.bytes, &h) != Wire::DecodeError::NoError || !isLocal(relay, self))
            return;
        QByteArray frame = msg.bytes;
        Wire::setHeaderPeer(frame, self);
        switch (h.type) {
        case Wire::Type::Delta:
        case Wire::Type::Repair:
            for (int m : localMembers(relay)) {
                if (m != i)
                    toPeerFrame(m, frame);
            }
            publish(r, {SimBusMessage::Frame, 0, 0, 0, self, 0, false, frame});
            break;
        case Wire::Type::SyncRequest:
            if (now < relay.rosterUntil)
                relay.held.push_back({self, frame});
            else
                carryOut(r, relay.router.request(self, frame, now));
            break;
        case Wire::Type::SyncData:
        case Wire::Type::SyncAck:
        case Wire::Type::WriteAck:
            if (relay.remote.contains(h.peer)) {
                publish(r, {SimBusMessage::Frame, 0, 0, 0, self, h.peer, false, frame});
            } else if (h.peer != self && relay.router.contains(h.peer)) {
                if (h.type == Wire::Type::SyncData)
                    relay.router.answered(self, h.peer);
                toPeerFrame(indexOf(h.peer), frame);
            }
            break;
        }
    }

    // --- the bus (relayfederation.cpp, redisbus.cpp) ----------------------
    void publish(int r, SimBusMessage m)
    {
        SimRelay &relay = relays[size_t(r)];
        if (!federated())
            return;
        if (!relay.busUp) { // lost; numbered all the same, so the others see the gap
            if (m.kind != SimBusMessage::Hello && relay.hasMap())
                ++relay.nextSeq;
            return;
        }
        m.from = r;
        m.incarnation = relay.incarnation;
        if (m.kind != SimBusMessage::Hello)
            m.seq = relay.nextSeq++;
        for (size_t s = 0; s < relays.size(); ++s) {
            SimRelay &other = relays[s];
            // Only relays subscribed to the map's channel get its messages.
            if (int(s) != r && other.alive && other.busUp && (m.kind == SimBusMessage::Hello || other.hasMap()))
                other.inbox.push_back(m);
        }
    }

    void busReconnected(int r)
    {
        SimRelay &relay = relays[size_t(r)];
        note(QStringLiteral("relay %1 is back on the bus").arg(r));
        relay.busUp = true;
        relay.router.setRemoteReachable(true);
        publish(r, {SimBusMessage::Hello, 0, 0, 0, 0, 0, false, {}});
        if (!relay.hasMap())
            return;
        // Subscribed again: what was published meanwhile is lost.
        expectAnnouncements(r, -1);
        publish(r, {SimBusMessage::Roster, 0, 0, 0, 0, 0, false, {}});
        if (relay.rosterUntil > 0)
            relay.rosterUntil = qMin(relay.rosterUntil, now + RosterWaitMs);
        announceMembers(r);
        askToVerify(r);
    }

    void announceMembers(int r)
    {
        SimRelay &relay = relays[size_t(r)];
        for (int i : localMembers(relay))
            publish(r, {SimBusMessage::Joined, 0, 0, 0, idOf(i), 0, relay.router.isReady(idOf(i)), {}});
    }

    void askToVerify(int r)
    {
        SimRelay &relay = relays[size_t(r)];
        for (int i : localMembers(relay)) {
            relay.router.preferRemote(idOf(i));
            toPeerControl(i, Control::encodeVerify({MapId}));
        }
    }

    void expectAnnouncements(int r, int of)
    {
        SimRelay &relay = relays[size_t(r)];
        for (SimRelay::Remote &remote : relay.remote) {
            if (of < 0 || remote.relay == of)
                remote.unconfirmedSince = now;
        }
        const qint64 asked = now;
        const quint64 incarnation = relay.incarnation;
        after(RosterConfirmMs, [this, r, asked, incarnation] {
            SimRelay &relay = relays[size_t(r)];
            if (relay.incarnation != incarnation)
                return;
            QVector<quint64> gone;
            for (auto it = relay.remote.cbegin(); it != relay.remote.cend(); ++it) {
                if (it->unconfirmedSince >= 0 && it->unconfirmedSince <= asked)
                    gone.append(it.key());
            }
            counters.pruned += int(gone.size());
            for (quint64 peer : std::as_const(gone))
                removeRemote(r, peer);
        });
    }

    void dropPeersOf(int r, int dead, quint64 incarnation)
    {
        SimRelay &relay = relays[size_t(r)];
        QVector<quint64> gone;
        for (auto it = relay.remote.cbegin(); it != relay.remote.cend(); ++it) {
            if (it->relay == dead && it->incarnation == incarnation)
                gone.append(it.key());
        }
        for (quint64 peer : std::as_const(gone))
            removeRemote(r, peer);
    }

    void removeRemote(int r, quint64 peer)
    {
        SimRelay &relay = relays[size_t(r)];
        if (!relay.remote.remove(peer))
            return;
        const MapRouter::Decisions decisions = relay.router.remove(peer, now);
        toLocalMembers(relay, Control::encodeLeft({MapId, peer}));
        carryOut(r, decisions);
    }

    void addRemote(int r, const SimBusMessage &m)
    {
        SimRelay &relay = relays[size_t(r)];
        if (isLocal(relay, m.peer))
            return; // ids are unique: ours wins
        const bool known = relay.remote.contains(m.peer);
        relay.remote.insert(m.peer, {m.from, m.incarnation, -1});
        if (!known) {
            relay.router.add(m.peer, true);
            toLocalMembers(relay, Control::encodeJoined({MapId, m.peer, {}}));
        }
        if (m.ready && !relay.router.isReady(m.peer))
            carryOut(r, relay.router.setReady(m.peer, now));
    }

    void busReceive(int r, const SimBusMessage &m)
    {
        SimRelay &relay = relays[size_t(r)];
        ++counters.busDelivered;
        auto known = relay.heard.find(m.from);
        if (known != relay.heard.end() && known->first != m.incarnation) {
            const quint64 old = known->first;
            relay.heard.erase(known);
            dropPeersOf(r, m.from, old); // it restarted
            known = relay.heard.end();
        }
        const bool wasKnown = known != relay.heard.end();
        if (!wasKnown)
            known = relay.heard.insert(m.from, {m.incarnation, 0});
        if (m.kind == SimBusMessage::Hello) {
            if (wasKnown)
                expectAnnouncements(r, m.from);
            return;
        }
        if (!relay.hasMap())
            return;
        if (known->second != 0 && m.seq != known->second + 1) {
            ++counters.gaps;
            note(QStringLiteral("relay %1 sees a gap from relay %2").arg(r).arg(m.from));
            askToVerify(r);
        }
        known->second = m.seq;
        switch (m.kind) {
        case SimBusMessage::Joined:
            addRemote(r, m);
            break;
        case SimBusMessage::Left:
            if (relay.remote.contains(m.peer) && relay.remote.value(m.peer).relay == m.from)
                removeRemote(r, m.peer);
            break;
        case SimBusMessage::Ready:
            if (relay.remote.contains(m.peer) && relay.remote.value(m.peer).relay == m.from)
                carryOut(r, relay.router.setReady(m.peer, now));
            break;
        case SimBusMessage::Roster:
            announceMembers(r);
            break;
        case SimBusMessage::Frame:
            if (m.target == 0) {
                for (int i : localMembers(relay))
                    toPeerFrame(i, m.frame);
            } else if (isLocal(relay, m.target)) {
                Wire::Header h;
                if (Wire::decodeHeader(m.frame, &h) == Wire::DecodeError::NoError && h.type == Wire::Type::SyncData)
                    relay.router.answered(m.peer, m.target);
                toPeerFrame(indexOf(m.target), m.frame);
            }
            break;
        case SimBusMessage::Hello:
            break;
        }
    }

    void peerReceive(int i, const Message &msg)
    {
        SimPeer &p = *peers[size_t(i)];
        if (!p.connected)
            return;
        if (msg.binary) {
            Wire::Header h;
            if (Wire::decodeHeader(msg.bytes, &h) == Wire::DecodeError::NoError)
                p.replica->handleFrame(h, msg.bytes);
            return;
        }
        const QJsonObject &object = msg.control.object;
        switch (msg.control.type) {
        case Control::Type::Opened: {
            Control::Opened opened;
            if (Control::decodeOpened(object, &opened) == Control::DecodeError::NoError)
                p.replica->handleOpened(opened);
            break;
        }
        case Control::Type::Joined: {
            Control::Joined joined;
            if (Control::decodeJoined(object, &joined) == Control::DecodeError::NoError)
                p.replica->handleJoined(joined);
            break;
        }
        case Control::Type::Left: {
            Control::Left left;
            if (Control::decodeLeft(object, &left) == Control::DecodeError::NoError)
                p.replica->handleLeft(left);
            break;
        }
        case Control::Type::Alone:
            p.replica->handleAlone();
            break;
        case Control::Type::Verify: // the relay lost bus messages
            p.replica->verify();
            break;
        default:
            break;
        }
    }

    // --- the network -------------------------------------------------------
    bool pending() const
    {
        for (size_t i = 0; i < peers.size(); ++i) {
            if (!toRelay[i].empty() || !toPeer[i].empty())
                return true;
        }
        for (const SimRelay &r : relays) {
            if (!r.inbox.empty())
                return true;
        }
        return false;
    }

    // Delivers one message from a random non-empty link; false if none.
    bool deliverOne()
    {
        std::vector<std::pair<int, bool>> links; // (peer, towards relay)
        for (size_t i = 0; i < peers.size(); ++i) {
            if (!toRelay[i].empty())
                links.push_back({int(i), true});
            if (!toPeer[i].empty())
                links.push_back({int(i), false});
        }
        std::vector<int> busLinks; // Redis to relay r: in order, lost only in outages
        for (size_t r = 0; r < relays.size(); ++r) {
            if (!relays[r].inbox.empty())
                busLinks.push_back(int(r));
        }
        const int total = int(links.size() + busLinks.size());
        if (total == 0)
            return false;
        const int pickLink = int(rng.bounded(total));
        if (pickLink >= int(links.size())) {
            const int r = busLinks[size_t(pickLink - int(links.size()))];
            const SimBusMessage m = relays[size_t(r)].inbox.front();
            relays[size_t(r)].inbox.pop_front();
            busReceive(r, m);
            return true;
        }
        const auto [i, up] = links[size_t(pickLink)];
        std::deque<Message> &q = up ? toRelay[size_t(i)] : toPeer[size_t(i)];
        size_t pick = 0;
        if (faults.on && q.size() > 1 && int(rng.bounded(100)) < faults.reorderPercent) {
            pick = 1;
            ++counters.reordered;
        }
        Message msg = q[pick];
        const bool duplicate = faults.on && msg.binary && int(rng.bounded(100)) < faults.duplicatePercent;
        if (!duplicate)
            q.erase(q.begin() + qsizetype(pick));
        else
            ++counters.duplicated;
        if (faults.on && msg.binary && int(rng.bounded(100)) < faults.lossPercent) {
            ++counters.lost;
            return true;
        }
        ++counters.delivered;
        if (up)
            relayReceive(i, msg);
        else
            peerReceive(i, msg);
        return true;
    }

    // Timers, flushes and reconnects due at the current virtual time.
    void tick()
    {
        for (;;) { // in the order they were set: deterministic
            auto due = std::find_if(timers.begin(), timers.end(), [this](const Timer &t) { return t.at <= now; });
            if (due == timers.end())
                break;
            const std::function<void()> run = std::move(due->run);
            timers.erase(due);
            run();
        }
        for (size_t r = 0; r < relays.size(); ++r) {
            SimRelay &relay = relays[r];
            if (!relay.held.empty() && now >= relay.rosterUntil) {
                for (const auto &[requester, frame] : std::exchange(relay.held, {})) {
                    if (isLocal(relay, requester))
                        carryOut(int(r), relay.router.request(requester, frame, now));
                }
            }
            carryOut(int(r), relay.router.expire(now));
        }
        for (auto &p : peers) {
            if (p->m_flushWanted) {
                p->m_flushWanted = false;
                p->replica->flush();
            }
            if (p->syncDeadline >= 0 && now >= p->syncDeadline) {
                p->syncDeadline = -1;
                ++counters.timeouts;
                p->replica->syncTimedOut();
            }
            if (!p->connected && p->reconnectAt >= 0 && now >= p->reconnectAt)
                connect(p->index);
        }
    }

    // Whether the first `count` replicas (all: -1) hold the same map.
    bool agree(int count = -1) const
    {
        const QVector<quint64> first = peers[0]->replica->state().digest(256);
        for (size_t i = 1; i < (count < 0 ? peers.size() : size_t(count)); ++i) {
            if (peers[i]->replica->state().digest(256) != first)
                return false;
        }
        return true;
    }

    // Every peer runs a digest round, as its periodic anti-entropy would,
    // until the first `count` agree (at most 10 rounds). The rounds it
    // took, or -1 if the network did not settle.
    int digestRoundsToAgree(int count = -1)
    {
        int rounds = 0;
        while (!agree(count) && rounds < 10) {
            for (auto &p : peers) {
                p->replica->verify();
                if (!settle(2'000'000))
                    return -1;
            }
            ++rounds;
        }
        return rounds;
    }

    // What is where, for a failed run's replay.
    void describe() const
    {
        for (const auto &p : peers)
            qWarning("peer %d %llx: connected %d on relay %d, ready %d, syncing %d, sync deadline %lld, %d peers listed, "
                     "%d messages to its relay, %d to it",
                     p->index, p->m_id, p->connected, p->relay, p->replica->isReady(), p->replica->isSyncing(),
                     p->syncDeadline < 0 ? -1 : p->syncDeadline - now, int(p->replica->peers().size()),
                     int(toRelay[size_t(p->index)].size()), int(toPeer[size_t(p->index)].size()));
        for (size_t r = 0; r < relays.size(); ++r) {
            const SimRelay &relay = relays[r];
            QStringList members;
            for (const MapRouter::Member &m : relay.router.members())
                members.append(QStringLiteral("%1%2%3").arg(m.peer, 0, 16).arg(relay.remote.contains(m.peer) ? "@remote" : "").arg(m.ready ? "" : "(not ready)"));
            qWarning("relay %d: alive %d, bus %d, map %d, %d held, %d pending requests, inbox %d; members %s", int(r), relay.alive,
                     relay.busUp, relay.hasMap(), int(relay.held.size()), relay.router.pendingRequests(), int(relay.inbox.size()),
                     qPrintable(members.join(QLatin1Char(' '))));
        }
        qWarning("%d timers", int(timers.size()));
    }

    // Runs until nothing is in flight and no timer is due, jumping virtual
    // time to the next deadline when idle.
    bool settle(int maxSteps)
    {
        for (int step = 0; step < maxSteps; ++step) {
            tick();
            if (deliverOne()) {
                now += 1;
                continue;
            }
            qint64 next = -1;
            auto consider = [&next](qint64 t) {
                if (t >= 0 && (next < 0 || t < next))
                    next = t;
            };
            for (const SimRelay &r : relays) {
                consider(r.router.waitDeadline());
                if (!r.held.empty())
                    consider(r.rosterUntil);
            }
            for (const Timer &t : timers)
                consider(t.at);
            for (auto &p : peers) {
                consider(p->syncDeadline);
                if (!p->connected)
                    consider(p->reconnectAt);
                if (p->m_flushWanted)
                    next = now;
            }
            if (next < 0)
                return true;
            now = qMax(now, next);
        }
        return false;
    }
};

SimPeer::SimPeer(Simulation *s, int i, quint64 id, qint64 skewMs)
    : sim(s), index(i), m_id(id), skew(skewMs)
{
}

void SimPeer::sendFrame(const QByteArray &frame)
{
    if (connected)
        sim->toRelay[size_t(index)].push_back({true, frame, {}});
}

void SimPeer::sendControl(const QByteArray &text)
{
    Message message;
    if (connected && Control::decodeMessage(text, &message.control) == Control::DecodeError::NoError)
        sim->toRelay[size_t(index)].push_back(message);
}

void SimPeer::syncTimerRequested(qint64 ms)
{
    syncDeadline = ms > 0 ? sim->now + ms : -1;
}

int writerIndex(quint64 writer)
{
    const quint64 i = writer - 0x1000;
    return i < quint64(MaxSimPeers) ? int(i) : -1;
}

void SimPeer::observe(const QString &key, quint64 hlc, quint64 writer)
{
    KeyClock &mine = known[key];
    if (const auto it = causal->writeClocks.constFind({hlc, writer}); it != causal->writeClocks.constEnd()) {
        for (int i = 0; i < MaxSimPeers; ++i)
            mine[size_t(i)] = qMax(mine[size_t(i)], (*it)[size_t(i)]);
    }
    if (const int w = writerIndex(writer); w >= 0)
        mine[size_t(w)] = qMax(mine[size_t(w)], hlc);
}

void SimPeer::onEntryApplied(const QString &key, const Entry &entry, Replica::Source source)
{
    if (!causal)
        return;
    if (source == Replica::Source::Local)
        causal->writeClocks.insert({entry.hlc, entry.writer}, known.value(key)); // before our own write joins it
    observe(key, entry.hlc, entry.writer);
}

void SimPeer::onDeltaObserved(const Replica::DeltaEvent &event)
{
    // Beaten and duplicate entries of deltas and repairs were seen too.
    if (causal && event.direction == Replica::DeltaEvent::Incoming && event.operation != Replica::DeltaEvent::SyncChunk)
        observe(event.key, event.hlc, event.writer);
}

void SimPeer::onConflict(const Replica::Conflict &c)
{
    if (!causal)
        return;
    ++causal->conflicts;
    auto fail = [&](const QString &why) {
        causal->violations.append(QStringLiteral("peer %1 key %2: winner (%3, %4) loser (%5, %6): %7")
                                      .arg(index).arg(c.key).arg(c.winner.hlc, 0, 16).arg(c.winner.writer, 0, 16)
                                      .arg(c.loser.hlc, 0, 16).arg(c.loser.writer, 0, 16).arg(why));
    };
    const Entry winner{c.winner.value, c.winner.hlc, c.winner.writer, c.winner.deleted};
    const Entry loser{c.loser.value, c.loser.hlc, c.loser.writer, c.loser.deleted};
    if (!winner.newerThan(loser))
        return fail(QStringLiteral("the winner is not the newer write"));
    if ((c.localLost ? loser.writer : winner.writer) != m_id)
        return fail(QStringLiteral("neither side is this peer's write as localLost says"));
    const EntryRef current = replica->state().find(c.key);
    if (!current || !current->sameWrite(winner) || current->value != winner.value)
        return fail(QStringLiteral("the winner is not the key's write"));
    const auto winnerClock = causal->writeClocks.constFind({winner.hlc, winner.writer});
    const auto loserClock = causal->writeClocks.constFind({loser.hlc, loser.writer});
    if (winnerClock == causal->writeClocks.constEnd() || loserClock == causal->writeClocks.constEnd())
        return fail(QStringLiteral("a write nobody made"));
    if ((*winnerClock)[size_t(writerIndex(loser.writer))] >= loser.hlc)
        return fail(QStringLiteral("the winner's writer had seen the loser"));
    if ((*loserClock)[size_t(writerIndex(winner.writer))] >= winner.hlc)
        return fail(QStringLiteral("the loser's writer had seen the winner"));
}

// Each key's greatest write: what every replica must hold in the end.
QHash<QString, Entry> newestWrites(const QVector<Write> &writes)
{
    QHash<QString, Entry> newest;
    for (const Write &w : writes) {
        auto it = newest.find(w.key);
        if (it == newest.end() || w.entry.newerThan(*it))
            newest.insert(w.key, w.entry);
    }
    return newest;
}

// Empty if state holds exactly `newest`, else what is wrong first.
QString differs(const MapState &state, const QHash<QString, Entry> &newest)
{
    if (state.entryCount() != newest.size())
        return QStringLiteral("%1 entries, expected %2").arg(state.entryCount()).arg(newest.size());
    for (auto it = newest.cbegin(); it != newest.cend(); ++it) {
        const EntryRef e = state.find(it.key());
        if (!e || !e->sameWrite(*it) || e->value != it->value || e->tombstone != it->tombstone)
            return QStringLiteral("key %1 does not hold its newest write").arg(it.key());
    }
    return {};
}

// Rows seed 1..DISTMAP_SIM_SEEDS (default `seeds`), or DISTMAP_SIM_SEED alone.
int s_conflictsReported = 0;
int s_seedsRun = 0;
int s_federatedSeeds = 0;
int s_federatedSelfHealed = 0; // seeds that agreed with no peer digest round after healing

void addSeedRows(int seeds)
{
    QTest::addColumn<quint32>("seed");
    const quint32 single = quint32(qEnvironmentVariableIntValue("DISTMAP_SIM_SEED"));
    if (single) {
        QTest::newRow(qPrintable(QStringLiteral("seed %1").arg(single))) << single;
        return;
    }
    if (qEnvironmentVariableIsSet("DISTMAP_SIM_SEEDS"))
        seeds = qEnvironmentVariableIntValue("DISTMAP_SIM_SEEDS");
    for (int s = 1; s <= seeds; ++s)
        QTest::newRow(qPrintable(QStringLiteral("seed %1").arg(s))) << quint32(s);
}

} // namespace

class tst_Simulation : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void convergesUnderFaults_data();
    void convergesUnderFaults();
    void concurrentWritesAreReportedAsConflicts();
    void convergesAcrossRelays_data();
    void convergesAcrossRelays();
    void theRelaysHealMostBusLossesThemselves();
    void aPeerBackAfterTheTombstoneRetentionDoesNotResurrect_data();
    void aPeerBackAfterTheTombstoneRetentionDoesNotResurrect();
    void acknowledgedWritesOutliveTheirWriters_data();
    void acknowledgedWritesOutliveTheirWriters();
};

void tst_Simulation::aPeerBackAfterTheTombstoneRetentionDoesNotResurrect_data()
{
    QTest::addColumn<qint64>("retention");
    QTest::addColumn<bool>("resurrected");
    QTest::newRow("with a retention, the returning peer rejoins") << qint64(1000) << false;
    QTest::newRow("without one, the deleted key comes back (the documented caveat)") << qint64(0) << true;
}

void tst_Simulation::aPeerBackAfterTheTombstoneRetentionDoesNotResurrect()
{
    QFETCH(qint64, retention);
    QFETCH(bool, resurrected);
    Faults none;
    none.on = false;
    Simulation sim(7, 3, none);
    for (auto &p : sim.peers) {
        SimPeer *raw = p.get();
        p->replica->clock() = HybridClock([raw] { return raw->sim->now; });
        p->replica->setTombstoneRetention(retention);
    }
    Replica &a = *sim.peers[0]->replica;
    Replica &c = *sim.peers[2]->replica;
    for (int i = 0; i < 3; ++i)
        sim.connect(i);
    a.write(QStringLiteral("x"), "1");
    a.write(QStringLiteral("y"), "2");
    QVERIFY(sim.settle(100000));
    QVERIFY(c.state().contains(QStringLiteral("x")));

    sim.disconnect(2, 0);
    sim.peers[2]->reconnectAt = -1; // away until we say so
    c.write(QStringLiteral("z"), "\"made while away\"");
    a.erase(QStringLiteral("x"));
    QVERIFY(sim.settle(100000));
    sim.now += 5000;
    // Everyone still online collects the tombstone.
    QCOMPARE(a.purgeTombstones(1000), 1);
    QCOMPARE(sim.peers[1]->replica->purgeTombstones(1000), 1);

    sim.connect(2);
    QVERIFY(sim.settle(100000));
    for (auto &p : sim.peers) {
        const MapState &state = p->replica->state();
        QVERIFY2(state.contains(QStringLiteral("x")) == resurrected, qPrintable(QStringLiteral("peer %1").arg(p->index)));
        QVERIFY(state.contains(QStringLiteral("y")));
        QCOMPARE(state.find(QStringLiteral("z"))->value, QByteArray("\"made while away\""));
    }
}

void tst_Simulation::convergesUnderFaults_data()
{
    addSeedRows(200);
}

void tst_Simulation::convergesUnderFaults()
{
    QFETCH(quint32, seed);
    const int peerCount = 8;
    const int opsPerPeer = qEnvironmentVariableIsSet("DISTMAP_SIM_OPS") ? qEnvironmentVariableIntValue("DISTMAP_SIM_OPS") : 2000;
    const int keys = 200;
    Simulation sim(seed, peerCount, Faults());
    CausalTracker causal;
    for (auto &p : sim.peers) {
        SimPeer *raw = p.get();
        p->replica->clock() = HybridClock([raw] { return raw->sim->now + raw->skew; });
        p->causal = &causal;
    }

    // Faults at random points of the run: 20 disconnects, 2 relay restarts.
    const int totalOps = peerCount * opsPerPeer;
    std::multiset<int> disconnectAt, restartAt;
    for (int d = 0; d < 20; ++d)
        disconnectAt.insert(int(sim.rng.bounded(totalOps)));
    for (int r = 0; r < 2; ++r)
        restartAt.insert(int(sim.rng.bounded(totalOps)));

    for (int i = 0; i < peerCount; ++i)
        sim.connect(i);

    QVector<Write> writes;
    writes.reserve(totalOps);
    std::vector<int> opsLeft(size_t(peerCount), opsPerPeer);
    int done = 0;
    while (done < totalOps) {
        // Interleave writes with deliveries: about one delivery and a half per write.
        const int deliveries = int(sim.rng.bounded(4));
        for (int d = 0; d < deliveries; ++d)
            sim.deliverOne();
        int i = int(sim.rng.bounded(peerCount));
        while (opsLeft[size_t(i)] == 0)
            i = (i + 1) % peerCount;
        --opsLeft[size_t(i)];
        Replica &r = *sim.peers[size_t(i)]->replica;
        const QString key = QStringLiteral("k%1").arg(sim.rng.bounded(keys));
        const Replica::Change c = sim.rng.bounded(100) < 30
            ? r.erase(key)
            : r.write(key, QByteArray::number(seed) + ':' + QByteArray::number(done));
        writes.append({key, Entry{c.value, c.hlc, c.writer, c.deleted}});
        ++done;
        for (auto n = disconnectAt.count(done); n > 0; --n) {
            int victim = int(sim.rng.bounded(peerCount));
            for (int tries = 0; tries < peerCount && !sim.peers[size_t(victim)]->connected; ++tries)
                victim = (victim + 1) % peerCount;
            sim.disconnect(victim, 10 + qint64(sim.rng.bounded(2000)));
        }
        for (auto n = restartAt.count(done); n > 0; --n)
            sim.restartRelay();
        sim.now += qint64(sim.rng.bounded(3));
        sim.tick();
    }

    // Heal: no more faults; everyone reconnects, then anti-entropy rounds
    // until the replicas agree.
    QVERIFY2(sim.heal(), qPrintable(QStringLiteral("seed %1: network did not settle").arg(seed)));
    const int rounds = sim.digestRoundsToAgree();
    QVERIFY2(rounds >= 0, qPrintable(QStringLiteral("seed %1: verify did not settle").arg(seed)));
    if (!sim.agree()) {
        // Say which keys differ, to make a replay useful.
        const MapState &first = sim.peers[0]->replica->state();
        for (auto &p : sim.peers) {
            const MapState &other = p->replica->state();
            qWarning("peer %d: %d entries, ready %d, syncing %d, connected %d", p->index, other.entryCount(),
                     p->replica->isReady(), p->replica->isSyncing(), p->connected);
            for (const EntryRef mine : first.entries()) {
                const EntryRef e = other.find(mine.utf8Key());
                if (!e || !e.sameWrite(mine))
                    qWarning("  %s: peer 0 has (%llx, %llx), peer %d has %s", qPrintable(mine.key()), mine.hlc(), mine.writer(), p->index,
                             e ? qPrintable(QStringLiteral("(%1, %2)").arg(e->hlc, 0, 16).arg(e->writer, 0, 16)) : "nothing");
            }
        }
    }
    QVERIFY2(sim.agree(), qPrintable(QStringLiteral("seed %1: replicas disagree after %2 anti-entropy rounds").arg(seed).arg(rounds)));
    if (qEnvironmentVariableIsSet("DISTMAP_SIM_VERBOSE")) {
        const auto &c = sim.counters;
        qInfo("seed %u: %d delivered, %d lost, %d duplicated, %d reordered, %d disconnects, %d relay restarts, "
              "%d sync timeouts, %d anti-entropy rounds to agree",
              seed, c.delivered, c.lost, c.duplicated, c.reordered, c.disconnects, c.restarts, c.timeouts, rounds);
    }

    // Every conflict a peer reported was two writes made concurrently.
    QVERIFY2(causal.violations.isEmpty(),
             qPrintable(QStringLiteral("seed %1: %2 of %3 conflict reports are wrong, first: %4")
                            .arg(seed).arg(causal.violations.size()).arg(causal.conflicts).arg(causal.violations.value(0))));
    s_conflictsReported += causal.conflicts;
    ++s_seedsRun;

    // No write lost, none invented: each key holds its greatest write.
    const QHash<QString, Entry> newest = newestWrites(writes);
    for (auto &p : sim.peers) {
        const QString wrong = differs(p->replica->state(), newest);
        QVERIFY2(wrong.isEmpty(), qPrintable(QStringLiteral("seed %1: peer %2: %3").arg(seed).arg(p->index).arg(wrong)));
        QVERIFY2(p->replica->isReady(), qPrintable(QStringLiteral("seed %1: peer %2 never became ready").arg(seed).arg(p->index)));
    }
}

// The other half of the conflict check: over many seeds, with offline
// peers writing, some conflicts are found (all of them true, above).
void tst_Simulation::concurrentWritesAreReportedAsConflicts()
{
    if (s_seedsRun < 10)
        QSKIP("needs 10 seeds of convergesUnderFaults");
    qInfo("%d conflicts reported over %d seeds", s_conflictsReported, s_seedsRun);
    QVERIFY(s_conflictsReported > 0);
}

void tst_Simulation::convergesAcrossRelays_data()
{
    addSeedRows(200);
}

// Three relays federated over a bus that fails as Redis pub/sub does: a
// relay loses Redis for a while (what it publishes, and what it has not
// been handed yet, is lost), Redis restarts (all of them at once), a relay
// process restarts (its peers move to the others). Links between a peer
// and its relay are TCP: in order, nothing lost while up. At the end every
// replica holds every key's newest write, and every peer and relay lists
// exactly the peers that are there: no ghost of one that left while the
// bus was down.
void tst_Simulation::convergesAcrossRelays()
{
    QFETCH(quint32, seed);
    const int peerCount = 8;
    const int relayCount = 3;
    const int opsPerPeer = qEnvironmentVariableIsSet("DISTMAP_SIM_OPS") ? qEnvironmentVariableIntValue("DISTMAP_SIM_OPS") : 500;
    const int keys = 100;
    Faults tcp;
    tcp.lossPercent = 0;
    tcp.duplicatePercent = 0;
    tcp.reorderPercent = 0;
    Simulation sim(seed, peerCount, tcp, relayCount);
    for (auto &p : sim.peers) {
        SimPeer *raw = p.get();
        p->replica->clock() = HybridClock([raw] { return raw->sim->now + raw->skew; });
    }
    for (int i = 0; i < peerCount; ++i)
        sim.connect(i);

    QVector<Write> writes;
    const int totalOps = peerCount * opsPerPeer;
    for (int done = 0; done < totalOps; ++done) {
        const int deliveries = int(sim.rng.bounded(4));
        for (int d = 0; d < deliveries; ++d)
            sim.deliverOne();
        const int i = int(sim.rng.bounded(peerCount));
        Replica &r = *sim.peers[size_t(i)]->replica;
        const QString key = QStringLiteral("k%1").arg(sim.rng.bounded(keys));
        const Replica::Change c = sim.rng.bounded(100) < 30
            ? r.erase(key)
            : r.write(key, QByteArray::number(seed) + ':' + QByteArray::number(done));
        writes.append({key, Entry{c.value, c.hlc, c.writer, c.deleted}});
        if (qEnvironmentVariableIsSet("DISTMAP_SIM_TRACE") && key == qEnvironmentVariable("DISTMAP_SIM_TRACE"))
            sim.note(QStringLiteral("peer %1 writes %2 (connected %3)").arg(i).arg(key).arg(sim.peers[size_t(i)]->connected));
        // About 16 link breaks, 8 bus outages, 2 Redis restarts and 2
        // relay restarts per run of 4,000 writes (about 6 s of virtual time).
        const quint32 fault = sim.rng.bounded(2000);
        if (fault < 8) { // a peer's link breaks; it comes back on any live relay
            sim.disconnect(int(sim.rng.bounded(peerCount)), 10 + qint64(sim.rng.bounded(2000)));
        } else if (fault < 12) { // one relay loses Redis
            sim.busOutage(int(sim.rng.bounded(relayCount)), 20 + qint64(sim.rng.bounded(800)));
        } else if (fault < 13) { // Redis restarts: every relay loses it, each back after its own backoff
            for (int k = 0; k < relayCount; ++k)
                sim.busOutage(k, 100 + qint64(sim.rng.bounded(500)));
        } else if (fault < 14) { // a relay process restarts
            sim.restartRelay(int(sim.rng.bounded(relayCount)), 50 + qint64(sim.rng.bounded(500)));
        }
        sim.now += qint64(sim.rng.bounded(3));
        sim.tick();
    }

    if (!sim.heal()) {
        sim.describe();
        QFAIL(qPrintable(QStringLiteral("seed %1: network did not settle").arg(seed)));
    }
    const QHash<QString, Entry> newest = newestWrites(writes);
    if (sim.trace && !sim.agree()) { // what the relays' verify requests left
        for (auto it = newest.cbegin(); it != newest.cend(); ++it) {
            QString who;
            for (auto &p : sim.peers) {
                const EntryRef e = p->replica->state().find(it.key());
                if (!e || !e->sameWrite(*it))
                    who += QStringLiteral(" %1@r%2").arg(p->index).arg(p->relay);
            }
            if (!who.isEmpty())
                qWarning("%s (hlc %llx by %llx, t-%lld ms) missing on%s", qPrintable(it.key()), it->hlc, it->writer,
                         sim.now - qint64(it->hlc >> 16), qPrintable(who));
        }
        sim.describe();
    }
    // Peers' periodic digest rounds (every 30 s in DistributedMap), if the
    // relays' own verify requests did not heal everything.
    const int rounds = sim.digestRoundsToAgree();
    QVERIFY2(rounds >= 0, qPrintable(QStringLiteral("seed %1: verify did not settle").arg(seed)));
    ++s_federatedSeeds;
    if (rounds == 0)
        ++s_federatedSelfHealed;
    const auto &c = sim.counters;
    if (qEnvironmentVariableIsSet("DISTMAP_SIM_VERBOSE"))
        qInfo("seed %u: %d bus messages, %d bus outages, %d relay restarts, %d gaps, %d members pruned, %d disconnects, "
              "%d anti-entropy rounds to agree",
              seed, c.busDelivered, c.busOutages, c.restarts, c.gaps, c.pruned, c.disconnects, rounds);
    QVERIFY2(sim.agree(), qPrintable(QStringLiteral("seed %1: replicas disagree after %2 anti-entropy rounds").arg(seed).arg(rounds)));

    QSet<quint64> everyone;
    for (auto &p : sim.peers)
        everyone.insert(p->m_id);
    for (auto &p : sim.peers) {
        const QString wrong = differs(p->replica->state(), newest);
        QVERIFY2(wrong.isEmpty(), qPrintable(QStringLiteral("seed %1: peer %2: %3").arg(seed).arg(p->index).arg(wrong)));
        QVERIFY2(p->replica->isReady(), qPrintable(QStringLiteral("seed %1: peer %2 never became ready").arg(seed).arg(p->index)));
        // The same peers everywhere: all the others, no ghost.
        QSet<quint64> listed;
        for (auto it = p->replica->peers().cbegin(); it != p->replica->peers().cend(); ++it)
            listed.insert(it.key());
        QSet<quint64> others = everyone;
        others.remove(p->m_id);
        QVERIFY2(listed == others, qPrintable(QStringLiteral("seed %1: peer %2 (on relay %3) lists %4 peers, not the %5 others")
                                                  .arg(seed).arg(p->index).arg(p->relay).arg(listed.size()).arg(others.size())));
    }
    for (size_t r = 0; r < sim.relays.size(); ++r) {
        const SimRelay &relay = sim.relays[r];
        if (!relay.hasMap())
            continue;
        QSet<quint64> members;
        for (const MapRouter::Member &m : relay.router.members())
            members.insert(m.peer);
        QVERIFY2(members == everyone, qPrintable(QStringLiteral("seed %1: relay %2 has %3 members, not %4").arg(seed).arg(r).arg(members.size()).arg(everyone.size())));
    }
}

// The relays' own triggers (a gap in a relay's seq, a resubscription) ask
// peers for digest rounds against members on other relays; without them
// a bus loss waits for the peers' periodic round. With them, 178 of the
// 200 seeds agree at once; without any, 127 (2026-12-07).
void tst_Simulation::theRelaysHealMostBusLossesThemselves()
{
    if (s_federatedSeeds < 50)
        QSKIP("needs 50 seeds of convergesAcrossRelays");
    qInfo("%d of %d federated runs agreed with no periodic digest round", s_federatedSelfHealed, s_federatedSeeds);
    QVERIFY(s_federatedSelfHealed * 10 >= s_federatedSeeds * 8);
}

void tst_Simulation::acknowledgedWritesOutliveTheirWriters_data()
{
    addSeedRows(100);
}

// Three keepers and five writers. Writers confirm every write and crash at
// random (as a CLI exits): what they held is gone, and whatever no keeper
// confirmed may be lost. Keepers lose links; the relay restarts; messages
// are lost, duplicated and reordered. At the end every write a keeper
// confirmed durably is on every keeper (or beaten by a newer write of its
// key), and the keepers agree.
void tst_Simulation::acknowledgedWritesOutliveTheirWriters()
{
    QFETCH(quint32, seed);
    const int keepers = 3;
    const int peerCount = 8;
    const int opsPerWriter = 400;
    Simulation sim(seed, peerCount, Faults());
    QVector<Write> acknowledged;
    for (auto &p : sim.peers) {
        SimPeer *raw = p.get();
        p->replica->clock() = HybridClock([raw] { return raw->sim->now + raw->skew; });
        p->keeper = p->index < keepers;
        p->acknowledged = &acknowledged;
        p->replica->setWriteAcknowledgements(!p->keeper);
    }
    for (int i = 0; i < peerCount; ++i)
        sim.connect(i);

    const int writers = peerCount - keepers;
    const int totalOps = writers * opsPerWriter;
    quint64 nextId = 0x9000;
    int crashes = 0;
    QVector<Write> writes;
    for (int done = 0; done < totalOps; ++done) {
        const int deliveries = int(sim.rng.bounded(6));
        for (int d = 0; d < deliveries; ++d)
            sim.deliverOne();
        const int w = keepers + int(sim.rng.bounded(writers));
        Replica &r = *sim.peers[size_t(w)]->replica;
        // Each writer its own keys, as CLI writers over disjoint ranges,
        // plus a few shared ones where writes supersede each other.
        const QString key = sim.rng.bounded(10) == 0 ? QStringLiteral("shared%1").arg(sim.rng.bounded(5))
                                                     : QStringLiteral("w%1-k%2").arg(w).arg(sim.rng.bounded(40));
        const Replica::Change c = sim.rng.bounded(100) < 20 && r.state().contains(key)
            ? r.erase(key)
            : r.write(key, QByteArray::number(seed) + ':' + QByteArray::number(done));
        writes.append({key, Entry{c.value, c.hlc, c.writer, c.deleted}});
        const quint32 fault = sim.rng.bounded(1000);
        if (fault < 15) {
            ++crashes;
            sim.crash(w, nextId++, 10 + qint64(sim.rng.bounded(300)));
        } else if (fault < 20) {
            sim.disconnect(int(sim.rng.bounded(keepers)), 10 + qint64(sim.rng.bounded(2000)));
        } else if (fault < 21) {
            sim.restartRelay();
        }
        sim.now += qint64(sim.rng.bounded(3));
        sim.tick();
    }

    QVERIFY2(sim.heal(), qPrintable(QStringLiteral("seed %1: network did not settle").arg(seed)));
    QVERIFY2(sim.digestRoundsToAgree(keepers) >= 0, qPrintable(QStringLiteral("seed %1: verify did not settle").arg(seed)));
    QVERIFY2(sim.agree(keepers), qPrintable(QStringLiteral("seed %1: keepers disagree").arg(seed)));

    // No phantom: every entry a keeper holds is a write somebody made.
    QSet<QPair<quint64, quint64>> made;
    for (const Write &w : std::as_const(writes))
        made.insert({w.entry.hlc, w.entry.writer});
    const MapState &kept = sim.peers[0]->replica->state();
    for (const EntryRef e : kept.entries())
        QVERIFY2(made.contains({e.hlc(), e.writer()}), qPrintable(QStringLiteral("seed %1: %2 holds a write nobody made").arg(seed).arg(e.key())));
    int lost = 0;
    for (const Write &a : std::as_const(acknowledged)) {
        for (int k = 0; k < keepers; ++k) {
            const EntryRef e = sim.peers[size_t(k)]->replica->state().find(a.key);
            if (!e || (!e->sameWrite(a.entry) && !e->newerThan(a.entry))) {
                ++lost;
                qWarning("seed %u: keeper %d lost the acknowledged write of %s (%llx, %llx)", seed, k, qPrintable(a.key),
                         a.entry.hlc, a.entry.writer);
            }
        }
    }
    QVERIFY2(acknowledged.size() > totalOps / 40, // most are replaced by the next write of their key before an ack
             qPrintable(QStringLiteral("seed %1: only %2 of %3 writes were confirmed").arg(seed).arg(acknowledged.size()).arg(totalOps)));
    QVERIFY2(lost == 0, qPrintable(QStringLiteral("seed %1: %2 acknowledged writes lost").arg(seed).arg(lost)));
    if (qEnvironmentVariableIsSet("DISTMAP_SIM_VERBOSE"))
        qInfo("seed %u: %d writes, %d confirmed durably, %d writer crashes, %d relay restarts", seed, int(writes.size()),
              int(acknowledged.size()), crashes, sim.counters.restarts);
}

QTEST_APPLESS_MAIN(tst_Simulation)
#include "tst_simulation.moc"
