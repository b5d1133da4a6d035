#pragma once

#include "entry.h"

#include <QByteArrayView>
#include <QString>
#include <QVarLengthArray>

#include <cstddef>
#include <memory>

// One stored write in a single allocation: clock, writer, sizes, then the
// UTF-8 key and the value's JSON text. Records never change once built, so
// a table and its copies (a sync snapshot) share them by reference count.
// The count is not atomic: a table and all its copies belong to one thread.
struct EntryRecord
{
    quint64 hlc;
    quint64 writer;
    int ref;
    quint32 keySize;
    quint32 valueSize; // top bit: tombstone

    static constexpr quint32 TombstoneBit = 0x80000000u;
    // The bytes start right after valueSize, not at sizeof(EntryRecord):
    // the 4 bytes of tail padding would cost a malloc size class in four.
    static constexpr std::size_t HeaderBytes = 28;

    const char *keyData() const { return reinterpret_cast<const char *>(this) + HeaderBytes; }
    const char *valueData() const { return keyData() + keySize; }
};

// A view of one stored write. Valid while the table (or a copy of it) that
// handed it out holds the record: until that key is next written, removed,
// or the table goes.
class EntryRef
{
public:
    EntryRef() = default;
    explicit operator bool() const { return m_record != nullptr; }

    QByteArrayView utf8Key() const { return {m_record->keyData(), qsizetype(m_record->keySize)}; }
    // The key's text; a leading U+FEFF is part of the key (QString::fromUtf8
    // would drop it as a byte order mark).
    QString key() const;
    // The value's compact JSON text; empty for a tombstone.
    QByteArrayView valueView() const
    {
        return {m_record->valueData(), qsizetype(m_record->valueSize & ~EntryRecord::TombstoneBit)};
    }
    QByteArray value() const { return valueView().toByteArray(); }
    quint64 hlc() const { return m_record->hlc; }
    quint64 writer() const { return m_record->writer; }
    bool tombstone() const { return m_record->valueSize & EntryRecord::TombstoneBit; }

    bool sameWrite(const Entry &e) const { return hlc() == e.hlc && writer() == e.writer; }
    bool sameWrite(const EntryRef &e) const { return hlc() == e.hlc() && writer() == e.writer(); }
    bool newerThan(const Entry &e) const { return hlc() != e.hlc ? hlc() > e.hlc : writer() > e.writer; }
    Entry toEntry() const { return Entry{value(), hlc(), writer(), tombstone()}; }

    // Entry-like access for tests and cold paths: ref->value, *ref. Each
    // use copies the value; hot paths call the accessors above.
    struct Arrow
    {
        Entry entry;
        const Entry *operator->() const { return &entry; }
    };
    Arrow operator->() const { return {toEntry()}; }
    Entry operator*() const { return toEntry(); }

private:
    friend class EntryTable;
    explicit EntryRef(const EntryRecord *record) : m_record(record) {}
    const EntryRecord *m_record = nullptr;
};

// The map's storage: UTF-8 key -> write, an open-addressing hash table
// (linear probing, backward-shift deletion) of pointers to shared records,
// with each slot's hash beside it so a probe rarely touches a record.
// About 25 bytes of slots per key plus one allocation per key; a
// QHash<QString, Entry> took two more allocations and a 72-byte node.
// Iteration order is arbitrary and changes when the table grows.
class EntryTable
{
public:
    // A QString key as UTF-8 on the stack (the heap past 256 bytes), for
    // lookups by QString without an allocation each.
    class Utf8Key
    {
    public:
        explicit Utf8Key(const QString &key);
        QByteArrayView view() const { return {m_bytes.constData(), m_bytes.size()}; }
        operator QByteArrayView() const { return view(); }

    private:
        QVarLengthArray<char, 256> m_bytes;
    };

    EntryTable();
    ~EntryTable();
    EntryTable(const EntryTable &other);            // shares the records
    EntryTable &operator=(const EntryTable &other);
    EntryTable(EntryTable &&other) noexcept;
    EntryTable &operator=(EntryTable &&other) noexcept;

