#include "syncresponder.h"

struct SyncResponder::Session
{
    quint32 syncId = 0;
    quint64 since = Wire::SinceNever;
    EntryTable snapshot; // shares the records: a copy of the slots only
    EntryTable::const_iterator it = snapshot.end();
    QVector<quint64> digest; // ours, sent on chunk 0
    QVector<bool> differs;   // per bucket: does the requester's digest differ?
    bool all = false;        // every entry goes (a full copy, or nothing matches)
    quint32 nextSeq = 0;
    quint32 acked = 0;       // chunks below this seq were taken
    bool done = false;       // the final chunk was built

    bool wanted(const EntryRef &entry) const
    {
        const int n = int(differs.size());
        return all || entry.hlc() > since || (n > 0 && differs[MapState::bucketOf(MapState::keyHash(entry.utf8Key()), n)]);
    }
};

SyncResponder::SyncResponder() = default;
SyncResponder::~SyncResponder() = default;

void SyncResponder::start(quint64 requester, const Wire::SyncRequest &request, const MapState &state)
{
    auto session = std::make_shared<Session>();
    session->syncId = request.syncId;
    session->since = request.since;
    session->snapshot = state.entries();
    session->it = session->snapshot.begin();
    const int n = int(request.digest.size());
    if (n > 0) {
        session->digest = state.digest(n);
        session->differs.resize(n);
        bool all = true;
        for (int i = 0; i < n; ++i) {
            session->differs[i] = session->digest[i] != request.digest[i];
            all = all && session->differs[i];
        }
        session->all = all;
    } else {
        session->all = request.since == 0;
    }
    m_sessions.insert(requester, session);
}

bool SyncResponder::acknowledge(quint64 requester, const Wire::SyncAck &ack)
{
    auto it = m_sessions.find(requester);
    if (it == m_sessions.end() || (*it)->syncId != ack.syncId)
        return false;
    // An ack of a chunk not sent yet would put acked past nextSeq, and the
    // window's unsigned count would stall the session until the requester
    // gave up.
    if (ack.seq >= (*it)->nextSeq)
        return false;
    (*it)->acked = qMax((*it)->acked, ack.seq + 1);
    if ((*it)->done && (*it)->acked >= (*it)->nextSeq)
        m_sessions.erase(it);
    return true;
}

bool SyncResponder::nextChunk(quint64 requester, quint32 mapId, QByteArray *frame)
{
    auto found = m_sessions.find(requester);
    if (found == m_sessions.end())
        return false;
    Session &s = **found;
    if (s.done || s.nextSeq - s.acked >= Window)
        return false;
    // The chunk is built in place, header first, so the only copies left
    // are the socket's own.
    frame->clear();
    frame->reserve(ChunkBytes + 4096 + (s.nextSeq == 0 ? s.digest.size() * 8 : 0));
    Wire::appendHeader(*frame, {Wire::Type::SyncData, 0, mapId, requester});
    const qsizetype head = frame->size();
    Wire::appendSyncChunkHead(*frame, s.syncId, s.nextSeq, false, s.nextSeq == 0 ? s.digest : QVector<quint64>());
    const qsizetype entriesStart = frame->size();
    while (s.it != s.snapshot.end() && frame->size() - entriesStart < ChunkBytes) {
        const EntryRef entry = *s.it;
        if (s.wanted(entry)) {
            const qsizetype before = frame->size();
            Wire::appendEntry(*frame, entry);
            if (frame->size() > m_maxMessageBytes) {
                const qsizetype alone = frame->size() - before + entriesStart;
                frame->truncate(before);
                if (before > entriesStart && alone <= m_maxMessageBytes)
                    break; // it goes first in the next chunk
                // Too large even alone: sending it would get us cut off.
                m_tooLarge.append({entry.key(), entry.toEntry(), alone});
            }
        }
        ++s.it;
    }
    s.done = s.it == s.snapshot.end();
    Wire::setSyncChunkFinal(*frame, head, s.done);
    ++s.nextSeq;
    return true;
}

void SyncResponder::remove(quint64 requester)
{
    m_sessions.remove(requester);
}

void SyncResponder::clear()
{
    m_sessions.clear();
}
