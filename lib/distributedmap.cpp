#include "distributedmap.h"

#include "connection.h"
#include "distributedmap_p.h"
#include "jsontext.h"
#include "localstore.h"
#include "logging.h"

#include <QDateTime>
#include <QMetaMethod>

namespace {

constexpr int DefaultAntiEntropyMs = 30000;

QJsonValue parseValue(const QByteArray &text)
{
    return JsonText::decode(text);
}

} // namespace

DistributedMapPrivate::DistributedMapPrivate(DistributedMap *q, Connection *connection, const QString &uri)
    : q(q)
    , connection(connection)
    , replica(this, uri)
{
    syncTimer.setSingleShot(true);
    QObject::connect(&syncTimer, &QTimer::timeout, q, [this] {
        qCInfo(lcSync) << replica.uri() << "no sync answer in" << syncTimer.interval() << "ms: asking another peer";
        replica.syncTimedOut();
    });
    antiEntropyTimer.setInterval(DefaultAntiEntropyMs);
    QObject::connect(&antiEntropyTimer, &QTimer::timeout, q, [this] { replica.verify(); });
    if (connection) {
        lastPeerId = connection->peerId();
        channel = connection->openChannel(uri, this);
        if (channel->isUp())
            channelUp(connection->relayClockOffset());
    }
}

DistributedMapPrivate::~DistributedMapPrivate()
{
    if (channel)
        replica.closeMap();
}

void DistributedMapPrivate::reportError(DistributedMap::Error error, const QString &message)
{
    lastError = error;
    lastErrorString = message;
    Q_EMIT q->errorOccurred(error, message);
}

DistributedMap::DistributedMap(Connection *connection, const QString &uri, QObject *parent)
    : QObject(parent)
    , d(std::make_unique<DistributedMapPrivate>(this, connection, uri))
{
}

DistributedMap::~DistributedMap() = default;

QString DistributedMap::uri() const { return d->replica.uri(); }
Connection *DistributedMap::connection() const { return d->connection; }
bool DistributedMap::isReady() const { return d->replica.isReady(); }
bool DistributedMap::isSyncing() const { return d->replica.isSyncing(); }
quint64 DistributedMap::lastSyncSource() const { return d->replica.lastSyncSource(); }
bool DistributedMap::contains(const QString &key) const { return d->replica.state().contains(key); }
int DistributedMap::size() const { return d->replica.state().size(); }
void DistributedMap::setPresence(const QJsonObject &presence) { d->replica.setPresence(presence); }
QJsonObject DistributedMap::presence() const { return d->replica.presence(); }
QList<DistributedMap::Peer> DistributedMap::peers() const { return d->replica.peers().values(); }
void DistributedMap::setSyncTimeout(int ms) { d->replica.setSyncTimeout(ms); }
void DistributedMap::setWriteAcknowledgements(bool on) { d->replica.setWriteAcknowledgements(on); }
bool DistributedMap::writeAcknowledgements() const { return d->replica.writeAcknowledgements(); }
int DistributedMap::unconfirmedWrites() const { return d->replica.unconfirmedWrites(); }
void DistributedMap::verify() { d->replica.verify(); }
void DistributedMap::setMaxClockDrift(qint64 ms) { d->replica.setMaxClockDrift(ms); }
void DistributedMap::setTombstoneRetention(qint64 ms) { d->replica.setTombstoneRetention(ms); }
int DistributedMap::purgeTombstones(qint64 olderThanMs) { return d->replica.purgeTombstones(olderThanMs); }
DistributedMap::Error DistributedMap::error() const { return d->lastError; }
QString DistributedMap::errorString() const { return d->lastErrorString; }
Wire::ErrorCode DistributedMap::relayErrorCode() const { return d->lastRelayError; }

void DistributedMap::onReady(const std::function<void()> &callback)
{
    if (isReady())
        callback();
    else
        d->readyCallbacks.append(callback);
}

bool DistributedMap::set(const QString &key, const QJsonValue &value)
{
    if (value.isUndefined())
        return false;
    const QByteArray json = JsonText::encode(value);
    if (!d->replica.fits(key, json.size())) {
        // Sent, it would get this peer cut off by the relay, again after
        // every reconnect: refuse it here, where the caller can hear why.
        d->reportError(TooLarge, QStringLiteral("the value of '%1' is %2 bytes; the relay accepts messages of at most %3 bytes")
                                     .arg(key)
                                     .arg(json.size())
                                     .arg(d->replica.maxMessageBytes()));
        return false;
    }
    d->replica.write(key, json);
    return true;
}

bool DistributedMap::remove(const QString &key)
{
    if (!contains(key))
        return false;
    d->replica.erase(key);
    return true;
}

void DistributedMap::flush()
{
    d->replica.flush();
}

