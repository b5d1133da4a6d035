#pragma once

#include "distmap_global.h"
#include "maptypes.h"

#include <QJsonObject>
#include <QJsonValue>
#include <QObject>
#include <QStringList>
#include <QVariantMap>

#include <functional>
#include <memory>
#include <type_traits>

class Connection;
class QIODevice;
class DistributedMapPrivate;

/// A replicated key/value map: every peer that opens the same URI on a relay
/// holds a full copy. Writes apply locally at once (also before ready and
/// while offline) and reach the others when the connection allows; the
/// per-key last-writer-wins rule over hybrid logical clocks makes every peer
/// converge whatever the delivery order.
///
/// A facade: the protocol and merge logic live in Replica (plain C++, not
/// installed); this class adds the connection, timers and signals.
///
/// ready() fires once, after the first sync (or at once when the relay says no
/// other peer holds the map). valueSet()/valueDeleted() report changes made by
/// other peers; changed() reports every change, local ones included.
///
/// Lives in its connection's thread; call it from that thread only.
class DISTMAP_EXPORT DistributedMap : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY(DistributedMap)
    Q_PROPERTY(QString uri READ uri CONSTANT)
    Q_PROPERTY(bool ready READ isReady NOTIFY ready)
    Q_PROPERTY(bool syncing READ isSyncing NOTIFY syncingChanged)
    Q_PROPERTY(int size READ size NOTIFY changed)
