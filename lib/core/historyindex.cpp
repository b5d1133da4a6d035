#include "historyindex.h"

#include "wire.h"

#include <QStringView>

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

// A key in the key sort: its text and, during a pass, its next units.
struct KeyItem
{
    quint64 digit;
    const char16_t *text;
    qsizetype size;
    quint32 id;
};

// Three UTF-16 units from depth, each as unit + 1 in 17 bits, 0 past the
// end: digits order as the texts do, a shorter text first.
quint64 digitAt(const KeyItem &item, qsizetype depth)
{
    quint64 digit = 0;
    for (qsizetype pos = depth; pos < depth + 3; ++pos)
        digit = digit << 17 | (pos < item.size ? quint64(item.text[pos]) + 1 : 0);
    return digit;
}

// Sorts keys in QString's order (UTF-16 units), three units per pass, so
// that most comparisons are of integers and each key's text is read once
// a pass instead of once a comparison: a million keys sorted by string
// comparisons took 1.1 s, each one two cache misses.
void sortKeyItems(std::vector<KeyItem> &items)
{
    struct Range
    {
        size_t first, last;
        qsizetype depth; // units every key of the range shares
    };
    std::vector<Range> work{{0, items.size(), 0}};
    while (!work.empty()) {
        const Range r = work.back();
        work.pop_back();
        KeyItem *const first = items.data() + r.first;
        KeyItem *const last = items.data() + r.last;
        if (last - first <= 16) {
            const qsizetype depth = r.depth;
            std::sort(first, last, [depth](const KeyItem &a, const KeyItem &b) {
                return QStringView(a.text + depth, a.size - depth) < QStringView(b.text + depth, b.size - depth);
            });
            continue;
        }
        for (KeyItem *it = first; it != last; ++it)
            it->digit = digitAt(*it, r.depth);
        std::sort(first, last, [](const KeyItem &a, const KeyItem &b) { return a.digit < b.digit; });
        for (KeyItem *run = first; run != last;) {
            KeyItem *end = run + 1;
            while (end != last && end->digit == run->digit)
                ++end;
            // A run whose texts all end in this digit holds one key: keys
            // are distinct.
            if (end - run > 1 && (run->digit & 0x1ffff) != 0)
                work.push_back({size_t(run - items.data()), size_t(end - items.data()), r.depth + 3});
            run = end;
        }
    }
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

template<typename Visit>
void HistoryIndex::visitAsOf(quint64 instant, Visit &&visit) const
{
    sortKeyOrder();
    for (const quint32 id : m_byKey) {
        const KeyWrites &k = m_keys[id];
        const bool since = k.writes.back().hlc > instant;
        // Keys born after the instant cost one comparison.
        const bool born = k.writes.front().hlc <= instant;
        visit(k, born ? newestAtOrBefore(k.writes, instant) : std::nullopt, since);
    }
}

QVector<HistoryIndex::KeyedEntry> HistoryIndex::asOf(quint64 instant) const
{
    QVector<KeyedEntry> out;
    visitAsOf(instant, [&out](const KeyWrites &k, std::optional<Entry> &&e, bool) {
        if (e && !e->tombstone)
            out.append({k.key, std::move(*e)});
    });
    return out;
}

HistoryIndex::Snapshot HistoryIndex::snapshot(quint64 instant) const
{
    Snapshot out;
    visitAsOf(instant, [&out](const KeyWrites &k, std::optional<Entry> &&e, bool since) {
        out.keysWrittenSince += since;
        if (e && !e->tombstone) {
            out.entries.append({k.key, std::move(*e)});
            out.writtenSince.append(since);
        }
    });
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
    // In key order: each id by its place in it.
    sortKeyOrder();
    for (quint32 &id : ids)
        id = m_rank[id];
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    QVector<Change> out;
    out.reserve(qsizetype(ids.size()));
    for (const quint32 rank : ids) {
        const KeyWrites &k = m_keys[m_byKey[rank]];
        out.append({k.key, newestAtOrBefore(k.writes, from), newestAtOrBefore(k.writes, to), k.writes.back().hlc});
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
    m_byKey.clear();
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

void HistoryIndex::prepareQueries() const
{
    sortTimeIndex();
    sortKeyOrder();
}

void HistoryIndex::sortKeyOrder() const
{
    // Keys only come between retain() calls, and retain() clears the order.
    if (m_byKey.size() == m_keys.size())
        return;
    std::vector<KeyItem> items;
    items.reserve(m_keys.size());
    for (quint32 id = 0; id < m_keys.size(); ++id) {
        const QString &key = m_keys[id].key;
        items.push_back({0, QStringView(key).utf16(), key.size(), id});
    }
    sortKeyItems(items);
    m_byKey.resize(items.size());
    for (size_t i = 0; i < items.size(); ++i)
        m_byKey[i] = items[i].id;
    m_rank.resize(m_keys.size());
    for (quint32 rank = 0; rank < m_byKey.size(); ++rank)
        m_rank[m_byKey[rank]] = rank;
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
