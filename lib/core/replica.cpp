#include "replica.h"

#include "jsontext.h"

#include <QJsonArray>

namespace {

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

QJsonObject control(const char *type, quint32 mapId)
{
    return {{QStringLiteral("type"), QLatin1String(type)}, {QStringLiteral("id"), qint64(mapId)}};
}

} // namespace

struct Replica::Serving
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

Replica::Replica(Host *host, const QString &uri)
    : m_host(host)
    , m_uri(uri)
{
}

Replica::~Replica() = default;

// --- local writes ----------------------------------------------------------

Replica::Change Replica::write(const QString &key, const QByteArray &jsonValue)
{
    Entry entry;
    entry.value = jsonValue;
    Change change;
    writeLocal(key, std::move(entry), &change);
    return change;
}

Replica::Change Replica::erase(const QString &key)
{
    Entry entry;
    entry.tombstone = true;
    Change change;
    writeLocal(key, std::move(entry), &change);
    return change;
}

void Replica::writeLocal(const QString &key, Entry entry, Change *change)
{
    entry.hlc = m_clock.tick();
    // A write made after seeing the key's current write must beat it, even
    // when that write carries a clock far ahead of ours (which our clock
    // refused to follow, see observeRemote()).
    if (const Entry *current = m_state.find(key); current && current->hlc >= entry.hlc)
        entry.hlc = current->hlc + 1;
    entry.writer = m_host->peerId();
    const MapState::Result result = m_state.apply(key, entry);
    m_host->onEntryApplied(key, entry);
    change->key = key;
    change->deleted = entry.tombstone;
    change->value = entry.value;
    change->oldValue = result.oldValue;
    change->hadOldValue = result.hadValue;
    change->hlc = entry.hlc;
    change->writer = entry.writer;
    change->source = Source::Local;
    m_host->onChanged(*change);
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
        m_host->onDeltaObserved(event);
    }
}

void Replica::setPresence(const QJsonObject &presence)
{
    m_presence = presence;
    if (m_mapId) {
        QJsonObject message = control("presence", m_mapId);
        message.insert(QStringLiteral("presence"), presence);
        m_host->sendControl(message);
    }
}

void Replica::load(const QVector<Wire::DecodedEntry> &entries)
{
    // Other peers' writes in a store were heard from the network: they tell
    // how far the catch-up round may skip, and how long we have been away
    // (the tombstone horizon). A peer whose id changed between runs counts
    // its own old writes here too; the verify round still finds whatever
    // the catch-up then skips.
    const quint64 self = m_host->peerId();
    quint64 newest = 0;
    for (const Wire::DecodedEntry &d : entries) {
        newest = qMax(newest, d.entry.hlc);
        if (d.entry.writer != self)
            m_networkHlc = qMax(m_networkHlc, d.entry.hlc);
        applyRemote(d.key, d.entry, 0, Source::Store, false);
    }
    observeRemote(newest);
}

int Replica::purgeTombstones(qint64 olderThanMs)
{
    const qint64 horizon = m_clock.physicalNow() - olderThanMs;
    return m_state.purgeTombstones(HybridClock::pack(horizon, 0));
}

void Replica::observeRemote(quint64 hlc)
{
    // A clock far ahead of ours (a misconfigured or hostile peer) must not
    // drag every later write of ours into the future: follow remote clocks
    // up to the allowed drift only. Entries are applied whatever their
    // clock, so replicas still converge.
    const quint64 ceiling = HybridClock::pack(m_clock.physicalNow() + m_maxDriftMs, 0);
    m_clock.observe(qMin(hlc, ceiling));
}

// --- connection events ---------------------------------------------------

void Replica::connectionUp()
{
    setSyncing(true);
    m_host->sendControl({{QStringLiteral("type"), QStringLiteral("open")},
                         {QStringLiteral("map"), m_uri},
                         {QStringLiteral("presence"), m_presence}});
}

void Replica::connectionDown()
{
    m_mapId = 0;
    m_serving.clear();
    m_host->syncTimerRequested(false);
    m_pushCandidates.clear();
    m_candidatesKnown = false;
    // Unsent batches are dropped on purpose: the two-way sync after the
    // reconnect carries every entry the network lacks.
    m_outDelta.clear();
    m_outRepair.clear();
    const auto gone = m_peers.keys();
    m_peers.clear();
    for (quint64 id : gone)
        m_host->onPeerLeft(id);
    setSyncing(false);
}

