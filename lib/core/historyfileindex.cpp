#include "historyfileindex.h"

#include "journal.h"

#include <QtEndian>

#include <algorithm>
#include <cstring>

namespace {

template<typename T>
void put(QByteArray &out, T value)
{
    char buf[sizeof(T)];
    qToLittleEndian<T>(value, buf);
    out.append(buf, sizeof(T));
}

template<typename T>
T get(const char *p)
{
    return qFromLittleEndian<T>(p);
}

quint32 crcField(const char *image, qsizetype offset)
{
    return get<quint32>(image + offset);
}

HistoryFileIndex::Slot slotAt(const char *first, size_t i)
{
    const char *s = first + i * HistoryFileIndex::SlotSize;
    HistoryFileIndex::Slot slot;
    slot.keyHash = get<quint64>(s);
    slot.currentRecord = get<quint64>(s + 8);
    slot.currentPos = get<quint32>(s + 16);
    slot.historyCount = get<quint32>(s + 20);
    slot.historyRecord = get<quint64>(s + 24);
    slot.historyPos = get<quint32>(s + 32);
    return slot;
}

} // namespace

quint64 HistoryFileIndex::hashKey(QByteArrayView utf8Key)
{
    // FNV-1a, 64 bits: keys are short, and the index needs only a spread.
    quint64 h = 14695981039346656037ULL;
    for (const char c : utf8Key) {
        h ^= quint8(c);
        h *= 1099511628211ULL;
    }
    return h;
}

void HistoryFileIndex::addCurrent(QByteArrayView utf8Key, qsizetype record, qsizetype pos)
{
    Pending p;
    p.slot.keyHash = hashKey(utf8Key);
    p.slot.currentRecord = quint64(record);
    p.slot.currentPos = quint32(pos);
    p.key = utf8Key.toByteArray();
    m_pending.push_back(std::move(p));
}

void HistoryFileIndex::addHistory(QByteArrayView utf8Key, qsizetype record, qsizetype pos)
{
    if (m_lastHistory >= 0 && m_pending[size_t(m_lastHistory)].key == utf8Key) {
        ++m_pending[size_t(m_lastHistory)].slot.historyCount;
        return;
    }
    Pending p;
    p.slot.keyHash = hashKey(utf8Key);
    p.slot.historyRecord = quint64(record);
    p.slot.historyPos = quint32(pos);
    p.slot.historyCount = 1;
    p.key = utf8Key.toByteArray();
    m_lastHistory = qsizetype(m_pending.size());
    m_pending.push_back(std::move(p));
}

QByteArray HistoryFileIndex::encode(const char *image, qsizetype imageSize) const
{
    // One slot per key: its current write and its history run were added
    // apart, so equal keys are brought together and merged.
    std::vector<const Pending *> order;
    order.reserve(m_pending.size());
    for (const Pending &p : m_pending)
        order.push_back(&p);
    std::sort(order.begin(), order.end(), [](const Pending *a, const Pending *b) {
        return a->slot.keyHash != b->slot.keyHash ? a->slot.keyHash < b->slot.keyHash : a->key < b->key;
    });
    std::vector<Slot> slots;
    slots.reserve(order.size());
    for (size_t i = 0; i < order.size(); ++i) {
        Slot s = order[i]->slot;
        while (i + 1 < order.size() && order[i + 1]->key == order[i]->key) {
            const Slot &o = order[++i]->slot;
            if (o.currentRecord) {
                s.currentRecord = o.currentRecord;
                s.currentPos = o.currentPos;
            }
            if (o.historyRecord) {
                s.historyRecord = o.historyRecord;
                s.historyPos = o.historyPos;
                s.historyCount = o.historyCount;
            }
        }
        slots.push_back(s);
    }

    // Where the image's records are, to tie the index to this very image.
    Journal::ReadResult header;
    const bool readable = Journal::readHeader(image, imageSize, QString(), &header);
    Q_ASSERT(readable);
    Q_UNUSED(readable);
    qsizetype last = 0;
    for (qsizetype at = header.headerSize; at + Journal::RecordHeaderSize <= imageSize;
         at += Journal::RecordHeaderSize + get<quint32>(image + at + 4))
        last = at;

    QByteArray out;
    out.reserve(FixedSize + qsizetype(slots.size()) * SlotSize + 4);
    out.append(Magic, sizeof(Magic));
    put<quint16>(out, Version);
    put<quint16>(out, 0);
    put<quint64>(out, quint64(imageSize));
    put<quint32>(out, crcField(image, header.headerSize - 4));
    put<quint32>(out, last ? crcField(image, header.headerSize) : 0);
    put<quint64>(out, quint64(last));
    put<quint32>(out, last ? crcField(image, last) : 0);
    put<quint64>(out, quint64(m_lostStart > 0 ? m_lostStart : imageSize));
    put<quint32>(out, quint32(slots.size()));
    for (const Slot &s : slots) {
        put<quint64>(out, s.keyHash);
        put<quint64>(out, s.currentRecord);
        put<quint32>(out, s.currentPos);
        put<quint32>(out, s.historyCount);
        put<quint64>(out, s.historyRecord);
        put<quint32>(out, s.historyPos);
        put<quint32>(out, 0);
    }
    put<quint32>(out, Journal::crc32c(out.constData(), out.size()));
    return out;
}

