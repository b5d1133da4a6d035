#pragma once

#include "entry.h"
#include "entrytable.h"
#include "maptypes.h"

#include <QString>
#include <QVector>

// The replicated map's state: a last-writer-wins register per key, ordered by
// (hlc, writer), with tombstones for deletes. Plain C++ over QtCore: no
// sockets, no event loop, no signals. apply() is commutative, associative and
// idempotent, so every replica that has seen the same writes holds the same
// map whatever the delivery order.
class MapState
{
public:
    using Outcome = distmap::Outcome; // Applied, Superseded, Duplicate

    struct Result
    {
        Outcome outcome = Outcome::Applied;
        bool hadValue = false;  // a live value existed before (Applied only)
        QByteArray oldValue;    // that value's JSON text
        // The key's write before this apply (0, 0: none); for Superseded
        // and Duplicate, the write still current.
        quint64 previousHlc = 0;
        quint64 previousWriter = 0;
    };

    Result apply(const QString &key, const Entry &entry);
    Result apply(QByteArrayView utf8Key, const Entry &entry);

    // The key's current write (a value or a tombstone), or a null ref; see
    // EntryRef for how long it stays valid.
    EntryRef find(const QString &key) const { return m_entries.find(EntryTable::Utf8Key(key)); }
    EntryRef find(QByteArrayView utf8Key) const { return m_entries.find(utf8Key); }
    bool contains(const QString &key) const; // live value, not a tombstone

    int size() const { return m_live; }                 // live values
    int entryCount() const { return int(m_entries.size()); } // with tombstones
    int tombstoneCount() const { return entryCount() - m_live; }

    // Every entry, tombstones included, in no particular order.
    const EntryTable &entries() const { return m_entries; }

    // Removes a key's entry entirely (no tombstone); returns whether it had a
    // live value, and that value in oldValue. Only for a peer that learned
    // the network has forgotten the key (see Replica's rejoin).
    bool forget(const QString &key, QByteArray *oldValue = nullptr);

    // How long peers and stores keep tombstones by default (7 days): a peer
    // away for longer rejoins instead of resurrecting deleted keys.
    static constexpr qint64 DefaultTombstoneRetentionMs = distmap::DefaultTombstoneRetentionMs;

    // Drops tombstones older than the horizon; returns how many were dropped.
    int purgeTombstones(quint64 olderThanHlc);

    // Anti-entropy digest, see docs/PROTOCOL.md "Digest": bucketCount
    // (a power of two, 1..65536) XOR-folded hashes of every entry.
    QVector<quint64> digest(int bucketCount) const;

    static quint64 keyHash(const QString &key);
    static quint64 keyHash(QByteArrayView utf8Key);
    static quint64 entryHash(const QString &key, const Entry &entry);
    static int bucketOf(quint64 keyHash, int bucketCount)
    {
        return int(keyHash & quint64(bucketCount - 1));
    }
    static bool isValidBucketCount(int n) { return n >= 1 && n <= 65536 && (n & (n - 1)) == 0; }

private:
    EntryTable m_entries;
    int m_live = 0;
};
