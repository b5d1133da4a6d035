#pragma once

#include "hybridclock.h"
#include "mapstate.h"
#include "replica.h"
#include "wire.h"

#include <QJsonObject>
#include <QJsonValue>
#include <QObject>
#include <QPointer>
#include <QStringList>
#include <QTimer>
#include <QVariantMap>

#include <functional>

class Connection;

// A replicated key/value map: every peer that opens the same URI on a relay
// holds a full copy. Writes apply locally at once (also before ready and
// while offline) and reach the others when the connection allows; the
// per-key last-writer-wins rule over hybrid logical clocks makes every peer
// converge whatever the delivery order.
//
// A facade: the protocol and merge logic live in Replica (plain C++); this
// class adds the connection, timers and signals.
//
// ready() fires once, after the first sync (or at once when the relay says no
// other peer holds the map). valueSet()/valueDeleted() report changes made by
// other peers; changed() reports every change, local ones included.
class DistributedMap : public QObject, private Replica::Host
{
    Q_OBJECT
    Q_DISABLE_COPY(DistributedMap)
public:
    using Source = Replica::Source;
    using Change = Replica::Change;
    using DeltaEvent = Replica::DeltaEvent;
    using Peer = Replica::Peer;

    explicit DistributedMap(Connection *connection, const QString &uri = QStringLiteral("/distributed-map"),
                            QObject *parent = nullptr);
    ~DistributedMap() override;

    QString uri() const { return m_replica.uri(); }
    Connection *connection() const { return m_connection; }

    bool isReady() const { return m_replica.isReady(); }
    // Calls callback once the map is ready: at once when it already is.
    void onReady(const std::function<void()> &callback);
    // True while a sync with the network is in progress (after a reconnect too).
    bool isSyncing() const { return m_replica.isSyncing(); }
    // Peer that served the last completed sync (0: none, we were alone).
    quint64 lastSyncSource() const { return m_replica.lastSyncSource(); }

    // Writing. Both apply locally at once and return false only for an
    // undefined value (set) or a missing key (remove).
    bool set(const QString &key, const QJsonValue &value);
    bool remove(const QString &key);

    // Reading. A missing key gives QJsonValue::Undefined.
    QJsonValue value(const QString &key, const QJsonValue &defaultValue = QJsonValue(QJsonValue::Undefined)) const;
    bool contains(const QString &key) const { return m_replica.state().contains(key); }
    QStringList keys() const;
    QList<QJsonValue> values() const;
    int size() const { return m_replica.state().size(); }
    QJsonObject toJsonObject() const;
    QVariantMap toVariantMap() const;
    // Calls visit(key, value) for every live key, in no particular order.
    void forEach(const std::function<void(const QString &, const QJsonValue &)> &visit) const;

    // The underlying state (entries with clocks and tombstones), for views.
    const MapState &state() const { return m_replica.state(); }
    HybridClock &clock() { return m_replica.clock(); }

    // Presence: a small JSON object other peers see (e.g. {"name": "Ada"}).
    void setPresence(const QJsonObject &presence) { m_replica.setPresence(presence); }
    QJsonObject presence() const { return m_replica.presence(); }
    QList<Peer> peers() const { return m_replica.peers().values(); } // the other peers

    // Sends queued writes now instead of at the end of this event-loop pass.
    void flush();

    // How long a sync may go without an answer before another peer is asked
    // (default 10 s).
    void setSyncTimeout(int ms) { m_syncTimer.setInterval(ms); }
    // Anti-entropy: compare digests with a peer this often, repairing any
    // difference (default 30 s; 0 turns it off). Also runs after every sync.
    void setAntiEntropyInterval(int ms);
    // Starts a digest comparison now (no-op while a sync runs).
    void verify() { m_replica.verify(); }
    // How far a remote clock may pull ours ahead of real time (default 60 s).
    void setMaxClockDrift(qint64 ms) { m_replica.setMaxClockDrift(ms); }
    // How long peers keep tombstones (default 7 days; 0 = forever). Away
    // longer than that, the map rejoins: a full copy, old keys the network
    // forgot are dropped, only newer writes are pushed (docs/RELIABILITY.md).
    void setTombstoneRetention(qint64 ms) { m_replica.setTombstoneRetention(ms); }

    // Drops tombstones older than the given age; returns how many. A peer
    // offline for longer may bring such keys back (see docs/PERSISTENCE.md).
    int purgeTombstones(qint64 olderThanMs) { return m_replica.purgeTombstones(olderThanMs); }

    // Loads entries (a stored replica) without sending anything; the next
    // sync merges them with the network in both directions.
    void load(const QVector<Wire::DecodedEntry> &entries) { m_replica.load(entries); }

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

    // Replica::Host
    quint64 peerId() const override;
    void sendFrame(const QByteArray &frame) override;
    void sendControl(const QJsonObject &message) override;
    void flushRequested() override;
    void syncTimerRequested(bool running) override;
    void onChanged(const Change &change) override;
    void onEntryApplied(const QString &key, const Entry &entry) override;
    void onDeltaObserved(const DeltaEvent &event) override;
    void onReadied() override;
    void onSyncingChanged(bool syncing) override;
    void onPeerJoined(const Peer &peer) override;
    void onPeerLeft(quint64 peerId) override;
    void onPeerPresenceChanged(const Peer &peer) override;
    void onError(const QString &message) override;

    void setMapId(quint32 id);

    QPointer<Connection> m_connection;
    quint64 m_lastPeerId = 0;
    Replica m_replica;
    QList<std::function<void()>> m_readyCallbacks;
    bool m_flushQueued = false;
    QTimer m_syncTimer;
    QTimer m_antiEntropyTimer;
};

Q_DECLARE_METATYPE(DistributedMap::Change)
Q_DECLARE_METATYPE(DistributedMap::DeltaEvent)
Q_DECLARE_METATYPE(DistributedMap::Peer)
