#include "historyindex.h"

#include "wire.h"

#include <algorithm>

namespace {

bool olderThan(const Entry &a, const Entry &b)
{
    return b.newerThan(a);
}

qsizetype utf8Size(const QString &text)
{
    qsizetype n = 0;
    for (const QChar c : text) {
        const char16_t u = c.unicode();
        // A surrogate pair is 4 bytes of UTF-8: 2 for each half.
        n += u < 0x80 ? 1 : u < 0x800 ? 2 : c.isSurrogate() ? 2 : 3;
    }
    return n;
}

quint32 writeBytes(qsizetype keyBytes, const Entry &entry)
{
    return quint32(Wire::EntryFixedSize + keyBytes + (entry.tombstone ? 0 : 4 + entry.value.size()));
}

} // namespace

bool HistoryIndex::insert(const QString &key, const Entry &entry, bool lost)
{
    quint32 id = 0;
    const auto found = m_ids.constFind(key);
    if (found == m_ids.cend()) {
        id = quint32(m_keys.size());
        m_ids.insert(key, id);
        m_keys.push_back({key, utf8Size(key), {}});
    } else {
        id = found.value();
    }
    KeyWrites &k = m_keys[id];
    auto pos = k.writes.end();
    // Writes mostly come in clock order: the newest goes last at no cost.
    if (!k.writes.empty() && !entry.newerThan(k.writes.back())) {
        pos = std::lower_bound(k.writes.begin(), k.writes.end(), entry, olderThan);
        if (pos != k.writes.end() && pos->sameWrite(entry))
            return false;
    }
    k.writes.insert(pos, entry);
    const quint32 bytes = writeBytes(k.keyBytes, entry);
    if (m_sorted == m_time.size() && (m_time.empty() || m_time.back().hlc <= entry.hlc))
        ++m_sorted;
    m_time.push_back({entry.hlc, id, bytes});
    if (lost)
        m_lost.insert({id, entry.hlc, entry.writer});
    ++m_size;
    ++m_generation;
    m_bytes += bytes;
    m_newest = qMax(m_newest, entry.hlc);
    return true;
}

const HistoryIndex::KeyWrites *HistoryIndex::find(const QString &key) const
{
    const auto found = m_ids.constFind(key);
    return found == m_ids.cend() ? nullptr : &m_keys[found.value()];
}

std::optional<Entry> HistoryIndex::newestAtOrBefore(const std::vector<Entry> &writes, quint64 instant)
{
    // Among writes with one hlc the greatest writer wins, and it sorts last.
    const auto after = std::upper_bound(writes.begin(), writes.end(), instant,
                                        [](quint64 t, const Entry &e) { return t < e.hlc; });
    if (after == writes.begin())
        return std::nullopt;
    return *(after - 1);
}

QVector<Entry> HistoryIndex::keyHistory(const QString &key, QVector<bool> *lost) const
{
    const KeyWrites *k = find(key);
    if (lost)
        lost->clear();
    if (!k)
        return {};
    if (lost) {
        const quint32 id = quint32(k - m_keys.data());
        for (const Entry &e : k->writes)
            lost->append(m_lost.count({id, e.hlc, e.writer}) > 0);
    }
    return QVector<Entry>(k->writes.begin(), k->writes.end());
}

bool HistoryIndex::isLost(const QString &key, const Entry &write) const
{
    const KeyWrites *k = find(key);
    return k && m_lost.count({quint32(k - m_keys.data()), write.hlc, write.writer}) > 0;
}

std::optional<Entry> HistoryIndex::at(const QString &key, quint64 instant) const
{
    const KeyWrites *k = find(key);
    return k ? newestAtOrBefore(k->writes, instant) : std::nullopt;
}

QVector<HistoryIndex::KeyedEntry> HistoryIndex::asOf(quint64 instant) const
{
    return asOf(instant, nullptr);
}

QVector<HistoryIndex::KeyedEntry> HistoryIndex::asOf(quint64 instant, QSet<QString> *writtenSince) const
{
    QVector<KeyedEntry> out;
    for (const KeyWrites &k : m_keys) {
        if (writtenSince && k.writes.back().hlc > instant)
            writtenSince->insert(k.key);
        // Keys born after the instant cost one comparison.
        if (k.writes.front().hlc > instant)
            continue;
        const std::optional<Entry> e = newestAtOrBefore(k.writes, instant);
        if (e && !e->tombstone)
            out.append({k.key, *e});
    }
    return out;
}

quint64 HistoryIndex::oldestHlc() const
{
    sortTimeIndex();
    return m_time.empty() ? 0 : m_time.front().hlc;
}

QVector<HistoryIndex::Change> HistoryIndex::changes(quint64 from, quint64 to) const
{
    if (to <= from)
        return {};
    sortTimeIndex();
    auto byHlc = [](quint64 t, const Stamp &s) { return t < s.hlc; };
    const auto first = std::upper_bound(m_time.begin(), m_time.end(), from, byHlc);
    const auto last = std::upper_bound(first, m_time.end(), to, byHlc);
    std::vector<quint32> ids;
    ids.reserve(size_t(last - first));
    for (auto it = first; it != last; ++it)
        ids.push_back(it->keyId);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    QVector<Change> out;
    out.reserve(qsizetype(ids.size()));
    for (const quint32 id : ids) {
        const KeyWrites &k = m_keys[id];
        out.append({k.key, newestAtOrBefore(k.writes, from), newestAtOrBefore(k.writes, to)});
    }
    return out;
}

