#include "mapstate.h"

#include <QtEndian>

namespace {

constexpr quint64 FnvOffset = 14695981039346656037ull;
constexpr quint64 FnvPrime = 1099511628211ull;

quint64 fnv1a(quint64 h, const char *data, qsizetype size)
{
    for (qsizetype i = 0; i < size; ++i) {
        h ^= quint8(data[i]);
        h *= FnvPrime;
    }
    return h;
}

} // namespace

MapState::Result MapState::apply(const QString &key, const Entry &entry)
{
    return apply(EntryTable::Utf8Key(key), entry);
}

MapState::Result MapState::apply(QByteArrayView utf8Key, const Entry &entry)
{
    Result result;
    const EntryTable::Position pos = m_entries.locate(utf8Key);
    const EntryRef current = m_entries.at(pos);
    if (!current) {
        m_entries.store(pos, utf8Key, entry);
        if (!entry.tombstone)
            ++m_live;
        return result;
    }
    result.previousHlc = current.hlc();
    result.previousWriter = current.writer();
    if (current.sameWrite(entry)) {
        result.outcome = Outcome::Duplicate;
        return result;
    }
    if (current.newerThan(entry)) { // sameWrite was handled above
        result.outcome = Outcome::Superseded;
        return result;
    }
    result.hadValue = !current.tombstone();
    if (result.hadValue)
        result.oldValue = current.value();
    m_live += (entry.tombstone ? 0 : 1) - (current.tombstone() ? 0 : 1);
    m_entries.store(pos, utf8Key, entry);
    return result;
}

bool MapState::contains(const QString &key) const
{
    const EntryRef e = find(key);
    return e && !e.tombstone();
}

bool MapState::forget(const QString &key, QByteArray *oldValue)
{
    const EntryTable::Utf8Key utf8(key);
    const EntryRef e = m_entries.find(utf8);
    if (!e)
        return false;
    const bool live = !e.tombstone();
    if (live) {
        --m_live;
        if (oldValue)
            *oldValue = e.value();
    }
    m_entries.remove(utf8);
    return live;
}

int MapState::purgeTombstones(quint64 olderThanHlc)
{
    // A store opening with a million keys runs this: no walk when there
    // is nothing it could find.
    if (tombstoneCount() == 0)
        return 0;
    return int(m_entries.removeIf([olderThanHlc](const EntryRef &e) { return e.tombstone() && e.hlc() < olderThanHlc; }));
}

quint64 MapState::keyHash(const QString &key)
{
    return keyHash(EntryTable::Utf8Key(key));
}

quint64 MapState::keyHash(QByteArrayView utf8Key)
{
    return fnv1a(FnvOffset, utf8Key.data(), utf8Key.size());
}

quint64 MapState::entryHash(const QString &key, const Entry &entry)
{
    const QByteArray utf8 = key.toUtf8();
    char tail[17];
    qToLittleEndian<quint64>(entry.hlc, tail);
    qToLittleEndian<quint64>(entry.writer, tail + 8);
    tail[16] = entry.tombstone ? 2 : 1;
    return fnv1a(fnv1a(FnvOffset, utf8.constData(), utf8.size()), tail, sizeof tail);
}

QVector<quint64> MapState::digest(int bucketCount) const
{
    QVector<quint64> buckets(isValidBucketCount(bucketCount) ? bucketCount : 1, 0);
    const int n = int(buckets.size());
    for (const EntryRef e : m_entries) {
        const quint64 kh = keyHash(e.utf8Key());
        char tail[17];
        qToLittleEndian<quint64>(e.hlc(), tail);
        qToLittleEndian<quint64>(e.writer(), tail + 8);
        tail[16] = e.tombstone() ? 2 : 1;
        buckets[bucketOf(kh, n)] ^= fnv1a(kh, tail, sizeof tail);
    }
    return buckets;
}
