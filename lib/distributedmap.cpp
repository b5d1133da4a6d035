#include "distributedmap.h"

#include "connection.h"
#include "jsontext.h"
#include "logging.h"

#include <QDateTime>
#include <QMetaMethod>

namespace {

constexpr int DefaultSyncTimeoutMs = 10000;
constexpr int DefaultAntiEntropyMs = 30000;

QJsonValue parseValue(const QByteArray &text)
{
    return JsonText::decode(text);
}

} // namespace

DistributedMap::DistributedMap(Connection *connection, const QString &uri, QObject *parent)
    : QObject(parent)
    , m_connection(connection)
    , m_replica(this, uri)
{
    m_syncTimer.setSingleShot(true);
    m_syncTimer.setInterval(DefaultSyncTimeoutMs);
    connect(&m_syncTimer, &QTimer::timeout, this, [this] {
        qCInfo(lcNet) << this->uri() << "no sync answer in" << m_syncTimer.interval() << "ms: asking another peer";
        m_replica.syncTimedOut();
    });
    m_antiEntropyTimer.setInterval(DefaultAntiEntropyMs);
    connect(&m_antiEntropyTimer, &QTimer::timeout, this, [this] { m_replica.verify(); });
    if (m_connection) {
        m_lastPeerId = m_connection->peerId();
        m_connection->attach(this);
    }
}

DistributedMap::~DistributedMap()
{
    if (m_connection) {
        m_replica.closeMap();
        m_connection->detach(this);
    }
}

void DistributedMap::onReady(const std::function<void()> &callback)
{
    if (isReady())
        callback();
    else
        m_readyCallbacks.append(callback);
}

bool DistributedMap::set(const QString &key, const QJsonValue &value)
{
    if (value.isUndefined())
        return false;
    m_replica.write(key, JsonText::encode(value));
    return true;
}

bool DistributedMap::remove(const QString &key)
{
    if (!contains(key))
        return false;
    m_replica.erase(key);
    return true;
}

void DistributedMap::flush()
{
    m_replica.flush();
}

void DistributedMap::setAntiEntropyInterval(int ms)
{
    if (ms <= 0) {
        m_antiEntropyTimer.stop();
        m_antiEntropyTimer.setInterval(0);
        return;
    }
    m_antiEntropyTimer.setInterval(ms);
    if (isReady() && m_replica.mapId())
        m_antiEntropyTimer.start();
}

QJsonValue DistributedMap::value(const QString &key, const QJsonValue &defaultValue) const
{
    const Entry *entry = state().find(key);
    if (!entry || entry->tombstone)
        return defaultValue;
    return parseValue(entry->value);
}