void Replica::closeMap()
{
    flush();
    if (m_mapId)
        m_host->sendControl(control("close", m_mapId));
}

void Replica::handleOpened(const QJsonObject &message)
{
    const quint32 id = quint32(message.value(QStringLiteral("id")).toInteger());
    if (id == 0) {
        m_host->onError(QStringLiteral("relay opened %1 without a map id").arg(m_uri));
        return;
    }
    m_mapId = id;
    const qint64 now = m_clock.physicalNow();
    const QJsonArray list = message.value(QStringLiteral("peers")).toArray();
    for (const QJsonValue &item : list) {
        Peer peer;
        if (!Wire::peerFromString(item.toObject().value(QStringLiteral("peer")).toString(), &peer.id))
            continue;
        peer.presence = item.toObject().value(QStringLiteral("presence")).toObject();
        peer.joinedMs = now;
        m_peers.insert(peer.id, peer);
        m_host->onPeerJoined(peer);
    }
    startSync();
}

void Replica::handleControl(const QString &type, const QJsonObject &message)
{
    quint64 peerId = 0;
    Wire::peerFromString(message.value(QStringLiteral("peer")).toString(), &peerId);
    if (type == QLatin1String("joined")) {
        Peer peer;
        peer.id = peerId;
        peer.presence = message.value(QStringLiteral("presence")).toObject();
        peer.joinedMs = m_clock.physicalNow();
        m_peers.insert(peer.id, peer);
        m_host->onPeerJoined(peer);
    } else if (type == QLatin1String("left")) {
        if (m_peers.remove(peerId))
            m_host->onPeerLeft(peerId);
        m_serving.remove(peerId);
        if (m_syncing && m_syncSource == peerId)
            startSync(); // ask another peer
    } else if (type == QLatin1String("presence")) {
        auto it = m_peers.find(peerId);
        if (it != m_peers.end()) {
            it->presence = message.value(QStringLiteral("presence")).toObject();
            m_host->onPeerPresenceChanged(*it);
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

void Replica::handleFrame(const Wire::Header &header, const QByteArray &frame)
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

void Replica::syncTimedOut()
{
    if (m_syncing && m_mapId)
        startSync();
}

// --- applying remote writes ----------------------------------------------

void Replica::applyRemote(const QString &key, const Entry &entry, quint64 from, Source source, bool logDelta)
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
        m_host->onDeltaObserved(event);
    }
    if (result.outcome != MapState::Outcome::Applied)
        return;
    if (source != Source::Store)
        m_host->onEntryApplied(key, entry);
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
    m_host->onChanged(change);
}

void Replica::handleDelta(const Wire::Header &header, const QByteArray &frame, Source source)
{
    QVector<Wire::DecodedEntry> entries;
    const Wire::DecodeError error = Wire::decodeEntries(frame.constData() + Wire::HeaderSize,
                                                        frame.size() - Wire::HeaderSize, &entries);
    if (error != Wire::DecodeError::None) {
        m_host->onError(QStringLiteral("dropped a malformed delta from %1: %2")
                                  .arg(Wire::peerToString(header.peer), Wire::decodeErrorText(error)));
        return;
    }
    if (source == Source::Delta) {
        // A delta carries its origin's own writes only: the relay stamped
        // the origin, so a writer field naming anyone else is a forgery.
        for (const Wire::DecodedEntry &d : std::as_const(entries)) {
            if (d.entry.writer != header.peer) {
                m_host->onError(QStringLiteral("dropped a delta from %1 that claims writer %2")
                                          .arg(Wire::peerToString(header.peer), Wire::peerToString(d.entry.writer)));
                return;
            }
        }
    }
    // Observing is a max: once per message, not per entry (it reads the clock).
    quint64 newest = 0;
    for (const Wire::DecodedEntry &d : std::as_const(entries)) {
        newest = qMax(newest, d.entry.hlc);
        applyRemote(d.key, d.entry, header.peer, source, true);
    }
    observeRemote(newest);
}

// --- outgoing batches ----------------------------------------------------

void Replica::queueBroadcast(Wire::Type type, const QString &key, const Entry &entry)
{
    QByteArray &batch = type == Wire::Type::Delta ? m_outDelta : m_outRepair;
    if (batch.isEmpty()) {
        batch.reserve(1024);
        Wire::appendHeader(batch, {type, 0, m_mapId, 0});
    }
    Wire::appendEntry(batch, key, entry);
    if (batch.size() >= ChunkBytes)
        flush();
    else
        m_host->flushRequested();
}

void Replica::flush()
{
    if (!m_mapId) {
        m_outDelta.clear();
        m_outRepair.clear();
        return;
    }
    if (!m_outDelta.isEmpty())
        m_host->sendFrame(std::exchange(m_outDelta, QByteArray()));
    if (!m_outRepair.isEmpty())
        m_host->sendFrame(std::exchange(m_outRepair, QByteArray()));
}

void Replica::sendAddressed(Wire::Type type, quint64 target, const QByteArray &payload)
{
    if (!m_mapId)
        return;
    QByteArray frame;
    frame.reserve(Wire::HeaderSize + payload.size());
    Wire::appendHeader(frame, {type, 0, m_mapId, target});
    frame.append(payload);
    m_host->sendFrame(frame);
}

// --- sync: requester -----------------------------------------------------

void Replica::setSyncing(bool syncing)
{
    if (m_syncing == syncing)
        return;
    m_syncing = syncing;
    m_host->onSyncingChanged(syncing);
}

void Replica::startSync()
{
    if (!m_mapId)
        return;
    setSyncing(true);
    if (m_state.entryCount() == 0) {
        sendSyncRequest(SyncPhase::Full);
        return;
    }
    // Away longer than tombstones live: the network may have deleted keys
    // and forgotten their tombstones, and pushing our copies back would
    // resurrect them.
    const bool stale = m_tombstoneRetentionMs > 0 && m_networkHlc > 0
        && m_clock.physicalNow() - HybridClock::physicalPart(m_networkHlc) > m_tombstoneRetentionMs;
    sendSyncRequest(stale ? SyncPhase::Rejoin : SyncPhase::Catchup);
}

bool Replica::verify()
{
    if (!m_mapId)
        return false;
    if (m_syncing)
        return true;
    setSyncing(true);
    sendSyncRequest(SyncPhase::Verify);
    return true;
}

void Replica::sendSyncRequest(SyncPhase phase)
{
    m_syncPhase = phase;
    ++m_syncId;
    m_syncSource = 0;
    m_pushCandidates.clear();
    m_rejoinKept.clear();
    m_candidatesKnown = false;
    Wire::SyncRequest request;
    request.syncId = m_syncId;
    switch (phase) {
    case SyncPhase::Full:
        request.since = 0;
        m_requestDigest.clear();
        break;
    case SyncPhase::Rejoin:
        // A full copy; every entry of ours that it does not match is
        // either news (made while away) or forgotten by the network.
        request.since = 0;
        m_requestDigest.clear();
        m_pushCandidates = m_state.entries();
        m_candidatesKnown = true;
        m_rejoinHorizon = m_networkHlc;
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
    flush();
    m_host->sendFrame(frame);
    m_host->syncTimerRequested(true);
}

void Replica::handleSyncData(const Wire::Header &header, const QByteArray &frame)
{
    Wire::SyncChunk chunk;
    const Wire::DecodeError error = Wire::decodeSyncChunk(frame.constData() + Wire::HeaderSize,
                                                          frame.size() - Wire::HeaderSize, &chunk);
    if (error != Wire::DecodeError::None) {
        m_host->onError(QStringLiteral("dropped a malformed sync chunk from %1: %2")
                                  .arg(Wire::peerToString(header.peer), Wire::decodeErrorText(error)));
        if (m_syncing && header.peer == m_syncSource)
            startSync();
        return;
    }
    if (!m_syncing || chunk.syncId != m_syncId || (m_syncSource && header.peer != m_syncSource))
        return; // an answer to a sync we gave up on
    if (m_syncSource == 0)
        m_syncSource = header.peer;
    m_host->syncTimerRequested(true);

    if (chunk.seq == 0 && !m_requestDigest.isEmpty()) {
        if (chunk.digest.size() != m_requestDigest.size()) {
            m_host->onError(QStringLiteral("%1 answered a sync with a digest of the wrong size")
                                      .arg(Wire::peerToString(header.peer)));
            startSync();
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
    quint64 newest = 0;
    for (const Wire::DecodedEntry &d : std::as_const(chunk.entries)) {
        newest = qMax(newest, d.entry.hlc);
        auto candidate = m_pushCandidates.find(d.key);
        if (candidate != m_pushCandidates.end()) {
            if (!candidate->newerThan(d.entry))
                m_pushCandidates.erase(candidate);
            else if (m_syncPhase == SyncPhase::Rejoin)
                m_rejoinKept.insert(d.key); // the network has the key: ours is just newer
        }
        applyRemote(d.key, d.entry, header.peer, Source::Sync, false);
    }
    observeRemote(newest);
    DeltaEvent event;
    event.direction = DeltaEvent::Incoming;
    event.operation = DeltaEvent::SyncChunk;
    event.peer = header.peer;
    event.count = int(chunk.entries.size());
    event.source = Source::Sync;
    m_host->onDeltaObserved(event);

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

void Replica::pushCandidates()
{
    if (m_candidatesKnown && m_syncPhase == SyncPhase::Rejoin) {
        // The responder sent its whole state. Keys it lacks that we wrote
        // before we lost touch were deleted and forgotten meanwhile: drop them.
        for (auto it = m_pushCandidates.begin(); it != m_pushCandidates.end();) {
            const Entry *current = m_state.find(it.key());
            const bool forgotten = current && current->sameWrite(*it) && it->hlc <= m_rejoinHorizon
                && !m_rejoinKept.contains(it.key());
            if (!forgotten) {
                ++it;
                continue;
            }
            const QString key = it.key();
            it = m_pushCandidates.erase(it);
            QByteArray oldValue;
            if (m_state.forget(key, &oldValue)) {
                Change change;
                change.key = key;
                change.deleted = true;
                change.oldValue = oldValue;
                change.hadOldValue = true;
                change.source = Source::Sync;
                change.from = m_syncSource;
                m_host->onChanged(change);
            }
        }
    }
    if (m_candidatesKnown) {
        for (auto it = m_pushCandidates.cbegin(); it != m_pushCandidates.cend(); ++it) {
            if (const Entry *current = m_state.find(it.key()))
                queueBroadcast(Wire::Type::Repair, it.key(), *current);
        }
    }
    m_pushCandidates.clear();
    m_rejoinKept.clear();
    m_candidatesKnown = false;
    flush();
}

void Replica::finishSync(quint64 source)
{
    m_host->syncTimerRequested(false);
    pushCandidates();
    m_lastSyncSource = source;
    if (m_mapId)
        m_host->sendControl(control("ready", m_mapId));
    setSyncing(false);
    if (!m_ready) {
        m_ready = true;
        m_host->onReadied();
    }
}

// --- sync: responder -----------------------------------------------------

void Replica::handleSyncRequest(const Wire::Header &header, const QByteArray &frame)
{
    Wire::SyncRequest request;
    const Wire::DecodeError error = Wire::decodeSyncRequest(frame.constData() + Wire::HeaderSize,
                                                            frame.size() - Wire::HeaderSize, &request);
    if (error != Wire::DecodeError::None) {
        m_host->onError(QStringLiteral("dropped a malformed sync request from %1: %2")
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
    pumpServing(header.peer);
}

void Replica::handleSyncAck(const Wire::Header &header, const QByteArray &frame)
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

void Replica::pumpServing(quint64 requester)
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
        if (m_mapId)
            m_host->sendFrame(frame);
        DeltaEvent event;
        event.direction = DeltaEvent::Outgoing;
        event.operation = DeltaEvent::SyncChunk;
        event.peer = requester;
        event.source = Source::Sync;
        m_host->onDeltaObserved(event);
        ++s->nextSeq;
        s->done = final;
    }
    if (s->done && s->acked >= s->nextSeq)
        m_serving.remove(requester);
}
