#include "historyfile.h"

#include <QHash>

#include <algorithm>

namespace {

bool newer(const Wire::EntryView &a, const Wire::EntryView &b)
{
    return a.hlc != b.hlc ? a.hlc > b.hlc : a.writer > b.writer;
}

void keepNewer(std::optional<Wire::EntryView> &held, const Wire::EntryView &write)
{
    if (!held || newer(write, *held))
        held = write;
}

// Every entry of a payload already checked: no error can come back.
template<typename F>
void forEachEntry(const char *payload, qsizetype length, F visit)
{
    Wire::EntryView view;
    qsizetype pos = 0;
    while (pos < length && Wire::readEntry(payload, length, &pos, &view) == Wire::DecodeError::NoError)
        visit(view);
}

bool entriesDecode(const char *payload, qsizetype length)
{
    if (length == 0)
        return false;
    Wire::EntryView view;
    qsizetype pos = 0;
    while (pos < length) {
        if (Wire::readEntry(payload, length, &pos, &view) != Wire::DecodeError::NoError)
            return false;
    }
    return true;
}

} // namespace

bool HistoryFile::open(const char *data, qsizetype size, const QByteArray &index, const QString &expectedUri)
{
    m_indexBytes = index;
    m_data = data;
    m_size = size;
    m_read = Journal::ReadResult();
    m_tail.clear();
    m_checked.clear();
    m_useIndex = m_indexFailed = false;
    m_indexProblem.clear();
    if (!Journal::readHeader(data, size, expectedUri, &m_read))
        return false;
    if (!index.isEmpty() && m_index.decode(m_indexBytes, data, size, m_read.headerSize, &m_indexProblem)) {
        m_useIndex = true;
        scanTail(m_index.lostStart(), m_index.coveredEnd());
        m_read.goodEnd = m_index.coveredEnd();
        scanTail(m_index.coveredEnd(), size);
    } else {
        scanTail(m_read.headerSize, size);
    }
    return true;
}

void HistoryFile::scanTail(qsizetype from, qsizetype to) const
{
    Journal::scanRecords(m_data, to, from, [this](qsizetype, Journal::RecordType type, const char *payload, qsizetype length) {
        if (type == Journal::RecordType::Clock)
            return length == 8 ? Journal::RecordError::NoError : Journal::RecordError::BadPayload;
        if (!entriesDecode(payload, length))
            return Journal::RecordError::BadPayload;
        m_tail.push_back({payload - m_data, length, type == Journal::RecordType::Lost});
        return Journal::RecordError::NoError;
    }, &m_read);
}

void HistoryFile::dropIndex() const
{
    m_useIndex = false;
    m_indexProblem = QStringLiteral("a record the history index points to does not check out");
    m_tail.clear();
    m_read.damage.clear();
    m_read.records = 0;
    m_read.goodEnd = m_read.headerSize;
    scanTail(m_read.headerSize, m_size);
}

template<typename F>
auto HistoryFile::guarded(F query) const
{
    auto answer = query();
    if (m_indexFailed) {
        // Damage the index led to: answer from every record that checks out,
        // as a reader without an index does.
        m_indexFailed = false;
        dropIndex();
        answer = query();
    }
    return answer;
}

bool HistoryFile::checkRecord(qsizetype record, Journal::RecordType type, qsizetype *payloadLength) const
{
    const qsizetype end = m_index.coveredEnd();
    if (record < m_read.headerSize || record + Journal::RecordHeaderSize > end)
        return false;
    Journal::RecordType found;
    if (m_checked.contains(record)) {
        *payloadLength = qFromLittleEndian<quint32>(m_data + record + 4);
        return Journal::RecordType(quint8(m_data[record + 8])) == type;
    }
    if (Journal::checkRecordAt(m_data, end, record, &found, payloadLength) != Journal::RecordError::NoError
        || found != type || !entriesDecode(m_data + record + Journal::RecordHeaderSize, *payloadLength))
        return false;
    m_checked.insert(record);
    return true;
}

bool HistoryFile::readSlot(const HistoryFileIndex::Slot &slot, const std::function<bool(const Wire::EntryView &)> &visit) const
{
    auto fail = [this] {
        m_indexFailed = true;
        return false;
    };
    QByteArrayView key;
    auto read = [&](qsizetype record, qsizetype length, qsizetype *pos, bool *more) {
        Wire::EntryView view;
        const char *payload = m_data + record + Journal::RecordHeaderSize;
        if (*pos >= length || Wire::readEntry(payload, length, pos, &view) != Wire::DecodeError::NoError)
            return false;
        if (key.isNull())
            key = view.key;
        else if (view.key != key)
            return false; // a slot is one key's
        *more = visit(view);
        return true;
    };
    bool more = true;
    qsizetype length = 0;
    if (slot.currentRecord) {
        qsizetype pos = slot.currentPos;
        if (!checkRecord(qsizetype(slot.currentRecord), Journal::RecordType::Entries, &length)
            || !read(qsizetype(slot.currentRecord), length, &pos, &more))
            return fail();
    }
    qsizetype record = qsizetype(slot.historyRecord);
    qsizetype pos = slot.historyPos;
    if (record && more && !checkRecord(record, Journal::RecordType::History, &length))
        return fail();
    for (quint32 i = 0; record && more && i < slot.historyCount; ++i) {
        if (pos >= length) {
            // The run goes on in the next record.
            record += Journal::RecordHeaderSize + length;
            pos = 0;
            if (!checkRecord(record, Journal::RecordType::History, &length))
                return fail();
        }
        if (!read(record, length, &pos, &more))
            return fail();
    }
    return true;
}

