#pragma once

#include "control.h"
#include "hybridclock.h"
#include "mapstate.h"
#include "syncresponder.h"
#include "wire.h"

#include <QHash>
#include <QJsonObject>
#include <QSet>
#include <QString>
#include <QVector>

#include <deque>
#include <memory>

// One peer's replica of one map and its side of the protocol: local writes,
// applying deltas and repairs, both sides of the sync (docs/PROTOCOL.md
// section 8), presence. Plain C++ over QtCore: no sockets, no timers, no
// signals. Messages go out through the Host; time comes from the clock's
// physical source. DistributedMap puts Qt on top; the deterministic
// simulation (tests/tst_simulation) drives replicas over a seeded network.
class Replica
{
public:
    // The value types the public API hands out (maptypes.h).
    using Source = distmap::Source;
    using Change = distmap::Change;
    using DeltaEvent = distmap::DeltaEvent;
    using Peer = distmap::Peer;
    using Conflict = distmap::Conflict;

    // What a replica needs from its surroundings. Every call is synchronous.
    class Host
    {
    public:
        virtual ~Host() = default;
        virtual quint64 peerId() const = 0;
        virtual void sendFrame(const QByteArray &frame) = 0;
        // A control message's JSON text (lib/core/control.h encodes it).
        virtual void sendControl(const QByteArray &text) = 0;
        // Ask for flush() soon (Qt: at the end of this event-loop pass).
        virtual void flushRequested() = 0;
        // Start (or restart) the sync timeout to fire in ms, or stop it
        // (ms == 0); on expiry call syncTimedOut().
        virtual void syncTimerRequested(qint64 ms) = 0;

        virtual void onChanged(const Change &) {}
        // A write became a key's current write (not for entries loaded from a store).
        virtual void onEntryApplied(const QString &, const Entry &, Source) {}
        virtual void onDeltaObserved(const DeltaEvent &) {}
        // A write from the network met a concurrent write of ours (see
        // noteConflict() for when a replica can tell).
        virtual void onConflict(const Conflict &) {}
        virtual void onReadied() {}
        // The relay said no peer that may answer holds the map, but `count`
        // read-only peers do: our state was taken as the map's state
        // without theirs, which the relay cannot vouch for.
        virtual void onReadOnlyHoldersOnly(int) {}
        virtual void onSyncingChanged(bool) {}
        virtual void onPeerJoined(const Peer &) {}
        virtual void onPeerLeft(quint64) {}
        virtual void onPeerPresenceChanged(const Peer &) {}
        virtual void onError(const QString &) {}
        // An entry could not be sent: as one message it is larger than the
        // relay accepts (maxMessageBytes). Reported once per key and write.
        virtual void onTooLarge(const QString &, qsizetype) {}

        // Write acknowledgements (docs/PROTOCOL.md 5.8).
        // `writer` asked us to confirm that we hold the writes `hlcs` (just
        // applied, or already held, or beaten by a newer write of the key).
        // Return false to have them confirmed at once as not durable;
        // return true to call acknowledge() later, e.g. once a store has
        // them on disk.
        virtual bool onAckRequested(quint64 /*writer*/, const QVector<quint64> & /*hlcs*/) { return false; }
        // Our write of key was confirmed: by `peers` peers so far, at least
        // one of them durably when `durable` (the write is then settled).
        virtual void onWriteAcknowledged(const QString &, int /*peers*/, bool /*durable*/) {}
        // Our unconfirmed write of key was replaced by a newer write of
        // another peer (or forgotten in a rejoin): it needs no more acks.
        virtual void onWriteSuperseded(const QString &) {}
    };

    // Largest sync chunk and broadcast batch, and chunks in flight.
    static constexpr qsizetype ChunkBytes = SyncResponder::ChunkBytes;
    static constexpr quint32 SyncWindow = SyncResponder::Window;

    Replica(Host *host, const QString &uri);
    ~Replica();
    Replica(const Replica &) = delete;
    Replica &operator=(const Replica &) = delete;

    QString uri() const { return m_uri; }
    quint32 mapId() const { return m_mapId; }
    // The relay opened the map read-only for this connection (opened.access
    // "ro"): no entries go out, neither deltas, repairs nor sync answers
    // (PROTOCOL.md section 11 rule 16). Kept until the next opened.
    bool isReadOnly() const { return m_readOnly; }
    bool isReady() const { return m_ready; }
    bool isSyncing() const { return m_syncing; }
    quint64 lastSyncSource() const { return m_lastSyncSource; }
    const MapState &state() const { return m_state; }
    HybridClock &clock() { return m_clock; }
    const QHash<quint64, Peer> &peers() const { return m_peers; }
    QJsonObject presence() const { return m_presence; }

