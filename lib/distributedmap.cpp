#include "distributedmap.h"

#include "connection.h"
#include "jsontext.h"
#include "logging.h"

#include <QDateTime>
#include <QJsonArray>
#include <QMetaMethod>

namespace {

// Sync chunks and broadcast batches stay well under the relay's message
// limit; four chunks in flight keep a sync fast without letting the relay
// buffer a whole large map for a slow reader.
constexpr qsizetype ChunkBytes = 256 * 1024;
constexpr quint32 SyncWindow = 4;
constexpr int DefaultSyncTimeoutMs = 10000;

int bucketCountFor(int entries)
{
    // About sixteen entries per bucket: a verify round then costs 0.5 bytes
    // of digest per entry each way, and a few lost writes drag along only a
    // few dozen neighbours. 65536 buckets (512 KiB) at most.
    int n = 1;
    while (n < entries / 16 && n < Wire::MaxBucketCount)
        n <<= 1;
    return n;
}

QJsonValue parseValue(const QByteArray &text)
{
    return JsonText::decode(text);
}

} // namespace

struct DistributedMap::Serving
{
    quint32 syncId = 0;
    quint64 since = Wire::SinceNever;
    QHash<QString, Entry> snapshot; // implicitly shared copy: cheap until we write
    QHash<QString, Entry>::const_iterator it;
    QVector<quint64> digest;
    QVector<bool> differs;
    bool all = false;
    quint32 nextSeq = 0;
    quint32 acked = 0;
    bool done = false;
};

DistributedMap::DistributedMap(Connection *connection, const QString &uri, QObject *parent)
    : QObject(parent)
    , m_connection(connection)
    , m_uri(uri)
{
    m_flushTimer.setSingleShot(true);
    m_flushTimer.setInterval(0);
    connect(&m_flushTimer, &QTimer::timeout, this, &DistributedMap::flushOutgoing);
    m_syncTimer.setSingleShot(true);
    m_syncTimer.setInterval(DefaultSyncTimeoutMs);
    connect(&m_syncTimer, &QTimer::timeout, this, [this] {
        restartSync(QStringLiteral("no sync answer in %1 ms").arg(m_syncTimer.interval()));
    });
    if (m_connection)
        m_connection->attach(this);
}

DistributedMap::~DistributedMap()
{
    if (m_connection) {
        flushOutgoing();
        if (m_mapId)
            m_connection->sendControl({{QStringLiteral("type"), QStringLiteral("close")},
                                       {QStringLiteral("id"), qint64(m_mapId)}});
        m_connection->detach(this);
    }
}

void DistributedMap::onReady(const std::function<void()> &callback)
{
    if (m_ready)
        callback();
    else
        m_readyCallbacks.append(callback);
}

bool DistributedMap::set(const QString &key, const QJsonValue &value)
{
    if (value.isUndefined())
        return false;
    Entry entry;
    entry.value = JsonText::encode(value);
    writeLocal(key, std::move(entry));
    return true;
}

bool DistributedMap::remove(const QString &key)
{
    if (!m_state.contains(key))
        return false;
    Entry entry;
    entry.tombstone = true;
    writeLocal(key, std::move(entry));
    return true;
}

void DistributedMap::writeLocal(const QString &key, Entry entry)
{
    entry.hlc = m_clock.tick();
    entry.writer = m_connection ? m_connection->peerId() : 0;
    const MapState::Result result = m_state.apply(key, entry);
    Q_EMIT entryApplied(key, entry);
    Change change;
    change.key = key;
    change.deleted = entry.tombstone;
    change.value = entry.value;
    change.oldValue = result.oldValue;
    change.hadOldValue = result.hadValue;
    change.hlc = entry.hlc;
    change.writer = entry.writer;
    change.source = Source::Local;
    Q_EMIT changed(change);
    if (m_mapId) {
        queueBroadcast(Wire::Type::Delta, key, entry);
        DeltaEvent event;
        event.direction = DeltaEvent::Outgoing;
        event.operation = entry.tombstone ? DeltaEvent::Delete : DeltaEvent::Set;
        event.peer = entry.writer;
        event.key = key;
        event.value = entry.value;
        event.hlc = entry.hlc;
        event.writer = entry.writer;
        event.source = Source::Local;
        Q_EMIT deltaObserved(event);
    }
}

