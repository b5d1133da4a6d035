#pragma once

// Not part of the public API: DistributedMap's insides, and the hooks that
// LocalStore, the inspector's views and the benchmarks use. Applications
// include distributedmap.h only.

#include "distributedmap.h"
#include "mapchannel.h"
#include "replica.h"

#include <QElapsedTimer>
#include <QPointer>
#include <QVector>
#include <QMetaMethod>
#include <QTimer>

#include <deque>
#include <functional>
#include <memory>

class LocalStore;

class DistributedMapPrivate final : public Replica::Host, public MapChannel::Receiver
{
public:
    DistributedMapPrivate(DistributedMap *q, Connection *connection, const QString &uri);
    ~DistributedMapPrivate() override;

    static DistributedMapPrivate *get(DistributedMap *map) { return map->d.get(); }
    static const DistributedMapPrivate *get(const DistributedMap *map) { return map->d.get(); }

    // The hooks ------------------------------------------------------------
    // The entries with their clocks and tombstones.
    const MapState &state() const { return replica.state(); }
    HybridClock &clock() { return replica.clock(); }
    // Loads entries (a stored replica) without sending anything; the next
    // sync merges them with the network in both directions.
    void load(const QVector<Wire::DecodedEntry> &entries) { replica.load(entries); }
    // The same for a state read from a store: taken over whole unless
    // someone listens for changes already (each key is then reported).
    void load(MapState &&state)
    {
        replica.load(std::move(state), q->isSignalConnected(QMetaMethod::fromSignal(&DistributedMap::changed)));
    }
    // Called for every write that becomes a key's current write, tombstones
    // included, from any source but Store (loading). One observer: the store.
    using EntryObserver = std::function<void(const QString &key, const Entry &entry, Replica::Source source)>;
    void setEntryObserver(EntryObserver observer) { entryObserver = std::move(observer); }
    // The store that keeps this map (set by LocalStore::attach): write
    // acknowledgements say "durable" only once it has the writes on disk.
    void setDurableStore(LocalStore *store);

    // Replica::Host
    quint64 peerId() const override;
    void sendFrame(const QByteArray &frame) override;
    void sendControl(const QByteArray &text) override;
    void flushRequested() override;
    void syncTimerRequested(qint64 ms) override;
    void onChanged(const Replica::Change &change) override;
    void onEntryApplied(const QString &key, const Entry &entry, Replica::Source source) override;
    void onDeltaObserved(const Replica::DeltaEvent &event) override;
    void onReadied() override;
    void onReadOnlyHoldersOnly(int count) override;
    void onSyncingChanged(bool syncing) override;
    void onPeerJoined(const Replica::Peer &peer) override;
    void onPeerLeft(quint64 peerId) override;
    void onPeerPresenceChanged(const Replica::Peer &peer) override;
    void onError(const QString &message) override;
    void onTooLarge(const QString &key, qsizetype bytes) override;
    bool onAckRequested(quint64 writer, const QVector<quint64> &hlcs) override;
    void onWriteAcknowledged(const QString &key, int peers, bool durable) override;
    void onWriteSuperseded(const QString &key) override;
    void onConflict(const Replica::Conflict &conflict) override;

    // MapChannel::Receiver
    void channelUp(qint64 relayClockOffsetMs) override;
    void channelDown() override;
    void channelGone() override;
    void opened(const Control::Opened &message) override;
    void joined(const Control::Joined &message) override;
    void left(const Control::Left &message) override;
    void presenceChanged(const Control::Presence &message) override;
    void alone(const Control::Alone &message) override;
    void verifyRequested() override;
    void relayError(const Control::Error &error, const QString &text) override;
    void frameReceived(const Wire::Header &header, const QByteArray &frame) override;

    // Frames wait in the inbox once applying them has held the event loop
    // for inboxBudgetMs in one turn: QWebSocket hands over every frame it
    // has buffered at once, and a burst of 100,000 deltas stalled a window
    // for 150 ms. Anything else from the channel first applies what waits,
    // so the order stays the relay's.
    qint64 inboxBudgetMs = 10; // tests set 0: every frame after a turn's first waits
    void drainInbox(qint64 budgetMs); // < 0: everything
    void inboxTurnEnded();

    void reportError(DistributedMap::Error error, const QString &message);
    // False, with errorOccurred(ReadOnly), on a map opened read-only.
    bool mayWrite();
    // False, with errorOccurred(ClockOverflow), when key's current write
    // carries hlc 2^64-1: a local write must beat it (c.hlc + 1), and no
    // 64-bit clock can.
    bool canBeat(const QString &key);
    // The live entries as one JSON object, keys in code point order, handed
    // to sink in pieces; false as soon as sink is.
    bool writeJson(const std::function<bool(QByteArrayView)> &sink) const;
    void sendDurableAcks(quint64 durableSeq);

    // Sync status: local writes are numbered; the relay confirms all up
    // to a number by answering a ping sent, once in sync, after they went out.
    DistributedMap::SyncStatus computeStatus() const;
    void updateStatus();
    void localWriteMade();
    void flushAndConfirm();
    void pongReceived(quint32 seq);

    DistributedMap *const q;
    QPointer<Connection> connection;
    std::unique_ptr<MapChannel> channel;
    quint64 lastPeerId = 0;
    Replica replica;
    EntryObserver entryObserver;
    QList<std::function<void()>> readyCallbacks;
    bool flushQueued = false;
    std::deque<std::pair<Wire::Header, QByteArray>> inbox;
    QTimer inboxTimer;       // 0 ms: the next turn of the event loop
    QElapsedTimer turnClock; // frames applied this turn, for how long
    QTimer syncTimer;
    QTimer antiEntropyTimer;
    // Acks that wait for the store's fdatasync: sent once durableSeq >= seq.
    struct PendingAck
    {
        quint64 seq = 0;
        quint64 writer = 0;
        QVector<quint64> hlcs;
    };
    QPointer<LocalStore> durableStore;
    QMetaObject::Connection durableConnection;
    QVector<PendingAck> pendingAcks;
    quint64 writesMade = 0;
    quint64 writesConfirmed = 0;
    std::deque<std::pair<quint64, qint64>> pendingSince; // (write number, ms since epoch), oldest first
    std::deque<std::pair<quint32, quint64>> pings;       // (ping seq, writes it confirms); at most one
    DistributedMap::SyncStatus lastStatus; // the newest, reported or about to be
    QTimer statusTimer;                    // 0 ms: reports a change of counts
    quint64 lastLocalSeq = 0; // the store's seq of our last local write
    DistributedMap::Error lastError = DistributedMap::NoError;
    QString lastErrorString;
    Wire::ErrorCode lastRelayError = Wire::ErrorCode::NoError;
};