void DistributedMap::setAntiEntropyInterval(int ms)
{
    if (ms <= 0) {
        d->antiEntropyTimer.stop();
        d->antiEntropyTimer.setInterval(0);
        return;
    }
    d->antiEntropyTimer.setInterval(ms);
    if (isReady() && d->replica.mapId())
        d->antiEntropyTimer.start();
}

QJsonValue DistributedMap::value(const QString &key, const QJsonValue &defaultValue) const
{
    const Entry *entry = d->replica.state().find(key);
    if (!entry || entry->tombstone)
        return defaultValue;
    return parseValue(entry->value);
}

QStringList DistributedMap::keys() const
{
    QStringList result;
    result.reserve(size());
    for (auto it = d->replica.state().entries().cbegin(); it != d->replica.state().entries().cend(); ++it) {
        if (!it->tombstone)
            result.append(it.key());
    }
    return result;
}

QList<QJsonValue> DistributedMap::values() const
{
    QList<QJsonValue> result;
    result.reserve(size());
    forEach([&result](const QString &, const QJsonValue &v) { result.append(v); });
    return result;
}

QJsonObject DistributedMap::toJsonObject() const
{
    // QJsonObject keeps its keys sorted, so inserting them in hash order
    // moves half the object on every insert: quadratic, seconds for 20,000
    // keys. Sorted, each insert lands at the end.
    QStringList sorted = keys();
    sorted.sort();
    QJsonObject result;
    for (const QString &key : std::as_const(sorted))
        result.insert(key, value(key));
    return result;
}

QVariantMap DistributedMap::toVariantMap() const
{
    return toJsonObject().toVariantMap();
}

void DistributedMap::forEach(const std::function<void(const QString &, const QJsonValue &)> &visit) const
{
    for (auto it = d->replica.state().entries().cbegin(); it != d->replica.state().entries().cend(); ++it) {
        if (!it->tombstone)
            visit(it.key(), parseValue(it->value));
    }
}

// --- MapChannel::Receiver ---------------------------------------------------

void DistributedMapPrivate::channelUp(qint64 relayClockOffsetMs)
{
    lastPeerId = channel->peerId();
    replica.setMaxMessageBytes(channel->maxMessageBytes());
    replica.connectionUp(QDateTime::currentMSecsSinceEpoch() + relayClockOffsetMs);
}

void DistributedMapPrivate::channelDown()
{
    antiEntropyTimer.stop();
    pendingAcks.clear(); // their writers send again to whoever is there after the reconnect
    channel->setMapId(0);
    replica.connectionDown();
}

void DistributedMapPrivate::channelGone()
{
    channelDown();
    channel.reset();
    connection = nullptr;
}

void DistributedMapPrivate::opened(const Control::Opened &message)
{
    channel->setMapId(message.id);
    replica.handleOpened(message);
}

void DistributedMapPrivate::joined(const Control::Joined &message) { replica.handleJoined(message); }
void DistributedMapPrivate::left(const Control::Left &message) { replica.handleLeft(message); }
void DistributedMapPrivate::presenceChanged(const Control::Presence &message) { replica.handlePresence(message); }
void DistributedMapPrivate::alone(const Control::Alone &message) { replica.handleAlone(message); }

void DistributedMapPrivate::relayError(const Control::Error &error, const QString &text)
{
    lastRelayError = error.code;
    reportError(DistributedMap::RelayError, text);
}

void DistributedMapPrivate::frameReceived(const Wire::Header &header, const QByteArray &frame)
{
    replica.handleFrame(header, frame);
}

// --- Replica::Host -------------------------------------------------------

quint64 DistributedMapPrivate::peerId() const
{
    return channel ? channel->peerId() : lastPeerId;
}

void DistributedMapPrivate::sendFrame(const QByteArray &frame)
{
    if (channel)
        channel->sendFrame(frame);
}

void DistributedMapPrivate::sendControl(const QByteArray &text)
{
    if (channel)
        channel->sendControl(text);
}

void DistributedMapPrivate::flushRequested()
{
    // A posted call, not a 0 ms timer: under the glib event dispatcher (the
    // default for Qt applications on Linux) a zero timer was sometimes
    // served milliseconds late, which made up most of the unloaded p99.
    if (flushQueued)
        return;
    flushQueued = true;
    QMetaObject::invokeMethod(q, [this] {
        flushQueued = false;
        replica.flush();
    }, Qt::QueuedConnection);
}

void DistributedMapPrivate::syncTimerRequested(qint64 ms)
{
    if (ms > 0)
        syncTimer.start(int(ms));
    else
        syncTimer.stop();
}

