#pragma once

#include "hybridclock.h"
#include "mapstate.h"
#include "wire.h"

#include <QJsonObject>
#include <QJsonValue>
#include <QObject>
#include <QPointer>
#include <QSet>
#include <QStringList>
#include <QTimer>
#include <QVariantMap>

#include <functional>
#include <memory>

class Connection;

// A replicated key/value map: every peer that opens the same URI on a relay
// holds a full copy. Writes apply locally at once (also before ready and
// while offline) and reach the others when the connection allows; the
// per-key last-writer-wins rule over hybrid logical clocks makes every peer
// converge whatever the delivery order.
//
// ready() fires once, after the first sync (or at once when the relay says no
// other peer holds the map). valueSet()/valueDeleted() report changes made by
// other peers; changed() reports every change, local ones included.
class DistributedMap : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY(DistributedMap)
public:
    enum class Source { Local, Delta, Sync, Repair, Store };
    Q_ENUM(Source)

    // One applied change to one key.
    struct Change
    {
        QString key;
        bool deleted = false;
        QByteArray value;    // JSON text of the new value (empty when deleted)
        QByteArray oldValue; // JSON text of the replaced value (empty if none)
        bool hadOldValue = false;
        quint64 hlc = 0;
        quint64 writer = 0; // peer id of the writer; this peer's id for local writes
        quint64 from = 0;   // peer the change came from (0 = local or store)
        Source source = Source::Local;
    };

    // One delta seen on the wire, in or out, with what applying it did.
    // For sync chunks, key is empty and count says how many entries it held.
    struct DeltaEvent
    {
        enum Direction { Incoming, Outgoing };
        enum Operation { Set, Delete, SyncChunk };
        Direction direction = Incoming;
        Operation operation = Set;
        quint64 peer = 0; // origin (incoming) or this peer (outgoing)
        QString key;
        QByteArray value;
        quint64 hlc = 0;
        quint64 writer = 0;
        MapState::Outcome outcome = MapState::Outcome::Applied;
        int count = 1;
        Source source = Source::Delta;
    };

    struct Peer
    {
        quint64 id = 0;
        QJsonObject presence;
        qint64 joinedMs = 0; // when we learned of it
    };

    explicit DistributedMap(Connection *connection, const QString &uri = QStringLiteral("/distributed-map"),
                            QObject *parent = nullptr);
    ~DistributedMap() override;

    QString uri() const { return m_uri; }
    Connection *connection() const { return m_connection; }

    bool isReady() const { return m_ready; }
    // Calls callback once the map is ready: at once when it already is.
    void onReady(const std::function<void()> &callback);
    // True while a sync with the network is in progress (after a reconnect too).
    bool isSyncing() const { return m_syncing; }
    // Peer that served the last completed sync (0: none, we were alone).
    quint64 lastSyncSource() const { return m_lastSyncSource; }

    // Writing. Both apply locally at once and return false only for an
    // undefined value (set) or a missing key (remove).
    bool set(const QString &key, const QJsonValue &value);
    bool remove(const QString &key);

    // Reading. A missing key gives QJsonValue::Undefined.
    QJsonValue value(const QString &key, const QJsonValue &defaultValue = QJsonValue(QJsonValue::Undefined)) const;
    bool contains(const QString &key) const { return m_state.contains(key); }
    QStringList keys() const;
    QList<QJsonValue> values() const;
    int size() const { return m_state.size(); }
    QJsonObject toJsonObject() const;
    QVariantMap toVariantMap() const;
    // Calls visit(key, value) for every live key, in no particular order.
    void forEach(const std::function<void(const QString &, const QJsonValue &)> &visit) const;

    // The underlying state (entries with clocks and tombstones), for views.
    const MapState &state() const { return m_state; }
    HybridClock &clock() { return m_clock; }

    // Presence: a small JSON object other peers see (e.g. {"name": "Ada"}).
    void setPresence(const QJsonObject &presence);
    QJsonObject presence() const { return m_presence; }
    QList<Peer> peers() const; // the other peers of this map network

    // Sends queued writes now instead of at the end of this event-loop pass.
    void flush() { flushOutgoing(); }

    // How long a sync may go without an answer before another peer is asked.
    void setSyncTimeout(int ms) { m_syncTimer.setInterval(ms); }

    // Drops tombstones older than the given age; returns how many. A peer
    // offline for longer may bring such keys back (see docs/PERSISTENCE.md).
    int purgeTombstones(qint64 olderThanMs);

    // Loads entries (a stored replica) without sending anything; the next
    // sync merges them with the network in both directions.
    void load(const QVector<Wire::DecodedEntry> &entries);

