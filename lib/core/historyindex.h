#pragma once

#include "entry.h"

#include <QHash>
#include <QString>
#include <QVector>

#include <functional>
#include <optional>
#include <set>
#include <vector>

// Every write a peer has kept of a map, superseded ones included, indexed by
// key and by time so that history questions cost what their answer holds,
// not a pass over all of history. Plain C++ over QtCore; LocalStore fills it
// from its file and its journal, the CLI from a store file.
//
// Instants are hybrid clock values (lib/core/hybridclock.h): "as of t" means
// after every write with hlc <= t. Writes of one key are kept in the order of
// Entry::newerThan, (hlc, writer); a tombstone is a write too.
//
// Not thread-safe, not even for concurrent const calls: the time index is
// sorted lazily by the first query after out-of-order inserts.
class HistoryIndex
{
public:
    struct KeyedEntry
    {
        QString key;
        Entry entry;
    };

    // One key written in (from, to]: its newest write at each end; nullopt
    // when it had none yet (or none retained). A tombstone means deleted.
    struct Change
    {
        QString key;
        std::optional<Entry> before;
        std::optional<Entry> after;
        quint64 latest = 0; // the hlc of the key's newest write of all
    };

    // The map as of an instant, for a view of the past: asOf(instant), and
    // for each entry whether its key was written after the instant.
    struct Snapshot
    {
        QVector<KeyedEntry> entries; // sorted by key
        QVector<bool> writtenSince;  // one per entry
        // Keys written after the instant, with an entry or not (a key made
        // or deleted since has none).
        qsizetype keysWrittenSince = 0;
    };

    // Adds a write; false when this very write (key, hlc, writer) is held.
    // lost: the write lost a conflict here: it arrived after a newer write
    // of its key and never became the key's current write.
    bool insert(const QString &key, const Entry &entry, bool lost = false);

    // The key's writes in clock order, oldest first; empty when none. With
    // lost, whether each lost a conflict (see insert()).
    QVector<Entry> keyHistory(const QString &key, QVector<bool> *lost = nullptr) const;
    bool isLost(const QString &key, const Entry &write) const;
    qsizetype lostCount() const { return qsizetype(m_lost.size()); }
    // The key's newest write with hlc <= instant (a tombstone included).
    std::optional<Entry> at(const QString &key, quint64 instant) const;
    // Each key's newest write with hlc <= instant, tombstoned keys left out;
    // sorted by key (QString's operator<). One binary search per key ever
    // written.
    QVector<KeyedEntry> asOf(quint64 instant) const;
    // The same with what was written since, in the same pass.
    Snapshot snapshot(quint64 instant) const;
    // Every key with a write in (from, to], sorted by key. Empty when
    // to <= from.
    QVector<Change> changes(quint64 from, quint64 to) const;
    // How many writes have from < hlc <= to: two binary searches.
    qsizetype countBetween(quint64 from, quint64 to) const;

    // Drops writes older than windowStart (hlc < windowStart), except each
    // key's newest write at windowStart when it is a value: "as of" any
    // instant >= windowStart answers as before. Returns the writes dropped.
    qsizetype retain(quint64 windowStart);
    // The smallest window start at which the writes inside the window take
    // at most maxBytes (see bytes()); 0 when everything fits.
    quint64 windowStartForBytes(qint64 maxBytes) const;

    // Changes whenever a write comes or goes: answers computed at one
    // generation hold until it changes.
    quint64 generation() const { return m_generation; }
    qsizetype size() const { return m_size; }           // writes held
    int keyCount() const { return int(m_keys.size()); } // keys with any write held
    bool isEmpty() const { return m_size == 0; }
    // The writes' size in the wire entry format: what a store's records
    // take for them, without record headers.
    qint64 bytes() const { return m_bytes; }
    quint64 newestHlc() const { return m_newest; }
    // The oldest write held (0: none).
    quint64 oldestHlc() const;

    // Sorts what queries sort lazily (the time index, the key order) now,
    // so that the first query costs what later ones do: a store reading
    // its file in a worker thread calls it there.
    void prepareQueries() const;

    // Calls visit(key, entry) for every write, key by key, each key's
    // writes in clock order.
    void forEach(const std::function<void(const QString &, const Entry &)> &visit) const;
    // The same with whether the write lost a conflict.
    void forEach(const std::function<void(const QString &, const Entry &, bool lost)> &visit) const;

    void clear();

private:
    struct KeyWrites
    {
        QString key;
        qsizetype keyBytes = 0;    // UTF-8
        std::vector<Entry> writes; // clock order, never empty outside insert()
    };
    // One write in the time index: enough to find its key and to size it.
    struct Stamp
    {
        quint64 hlc;
        quint32 keyId;
        quint32 bytes;
    };

    const KeyWrites *find(const QString &key) const;
    void sortKeyOrder() const;
    template<typename Visit>
    void visitAsOf(quint64 instant, Visit &&visit) const;
    static std::optional<Entry> newestAtOrBefore(const std::vector<Entry> &writes, quint64 instant);
    void sortTimeIndex() const;
    void rebuildTimeIndex();

    // A write that lost a conflict: rare, so kept apart from the writes.
    struct LostWrite
    {
        quint32 keyId;
        quint64 hlc;
        quint64 writer;
        bool operator<(const LostWrite &o) const
        {
            return keyId != o.keyId ? keyId < o.keyId : hlc != o.hlc ? hlc < o.hlc : writer < o.writer;
        }
    };

    std::vector<KeyWrites> m_keys;
    std::set<LostWrite> m_lost;
    QHash<QString, quint32> m_ids;
    // Appended as writes come; [0, m_sorted) is in hlc order. Queries sort
    // the tail and merge it in, which costs little when writes come in
    // roughly clock order, as they do.
    mutable std::vector<Stamp> m_time;
    mutable size_t m_sorted = 0;
    // Key ids in key order, and each id's place in it: sorted again by the
    // first query after keys came (a view of the past lists keys in order,
    // and re-sorting the answers cost more than the queries).
    mutable std::vector<quint32> m_byKey;
    mutable std::vector<quint32> m_rank;
    qsizetype m_size = 0;
    qint64 m_bytes = 0;
    quint64 m_newest = 0;
    quint64 m_generation = 0;
};