QJsonValue DistributedMap::value(const QString &key, const QJsonValue &defaultValue) const
{
    const Entry *entry = m_state.find(key);
    if (!entry || entry->tombstone)
        return defaultValue;
    return parseValue(entry->value);
}

QStringList DistributedMap::keys() const
{
    QStringList result;
    result.reserve(m_state.size());
    for (auto it = m_state.entries().cbegin(); it != m_state.entries().cend(); ++it) {
        if (!it->tombstone)
            result.append(it.key());
    }
    return result;
}

QList<QJsonValue> DistributedMap::values() const
{
    QList<QJsonValue> result;
    result.reserve(m_state.size());
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
    for (auto it = m_state.entries().cbegin(); it != m_state.entries().cend(); ++it) {
        if (!it->tombstone)
            visit(it.key(), parseValue(it->value));
    }
}

void DistributedMap::setPresence(const QJsonObject &presence)
{
    m_presence = presence;
    if (m_connection && m_mapId)
        m_connection->sendControl({{QStringLiteral("type"), QStringLiteral("presence")},
                                   {QStringLiteral("id"), qint64(m_mapId)},
                                   {QStringLiteral("presence"), presence}});
}

QList<DistributedMap::Peer> DistributedMap::peers() const
{
    return m_peers.values();
}

int DistributedMap::purgeTombstones(qint64 olderThanMs)
{
    const qint64 horizon = m_clock.physicalNow() - olderThanMs;
    return m_state.purgeTombstones(HybridClock::pack(horizon, 0));
}

void DistributedMap::load(const QVector<Wire::DecodedEntry> &entries)
{
    for (const Wire::DecodedEntry &d : entries) {
        m_clock.observe(d.entry.hlc);
        applyRemote(d.key, d.entry, 0, Source::Store, false);
    }
}

// --- connection events -------------------------------------------------

void DistributedMap::connectionReady()
{
    if (!m_connection)
        return;
    setSyncing(true);
    m_connection->sendControl({{QStringLiteral("type"), QStringLiteral("open")},
                               {QStringLiteral("map"), m_uri},
                               {QStringLiteral("presence"), m_presence}});
}

void DistributedMap::connectionLost()
{
    setMapId(0);
    m_serving.clear();
    m_syncTimer.stop();
    m_pushCandidates.clear();
    // Unsent batches are dropped on purpose: the two-way sync after the
    // reconnect carries every entry the network lacks.
    m_outDelta.clear();
    m_outRepair.clear();
    const auto gone = m_peers.keys();
    m_peers.clear();
    for (quint64 id : gone)
        Q_EMIT peerLeft(id);
    setSyncing(false);
}

void DistributedMap::connectionDestroyed()
{
    connectionLost();
    m_connection = nullptr;
}

void DistributedMap::setMapId(quint32 id)
{
    if (m_connection)
        m_connection->mapIdChanged(this, m_mapId, id);
    m_mapId = id;
}

void DistributedMap::handleOpened(const QJsonObject &message)
{
    const quint32 id = quint32(message.value(QStringLiteral("id")).toInteger());
    if (id == 0) {
        Q_EMIT errorOccurred(QStringLiteral("relay opened %1 without a map id").arg(m_uri));
        return;
    }
    setMapId(id);
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    QHash<quint64, Peer> fresh;
    const QJsonArray list = message.value(QStringLiteral("peers")).toArray();
    for (const QJsonValue &item : list) {
        Peer peer;
        if (!Wire::peerFromString(item.toObject().value(QStringLiteral("peer")).toString(), &peer.id))
            continue;
        peer.presence = item.toObject().value(QStringLiteral("presence")).toObject();
        peer.joinedMs = now;
        fresh.insert(peer.id, peer);
    }
    for (auto it = fresh.cbegin(); it != fresh.cend(); ++it) {
        m_peers.insert(it.key(), it.value());
        Q_EMIT peerJoined(it.value());
    }
    startSync();
}