public:
    using Source = distmap::Source;         //!< where a change came from
    using Change = distmap::Change;         //!< one applied change to one key
    using DeltaEvent = distmap::DeltaEvent; //!< one delta seen on the wire
    using Peer = distmap::Peer;             //!< another peer of the map
    using Write = distmap::Write;           //!< one write of one key
    using Conflict = distmap::Conflict;     //!< two concurrent writes of one key

    /// Where this peer stands with the network, for a status bar or a
    /// "saved" indicator. See syncStatus().
    struct SyncStatus
    {
        /// The map's link to the network.
        enum State {
            Offline, //!< no open connection to the relay (or the map not open on it yet)
            Syncing, //!< connected, exchanging state with the network
            Synced,  //!< connected and in sync; new writes go out as they are made
        };
        State state = Offline; //!< the map's link to the network
        /// Local writes the relay has not confirmed receiving yet: made
        /// offline or during a sync, or sent and awaiting the relay's answer
        /// to a ping sent after them (the relay answers in order, once it has
        /// forwarded everything before the ping to the map's other peers).
        int pendingWrites = 0;
        /// When the oldest of them was made (ms since the epoch; 0: none).
        qint64 oldestPendingSinceMs = 0;
        bool hasStore = false; //!< a LocalStore keeps this map
        bool onDisk = false;   //!< with a store: every write made so far is on disk (fdatasync returned)

        /// How long the oldest pending write has waited, at nowMs.
        qint64 oldestPendingAgeMs(qint64 nowMs) const
        {
            return oldestPendingSinceMs ? qMax<qint64>(0, nowMs - oldestPendingSinceMs) : 0;
        }
        /// Whether every field is equal.
        bool operator==(const SyncStatus &o) const
        {
            return state == o.state && pendingWrites == o.pendingWrites && oldestPendingSinceMs == o.oldestPendingSinceMs
                && hasStore == o.hasStore && onDisk == o.onDisk;
        }
        /// Whether any field differs.
        bool operator!=(const SyncStatus &o) const { return !(*this == o); }
    };

    /// What errorOccurred() reports.
    enum Error {
        NoError = 0, //!< no error yet
        RelayError, //!< the relay refused something about this map (relayErrorCode() says what)
        PeerError,  //!< another peer sent data this map cannot use (dropped, nothing applied)
        ReadOnlyHoldersOnly, //!< only read-only peers hold the map: it started from this peer's state, not theirs
        TooLarge,   //!< a write larger than the relay accepts: refused by set(), or left out when sending
        NotJson,    //!< set() was given a value JSON cannot hold exactly (nothing is written)
        ClockOverflow, //!< the key's current write carries the greatest clock, 2^64-1: no write can beat it (nothing is written)
        ReadOnly,   //!< set() or remove() on a map the relay opened read-only for this connection's token (nothing is written)
    };
    Q_ENUM(Error)

    /// The map uri on connection. Usable at once: set() and value() work
    /// before anything is connected; the map opens on the relay whenever
    /// the connection is up.
    explicit DistributedMap(Connection *connection, const QString &uri = QStringLiteral("/distributed-map"),
                            QObject *parent = nullptr);
    /// Sends queued writes and closes the map on the relay, when it is open.
    ~DistributedMap() override;

    /// The map's URI, as given at construction.
    QString uri() const;
    /// The connection given at construction (null once it is destroyed).
    Connection *connection() const;

    /// Whether ready() has fired: the first sync is done. Stays true through
    /// reconnects.
    bool isReady() const;
    /// Calls callback once the map is ready: at once when it already is.
    void onReady(const std::function<void()> &callback);
    /// True while a sync with the network is in progress (after a reconnect too).
    bool isSyncing() const;
    /// Peer that served the last completed sync (0: none, we were alone).
    quint64 lastSyncSource() const;

    /// Writing. Applies locally at once and returns false only for an
    /// undefined value, a write larger than the relay accepts or a key over
    /// 65535 bytes of UTF-8 (errorOccurred(TooLarge), nothing is written), a
    /// non-finite number (errorOccurred(NotJson)), a key whose current
    /// write carries the greatest clock (errorOccurred(ClockOverflow)), or a
    /// map the relay opened read-only (errorOccurred(ReadOnly)).
    bool set(const QString &key, const QJsonValue &value);
    /// Deletes key, locally at once like set(); returns false for a missing
    /// key, for one whose write carries the greatest clock
    /// (errorOccurred(ClockOverflow)), and on a read-only map
    /// (errorOccurred(ReadOnly)).
    bool remove(const QString &key);
    /// Whether the relay opened this map read-only for this connection's
    /// token (its `opened` said access "ro"): set() and remove() refuse,
    /// and nothing this peer holds is sent. False until the map is opened.
    bool isReadOnly() const;

    /// Typed writing, for what QJsonValue does not take as is: set(key,
    /// QStringList{...}), set(key, QVariantMap{...}), set(key, QVariantList{...}),
    /// set(key, QVariant(...)). A QVariant (or one inside a map or list) must
    /// hold a type with one exact JSON form: QString, bool, int, qint64 up to
    /// 2^53, a finite double, QStringList, QVariantMap, QVariantList, or null;
    /// anything else (a QDateTime, a QByteArray, ...) makes set() return false
    /// with errorOccurred(NotJson) naming where it is. A type that is neither
    /// a QJsonValue nor one of these is a compile error.
    template <typename T, typename = std::enable_if_t<!std::is_convertible_v<const T &, QJsonValue>>>
    bool set(const QString &key, const T &value);
    /// Typed reading: value<int>(key), value<QVariantMap>(key, {}).
    /// Returns defaultValue when the key is missing or its value is not a T
    /// (a string read as int, 2.5 read as int, ...).
    template <typename T>
    T value(const QString &key, const T &defaultValue = T()) const;

    /// Reading. A missing key gives defaultValue: QJsonValue::Undefined
    /// unless given.
    QJsonValue value(const QString &key, const QJsonValue &defaultValue = QJsonValue(QJsonValue::Undefined)) const;
    /// Whether key has a value (a deleted key has none).
    bool contains(const QString &key) const;
    /// Every live key, in no particular order.
    QStringList keys() const;
    /// Every live value, in no particular order.
    QList<QJsonValue> values() const;
    /// The number of live keys.
    int size() const;
    /// The whole map as one JSON object.
    QJsonObject toJsonObject() const;
    /// The whole map as one compact JSON object text (UTF-8), keys in code
    /// point order, each value as stored: no QJsonValue is built, so it is
    /// several times faster than serializing toJsonObject(). A stored value
    /// that is not valid JSON (sent by a faulty peer) is written as null.
    QByteArray toJson() const;
    /// toJson() written to device in pieces of about 64 KiB, so the text is
    /// never whole in memory (a 1,000,000-key dump). False when a write fails.
    bool writeJson(QIODevice *device) const;
    /// The whole map as a QVariantMap (toJsonObject() converted).
    QVariantMap toVariantMap() const;
    /// Calls visit(key, value) for every live key, in no particular order.
    void forEach(const std::function<void(const QString &, const QJsonValue &)> &visit) const;

    /// Presence: a small JSON object other peers see (e.g. {"name": "Ada"}).
    /// Sent at once when the map is open, else when it opens.
    void setPresence(const QJsonObject &presence);
    /// This peer's presence, as last set.
    QJsonObject presence() const;
    /// The other peers that have the map open now (none while offline).
    QList<Peer> peers() const;

    /// Sends queued writes now instead of at the end of this event-loop pass.
    void flush();

    /// Where this peer stands, now (syncStatusChanged() reports a change of
    /// state at once, and changes of the counts once per event-loop turn;
    /// the pending write's age grows by itself and is never signalled).
    SyncStatus syncStatus() const;

    /// How long a sync may go without an answer before it is asked again,
    /// which the relay routes to another peer (default 2 s after a chunk;
    /// before the first, 3 s more, as long as the relay may hold a request).
    /// In ms; 0 or less restores the default.
    void setSyncTimeout(int ms);

    /// Write acknowledgements (off by default; docs/PROTOCOL.md 5.8). When
    /// on, every peer that receives one of our writes confirms it, saying
    /// whether it has it on disk (a peer with a LocalStore, such as
    /// `distmap keep`). writeAcknowledged() reports each confirmation. A
    /// write no peer has confirmed durably stays unconfirmed, and is sent
    /// again after every reconnect and whenever a peer joins, until one
    /// does or a newer write of its key replaces it (writeSuperseded()).
    /// Only the latest write of each key is tracked.
    void setWriteAcknowledgements(bool on);
    /// Whether write acknowledgements are on.
    bool writeAcknowledgements() const;
    /// Our writes no peer has confirmed durably yet (one per key at most).
    int unconfirmedWrites() const;
    /// Anti-entropy: compare digests with a peer this often, repairing any
    /// difference (default 30 s; 0 turns it off). The period restarts when
    /// a sync ends.
    void setAntiEntropyInterval(int ms);
    /// Starts a digest comparison now (no-op while a sync runs, or while
    /// the map is not open on the relay).
    void verify();
    /// How far a remote clock may pull ours ahead of real time (default 60 s).
    void setMaxClockDrift(qint64 ms);
    /// How long peers keep tombstones (default 7 days; 0 = forever). Away
    /// longer than that, the map rejoins: a full copy, old keys the network
    /// forgot are dropped, only newer writes are pushed (docs/PERSISTENCE.md).
    void setTombstoneRetention(qint64 ms);

    /// Drops tombstones older than the given age; returns how many. A peer
    /// offline for longer may bring such keys back (see docs/PERSISTENCE.md).
    int purgeTombstones(qint64 olderThanMs);

    /// The last error reported through errorOccurred (NoError if none yet).
    Error error() const;
    /// The message of the last error reported through errorOccurred.
    QString errorString() const;
    /// For RelayError: the relay's error code (docs/PROTOCOL.md section 6).
    Wire::ErrorCode relayErrorCode() const;

