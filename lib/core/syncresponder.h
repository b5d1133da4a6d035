#pragma once

#include "mapstate.h"
#include "wire.h"

#include <QHash>
#include <QVector>

#include <memory>
#include <utility>

// The responder side of sync (docs/PROTOCOL.md section 8, step 4): one
// session per requesting peer, each walking a snapshot of the state taken
// when the request came, and cutting it into flow-controlled chunks.
// Builds frames and sends nothing itself, so the replica decides what to do
// with each chunk (send it, log it) and this class is tested directly.
class SyncResponder
{
public:
    // Largest chunk payload (entries) and chunks in flight per session.
    static constexpr qsizetype ChunkBytes = 256 * 1024;
    static constexpr quint32 Window = 4;

    // An entry left out of a chunk: as a chunk of its own it would be
    // larger than the relay accepts.
    struct TooLarge
    {
        QString key;
        Entry entry;
        qsizetype bytes = 0; // the chunk it would have needed
    };

    SyncResponder();
    ~SyncResponder();
    SyncResponder(const SyncResponder &) = delete;
    SyncResponder &operator=(const SyncResponder &) = delete;

    // Starts (or restarts) serving a request. The snapshot copies the
    // state's slots and shares its records (12 bytes a slot, about 25 a key),
    // so later writes do not change what this session sends.
    void start(quint64 requester, const Wire::SyncRequest &request, const MapState &state);
    // The requester took a chunk: the window moves. False for a stale ack.
    bool acknowledge(quint64 requester, const Wire::SyncAck &ack);
    // The next chunk for requester, as a whole SyncData frame for mapId, when
    // the window allows one. Ends the session once the final chunk is acked.
    bool nextChunk(quint64 requester, quint32 mapId, QByteArray *frame);

    // The relay's message limit: no chunk frame is larger (default
    // Wire::DefaultMaxMessageBytes).
    void setMaxMessageBytes(qint64 bytes) { m_maxMessageBytes = bytes; }
    // Entries left out since the last call, for the caller to report.
    QVector<TooLarge> takeTooLarge() { return std::exchange(m_tooLarge, {}); }

    void remove(quint64 requester);
    void clear();
    bool isServing(quint64 requester) const { return m_sessions.contains(requester); }
    int sessionCount() const { return int(m_sessions.size()); }

private:
    struct Session;
    QHash<quint64, std::shared_ptr<Session>> m_sessions;
    qint64 m_maxMessageBytes = Wire::DefaultMaxMessageBytes;
    QVector<TooLarge> m_tooLarge;
};