void DistributedMap::handleControl(const QString &type, const QJsonObject &message)
{
    quint64 peerId = 0;
    Wire::peerFromString(message.value(QStringLiteral("peer")).toString(), &peerId);
    if (type == QLatin1String("joined")) {
        Peer peer;
        peer.id = peerId;
        peer.presence = message.value(QStringLiteral("presence")).toObject();
        peer.joinedMs = QDateTime::currentMSecsSinceEpoch();
        m_peers.insert(peer.id, peer);
        Q_EMIT peerJoined(peer);
    } else if (type == QLatin1String("left")) {
        if (m_peers.remove(peerId))
            Q_EMIT peerLeft(peerId);
        m_serving.remove(peerId);
        if (m_syncing && m_syncSource == peerId)
            restartSync(QStringLiteral("sync source %1 left").arg(Wire::peerToString(peerId)));
    } else if (type == QLatin1String("presence")) {
        auto it = m_peers.find(peerId);
        if (it != m_peers.end()) {
            it->presence = message.value(QStringLiteral("presence")).toObject();
            Q_EMIT peerPresenceChanged(*it);
        }
    } else if (type == QLatin1String("alone")) {
        // Nobody else holds the map yet: our state is the map's state, and
        // peers joining later will sync from us.
        m_pushCandidates.clear();
        m_candidatesKnown = false;
        if (m_syncing)
            finishSync(0);
    }
}

void DistributedMap::handleRelayError(int code, const QString &message)
{
    Q_UNUSED(code);
    Q_EMIT errorOccurred(message);
}

void DistributedMap::handleFrame(const Wire::Header &header, const QByteArray &frame)
{
    switch (header.type) {
    case Wire::Type::Delta:
        handleDelta(header, frame, Source::Delta);
        break;
    case Wire::Type::Repair:
        handleDelta(header, frame, Source::Repair);
        break;
    case Wire::Type::SyncRequest:
        handleSyncRequest(header, frame);
        break;
    case Wire::Type::SyncData:
        handleSyncData(header, frame);
        break;
    case Wire::Type::SyncAck:
        handleSyncAck(header, frame);
        break;
    }
}

// --- applying remote writes ----------------------------------------------

void DistributedMap::applyRemote(const QString &key, const Entry &entry, quint64 from, Source source, bool logDelta)
{
    if (source != Source::Store)
        m_networkHlc = qMax(m_networkHlc, entry.hlc);
    const MapState::Result result = m_state.apply(key, entry);
    if (logDelta) {
        DeltaEvent event;
        event.direction = DeltaEvent::Incoming;
        event.operation = entry.tombstone ? DeltaEvent::Delete : DeltaEvent::Set;
        event.peer = from;
        event.key = key;
        event.value = entry.value;
        event.hlc = entry.hlc;
        event.writer = entry.writer;
        event.outcome = result.outcome;
        event.source = source;
        Q_EMIT deltaObserved(event);
    }
    if (result.outcome != MapState::Outcome::Applied)
        return;
    if (source != Source::Store)
        Q_EMIT entryApplied(key, entry);
    // A tombstone for a key we never had changes nothing anyone can see.
    if (entry.tombstone && !result.hadValue)
        return;
    Change change;
    change.key = key;
    change.deleted = entry.tombstone;
    change.value = entry.value;
    change.oldValue = result.oldValue;
    change.hadOldValue = result.hadValue;
    change.hlc = entry.hlc;
    change.writer = entry.writer;
    change.from = from;
    change.source = source;
    Q_EMIT changed(change);
    if (source == Source::Store)
        return;
    // Parsing JSON costs more than applying the write: only for listeners.
    static const QMetaMethod setSignal = QMetaMethod::fromSignal(&DistributedMap::valueSet);
    static const QMetaMethod deleteSignal = QMetaMethod::fromSignal(&DistributedMap::valueDeleted);
    if (entry.tombstone) {
        if (isSignalConnected(deleteSignal))
            Q_EMIT valueDeleted(parseValue(result.oldValue), key);
    } else if (isSignalConnected(setSignal)) {
        Q_EMIT valueSet(parseValue(entry.value), key);
    }
}