Q_SIGNALS:
    /// The first sync is done (or the relay said no other peer holds the
    /// map). Fires once.
    void ready();
    void valueSet(const QJsonValue &value, const QString &key);          //!< by another peer: key now holds value
    void valueDeleted(const QJsonValue &oldValue, const QString &key);   //!< by another peer: key, which held oldValue, is gone
    void changed(const DistributedMap::Change &change);                  //!< any change, local ones and a store's load included
    /// A write went out or came in (a sync chunk as one event), with what
    /// applying it did: for inspectors and statistics.
    void deltaObserved(const DistributedMap::DeltaEvent &event);
    /// A sync started (syncing true) or ended.
    void syncingChanged(bool syncing);
    /// Another peer opened the map, or was there when this peer opened it.
    void peerJoined(const DistributedMap::Peer &peer);
    /// Another peer closed the map or lost its link; every peer "leaves"
    /// when this peer's connection drops.
    void peerLeft(quint64 peerId);
    /// Another peer set its presence (in peer.presence).
    void peerPresenceChanged(const DistributedMap::Peer &peer);
    /// Something went wrong with this map; message says what in a sentence.
    void errorOccurred(DistributedMap::Error error, const QString &message);
    /// With write acknowledgements on: `peers` peers hold our write of key,
    /// at least one on disk when `durable` (the write is then settled).
    void writeAcknowledged(const QString &key, int peers, bool durable);
    /// Our unconfirmed write of key was replaced by another peer's newer one.
    void writeSuperseded(const QString &key);
    /// A write from the network and one of this peer's were made
    /// concurrently, neither writer having seen the other's; the winner is
    /// the key's value now. Fires only where this peer can prove it
    /// (docs/API.md, "Conflicts"): e.g. an offline edit beaten by another
    /// peer's, or another peer's offline edit beaten by ours.
    void conflictResolved(const DistributedMap::Conflict &conflict);
    /// syncStatus() changed: a new state at once; new counts (pending
    /// writes, on disk) once per event-loop turn, with the newest status.
    void syncStatusChanged(const DistributedMap::SyncStatus &status);

private:
    friend class DistributedMapPrivate;
    bool setVariant(const QString &key, const QVariant &value);

    std::unique_ptr<DistributedMapPrivate> const d;
};

Q_DECLARE_METATYPE(DistributedMap::Change)
Q_DECLARE_METATYPE(DistributedMap::DeltaEvent)
Q_DECLARE_METATYPE(DistributedMap::Peer)
Q_DECLARE_METATYPE(DistributedMap::Conflict)
Q_DECLARE_METATYPE(DistributedMap::SyncStatus)

#include "distributedmap_impl.h"