QStringList DistributedMap::keys() const
{
    QStringList result;
    result.reserve(size());
    for (auto it = state().entries().cbegin(); it != state().entries().cend(); ++it) {
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
    QJsonObject result;
    forEach([&result](const QString &k, const QJsonValue &v) { result.insert(k, v); });
    return result;
}

QVariantMap DistributedMap::toVariantMap() const
{
    return toJsonObject().toVariantMap();
}

void DistributedMap::forEach(const std::function<void(const QString &, const QJsonValue &)> &visit) const
{
    for (auto it = state().entries().cbegin(); it != state().entries().cend(); ++it) {
        if (!it->tombstone)
            visit(it.key(), parseValue(it->value));
    }
}

// --- Connection side -----------------------------------------------------

void DistributedMap::setMapId(quint32 id)
{
    if (m_connection)
        m_connection->mapIdChanged(this, m_replica.mapId(), id);
}

void DistributedMap::connectionReady()
{
    if (!m_connection)
        return;
    m_lastPeerId = m_connection->peerId();
    // Follow the relay's clock: a peer whose own clock is off by a day then
    // still stamps writes near everyone else's time.
    const qint64 relayNow = QDateTime::currentMSecsSinceEpoch() + m_connection->relayClockOffset();
    m_replica.clock().setOffset(relayNow - m_replica.clock().sourceNow());
    m_replica.connectionUp();
}

void DistributedMap::connectionLost()
{
    m_antiEntropyTimer.stop();
    setMapId(0);
    m_replica.connectionDown();
}

void DistributedMap::connectionDestroyed()
{
    connectionLost();
    m_connection = nullptr;
}

void DistributedMap::handleOpened(const QJsonObject &message)
{
    const quint32 before = m_replica.mapId();
    m_replica.handleOpened(message);
    if (m_connection && m_replica.mapId() != before)
        m_connection->mapIdChanged(this, before, m_replica.mapId());
}

void DistributedMap::handleControl(const QString &type, const QJsonObject &message)
{
    m_replica.handleControl(type, message);
}

void DistributedMap::handleFrame(const Wire::Header &header, const QByteArray &frame)
{
    m_replica.handleFrame(header, frame);
}

void DistributedMap::handleRelayError(int code, const QString &message)
{
    Q_UNUSED(code);
    Q_EMIT errorOccurred(message);
}

// --- Replica::Host -------------------------------------------------------

quint64 DistributedMap::peerId() const
{
    return m_connection ? m_connection->peerId() : m_lastPeerId;
}

void DistributedMap::sendFrame(const QByteArray &frame)
{
    if (m_connection)
        m_connection->sendBinary(frame);
}

void DistributedMap::sendControl(const QJsonObject &message)
{
    if (m_connection)
        m_connection->sendControl(message);
}

void DistributedMap::flushRequested()
{
    // A posted call, not a 0 ms timer: under the glib event dispatcher (the
    // default for Qt applications on Linux) a zero timer was sometimes
    // served milliseconds late, which made up most of the unloaded p99.
    if (m_flushQueued)
        return;
    m_flushQueued = true;
    QMetaObject::invokeMethod(this, [this] {
        m_flushQueued = false;
        m_replica.flush();
    }, Qt::QueuedConnection);
}

void DistributedMap::syncTimerRequested(bool running)
{
    if (running)
        m_syncTimer.start();
    else
        m_syncTimer.stop();
}

void DistributedMap::onChanged(const Change &change)
{
    Q_EMIT changed(change);
    if (change.source == Source::Local || change.source == Source::Store)
        return;
    // Parsing JSON costs more than applying the write: only for listeners.
    static const QMetaMethod setSignal = QMetaMethod::fromSignal(&DistributedMap::valueSet);
    static const QMetaMethod deleteSignal = QMetaMethod::fromSignal(&DistributedMap::valueDeleted);
    if (change.deleted) {
        if (isSignalConnected(deleteSignal))
            Q_EMIT valueDeleted(parseValue(change.oldValue), change.key);
    } else if (isSignalConnected(setSignal)) {
        Q_EMIT valueSet(parseValue(change.value), change.key);
    }
}

void DistributedMap::onEntryApplied(const QString &key, const Entry &entry)
{
    Q_EMIT entryApplied(key, entry);
}

void DistributedMap::onDeltaObserved(const DeltaEvent &event)
{
    Q_EMIT deltaObserved(event);
}

void DistributedMap::onReadied()
{
    Q_EMIT ready();
    const auto callbacks = std::exchange(m_readyCallbacks, {});
    for (const auto &callback : callbacks)
        callback();
}

void DistributedMap::onSyncingChanged(bool syncing)
{
    if (!syncing && m_antiEntropyTimer.interval() > 0)
        m_antiEntropyTimer.start();
    Q_EMIT syncingChanged(syncing);
}

void DistributedMap::onPeerJoined(const Peer &peer)
{
    Q_EMIT peerJoined(peer);
}

void DistributedMap::onPeerLeft(quint64 id)
{
    Q_EMIT peerLeft(id);
}

void DistributedMap::onPeerPresenceChanged(const Peer &peer)
{
    Q_EMIT peerPresenceChanged(peer);
}

void DistributedMap::onError(const QString &message)
{
    qCWarning(lcNet) << uri() << message;
    Q_EMIT errorOccurred(message);
}