void DistributedMap::handleDelta(const Wire::Header &header, const QByteArray &frame, Source source)
{
    QVector<Wire::DecodedEntry> entries;
    const Wire::DecodeError error = Wire::decodeEntries(frame.constData() + Wire::HeaderSize,
                                                        frame.size() - Wire::HeaderSize, &entries);
    if (error != Wire::DecodeError::None) {
        Q_EMIT errorOccurred(QStringLiteral("dropped a malformed delta from %1: %2")
                                 .arg(Wire::peerToString(header.peer), Wire::decodeErrorText(error)));
        return;
    }
    if (source == Source::Delta) {
        // A delta carries its origin's own writes only: the relay stamped
        // the origin, so a writer field naming anyone else is a forgery.
        for (const Wire::DecodedEntry &d : std::as_const(entries)) {
            if (d.entry.writer != header.peer) {
                Q_EMIT errorOccurred(QStringLiteral("dropped a delta from %1 that claims writer %2")
                                         .arg(Wire::peerToString(header.peer), Wire::peerToString(d.entry.writer)));
                return;
            }
        }
    }
    auto peer = m_peers.find(header.peer);
    Q_UNUSED(peer);
    for (const Wire::DecodedEntry &d : std::as_const(entries)) {
        m_clock.observe(d.entry.hlc);
        applyRemote(d.key, d.entry, header.peer, source, true);
    }
}

// --- outgoing batches ----------------------------------------------------

void DistributedMap::queueBroadcast(Wire::Type type, const QString &key, const Entry &entry)
{
    QByteArray &batch = type == Wire::Type::Delta ? m_outDelta : m_outRepair;
    if (batch.isEmpty()) {
        batch.reserve(1024);
        Wire::appendHeader(batch, {type, 0, m_mapId, 0});
    }
    Wire::appendEntry(batch, key, entry);
    if (batch.size() >= ChunkBytes)
        flushOutgoing();
    else if (!m_flushTimer.isActive())
        m_flushTimer.start();
}

void DistributedMap::flushOutgoing()
{
    m_flushTimer.stop();
    if (!m_connection || !m_mapId) {
        m_outDelta.clear();
        m_outRepair.clear();
        return;
    }
    if (!m_outDelta.isEmpty())
        m_connection->sendBinary(std::exchange(m_outDelta, QByteArray()));
    if (!m_outRepair.isEmpty())
        m_connection->sendBinary(std::exchange(m_outRepair, QByteArray()));
}

void DistributedMap::sendAddressed(Wire::Type type, quint64 target, const QByteArray &payload)
{
    if (!m_connection || !m_mapId)
        return;
    QByteArray frame;
    frame.reserve(Wire::HeaderSize + payload.size());
    Wire::appendHeader(frame, {type, 0, m_mapId, target});
    frame.append(payload);
    m_connection->sendBinary(frame);
}

// --- sync: requester -----------------------------------------------------

void DistributedMap::setSyncing(bool syncing)
{
    if (m_syncing == syncing)
        return;
    m_syncing = syncing;
    Q_EMIT syncingChanged(syncing);
}

void DistributedMap::startSync()
{
    if (!m_connection || !m_mapId)
        return;
    setSyncing(true);
    sendSyncRequest(m_state.entryCount() == 0 ? SyncPhase::Full : SyncPhase::Catchup);
}

void DistributedMap::sendSyncRequest(SyncPhase phase)
{
    m_syncPhase = phase;
    ++m_syncId;
    m_syncSource = 0;
    m_pushCandidates.clear();
    m_candidatesKnown = false;
    Wire::SyncRequest request;
    request.syncId = m_syncId;
    switch (phase) {
    case SyncPhase::Full:
        request.since = 0;
        m_requestDigest.clear();
        break;
    case SyncPhase::Catchup:
        // Everything newer than the last write we heard of; our own entries
        // in that range may be news to the network (offline edits).
        request.since = m_networkHlc;
        m_requestDigest.clear();
        for (auto it = m_state.entries().cbegin(); it != m_state.entries().cend(); ++it) {
            if (it->hlc > request.since)
                m_pushCandidates.insert(it.key(), it.value());
        }
        m_candidatesKnown = true;
        break;
    case SyncPhase::Verify:
        // Catches what the catch-up cannot see: writes lost in transit
        // that are older than the newest one we heard of.
        request.since = Wire::SinceNever;
        m_requestDigest = m_state.digest(bucketCountFor(m_state.entryCount()));
        break;
    }
    request.digest = m_requestDigest;
    QByteArray frame;
    Wire::appendHeader(frame, {Wire::Type::SyncRequest, 0, m_mapId, 0});
    frame.append(Wire::encodeSyncRequest(request));
    // Deltas queued so far go first, so the responder's view is not behind ours.
    flushOutgoing();
    m_connection->sendBinary(frame);
    m_syncTimer.start();
    qCDebug(lcNet) << m_uri << "sync request" << m_syncId << "phase" << int(phase) << "since" << request.since
                   << "buckets" << m_requestDigest.size();
}

