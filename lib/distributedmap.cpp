#include "distributedmap.h"

#include "connection.h"
#include "distributedmap_p.h"
#include "jsontext.h"
#include "localstore.h"
#include "logging.h"

#include <QDateTime>
#include <QIODevice>
#include <QMetaMethod>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

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
    statusTimer.setSingleShot(true);
    statusTimer.setInterval(0);
    QObject::connect(&statusTimer, &QTimer::timeout, q, [this] { Q_EMIT this->q->syncStatusChanged(lastStatus); });
    inboxTimer.setSingleShot(true);
    inboxTimer.setInterval(0);
    QObject::connect(&inboxTimer, &QTimer::timeout, q, [this] { inboxTurnEnded(); });
    syncTimer.setSingleShot(true);
    QObject::connect(&syncTimer, &QTimer::timeout, q, [this] {
        qCInfo(lcSync) << replica.uri() << "no sync answer in" << syncTimer.interval() << "ms: asking another peer";
        replica.syncTimedOut();
    });
    antiEntropyTimer.setInterval(DefaultAntiEntropyMs);
    QObject::connect(&antiEntropyTimer, &QTimer::timeout, q, [this] { replica.verify(); });
    if (connection) {
        QObject::connect(connection, &Connection::pongReceived, q, [this](quint32 seq) { pongReceived(seq); });
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
    if (value.isDouble() && !std::isfinite(value.toDouble())) {
        d->reportError(NotJson, QStringLiteral("the value of '%1' is not a finite number, which JSON cannot hold").arg(key));
        return false;
    }
    // A longer key would make every receiver drop the whole delta it
    // travels in, with the writes beside it (section 5.2 of PROTOCOL.md).
    if (key.size() > qsizetype(Wire::MaxKeyBytes) / 3) {
        const qsizetype keyBytes = key.toUtf8().size();
        if (keyBytes > qsizetype(Wire::MaxKeyBytes)) {
            d->reportError(TooLarge, QStringLiteral("the key '%1…' is %2 bytes of UTF-8; keys are at most %3")
                                         .arg(key.left(40))
                                         .arg(keyBytes)
                                         .arg(Wire::MaxKeyBytes));
            return false;
        }
    }
    if (!d->mayWrite() || !d->canBeat(key))
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

namespace {

// Converts v to JSON if it has one exact JSON form; else says where not.
bool exactJson(const QVariant &v, const QString &path, QJsonValue *out, QString *problem)
{
    using distmap::detail::MaxExactInteger;
    switch (v.typeId()) {
    case QMetaType::UnknownType:
    case QMetaType::Nullptr:
        *out = QJsonValue(QJsonValue::Null);
        return true;
    case QMetaType::QString:
        *out = v.toString();
        return true;
    case QMetaType::Bool:
        *out = v.toBool();
        return true;
    case QMetaType::Int:
    case QMetaType::UInt:
    case QMetaType::Short:
    case QMetaType::UShort:
        *out = v.toLongLong();
        return true;
    case QMetaType::LongLong:
    case QMetaType::Long: {
        const qint64 i = v.toLongLong();
        if (i < -MaxExactInteger || i > MaxExactInteger) {
            *problem = QStringLiteral("%1 is %2, past 2^53: JSON peers in JavaScript would read another number")
                           .arg(path, QString::number(i));
            return false;
        }
        *out = i;
        return true;
    }
    case QMetaType::ULongLong:
    case QMetaType::ULong: {
        const quint64 u = v.toULongLong();
        if (u > quint64(MaxExactInteger)) {
            *problem = QStringLiteral("%1 is %2, past 2^53: JSON peers in JavaScript would read another number")
                           .arg(path, QString::number(u));
            return false;
        }
        *out = qint64(u);
        return true;
    }
    case QMetaType::Double:
    case QMetaType::Float: {
        const double d = v.toDouble();
        if (!std::isfinite(d)) {
            *problem = QStringLiteral("%1 is not a finite number").arg(path);
            return false;
        }
        *out = d;
        return true;
    }
    case QMetaType::QStringList:
        *out = QJsonArray::fromStringList(v.toStringList());
        return true;
    case QMetaType::QVariantList: {
        QJsonArray array;
        const QVariantList list = v.toList();
        for (qsizetype i = 0; i < list.size(); ++i) {
            QJsonValue item;
            if (!exactJson(list.at(i), QStringLiteral("%1[%2]").arg(path).arg(i), &item, problem))
                return false;
            array.append(item);
        }
        *out = array;
        return true;
    }
    case QMetaType::QVariantMap: {
        QJsonObject object;
        const QVariantMap map = v.toMap();
        for (auto it = map.cbegin(); it != map.cend(); ++it) {
            QJsonValue item;
            if (!exactJson(it.value(), path + QLatin1Char('.') + it.key(), &item, problem))
                return false;
            object.insert(it.key(), item);
        }
        *out = object;
        return true;
    }
    case QMetaType::QJsonValue:
        *out = v.toJsonValue();
        return true;
    case QMetaType::QJsonObject:
        *out = v.toJsonObject();
        return true;
    case QMetaType::QJsonArray:
        *out = v.toJsonArray();
        return true;
    default:
        *problem = QStringLiteral("%1 is a %2, which has no one exact JSON form: convert it first (a QDateTime to an "
                                  "ISO 8601 string, a QByteArray to base64, ...)")
                       .arg(path, QString::fromLatin1(v.metaType().name()));
        return false;
    }
}

} // namespace

bool DistributedMap::setVariant(const QString &key, const QVariant &value)
{
    QJsonValue json;
    QString problem;
    if (!exactJson(value, QStringLiteral("the value"), &json, &problem)) {
        d->reportError(NotJson, QStringLiteral("'%1' was not written: %2").arg(key, problem));
        return false;
    }
    return set(key, json);
}

DistributedMap::SyncStatus DistributedMap::syncStatus() const
{
    return d->computeStatus();
}

bool DistributedMap::remove(const QString &key)
{
    if (!contains(key) || !d->mayWrite() || !d->canBeat(key))
        return false;
    d->replica.erase(key);
    return true;
}

bool DistributedMap::isReadOnly() const
{
    return d->replica.isReadOnly();
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
    const EntryRef entry = d->replica.state().find(key);
    if (!entry || entry.tombstone())
        return defaultValue;
    return parseValue(entry.value());
}

QStringList DistributedMap::keys() const
{
    QStringList result;
    result.reserve(size());
    for (const EntryRef e : d->replica.state().entries()) {
        if (!e.tombstone())
            result.append(e.key());
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

QByteArray DistributedMap::toJson() const
{
    QByteArray out;
    d->writeJson([&out](QByteArrayView piece) {
        out.append(piece.data(), piece.size());
        return true;
    });
    return out;
}

bool DistributedMap::writeJson(QIODevice *device) const
{
    return d->writeJson([device](QByteArrayView piece) { return device->write(piece.data(), piece.size()) == piece.size(); });
}

bool DistributedMapPrivate::writeJson(const std::function<bool(QByteArrayView)> &sink) const
{
    std::vector<EntryRef> live;
    live.reserve(size_t(replica.state().size()));
    for (const EntryRef e : replica.state().entries()) {
        if (!e.tombstone())
            live.push_back(e);
    }
    // UTF-8 bytes compare in code point order.
    std::sort(live.begin(), live.end(), [](const EntryRef &a, const EntryRef &b) {
        const QByteArrayView x = a.utf8Key(), y = b.utf8Key();
        const int c = std::memcmp(x.data(), y.data(), size_t(qMin(x.size(), y.size())));
        return c != 0 ? c < 0 : x.size() < y.size();
    });
    constexpr qsizetype PieceBytes = 64 * 1024;
    QByteArray out;
    out.reserve(PieceBytes + 4096);
    out.append('{');
    bool first = true;
    for (const EntryRef &e : live) {
        if (!first)
            out.append(',');
        first = false;
        JsonText::appendString(out, e.utf8Key());
        out.append(':');
        const QByteArrayView value = e.valueView();
        if (JsonText::isValid(value))
            out.append(value.data(), value.size());
        else
            out.append("null", 4);
        if (out.size() >= PieceBytes) {
            if (!sink(out))
                return false;
            out.truncate(0); // keeps the allocation for the next piece
        }
    }
    out.append('}');
    return sink(out);
}

QVariantMap DistributedMap::toVariantMap() const
{
    return toJsonObject().toVariantMap();
}

void DistributedMap::forEach(const std::function<void(const QString &, const QJsonValue &)> &visit) const
{
    for (const EntryRef e : d->replica.state().entries()) {
        if (!e.tombstone())
            visit(e.key(), parseValue(e.value()));
    }
}

// --- MapChannel::Receiver ---------------------------------------------------

void DistributedMapPrivate::channelUp(qint64 relayClockOffsetMs)
{
    drainInbox(-1);
    lastPeerId = channel->peerId();
    replica.setMaxMessageBytes(channel->maxMessageBytes());
    replica.connectionUp(QDateTime::currentMSecsSinceEpoch() + relayClockOffsetMs);
}

void DistributedMapPrivate::channelDown()
{
    drainInbox(-1);
    pings.clear(); // lost with the socket; the next sync confirms those writes
    antiEntropyTimer.stop();
    pendingAcks.clear(); // their writers send again to whoever is there after the reconnect
    channel->setMapId(0);
    replica.connectionDown();
    updateStatus();
}

void DistributedMapPrivate::channelGone()
{
    // The connection is going away: applying waiting frames would answer
    // through it mid-destruction. Their data comes back with the next sync.
    inbox.clear();
    channelDown();
    channel.reset();
    connection = nullptr;
}

void DistributedMapPrivate::opened(const Control::Opened &message)
{
    drainInbox(-1);
    channel->setMapId(message.id);
    replica.handleOpened(message);
    updateStatus();
}

void DistributedMapPrivate::joined(const Control::Joined &message)
{
    drainInbox(-1);
    replica.handleJoined(message);
}

void DistributedMapPrivate::left(const Control::Left &message)
{
    drainInbox(-1);
    replica.handleLeft(message);
}

void DistributedMapPrivate::presenceChanged(const Control::Presence &message)
{
    drainInbox(-1);
    replica.handlePresence(message);
}

void DistributedMapPrivate::alone(const Control::Alone &message)
{
    drainInbox(-1);
    replica.handleAlone(message);
}

void DistributedMapPrivate::verifyRequested()
{
    drainInbox(-1);
    replica.verify();
}

void DistributedMapPrivate::relayError(const Control::Error &error, const QString &text)
{
    drainInbox(-1);
    lastRelayError = error.code;
    reportError(DistributedMap::RelayError, text);
}

void DistributedMapPrivate::frameReceived(const Wire::Header &header, const QByteArray &frame)
{
    if (inbox.empty() && (!turnClock.isValid() || turnClock.elapsed() < inboxBudgetMs)) {
        if (!turnClock.isValid()) {
            turnClock.start();
            inboxTimer.start(); // ends this turn's budget
        }
        replica.handleFrame(header, frame);
        return;
    }
    inbox.emplace_back(header, frame);
    if (!inboxTimer.isActive())
        inboxTimer.start();
}

void DistributedMapPrivate::drainInbox(qint64 budgetMs)
{
    QElapsedTimer clock;
    clock.start();
    // At least one frame a turn, however small the budget.
    while (!inbox.empty()) {
        const auto [header, frame] = std::move(inbox.front());
        inbox.pop_front();
        replica.handleFrame(header, frame);
        if (budgetMs >= 0 && clock.elapsed() >= budgetMs)
            break;
    }
}

void DistributedMapPrivate::inboxTurnEnded()
{
    if (inbox.empty()) {
        turnClock.invalidate();
        return;
    }
    turnClock.start();
    drainInbox(inboxBudgetMs);
    inboxTimer.start();
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
        flushAndConfirm();
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
    if (change.source == Replica::Source::Local)
        localWriteMade();
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
    // Syncing until now (the sync ended just before). After the ready
    // handlers: a write they make is pending in the first Synced status.
    updateStatus();
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
    // The sync pushed our offline writes (queued): a ping after them tells
    // when the relay has them.
    if (!syncing)
        flushRequested();
    Q_EMIT q->syncingChanged(syncing);
    updateStatus();
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

bool DistributedMapPrivate::mayWrite()
{
    if (!replica.isReadOnly())
        return true;
    reportError(DistributedMap::ReadOnly, QStringLiteral("the relay grants %1 read-only: nothing is written").arg(replica.uri()));
    return false;
}

bool DistributedMapPrivate::canBeat(const QString &key)
{
    const EntryRef current = replica.state().find(key);
    if (!current || current.hlc() != std::numeric_limits<quint64>::max())
        return true;
    reportError(DistributedMap::ClockOverflow,
                QStringLiteral("'%1' holds a write with the greatest clock (2^64-1); no write can beat it").arg(key));
    return false;
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
    if (store) {
        durableConnection = QObject::connect(store, &LocalStore::durable, q, [this](quint64 seq) {
            sendDurableAcks(seq);
            updateStatus();
        });
    }
    updateStatus();
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

void DistributedMapPrivate::onConflict(const Replica::Conflict &conflict)
{
    Q_EMIT q->conflictResolved(conflict);
}

// --- sync status ------------------------------------------------------------

DistributedMap::SyncStatus DistributedMapPrivate::computeStatus() const
{
    DistributedMap::SyncStatus status;
    if (!channel || !replica.mapId())
        status.state = DistributedMap::SyncStatus::Offline;
    else if (!replica.isReady() || replica.isSyncing())
        status.state = DistributedMap::SyncStatus::Syncing;
    else
        status.state = DistributedMap::SyncStatus::Synced;
    status.pendingWrites = int(writesMade - writesConfirmed);
    status.oldestPendingSinceMs = pendingSince.empty() ? 0 : pendingSince.front().second;
    status.hasStore = durableStore && durableStore->isOpen();
    status.onDisk = status.hasStore && durableStore->durableSeq() >= lastLocalSeq;
    return status;
}

void DistributedMapPrivate::updateStatus()
{
    const DistributedMap::SyncStatus status = computeStatus();
    if (status == lastStatus)
        return;
    const bool countsOnly = status.state == lastStatus.state && status.hasStore == lastStatus.hasStore;
    lastStatus = status;
    // A loop of 100,000 set() calls changes the pending count 100,000
    // times: counts are reported once per event-loop turn, the newest;
    // a change of state at once.
    if (countsOnly) {
        if (!statusTimer.isActive())
            statusTimer.start();
        return;
    }
    statusTimer.stop();
    Q_EMIT q->syncStatusChanged(status);
}

void DistributedMapPrivate::localWriteMade()
{
    // Only the first write after each confirmation point needs its time:
    // a confirmation always ends at such a point, and the write after it is
    // then the oldest pending one. O(pings) memory, not O(writes).
    const quint64 covered = pings.empty() ? writesConfirmed : pings.back().second;
    ++writesMade;
    if (writesMade - 1 == covered)
        pendingSince.emplace_back(writesMade, QDateTime::currentMSecsSinceEpoch());
    if (durableStore)
        lastLocalSeq = durableStore->lastSeq(); // journaled before the change is reported
    updateStatus();
}

void DistributedMapPrivate::flushAndConfirm()
{
    replica.flush();
    // Only once in sync: before, offline writes are still to be pushed.
    if (!connection || !replica.mapId() || !replica.isReady() || replica.isSyncing())
        return;
    // One ping in flight at most: a busy writer must not add a control
    // message to the relay's work for every batch. Its pong asks for the next.
    if (!pings.empty() || writesMade <= writesConfirmed)
        return;
    if (const quint32 seq = connection->ping())
        pings.emplace_back(seq, writesMade);
}

void DistributedMapPrivate::pongReceived(quint32 seq)
{
    bool confirmed = false;
    while (!pings.empty() && pings.front().first <= seq) {
        writesConfirmed = qMax(writesConfirmed, pings.front().second);
        pings.pop_front();
        confirmed = true;
    }
    if (!confirmed)
        return;
    while (!pendingSince.empty() && pendingSince.front().first <= writesConfirmed)
        pendingSince.pop_front();
    if (writesMade > writesConfirmed)
        flushRequested(); // writes made since that ping: the next one
    updateStatus();
}