    // Local writes: stamp, apply, queue for broadcast. Return the change.
    Change write(const QString &key, const QByteArray &jsonValue);
    Change erase(const QString &key);

    void setPresence(const QJsonObject &presence);
    void load(const QVector<Wire::DecodedEntry> &entries);
    // The same for a whole state, taken over as it is when this replica
    // holds nothing yet (no change is reported: nothing listens before a
    // map is loaded), else loaded entry by entry.
    void load(MapState &&state, bool reportChanges);
    int purgeTombstones(qint64 olderThanMs);

    // The largest message the relay accepts (from its welcome; default
    // Wire::DefaultMaxMessageBytes). Nothing larger is ever sent: a write
    // that cannot fit is refused (fits()), and an entry that cannot (one
    // from a store, or received from a relay with a larger limit) is left
    // out of deltas, repairs and sync answers, and reported.
    void setMaxMessageBytes(qint64 bytes);
    qint64 maxMessageBytes() const { return m_maxMessageBytes; }
    // Whether a write of key with a value of valueBytes (JSON text) fits in
    // one message to the relay.
    bool fits(const QString &key, qsizetype valueBytes) const;

    // How long a sync may go without an answer before it is asked again
    // (and the relay routes it to another peer): ms of silence after a
    // chunk; before the first one, RelaySyncHoldMs more, for the relay may
    // hold a request that long while a member finishes its own sync.
    static constexpr qint64 DefaultSyncTimeoutMs = 2000;
    static constexpr qint64 RelaySyncHoldMs = 3000;
    void setSyncTimeout(qint64 ms) { m_syncTimeoutMs = ms > 0 ? ms : DefaultSyncTimeoutMs; }
    qint64 syncTimeout() const { return m_syncTimeoutMs; }

    // Write acknowledgements (docs/PROTOCOL.md 5.8). When on, our deltas
    // ask their receivers to confirm; every local write stays unconfirmed
    // until a peer confirms it durably (or a newer write replaces it), and
    // unconfirmed writes are sent again after each sync and whenever a peer
    // joins. One per key: a newer write of the key replaces the older one.
    void setWriteAcknowledgements(bool on) { m_writeAcks = on; }
    bool writeAcknowledgements() const { return m_writeAcks; }
    int unconfirmedWrites() const { return int(m_unconfirmed.size()); }
    // Confirms to writer that we hold the writes hlcs (see Host::onAckRequested).
    void acknowledge(quint64 writer, const QVector<quint64> &hlcs, bool durable);

    // How far ahead of our clock a remote clock may pull it (default 60 s).
    void setMaxClockDrift(qint64 ms) { m_maxDriftMs = ms; }
    // How long peers keep tombstones (default 7 days, as LocalStore; 0 =
    // forever). A peer that has heard nothing from the network for longer
    // rejoins: it takes a full copy, forgets old keys the network no longer
    // has (deleted, tombstone collected) and pushes only newer writes.
    void setTombstoneRetention(qint64 ms) { m_tombstoneRetentionMs = ms; }

    // Starts a digest round with a peer of the network (anti-entropy),
    // unless a sync is already running. False when not open.
    bool verify();

    // Connection events.
    // Sends open. relayNowMs is the relay's wall clock now, as estimated
    // from the handshake (0: unknown): the replica's clock follows it.
    void connectionUp(qint64 relayNowMs = 0);
    void connectionDown();    // forget the map id, peers and sync state
    void closeMap();          // sends close
    // Control messages about this map, decoded by the connection.
    void handleOpened(const Control::Opened &opened);
    void handleJoined(const Control::Joined &joined);
    void handleLeft(const Control::Left &left);
    void handlePresence(const Control::Presence &presence);
    void handleAlone(const Control::Alone &alone = {});
    void handleFrame(const Wire::Header &header, const QByteArray &frame);
    void syncTimedOut();
    void flush();

private:
    enum class SyncPhase { Full, Catchup, Verify, Rejoin };

    static Change makeChange(const QString &key, const Entry &entry, const MapState::Result &result, quint64 from,
                             Source source);
    static DeltaEvent makeDeltaEvent(DeltaEvent::Direction direction, quint64 peer, const QString &key,
                                     const Entry &entry, MapState::Outcome outcome, Source source);
    static DeltaEvent syncChunkEvent(DeltaEvent::Direction direction, quint64 peer, int count);

    // Decodes a routed message's payload; a malformed one is reported (and
    // the caller drops it whole, docs/PROTOCOL.md 5.2).
    template <typename T, typename Decoder>
    bool decodeOrReport(const Wire::Header &header, const QByteArray &frame, const char *what, Decoder decode, T *out)
    {
        const Wire::DecodeError error = decode(frame.constData() + Wire::HeaderSize, frame.size() - Wire::HeaderSize, out);
        if (error == Wire::DecodeError::NoError)
            return true;
        reportDropped(header, what, error);
        return false;
    }
    void reportDropped(const Wire::Header &header, const char *what, Wire::DecodeError error);