void DistributedMap::restartSync(const QString &why)
{
    qCInfo(lcNet) << m_uri << "restarting sync:" << why;
    startSync();
}

void DistributedMap::handleSyncData(const Wire::Header &header, const QByteArray &frame)
{
    Wire::SyncChunk chunk;
    const Wire::DecodeError error = Wire::decodeSyncChunk(frame.constData() + Wire::HeaderSize,
                                                          frame.size() - Wire::HeaderSize, &chunk);
    if (error != Wire::DecodeError::None) {
        Q_EMIT errorOccurred(QStringLiteral("dropped a malformed sync chunk from %1: %2")
                                 .arg(Wire::peerToString(header.peer), Wire::decodeErrorText(error)));
        restartSync(QStringLiteral("malformed chunk"));
        return;
    }
    if (!m_syncing || chunk.syncId != m_syncId || (m_syncSource && header.peer != m_syncSource))
        return; // an answer to a sync we gave up on
    if (m_syncSource == 0)
        m_syncSource = header.peer;
    m_syncTimer.start();

    if (chunk.seq == 0 && !m_requestDigest.isEmpty()) {
        if (chunk.digest.size() != m_requestDigest.size()) {
            restartSync(QStringLiteral("responder sent a digest of the wrong size"));
            return;
        }
        // Our entries in buckets that differ may be missing at the
        // responder; whatever it does not send back newer, we push.
        const int n = int(m_requestDigest.size());
        QVector<bool> differs(n);
        bool any = false;
        for (int i = 0; i < n; ++i) {
            differs[i] = m_requestDigest[i] != chunk.digest[i];
            any = any || differs[i];
        }
        if (any) {
            for (auto it = m_state.entries().cbegin(); it != m_state.entries().cend(); ++it) {
                if (n == 1 || differs[MapState::bucketOf(MapState::keyHash(it.key()), n)])
                    m_pushCandidates.insert(it.key(), it.value());
            }
        }
        m_candidatesKnown = true;
    }
    for (const Wire::DecodedEntry &d : std::as_const(chunk.entries)) {
        m_clock.observe(d.entry.hlc);
        auto candidate = m_pushCandidates.find(d.key);
        if (candidate != m_pushCandidates.end() && !candidate->newerThan(d.entry))
            m_pushCandidates.erase(candidate);
        applyRemote(d.key, d.entry, header.peer, Source::Sync, false);
    }
    DeltaEvent event;
    event.direction = DeltaEvent::Incoming;
    event.operation = DeltaEvent::SyncChunk;
    event.peer = header.peer;
    event.count = int(chunk.entries.size());
    event.source = Source::Sync;
    Q_EMIT deltaObserved(event);

    sendAddressed(Wire::Type::SyncAck, header.peer, Wire::encodeSyncAck({chunk.syncId, chunk.seq}));
    if (!chunk.final)
        return;
    if (m_syncPhase == SyncPhase::Catchup) {
        pushCandidates();
        sendSyncRequest(SyncPhase::Verify);
        return;
    }
    finishSync(header.peer);
}

void DistributedMap::pushCandidates()
{
    if (m_candidatesKnown) {
        for (auto it = m_pushCandidates.cbegin(); it != m_pushCandidates.cend(); ++it) {
            if (const Entry *current = m_state.find(it.key()))
                queueBroadcast(Wire::Type::Repair, it.key(), *current);
        }
        if (!m_pushCandidates.isEmpty())
            qCDebug(lcNet) << m_uri << "pushing" << m_pushCandidates.size() << "entries the network lacked";
    }
    m_pushCandidates.clear();
    m_candidatesKnown = false;
    flushOutgoing();
}

void DistributedMap::finishSync(quint64 source)
{
    m_syncTimer.stop();
    pushCandidates();
    m_lastSyncSource = source;
    if (m_connection && m_mapId)
        m_connection->sendControl({{QStringLiteral("type"), QStringLiteral("ready")},
                                   {QStringLiteral("id"), qint64(m_mapId)}});
    setSyncing(false);
    markReady();
}