Q_SIGNALS:
    void ready();
    void valueSet(const QJsonValue &value, const QString &key);          // by another peer
    void valueDeleted(const QJsonValue &oldValue, const QString &key);   // by another peer
    void changed(const DistributedMap::Change &change);                  // any change
    // Every write that became a key's current write, tombstones included,
    // whatever its source except Store (loading). A local store listens here.
    void entryApplied(const QString &key, const Entry &entry);
    void deltaObserved(const DistributedMap::DeltaEvent &event);
    void syncingChanged(bool syncing);
    void peerJoined(const DistributedMap::Peer &peer);
    void peerLeft(quint64 peerId);
    void peerPresenceChanged(const DistributedMap::Peer &peer);
    void errorOccurred(const QString &message);

private:
    friend class Connection;
    // Called by Connection.
    void connectionReady();
    void connectionLost();
    void connectionDestroyed();
    void handleOpened(const QJsonObject &message);
    void handleControl(const QString &type, const QJsonObject &message);
    void handleFrame(const Wire::Header &header, const QByteArray &frame);
    void handleRelayError(int code, const QString &message);

    struct Serving; // a sync this peer answers

    void setMapId(quint32 id);
    void writeLocal(const QString &key, Entry entry);
    void applyRemote(const QString &key, const Entry &entry, quint64 from, Source source, bool logDelta);
    void flushOutgoing();
    void queueBroadcast(Wire::Type type, const QString &key, const Entry &entry);
    void startSync();
    void restartSync(const QString &why);
    void finishSync(quint64 source);
    void pushCandidates();
    void markReady();
    void handleDelta(const Wire::Header &header, const QByteArray &frame, Source source);
    void handleSyncRequest(const Wire::Header &header, const QByteArray &frame);
    void handleSyncData(const Wire::Header &header, const QByteArray &frame);
    void handleSyncAck(const Wire::Header &header, const QByteArray &frame);
    void pumpServing(quint64 requester);
    void sendAddressed(Wire::Type type, quint64 target, const QByteArray &payload);
    void setSyncing(bool syncing);

    QPointer<Connection> m_connection;
    QString m_uri;
    QJsonObject m_presence;
    MapState m_state;
    HybridClock m_clock;
    quint32 m_mapId = 0;
    bool m_ready = false;
    bool m_syncing = false;
    QList<std::function<void()>> m_readyCallbacks;
    QHash<quint64, Peer> m_peers;

    // Outgoing broadcast batches, flushed once per event-loop pass.
    QByteArray m_outDelta;
    QByteArray m_outRepair;
    QTimer m_flushTimer;

    // Requester side of a sync. A peer that already holds entries first
    // catches up on everything newer than what it last heard from the
    // network, then verifies the rest with a digest; an empty peer takes a
    // plain full copy.
    enum class SyncPhase { Full, Catchup, Verify };
    void sendSyncRequest(SyncPhase phase);
    SyncPhase m_syncPhase = SyncPhase::Full;
    quint64 m_networkHlc = 0; // greatest hlc received from other peers
    quint32 m_syncId = 0;
    quint64 m_syncSource = 0;
    quint64 m_lastSyncSource = 0;
    QVector<quint64> m_requestDigest;
    QHash<QString, Entry> m_pushCandidates; // ours, maybe unknown to the responder
    bool m_candidatesKnown = false;
    QTimer m_syncTimer;

    // Responder side: one session per requesting peer.
    QHash<quint64, std::shared_ptr<Serving>> m_serving;
};

Q_DECLARE_METATYPE(DistributedMap::Change)
Q_DECLARE_METATYPE(DistributedMap::DeltaEvent)
Q_DECLARE_METATYPE(DistributedMap::Peer)