QVector<Entry> HistoryFile::keyHistory(const QString &key, QVector<bool> *lost) const
{
    const QByteArray utf8 = key.toUtf8();
    return guarded([&] {
        // In file order, so that a write held twice keeps what its first
        // copy says, as Journal::read does.
        std::vector<std::pair<Entry, bool>> writes;
        if (m_useIndex) {
            const auto [first, last] = m_index.find(HistoryFileIndex::hashKey(utf8));
            for (size_t i = first; i < last; ++i) {
                readSlot(m_index.slot(i), [&](const Wire::EntryView &view) {
                    if (view.key != QByteArrayView(utf8))
                        return false; // another key with the same hash
                    writes.push_back({view.toEntry(), false});
                    return true;
                });
            }
        }
        for (const Span &span : m_tail) {
            forEachEntry(m_data + span.payload, span.length, [&](const Wire::EntryView &view) {
                if (view.key == QByteArrayView(utf8))
                    writes.push_back({view.toEntry(), span.lost});
            });
        }
        std::stable_sort(writes.begin(), writes.end(), [](const auto &a, const auto &b) { return b.first.newerThan(a.first); });
        writes.erase(std::unique(writes.begin(), writes.end(), [](const auto &a, const auto &b) { return a.first.sameWrite(b.first); }),
                     writes.end());
        QVector<Entry> entries;
        entries.reserve(qsizetype(writes.size()));
        if (lost)
            lost->clear();
        for (auto &[entry, wasLost] : writes) {
            entries.append(std::move(entry));
            if (lost)
                lost->append(wasLost);
        }
        return entries;
    });
}

std::optional<Entry> HistoryFile::at(const QString &key, quint64 instant) const
{
    const QVector<Entry> writes = keyHistory(key);
    for (auto it = writes.crbegin(); it != writes.crend(); ++it) {
        if (it->hlc <= instant)
            return *it;
    }
    return std::nullopt;
}

bool HistoryFile::forEachNewest(quint64 before, quint64 after, const KeyVisitor &visit) const
{
    auto note = [before, after](Newest &n, const Wire::EntryView &view) {
        if (view.hlc <= after)
            keepNewer(n.after, view);
        if (view.hlc <= before)
            keepNewer(n.before, view);
    };
    QHash<QByteArrayView, Newest> tail;
    for (const Span &span : m_tail) {
        forEachEntry(m_data + span.payload, span.length, [&](const Wire::EntryView &view) {
            if (view.hlc <= after)
                note(tail[view.key], view);
        });
    }
    if (m_useIndex) {
        for (size_t i = 0; i < m_index.slotCount(); ++i) {
            const HistoryFileIndex::Slot slot = m_index.slot(i);
            Newest n;
            QByteArrayView key;
            bool current = slot.currentRecord != 0;
            const bool read = readSlot(slot, [&](const Wire::EntryView &view) {
                key = view.key;
                if (current) {
                    // A key's current write is newer than the rest of its
                    // writes, and the rest come oldest first.
                    current = false;
                    note(n, view);
                    return view.hlc > before;
                }
                if (view.hlc > after)
                    return false;
                note(n, view);
                return true;
            });
            if (!read)
                return false;
            if (const auto found = tail.find(key); found != tail.end()) {
                if (found->after)
                    note(n, *found->after);
                if (found->before)
                    note(n, *found->before);
                tail.erase(found);
            }
            if (n.after)
                visit(key, n);
        }
    }
    for (auto it = tail.cbegin(); it != tail.cend(); ++it)
        visit(it.key(), it.value());
    return true;
}

QVector<HistoryIndex::KeyedEntry> HistoryFile::asOf(quint64 instant) const
{
    return guarded([&] {
        QVector<HistoryIndex::KeyedEntry> live;
        forEachNewest(instant, instant, [&](QByteArrayView key, const Newest &n) {
            if (!n.after->tombstone)
                live.append({Wire::keyFromUtf8(key), n.after->toEntry()});
        });
        return live;
    });
}

QVector<HistoryIndex::Change> HistoryFile::changes(quint64 from, quint64 to) const
{
    return guarded([&] {
        QVector<HistoryIndex::Change> changed;
        if (to <= from)
            return changed;
        forEachNewest(from, to, [&](QByteArrayView key, const Newest &n) {
            if (n.after->hlc <= from)
                return;
            HistoryIndex::Change c;
            c.key = Wire::keyFromUtf8(key);
            if (n.before)
                c.before = n.before->toEntry();
            c.after = n.after->toEntry();
            changed.append(std::move(c));
        });
        return changed;
    });
}