bool HistoryFileIndex::decode(QByteArrayView bytes, const char *image, qsizetype imageSize, qsizetype headerSize,
                              QString *why)
{
    auto fail = [why](const QString &text) {
        *why = text;
        return false;
    };
    const char *p = bytes.data();
    if (bytes.size() < FixedSize + 4 || std::memcmp(p, Magic, sizeof(Magic)) != 0)
        return fail(QStringLiteral("not a history index"));
    if (get<quint16>(p + 8) != Version || get<quint16>(p + 10) != 0)
        return fail(QStringLiteral("history index version %1 is not supported").arg(get<quint16>(p + 8)));
    const quint32 count = get<quint32>(p + FixedSize - 4);
    if (bytes.size() != FixedSize + qsizetype(count) * SlotSize + 4)
        return fail(QStringLiteral("the history index is cut short or too long"));
    if (Journal::crc32c(p, bytes.size() - 4) != get<quint32>(p + bytes.size() - 4))
        return fail(QStringLiteral("the history index is damaged (checksum mismatch)"));

    const quint64 coveredEnd = get<quint64>(p + 12);
    const quint32 headerCrc = get<quint32>(p + 20);
    const quint32 firstCrc = get<quint32>(p + 24);
    const quint64 last = get<quint64>(p + 28);
    const quint32 lastCrc = get<quint32>(p + 36);
    const quint64 lostStart = get<quint64>(p + 40);
    const QString stale = QStringLiteral("the history index belongs to another version of the store");
    if (coveredEnd > quint64(imageSize) || coveredEnd < quint64(headerSize) || crcField(image, headerSize - 4) != headerCrc)
        return fail(stale);
    if (lostStart < quint64(headerSize) || lostStart > coveredEnd)
        return fail(QStringLiteral("the history index is damaged (lost records outside the file)"));
    if (last == 0) {
        if (coveredEnd != quint64(headerSize))
            return fail(stale);
    } else {
        Journal::RecordType type;
        qsizetype length = 0;
        if (last < quint64(headerSize) || last + Journal::RecordHeaderSize > coveredEnd
            || crcField(image, headerSize) != firstCrc || crcField(image, qsizetype(last)) != lastCrc
            || Journal::checkRecordAt(image, imageSize, qsizetype(last), &type, &length) != Journal::RecordError::NoError
            || last + Journal::RecordHeaderSize + quint64(length) != coveredEnd)
            return fail(stale);
    }

    // Every slot checked once here, in place, so that slot() and find()
    // need not check again.
    const char *const first = p + FixedSize;
    quint64 previousHash = 0;
    for (quint32 i = 0; i < count; ++i) {
        const Slot slot = slotAt(first, i);
        if (slot.keyHash < previousHash)
            return fail(QStringLiteral("the history index is damaged (slots out of order)"));
        previousHash = slot.keyHash;
        if (slot.currentRecord >= coveredEnd || slot.historyRecord >= coveredEnd
            || (slot.historyRecord != 0) != (slot.historyCount != 0) || (!slot.currentRecord && !slot.historyRecord))
            return fail(QStringLiteral("the history index is damaged (a slot points outside the file)"));
    }
    m_slotData = first;
    m_slotCount = count;
    m_coveredEnd = qsizetype(coveredEnd);
    m_lostStart = qsizetype(lostStart);
    return true;
}

HistoryFileIndex::Slot HistoryFileIndex::slot(size_t i) const
{
    return slotAt(m_slotData, i);
}

std::pair<size_t, size_t> HistoryFileIndex::find(quint64 hash) const
{
    // Binary search over the slots' hashes where they lie.
    auto hashAt = [this](size_t i) { return get<quint64>(m_slotData + i * SlotSize); };
    size_t first = 0, count = m_slotCount;
    while (count > 0) {
        const size_t half = count / 2;
        if (hashAt(first + half) < hash) {
            first += half + 1;
            count -= half + 1;
        } else {
            count = half;
        }
    }
    size_t last = first;
    while (last < m_slotCount && hashAt(last) == hash)
        ++last;
    return {first, last};
}