void DistributedMap::markReady()
{
    if (m_ready)
        return;
    m_ready = true;
    Q_EMIT ready();
    const auto callbacks = std::exchange(m_readyCallbacks, {});
    for (const auto &callback : callbacks)
        callback();
}

// --- sync: responder -----------------------------------------------------

void DistributedMap::handleSyncRequest(const Wire::Header &header, const QByteArray &frame)
{
    Wire::SyncRequest request;
    const Wire::DecodeError error = Wire::decodeSyncRequest(frame.constData() + Wire::HeaderSize,
                                                            frame.size() - Wire::HeaderSize, &request);
    if (error != Wire::DecodeError::None) {
        Q_EMIT errorOccurred(QStringLiteral("dropped a malformed sync request from %1: %2")
                                 .arg(Wire::peerToString(header.peer), Wire::decodeErrorText(error)));
        return;
    }
    auto serving = std::make_shared<Serving>();
    serving->syncId = request.syncId;
    serving->since = request.since;
    serving->snapshot = m_state.entries();
    serving->it = serving->snapshot.cbegin();
    const int n = int(request.digest.size());
    if (n > 0) {
        serving->digest = m_state.digest(n);
        serving->differs.resize(n);
        bool all = true;
        for (int i = 0; i < n; ++i) {
            serving->differs[i] = serving->digest[i] != request.digest[i];
            all = all && serving->differs[i];
        }
        serving->all = all;
    } else {
        serving->all = request.since == 0;
    }
    m_serving.insert(header.peer, serving);
    qCDebug(lcNet) << m_uri << "serving sync" << request.syncId << "to" << Wire::peerToString(header.peer);
    pumpServing(header.peer);
}

void DistributedMap::handleSyncAck(const Wire::Header &header, const QByteArray &frame)
{
    Wire::SyncAck ack;
    if (Wire::decodeSyncAck(frame.constData() + Wire::HeaderSize, frame.size() - Wire::HeaderSize, &ack)
        != Wire::DecodeError::None)
        return;
    auto it = m_serving.find(header.peer);
    if (it == m_serving.end() || (*it)->syncId != ack.syncId)
        return;
    (*it)->acked = qMax((*it)->acked, ack.seq + 1);
    pumpServing(header.peer);
}

void DistributedMap::pumpServing(quint64 requester)
{
    auto found = m_serving.find(requester);
    if (found == m_serving.end())
        return;
    std::shared_ptr<Serving> s = *found;
    const int n = int(s->differs.size());
    while (!s->done && s->nextSeq - s->acked < SyncWindow) {
        // The chunk is built in place, header first, so the only copies
        // left are the socket's own.
        QByteArray frame;
        frame.reserve(ChunkBytes + 4096 + (s->nextSeq == 0 ? s->digest.size() * 8 : 0));
        Wire::appendHeader(frame, {Wire::Type::SyncData, 0, m_mapId, requester});
        const qsizetype finalFlagAt = frame.size() + 8;
        Wire::appendSyncChunkHead(frame, s->syncId, s->nextSeq, false,
                                  s->nextSeq == 0 ? s->digest : QVector<quint64>());
        const qsizetype entriesStart = frame.size();
        while (s->it != s->snapshot.cend() && frame.size() - entriesStart < ChunkBytes) {
            if (s->all || s->it->hlc > s->since
                || (n > 0 && s->differs[MapState::bucketOf(MapState::keyHash(s->it.key()), n)]))
                Wire::appendEntry(frame, s->it.key(), s->it.value());
            ++s->it;
        }
        const bool final = s->it == s->snapshot.cend();
        frame[finalFlagAt] = final ? 1 : 0;
        if (m_connection && m_mapId)
            m_connection->sendBinary(frame);
        DeltaEvent event;
        event.direction = DeltaEvent::Outgoing;
        event.operation = DeltaEvent::SyncChunk;
        event.peer = requester;
        event.source = Source::Sync;
        Q_EMIT deltaObserved(event);
        ++s->nextSeq;
        s->done = final;
    }
    if (s->done && s->acked >= s->nextSeq)
        m_serving.remove(requester);
}