void DistributedMapPrivate::onChanged(const Replica::Change &change)
{
    Q_EMIT q->changed(change);
    if (change.source == Replica::Source::Local || change.source == Replica::Source::Store)
        return;
    // Parsing JSON costs more than applying the write: only for listeners.
    static const QMetaMethod setSignal = QMetaMethod::fromSignal(&DistributedMap::valueSet);
    static const QMetaMethod deleteSignal = QMetaMethod::fromSignal(&DistributedMap::valueDeleted);
    if (change.deleted) {
        if (q->isSignalConnected(deleteSignal))
            Q_EMIT q->valueDeleted(parseValue(change.oldValue), change.key);
    } else if (q->isSignalConnected(setSignal)) {
        Q_EMIT q->valueSet(parseValue(change.value), change.key);
    }
}

void DistributedMapPrivate::onEntryApplied(const QString &key, const Entry &entry, Replica::Source source)
{
    if (entryObserver)
        entryObserver(key, entry, source);
}

void DistributedMapPrivate::onDeltaObserved(const Replica::DeltaEvent &event)
{
    Q_EMIT q->deltaObserved(event);
}

void DistributedMapPrivate::onReadied()
{
    Q_EMIT q->ready();
    const auto callbacks = std::exchange(readyCallbacks, {});
    for (const auto &callback : callbacks)
        callback();
}

void DistributedMapPrivate::onReadOnlyHoldersOnly(int count)
{
    reportError(DistributedMap::ReadOnlyHoldersOnly,
                QStringLiteral("only read-only peers (%1) hold %2: they may not answer a sync, so the map started "
                               "from this peer's own state and may lack what only they hold")
                    .arg(count)
                    .arg(replica.uri()));
}

void DistributedMapPrivate::onSyncingChanged(bool syncing)
{
    if (syncing)
        qCDebug(lcSync).noquote() << replica.uri() << "sync started";
    else
        qCDebug(lcSync).noquote() << replica.uri() << "sync done:" << replica.state().size() << "keys";
    if (!syncing && antiEntropyTimer.interval() > 0)
        antiEntropyTimer.start();
    Q_EMIT q->syncingChanged(syncing);
}

void DistributedMapPrivate::onPeerJoined(const Replica::Peer &peer)
{
    Q_EMIT q->peerJoined(peer);
}

void DistributedMapPrivate::onPeerLeft(quint64 id)
{
    Q_EMIT q->peerLeft(id);
}

void DistributedMapPrivate::onPeerPresenceChanged(const Replica::Peer &peer)
{
    Q_EMIT q->peerPresenceChanged(peer);
}

void DistributedMapPrivate::onTooLarge(const QString &key, qsizetype bytes)
{
    reportError(DistributedMap::TooLarge, QStringLiteral("'%1' was not sent: it needs a message of %2 bytes and the relay "
                                                         "accepts at most %3")
                                              .arg(key)
                                              .arg(bytes)
                                              .arg(replica.maxMessageBytes()));
}

void DistributedMapPrivate::onError(const QString &message)
{
    qCWarning(lcNet) << replica.uri() << message;
    reportError(DistributedMap::PeerError, message);
}

// --- write acknowledgements ------------------------------------------------

void DistributedMapPrivate::setDurableStore(LocalStore *store)
{
    QObject::disconnect(durableConnection);
    durableStore = store;
    pendingAcks.clear();
    if (store)
        durableConnection = QObject::connect(store, &LocalStore::durable, q, [this](quint64 seq) { sendDurableAcks(seq); });
}

bool DistributedMapPrivate::onAckRequested(quint64 writer, const QVector<quint64> &hlcs)
{
    if (!durableStore || !durableStore->isOpen())
        return false; // held in memory only: confirmed as such at once
    // The writes just applied were journaled as seq lastSeq() at most; a
    // write we already held, or that a newer one beat, was journaled before.
    const quint64 seq = durableStore->lastSeq();
    if (durableStore->durableSeq() >= seq) {
        replica.acknowledge(writer, hlcs, true);
        return true;
    }
    // Bounded: a store that cannot write (a full disk) must not grow this
    // without end. The oldest go unanswered; their writers send again.
    constexpr qsizetype MaxPendingAcks = 65536;
    if (pendingAcks.size() >= MaxPendingAcks)
        pendingAcks.removeFirst();
    pendingAcks.append({seq, writer, hlcs});
    return true;
}

void DistributedMapPrivate::sendDurableAcks(quint64 durableSeq)
{
    qsizetype done = 0;
    while (done < pendingAcks.size() && pendingAcks.at(done).seq <= durableSeq) {
        const PendingAck &ack = pendingAcks.at(done);
        replica.acknowledge(ack.writer, ack.hlcs, true);
        ++done;
    }
    pendingAcks.remove(0, done);
}

void DistributedMapPrivate::onWriteAcknowledged(const QString &key, int peers, bool durable)
{
    Q_EMIT q->writeAcknowledged(key, peers, durable);
}

void DistributedMapPrivate::onWriteSuperseded(const QString &key)
{
    Q_EMIT q->writeSuperseded(key);
}