    qsizetype size() const { return m_size; }
    bool isEmpty() const { return m_size == 0; }
    void clear();

    EntryRef find(QByteArrayView utf8Key) const;

    // Where a key is, or would go; valid until the table next changes.
    struct Position
    {
        std::size_t hash = 0;
        qsizetype slot = -1;
        bool found = false;
    };
    Position locate(QByteArrayView utf8Key) const;
    EntryRef at(const Position &pos) const { return EntryRef(pos.found ? m_records[pos.slot] : nullptr); }
    // Stores the write at pos (from locate() with the same key, no change
    // in between): a new key, or the key's new write.
    void store(const Position &pos, QByteArrayView utf8Key, const Entry &entry);

    // Stores a record another table holds, shared (for candidate sets).
    void insert(EntryRef ref);
    bool remove(QByteArrayView utf8Key);
    // Removes every record for which pred(EntryRef) is true; returns how many.
    template <typename Pred>
    qsizetype removeIf(Pred pred);

    class const_iterator
    {
    public:
        EntryRef operator*() const { return EntryRef(m_table->m_records[m_slot]); }
        const_iterator &operator++()
        {
            ++m_slot;
            skipEmpty();
            return *this;
        }
        bool operator==(const const_iterator &o) const { return m_slot == o.m_slot; }
        bool operator!=(const const_iterator &o) const { return m_slot != o.m_slot; }

    private:
        friend class EntryTable;
        const_iterator(const EntryTable *table, qsizetype slot) : m_table(table), m_slot(slot) { skipEmpty(); }
        void skipEmpty()
        {
            while (m_slot < m_table->m_capacity && !m_table->m_records[m_slot])
                ++m_slot;
        }
        const EntryTable *m_table;
        qsizetype m_slot;
    };
    const_iterator begin() const { return const_iterator(this, 0); }
    const_iterator end() const { return const_iterator(this, m_capacity); }

    // A walk in slot order that may span many event-loop turns (a view
    // filling its rows): the slots, the record in one (null if empty), and
    // a number that changes whenever records may have changed slots (a
    // rehash, a removal, or another table's contents moved in), so that the
    // walk knows to start over.
    qsizetype capacity() const { return m_capacity; }
    EntryRef slot(qsizetype index) const { return EntryRef(m_records[index]); }
    quint64 layoutVersion() const { return m_layout; }

private:
    std::size_t hashOf(QByteArrayView utf8Key) const;
    static EntryRecord *makeRecord(QByteArrayView utf8Key, const Entry &entry);
    static void release(EntryRecord *record);
    void rehash(qsizetype capacity);
    void put(const Position &pos, EntryRecord *record); // takes the caller's reference
    void placeNew(std::size_t hash, EntryRecord *record); // key known absent
    void eraseSlot(qsizetype slot);
    void releaseAll();

    std::unique_ptr<EntryRecord *[]> m_records; // null: empty slot
    std::unique_ptr<quint32[]> m_hashes;        // low 32 bits of each key's hash
    qsizetype m_capacity = 0;                   // 0 or a power of two
    qsizetype m_size = 0;
    // Each table hashes with its own seed (copies keep it). With one seed
    // for all, filling a table in another's slot order (a store load, a
    // sync between peers of one process) packs keys into long probe runs:
    // a 1,000,000-key sync took 35 s instead of seconds.
    std::size_t m_seed;
    quint64 m_layout; // see layoutVersion(); unique across tables
};

template <typename Pred>
qsizetype EntryTable::removeIf(Pred pred)
{
    // Deleting while walking would shift later entries back over the walk:
    // release the matches, then rebuild the rest in place.
    qsizetype removed = 0;
    for (qsizetype i = 0; i < m_capacity; ++i) {
        if (m_records[i] && pred(EntryRef(m_records[i]))) {
            release(m_records[i]);
            m_records[i] = nullptr;
            ++removed;
        }
    }
    if (removed) {
        m_size -= removed;
        rehash(m_capacity);
    }
    return removed;
}