    void writeLocal(const QString &key, Entry entry, Change *change);
    void observeRemote(quint64 hlc);
    void applyRemote(const QString &key, const Entry &entry, quint64 from, Source source, bool logDelta);
    void queueBroadcast(Wire::Type type, const QString &key, const Entry &entry);
    quint8 headerFlags(Wire::Type type) const;
    void reportTooLarge(const QString &key, const Entry &entry, qsizetype bytes);
    void startSync();
    void sendSyncRequest(SyncPhase phase);
    void finishSync(quint64 source);
    void pushCandidates();
    void setSyncing(bool syncing);
    void handleDelta(const Wire::Header &header, const QByteArray &frame, Source source);
    void handleSyncRequest(const Wire::Header &header, const QByteArray &frame);
    void handleSyncData(const Wire::Header &header, const QByteArray &frame);
    void handleSyncAck(const Wire::Header &header, const QByteArray &frame);
    void pumpServing(quint64 requester);
    void handleWriteAck(const Wire::Header &header, const QByteArray &frame);
    void trackUnconfirmed(const QString &key, quint64 hlc);
    void dropUnconfirmed(const QString &key);
    void resendUnconfirmed();
    void sendAddressed(Wire::Type type, quint64 target, const QByteArray &payload);
    void rememberLocalWrite(const QString &key, const Entry &entry, const Entry *base);
    void noteConflict(const QString &key, const Entry &incoming, const MapState::Result &result, quint64 from,
                      Source source);
    void markAllSent();

    Host *m_host;
    QString m_uri;
    QJsonObject m_presence;
    MapState m_state;
    HybridClock m_clock;
    quint32 m_mapId = 0;
    bool m_readOnly = false;
    qint64 m_maxDriftMs = 60'000;
    qint64 m_maxMessageBytes = Wire::DefaultMaxMessageBytes;
    QHash<QString, quint64> m_reportedTooLarge; // key -> hlc of the write reported
    qint64 m_syncTimeoutMs = DefaultSyncTimeoutMs;

    // Our writes no peer has confirmed durably yet, by key and by hlc.
    struct Unconfirmed
    {
        quint64 hlc = 0;
        QSet<quint64> peers; // peers that confirmed it (not durably)
    };
    bool m_writeAcks = false;
    QHash<QString, Unconfirmed> m_unconfirmed;
    QHash<quint64, QString> m_unconfirmedKeys;
    qint64 m_tombstoneRetentionMs = MapState::DefaultTombstoneRetentionMs;

    // Our recent writes, for telling a concurrent write from a later one:
    // the write each replaced (its base), and whether it can have reached
    // anyone yet. Only the last MaxRememberedWrites, oldest first out: a
    // peer that writes a million keys must not keep a second index of them.
    struct LocalWrite
    {
        quint64 hlc = 0;
        quint64 baseHlc = 0; // 0: the key had no entry
        quint64 baseWriter = 0;
        bool unsent = true;
    };
    static constexpr int MaxRememberedWrites = 4096;
    QHash<QString, LocalWrite> m_localWrites;
    std::deque<std::pair<QString, quint64>> m_localOrder; // (key, hlc) in write order
    QVector<QString> m_batchKeys;                         // local writes in m_outDelta
    bool m_ready = false;
    bool m_syncing = false;
    QHash<quint64, Peer> m_peers;

    // Outgoing broadcast batches, flushed once per event-loop pass.
    QByteArray m_outDelta;
    QByteArray m_outRepair;

    // Requester side. A peer that already holds entries first catches up on
    // everything newer than what it last heard from the network, then
    // verifies the rest with a digest; an empty peer takes a full copy.
    SyncPhase m_syncPhase = SyncPhase::Full;
    quint64 m_networkHlc = 0; // greatest hlc received from other peers
    quint64 m_rejoinHorizon = 0;
    // A rejoin that has not completed stays a rejoin through timeouts and
    // reconnects: its partial chunks raise m_networkHlc, and a catch-up
    // would push our stale state back (PROTOCOL.md section 8 step 8).
    bool m_rejoinUnfinished = false;
    quint32 m_nextChunkSeq = 0; // chunks arrive in seq order; a gap restarts the round
    QSet<QString> m_rejoinKept; // keys the responder has, ours newer
    quint32 m_syncId = 0;
    quint64 m_syncSource = 0;
    quint64 m_lastSyncSource = 0;
    QVector<quint64> m_requestDigest;
    EntryTable m_pushCandidates; // ours, maybe unknown to the responder (records shared with m_state)
    bool m_candidatesKnown = false;

    SyncResponder m_responder;
};
