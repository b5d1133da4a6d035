#include "replica.h"

#include "control.h"

// Aggregate initialisation, in the order the structs declare their members.
Replica::Change Replica::makeChange(const QString &key, const Entry &entry, const MapState::Result &result,
                                    quint64 from, Source source)
{
    return Change{key,     entry.tombstone, entry.value, result.oldValue, result.hadValue,
                  entry.hlc, entry.writer,  from,        source};
}

Replica::DeltaEvent Replica::makeDeltaEvent(DeltaEvent::Direction direction, quint64 peer, const QString &key,
                                            const Entry &entry, MapState::Outcome outcome, Source source)
{
    const auto operation = entry.tombstone ? DeltaEvent::Delete : DeltaEvent::Set;
    return DeltaEvent{direction, operation, peer, key, entry.value, entry.hlc, entry.writer, outcome, 1, source};
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
    Entry base;
    const EntryRef current = m_state.find(key);
    if (current) {
        if (current.hlc() >= entry.hlc)
            entry.hlc = current.hlc() + 1;
        base.hlc = current.hlc();
        base.writer = current.writer();
    }
    entry.writer = m_host->peerId();
    const MapState::Result result = m_state.apply(key, entry);
    rememberLocalWrite(key, entry, current ? &base : nullptr);
    m_host->onEntryApplied(key, entry, Source::Local);
    if (m_writeAcks)
        trackUnconfirmed(key, entry.hlc);
    *change = makeChange(key, entry, result, 0, Source::Local);
    m_host->onChanged(*change);
    if (m_mapId) {
        m_batchKeys.append(key);
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

void Replica::load(MapState &&state, bool reportChanges)
{
    if (reportChanges || m_state.entryCount() > 0) {
        QVector<Wire::DecodedEntry> entries;
        entries.reserve(state.entryCount());
        for (const EntryRef e : state.entries())
            entries.append({e.key(), e.toEntry()});
        load(entries);
        return;
    }
    // A million stored keys went in one by one in 0.3 s, on the thread
    // that opens the window; the state read from the file is already one.
    const quint64 self = m_host->peerId();
    quint64 newest = 0;
    for (const EntryRef e : state.entries()) {
        newest = qMax(newest, e.hlc());
        if (e.writer() != self)
            m_networkHlc = qMax(m_networkHlc, e.hlc());
    }
    m_state = std::move(state);
    observeRemote(newest);
}

int Replica::purgeTombstones(qint64 olderThanMs)
{
    const qint64 horizon = m_clock.physicalNow() - olderThanMs;
    return m_state.purgeTombstones(HybridClock::pack(horizon, 0));
}

void Replica::setMaxMessageBytes(qint64 bytes)
{
    m_maxMessageBytes = bytes > 0 ? bytes : Wire::DefaultMaxMessageBytes;
    m_responder.setMaxMessageBytes(m_maxMessageBytes);
}

bool Replica::fits(const QString &key, qsizetype valueBytes) const
{
    if (valueBytes > qsizetype(Wire::MaxValueBytes))
        return false;
    // Every local write asks: skip the UTF-8 conversion when even three
    // bytes per UTF-16 unit (the most UTF-8 takes) fits.
    const qint64 fixed = Wire::HeaderSize + Wire::EntryFixedSize + 4 + valueBytes;
    if (fixed + key.size() * 3 <= m_maxMessageBytes)
        return true;
    const qint64 size = fixed + key.toUtf8().size();
    return size <= m_maxMessageBytes;
}

void Replica::reportTooLarge(const QString &key, const Entry &entry, qsizetype bytes)
{
    auto it = m_reportedTooLarge.find(key);
    if (it != m_reportedTooLarge.end() && *it == entry.hlc)
        return;
    m_reportedTooLarge.insert(key, entry.hlc);
    m_host->onTooLarge(key, bytes);
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
    m_host->syncTimerRequested(0);
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
    m_readOnly = !opened.writable;
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
    // It may be the peer that keeps our writes on disk, back from a lost
    // link: a delta sent while it was away reached nobody who stores it.
    resendUnconfirmed();
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

void Replica::handleAlone(const Control::Alone &alone)
{
    if (alone.readOnlyPeers > 0)
        m_host->onReadOnlyHoldersOnly(alone.readOnlyPeers);
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
    case Wire::Type::WriteAck:
        handleWriteAck(header, frame);
        break;
    }
}

quint8 Replica::headerFlags(Wire::Type type) const
{
    return type == Wire::Type::Delta && m_writeAcks ? Wire::FlagAckRequested : 0;
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
    // Met one of our own writes: the apply says whose the key's write was,
    // so other peers' keys cost no lookup here.
    if (source != Source::Store && result.outcome != MapState::Outcome::Duplicate && !m_localWrites.isEmpty()) {
        const quint64 self = m_host->peerId();
        if (result.previousWriter == self && entry.writer != self)
            noteConflict(key, entry, result, from, source);
    }
    if (result.outcome != MapState::Outcome::Applied)
        return;
    if (source != Source::Store)
        m_host->onEntryApplied(key, entry, source);
    if (!m_unconfirmed.isEmpty() && m_unconfirmed.contains(key)) {
        // Someone else's newer write replaced ours: there is nothing of ours
        // left to confirm (last writer wins; the key is not lost).
        dropUnconfirmed(key);
        m_host->onWriteSuperseded(key);
    }
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
    if (source == Source::Delta && (header.flags & Wire::FlagAckRequested)) {
        // Every entry is held now: applied, already here, or beaten by a
        // newer write of its key, which is what the writer needs to know.
        QVector<quint64> hlcs;
        hlcs.reserve(entries.size());
        for (const Wire::DecodedEntry &d : std::as_const(entries))
            hlcs.append(d.entry.hlc);
        if (!m_host->onAckRequested(header.peer, hlcs))
            acknowledge(header.peer, hlcs, false);
    }
}

// --- write acknowledgements ------------------------------------------------

void Replica::acknowledge(quint64 writer, const QVector<quint64> &hlcs, bool durable)
{
    // A WriteAck is one entry's worth of bytes per write at most, so one
    // for a whole delta always fits the relay's limit.
    sendAddressed(Wire::Type::WriteAck, writer, Wire::encodeWriteAck({durable, hlcs}));
}

void Replica::trackUnconfirmed(const QString &key, quint64 hlc)
{
    auto it = m_unconfirmed.find(key);
    if (it != m_unconfirmed.end())
        m_unconfirmedKeys.remove(it->hlc);
    m_unconfirmed.insert(key, {hlc, {}});
    m_unconfirmedKeys.insert(hlc, key);
}

void Replica::dropUnconfirmed(const QString &key)
{
    auto it = m_unconfirmed.find(key);
    if (it == m_unconfirmed.end())
        return;
    m_unconfirmedKeys.remove(it->hlc);
    m_unconfirmed.erase(it);
}

void Replica::handleWriteAck(const Wire::Header &header, const QByteArray &frame)
{
    Wire::WriteAck ack;
    if (!decodeOrReport(header, frame, "write ack", Wire::decodeWriteAck, &ack))
        return;
    for (quint64 hlc : std::as_const(ack.hlcs)) {
        const auto key = m_unconfirmedKeys.constFind(hlc);
        if (key == m_unconfirmedKeys.cend())
            continue; // settled already, replaced, or not ours
        const QString k = *key;
        Unconfirmed &u = m_unconfirmed[k];
        u.peers.insert(header.peer);
        const int peers = int(u.peers.size());
        if (ack.durable)
            dropUnconfirmed(k);
        m_host->onWriteAcknowledged(k, peers, ack.durable);
    }
}

void Replica::resendUnconfirmed()
{
    if (!m_mapId || m_unconfirmed.isEmpty())
        return;
    const quint64 self = m_host->peerId();
    QStringList gone;
    for (auto it = m_unconfirmed.cbegin(); it != m_unconfirmed.cend(); ++it) {
        const EntryRef current = m_state.find(it.key());
        if (!current || current.hlc() != it->hlc || current.writer() != self) {
            gone.append(it.key()); // replaced while we were not looking (a rejoin forgot it)
            continue;
        }
        queueBroadcast(Wire::Type::Delta, it.key(), current.toEntry());
    }
    for (const QString &key : std::as_const(gone)) {
        dropUnconfirmed(key);
        m_host->onWriteSuperseded(key);
    }
    flush();
}

// --- outgoing batches ----------------------------------------------------

void Replica::queueBroadcast(Wire::Type type, const QString &key, const Entry &entry)
{
    QByteArray &batch = type == Wire::Type::Delta ? m_outDelta : m_outRepair;
    if (batch.isEmpty()) {
        batch.reserve(1024);
        Wire::appendHeader(batch, {type, headerFlags(type), m_mapId, 0});
    }
    const qsizetype before = batch.size();
    Wire::appendEntry(batch, key, entry);
    if (batch.size() > m_maxMessageBytes) {
        // The relay would close the connection on this message, and after
        // the reconnect the sync would push the same entry again: never
        // send it. Entries before it go out alone.
        const qsizetype bytes = batch.size() - before;
        const QByteArray tail = batch.mid(before);
        batch.truncate(before);
        if (before == Wire::HeaderSize || bytes + Wire::HeaderSize > m_maxMessageBytes) {
            if (before == Wire::HeaderSize)
                batch.clear();
            reportTooLarge(key, entry, bytes + Wire::HeaderSize);
            return;
        }
        flush();
        Wire::appendHeader(batch, {type, headerFlags(type), m_mapId, 0});
        batch.append(tail);
    }
    if (batch.size() >= ChunkBytes)
        flush();
    else
        m_host->flushRequested();
}

void Replica::flush()
{
    if (!m_mapId || m_readOnly) {
        // Lost with the link: those writes go out with the next sync. On a
        // read-only map they never go: the relay would refuse them.
        m_outDelta.clear();
        m_outRepair.clear();
        m_batchKeys.clear();
        return;
    }
    if (!m_outDelta.isEmpty()) {
        m_host->sendFrame(std::exchange(m_outDelta, QByteArray()));
        for (const QString &key : std::as_const(m_batchKeys)) {
            if (auto it = m_localWrites.find(key); it != m_localWrites.end())
                it->unsent = false;
        }
    }
    m_batchKeys.clear();
    if (!m_outRepair.isEmpty()) {
        m_host->sendFrame(std::exchange(m_outRepair, QByteArray()));
        markAllSent(); // a repair may carry any of our writes
    }
}

void Replica::rememberLocalWrite(const QString &key, const Entry &entry, const Entry *base)
{
    LocalWrite &w = m_localWrites[key];
    w.hlc = entry.hlc;
    w.baseHlc = base ? base->hlc : 0;
    w.baseWriter = base ? base->writer : 0;
    w.unsent = true;
    m_localOrder.emplace_back(key, entry.hlc);
    // Forget the oldest beyond the cap; stale queue items (keys written
    // again since) go too. A forgotten write's conflicts go unreported.
    while (m_localOrder.size() > size_t(MaxRememberedWrites)) {
        const auto [oldKey, oldHlc] = m_localOrder.front();
        m_localOrder.pop_front();
        const auto it = m_localWrites.find(oldKey);
        if (it != m_localWrites.end() && it->hlc == oldHlc)
            m_localWrites.erase(it);
    }
}

// A write `incoming` of another peer met the key's write before it (result),
// one of ours. When we remember that write, the two are concurrent and this
// replica can prove it, the host hears of the conflict:
// - ours was never sent, and the incoming write beat it: its writer cannot
//   have seen ours, and had we seen theirs, ours would be the newer;
// - ours beat the incoming write, which is newer than the write ours
//   replaced: had we seen it before writing, it would have been that base.
// A newer write replacing one of ours that was sent may or may not have
// seen it; this peer cannot tell, so it says nothing (docs/API.md).
void Replica::noteConflict(const QString &key, const Entry &incoming, const MapState::Result &result, quint64 from,
                           Source source)
{
    const auto it = m_localWrites.find(key);
    if (it == m_localWrites.end() || it->hlc != result.previousHlc)
        return; // a write of ours we no longer remember
    Conflict conflict;
    conflict.key = key;
    conflict.from = from;
    conflict.source = source;
    const distmap::Write theirs{incoming.tombstone ? QByteArray() : incoming.value, incoming.tombstone, incoming.hlc,
                                incoming.writer};
    if (result.outcome == MapState::Outcome::Applied) {
        const bool unsent = it->unsent;
        m_localWrites.erase(it); // ours is no longer the key's write
        if (!unsent)
            return;
        conflict.winner = theirs;
        conflict.loser = {result.oldValue, !result.hadValue, result.previousHlc, result.previousWriter};
        conflict.localLost = true;
    } else {
        Entry base;
        base.hlc = it->baseHlc;
        base.writer = it->baseWriter;
        if (it->baseHlc != 0 && !incoming.newerThan(base))
            return; // we had seen it (or something newer) when we wrote
        const EntryRef ours = m_state.find(key);
        conflict.winner = {ours.value(), ours.tombstone(), ours.hlc(), ours.writer()};
        conflict.loser = theirs;
    }
    m_host->onConflict(conflict);
}

void Replica::markAllSent()
{
    for (LocalWrite &w : m_localWrites)
        w.unsent = false;
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

// --- sync: responder -----------------------------------------------------

void Replica::handleSyncRequest(const Wire::Header &header, const QByteArray &frame)
{
    Wire::SyncRequest request;
    if (!decodeOrReport(header, frame, "sync request", Wire::decodeSyncRequest, &request))
        return;
    if (m_readOnly)
        return; // the relay routes no request here; an answer would be refused
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
        if (m_mapId) {
            m_host->sendFrame(frame);
            markAllSent(); // a chunk may carry any of our writes
        }
        m_host->onDeltaObserved(syncChunkEvent(DeltaEvent::Outgoing, requester, 0));
    }
    for (const SyncResponder::TooLarge &t : m_responder.takeTooLarge())
        reportTooLarge(t.key, t.entry, t.bytes);
}
