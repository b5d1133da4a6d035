#include "replica.h"

#include "control.h"
#include "jsontext.h"

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

} // namespace

Replica::Change Replica::makeChange(const QString &key, const Entry &entry, const MapState::Result &result,
                                    quint64 from, Source source)
{
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
    return change;
}

Replica::DeltaEvent Replica::makeDeltaEvent(DeltaEvent::Direction direction, quint64 peer, const QString &key,
                                            const Entry &entry, MapState::Outcome outcome, Source source)
{
    DeltaEvent event;
    event.direction = direction;
    event.operation = entry.tombstone ? DeltaEvent::Delete : DeltaEvent::Set;
    event.peer = peer;
    event.key = key;
    event.value = entry.value;
    event.hlc = entry.hlc;
    event.writer = entry.writer;
    event.outcome = outcome;
    event.source = source;
    return event;
}

Replica::DeltaEvent Replica::syncChunkEvent(DeltaEvent::Direction direction, quint64 peer, int count)
{
    DeltaEvent event;
    event.direction = direction;
    event.operation = DeltaEvent::SyncChunk;
    event.peer = peer;
    event.count = count;
    event.source = Source::Sync;
    return event;
}

void Replica::reportDropped(const Wire::Header &header, const char *what, Wire::DecodeError error)
{
    m_host->onError(QStringLiteral("dropped a malformed %1 from %2: %3")
                        .arg(QLatin1String(what), Wire::peerToString(header.peer), Wire::decodeErrorText(error)));
}


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
    m_host->onEntryApplied(key, entry, Source::Local);
    *change = makeChange(key, entry, result, 0, Source::Local);
    m_host->onChanged(*change);
    if (m_mapId) {
        queueBroadcast(Wire::Type::Delta, key, entry);
        m_host->onDeltaObserved(makeDeltaEvent(DeltaEvent::Outgoing, entry.writer, key, entry,
                                               MapState::Outcome::Applied, Source::Local));
    }
}

void Replica::setPresence(const QJsonObject &presence)
{
    m_presence = presence;
    if (m_mapId)
        m_host->sendControl(Control::encodePresence({m_mapId, 0, presence}));
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

void Replica::connectionUp(qint64 relayNowMs)
{
    // Follow the relay's clock: a peer whose own clock is off by a day then
    // still stamps writes near everyone else's time, and every peer of the
    // relay makes the same choice.
    if (relayNowMs > 0)
        m_clock.setOffset(relayNowMs - m_clock.sourceNow());
    setSyncing(true);
    m_host->sendControl(Control::encodeOpen({m_uri, m_presence}));
}

void Replica::connectionDown()
{
    m_mapId = 0;
    m_responder.clear();
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
        m_host->sendControl(Control::encodeClose({m_mapId}));
}

void Replica::handleOpened(const Control::Opened &opened)
{
    m_mapId = opened.id;
    const qint64 now = m_clock.physicalNow();
    for (const Control::PeerInfo &info : opened.peers) {
        const Peer peer{info.peer, info.presence, now};
        m_peers.insert(peer.id, peer);
        m_host->onPeerJoined(peer);
    }
    startSync();
}

void Replica::handleJoined(const Control::Joined &joined)
{
    const Peer peer{joined.peer, joined.presence, m_clock.physicalNow()};
    m_peers.insert(peer.id, peer);
    m_host->onPeerJoined(peer);
}

void Replica::handleLeft(const Control::Left &left)
{
    if (m_peers.remove(left.peer))
        m_host->onPeerLeft(left.peer);
    m_responder.remove(left.peer);
    if (m_syncing && m_syncSource == left.peer)
        startSync(); // ask another peer
}

void Replica::handlePresence(const Control::Presence &presence)
{
    auto it = m_peers.find(presence.peer);
    if (it != m_peers.end()) {
        it->presence = presence.presence;
        m_host->onPeerPresenceChanged(*it);
    }
}

void Replica::handleAlone()
{
    // Nobody else holds the map yet: our state is the map's state, and
    // peers joining later will sync from us.
    m_pushCandidates.clear();
    m_candidatesKnown = false;
    if (m_syncing)
        finishSync(0);
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
    if (logDelta)
        m_host->onDeltaObserved(makeDeltaEvent(DeltaEvent::Incoming, from, key, entry, result.outcome, source));
    if (result.outcome != MapState::Outcome::Applied)
        return;
    if (source != Source::Store)
        m_host->onEntryApplied(key, entry, source);
    // A tombstone for a key we never had changes nothing anyone can see.
    if (entry.tombstone && !result.hadValue)
        return;
    m_host->onChanged(makeChange(key, entry, result, from, source));
}

void Replica::handleDelta(const Wire::Header &header, const QByteArray &frame, Source source)
{
    QVector<Wire::DecodedEntry> entries;
    if (!decodeOrReport(header, frame, source == Source::Repair ? "repair" : "delta", Wire::decodeEntries, &entries))
        return;
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
    if (!decodeOrReport(header, frame, "sync chunk", Wire::decodeSyncChunk, &chunk)) {
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
    m_host->onDeltaObserved(syncChunkEvent(DeltaEvent::Incoming, header.peer, int(chunk.entries.size())));

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
            MapState::Result dropped;
            if (m_state.forget(key, &dropped.oldValue)) {
                // Like a delete, but with no write behind it: no clock, no writer.
                dropped.hadValue = true;
                Entry none;
                none.tombstone = true;
                m_host->onChanged(makeChange(key, none, dropped, m_syncSource, Source::Sync));
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
        m_host->sendControl(Control::encodeReady({m_mapId}));
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
    if (!decodeOrReport(header, frame, "sync request", Wire::decodeSyncRequest, &request))
        return;
    m_responder.start(header.peer, request, m_state);
    pumpServing(header.peer);
}

void Replica::handleSyncAck(const Wire::Header &header, const QByteArray &frame)
{
    Wire::SyncAck ack;
    if (!decodeOrReport(header, frame, "sync ack", Wire::decodeSyncAck, &ack))
        return;
    if (m_responder.acknowledge(header.peer, ack))
        pumpServing(header.peer);
}

void Replica::pumpServing(quint64 requester)
{
    QByteArray frame;
    while (m_responder.nextChunk(requester, m_mapId, &frame)) {
        if (m_mapId)
            m_host->sendFrame(frame);
        m_host->onDeltaObserved(syncChunkEvent(DeltaEvent::Outgoing, requester, 0));
    }
}
