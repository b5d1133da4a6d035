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
    Result result;
    auto it = m_entries.find(key);
    if (it == m_entries.end()) {
        m_entries.insert(key, entry);
        if (!entry.tombstone)
            ++m_live;
        return result;
    }
    result.previousHlc = it->hlc;
    result.previousWriter = it->writer;
    if (it->sameWrite(entry)) {
        result.outcome = Outcome::Duplicate;
        return result;
    }
    if (!entry.newerThan(*it)) {
        result.outcome = Outcome::Superseded;
        return result;
    }
    result.hadValue = !it->tombstone;
    if (result.hadValue)
        result.oldValue = it->value;
    m_live += (entry.tombstone ? 0 : 1) - (it->tombstone ? 0 : 1);
    *it = entry;
    return result;
}

const Entry *MapState::find(const QString &key) const
{
    auto it = m_entries.constFind(key);
    return it == m_entries.cend() ? nullptr : &it.value();
}

bool MapState::contains(const QString &key) const
{
    const Entry *e = find(key);
    return e && !e->tombstone;
}

bool MapState::forget(const QString &key, QByteArray *oldValue)
{
    auto it = m_entries.find(key);
    if (it == m_entries.end())
        return false;
    const bool live = !it->tombstone;
    if (live) {
        --m_live;
        if (oldValue)
            *oldValue = it->value;
    }
    m_entries.erase(it);
    return live;
}

int MapState::purgeTombstones(quint64 olderThanHlc)
{
    int dropped = 0;
    for (auto it = m_entries.begin(); it != m_entries.end();) {
        if (it->tombstone && it->hlc < olderThanHlc) {
            it = m_entries.erase(it);
            ++dropped;
        } else {
            ++it;
        }
    }
    return dropped;
}

quint64 MapState::keyHash(const QString &key)
{
    const QByteArray utf8 = key.toUtf8();
    return fnv1a(FnvOffset, utf8.constData(), utf8.size());
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
    for (auto it = m_entries.cbegin(); it != m_entries.cend(); ++it) {
        const QByteArray utf8 = it.key().toUtf8();
        const quint64 kh = fnv1a(FnvOffset, utf8.constData(), utf8.size());
        char tail[17];
        qToLittleEndian<quint64>(it->hlc, tail);
        qToLittleEndian<quint64>(it->writer, tail + 8);
        tail[16] = it->tombstone ? 2 : 1;
        buckets[bucketOf(kh, n)] ^= fnv1a(kh, tail, sizeof tail);
    }
    return buckets;
}