qsizetype HistoryIndex::countBetween(quint64 from, quint64 to) const
{
    if (to <= from)
        return 0;
    sortTimeIndex();
    auto byHlc = [](quint64 t, const Stamp &s) { return t < s.hlc; };
    const auto first = std::upper_bound(m_time.begin(), m_time.end(), from, byHlc);
    return std::upper_bound(first, m_time.end(), to, byHlc) - first;
}

qsizetype HistoryIndex::retain(quint64 windowStart)
{
    // Nothing older than the window: no pass over every key (a store of a
    // million keys runs this when it opens).
    if (m_size == 0 || windowStart <= oldestHlc())
        return 0;
    qsizetype dropped = 0;
    for (KeyWrites &k : m_keys) {
        auto inside = std::lower_bound(k.writes.begin(), k.writes.end(), windowStart,
                                       [](const Entry &e, quint64 t) { return e.hlc < t; });
        // The write just before the window is the key's state at its start,
        // unless a write exactly at the start replaced it; a tombstone there
        // says no more than no write at all.
        const bool stateInside = inside != k.writes.end() && inside->hlc == windowStart;
        if (inside != k.writes.begin() && !stateInside && !(inside - 1)->tombstone)
            --inside;
        for (auto it = k.writes.begin(); it != inside; ++it)
            m_bytes -= writeBytes(k.keyBytes, *it);
        dropped += inside - k.writes.begin();
        k.writes.erase(k.writes.begin(), inside);
    }
    if (dropped == 0)
        return 0;
    m_size -= dropped;
    ++m_generation;
    // Ids change when keys go: rebuild the indexes, the lost marks too.
    std::vector<std::pair<QString, LostWrite>> lost;
    for (const LostWrite &l : m_lost) {
        const KeyWrites &k = m_keys[l.keyId];
        const Entry probe{QByteArray(), l.hlc, l.writer, false};
        const auto it = std::lower_bound(k.writes.begin(), k.writes.end(), probe, olderThan);
        if (it != k.writes.end() && it->sameWrite(probe))
            lost.push_back({k.key, l});
    }
    m_lost.clear();
    m_keys.erase(std::remove_if(m_keys.begin(), m_keys.end(), [](const KeyWrites &k) { return k.writes.empty(); }),
                 m_keys.end());
    m_ids.clear();
    m_ids.reserve(qsizetype(m_keys.size()));
    for (quint32 id = 0; id < m_keys.size(); ++id)
        m_ids.insert(m_keys[id].key, id);
    for (auto &[key, l] : lost)
        m_lost.insert({m_ids.value(key), l.hlc, l.writer});
    rebuildTimeIndex();
    return dropped;
}

quint64 HistoryIndex::windowStartForBytes(qint64 maxBytes) const
{
    if (m_bytes <= maxBytes)
        return 0;
    sortTimeIndex();
    qint64 sum = 0;
    for (auto it = m_time.rbegin(); it != m_time.rend(); ++it) {
        sum += it->bytes;
        // Writes at one instant stay or go together.
        if (sum > maxBytes)
            return it->hlc + 1;
    }
    return 0;
}

void HistoryIndex::forEach(const std::function<void(const QString &, const Entry &)> &visit) const
{
    for (const KeyWrites &k : m_keys) {
        for (const Entry &e : k.writes)
            visit(k.key, e);
    }
}

void HistoryIndex::forEach(const std::function<void(const QString &, const Entry &, bool)> &visit) const
{
    for (quint32 id = 0; id < m_keys.size(); ++id) {
        for (const Entry &e : m_keys[id].writes)
            visit(m_keys[id].key, e, !m_lost.empty() && m_lost.count({id, e.hlc, e.writer}) > 0);
    }
}

void HistoryIndex::clear()
{
    const quint64 generation = m_generation;
    *this = HistoryIndex();
    m_generation = generation + 1;
}

void HistoryIndex::sortTimeIndex() const
{
    if (m_sorted == m_time.size())
        return;
    auto byHlc = [](const Stamp &a, const Stamp &b) { return a.hlc < b.hlc; };
    const auto middle = m_time.begin() + qsizetype(m_sorted);
    std::sort(middle, m_time.end(), byHlc);
    std::inplace_merge(m_time.begin(), middle, m_time.end(), byHlc);
    m_sorted = m_time.size();
}

void HistoryIndex::rebuildTimeIndex()
{
    m_time.clear();
    m_time.reserve(size_t(m_size));
    for (quint32 id = 0; id < m_keys.size(); ++id) {
        for (const Entry &e : m_keys[id].writes)
            m_time.push_back({e.hlc, id, writeBytes(m_keys[id].keyBytes, e)});
    }
    m_sorted = 0;
    sortTimeIndex();
}
