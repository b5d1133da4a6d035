// Replica, continued: the requester side of sync (docs/PROTOCOL.md
// section 8, steps 2 and 5-8): which round to ask for, applying chunks, and
// pushing back what the responder lacked. The responder side is
// SyncResponder; replica.cpp holds the rest.
#include "replica.h"

namespace {

int bucketCountFor(int entries, qint64 maxMessageBytes)
{
    // About sixteen entries per bucket: a verify round then costs 0.5 bytes
    // of digest per entry each way, and a few lost writes drag along only a
    // few dozen neighbours. 65536 buckets (512 KiB) at most, and a digest
    // at most a quarter of the relay's message limit, so the request and
    // the first chunk, which carry it, fit.
    int n = 1;
    while (n < entries / 16 && n < Wire::MaxBucketCount && qint64(n) * 2 * 8 <= maxMessageBytes / 4)
        n <<= 1;
    return n;
}

} // namespace

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
    const bool stale = m_rejoinUnfinished
        || (m_tombstoneRetentionMs > 0 && m_networkHlc > 0
            && m_clock.physicalNow() - HybridClock::physicalPart(m_networkHlc) > m_tombstoneRetentionMs);
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
    m_nextChunkSeq = 0;
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
        if (!m_rejoinUnfinished) // a restarted rejoin keeps the horizon it began with
            m_rejoinHorizon = m_networkHlc;
        m_rejoinUnfinished = true;
        break;
    case SyncPhase::Catchup:
        // Everything newer than the last write we heard of; our own entries
        // in that range may be news to the network (offline edits).
        request.since = m_networkHlc;
        m_requestDigest.clear();
        for (const EntryRef e : m_state.entries()) {
            if (e.hlc() > request.since)
                m_pushCandidates.insert(e);
        }
        m_candidatesKnown = true;
        break;
    case SyncPhase::Verify:
        // Catches what the catch-up cannot see: writes lost in transit
        // that are older than the newest one we heard of.
        request.since = Wire::SinceNever;
        m_requestDigest = m_state.digest(bucketCountFor(m_state.entryCount(), m_maxMessageBytes));
        break;
    }
    request.digest = m_requestDigest;
    QByteArray frame;
    Wire::appendHeader(frame, {Wire::Type::SyncRequest, 0, m_mapId, 0});
    frame.append(Wire::encodeSyncRequest(request));
    // Deltas queued so far go first, so the responder's view is not behind ours.
    flush();
    m_host->sendFrame(frame);
    m_host->syncTimerRequested(m_syncTimeoutMs + RelaySyncHoldMs);
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
    if (chunk.seq != m_nextChunkSeq) {
        // A chunk went missing (a relay bus can lose one): ending the round
        // would miss its entries, and a rejoin would drop keys it carried.
        m_host->onError(QStringLiteral("sync chunk %1 came after %2 from %3; asking again")
                            .arg(chunk.seq).arg(qint64(m_nextChunkSeq) - 1).arg(Wire::peerToString(header.peer)));
        startSync();
        return;
    }
    ++m_nextChunkSeq;
    if (m_syncSource == 0)
        m_syncSource = header.peer;
    m_host->syncTimerRequested(m_syncTimeoutMs);

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
            for (const EntryRef e : m_state.entries()) {
                if (n == 1 || differs[MapState::bucketOf(MapState::keyHash(e.utf8Key()), n)])
                    m_pushCandidates.insert(e);
            }
        }
        m_candidatesKnown = true;
    }
    quint64 newest = 0;
    for (const Wire::DecodedEntry &d : std::as_const(chunk.entries)) {
        newest = qMax(newest, d.entry.hlc);
        if (!m_pushCandidates.isEmpty()) {
            const EntryTable::Utf8Key key(d.key);
            if (const EntryRef candidate = m_pushCandidates.find(key)) {
                if (!candidate.newerThan(d.entry))
                    m_pushCandidates.remove(key);
                else if (m_syncPhase == SyncPhase::Rejoin)
                    m_rejoinKept.insert(d.key); // the network has the key: ours is just newer
            }
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
        QStringList forgotten;
        for (const EntryRef candidate : std::as_const(m_pushCandidates)) {
            const EntryRef current = m_state.find(candidate.utf8Key());
            // The same record: the key has not been written since the rejoin began.
            if (current && current.sameWrite(candidate) && candidate.hlc() <= m_rejoinHorizon) {
                QString key = candidate.key();
                if (!m_rejoinKept.contains(key))
                    forgotten.append(std::move(key));
            }
        }
        for (const QString &key : std::as_const(forgotten)) {
            m_pushCandidates.remove(EntryTable::Utf8Key(key));
            m_localWrites.remove(key);
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
        for (const EntryRef candidate : std::as_const(m_pushCandidates)) {
            if (const EntryRef current = m_state.find(candidate.utf8Key()))
                queueBroadcast(Wire::Type::Repair, candidate.key(), current.toEntry());
        }
    }
    m_pushCandidates.clear();
    m_rejoinKept.clear();
    m_candidatesKnown = false;
    flush();
}

void Replica::finishSync(quint64 source)
{
    m_host->syncTimerRequested(0);
    pushCandidates();
    // Our writes have reached the network now (pushed, or in its copy).
    markAllSent();
    m_rejoinUnfinished = false;
    m_lastSyncSource = source;
    if (m_mapId)
        m_host->sendControl(Control::encodeReady({m_mapId}));
    setSyncing(false);
    // After a reconnect: a write whose delta was lost with the link, or
    // reached only peers that have left since, goes out again.
    resendUnconfirmed();
    if (!m_ready) {
        m_ready = true;
        m_host->onReadied();
    }
}

