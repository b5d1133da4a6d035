#include "entrytable.h"

#include <QHashFunctions>
#include <QRandomGenerator>
#include <QStringDecoder>
#include <QStringEncoder>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

namespace {

// Grows at 3/4 full: linear probing slows sharply past that.
bool overLoaded(qsizetype size, qsizetype capacity)
{
    return size * 4 > capacity * 3;
}

} // namespace

EntryTable::Utf8Key::Utf8Key(const QString &key)
{
    // Keys are mostly ASCII: copy those straight, encode the rest.
    const qsizetype n = key.size();
    const QChar *chars = key.constData();
    m_bytes.resize(n);
    for (qsizetype i = 0; i < n; ++i) {
        const char16_t c = chars[i].unicode();
        if (c >= 0x80) {
            m_bytes.resize(n * 3); // UTF-16 code unit -> at most 3 UTF-8 bytes
            QStringEncoder encoder(QStringEncoder::Utf8, QStringEncoder::Flag::Stateless);
            char *end = encoder.appendToBuffer(m_bytes.data() + i, QStringView(chars + i, n - i));
            m_bytes.resize(end - m_bytes.data());
            return;
        }
        m_bytes[i] = char(c);
    }
}

static_assert(offsetof(EntryRecord, valueSize) + sizeof(quint32) == EntryRecord::HeaderBytes);

namespace {
// Layout versions come from one counter, so that no two tables (or two
// layouts of one) share one.
quint64 nextLayout()
{
    static std::atomic<quint64> counter{0};
    return ++counter;
}
} // namespace

EntryTable::EntryTable()
    : m_seed(std::size_t(QRandomGenerator::global()->generate64()))
    , m_layout(nextLayout())
{
}

EntryTable::~EntryTable()
{
    releaseAll();
}

EntryTable::EntryTable(const EntryTable &other)
    : m_capacity(other.m_capacity)
    , m_size(other.m_size)
    , m_seed(other.m_seed)
    , m_layout(nextLayout())
{
    if (!m_capacity)
        return;
    m_records.reset(new EntryRecord *[size_t(m_capacity)]);
    m_hashes.reset(new quint32[size_t(m_capacity)]);
    std::memcpy(m_records.get(), other.m_records.get(), sizeof(EntryRecord *) * size_t(m_capacity));
    std::memcpy(m_hashes.get(), other.m_hashes.get(), sizeof(quint32) * size_t(m_capacity));
    for (qsizetype i = 0; i < m_capacity; ++i) {
        if (m_records[i])
            ++m_records[i]->ref;
    }
}

EntryTable &EntryTable::operator=(const EntryTable &other)
{
    if (this != &other) {
        EntryTable copy(other);
        *this = std::move(copy);
    }
    return *this;
}

EntryTable::EntryTable(EntryTable &&other) noexcept
    : m_records(std::move(other.m_records))
    , m_hashes(std::move(other.m_hashes))
    , m_capacity(other.m_capacity)
    , m_size(other.m_size)
    , m_seed(other.m_seed)
    , m_layout(nextLayout())
{
    other.m_capacity = 0;
    other.m_size = 0;
    other.m_layout = nextLayout();
}

EntryTable &EntryTable::operator=(EntryTable &&other) noexcept
{
    if (this != &other) {
        releaseAll();
        m_records = std::move(other.m_records);
        m_hashes = std::move(other.m_hashes);
        m_capacity = other.m_capacity;
        m_size = other.m_size;
        m_seed = other.m_seed;
        m_layout = nextLayout();
        other.m_capacity = 0;
        other.m_size = 0;
        other.m_layout = nextLayout();
    }
    return *this;
}

void EntryTable::clear()
{
    m_layout = nextLayout();
    releaseAll();
    m_records.reset();
    m_hashes.reset();
    m_capacity = 0;
    m_size = 0;
}

void EntryTable::releaseAll()
{
    for (qsizetype i = 0; i < m_capacity; ++i) {
        if (m_records[i])
            release(m_records[i]);
    }
}

std::size_t EntryTable::hashOf(QByteArrayView utf8Key) const
{
    // Seeded: keys come from other peers, and a fixed hash would let one of
    // them send keys that all land in one probe run.
    return qHash(utf8Key, m_seed);
}

EntryRecord *EntryTable::makeRecord(QByteArrayView utf8Key, const Entry &entry)
{
    const qsizetype valueSize = entry.tombstone ? 0 : entry.value.size();
    const std::size_t bytes = std::max(sizeof(EntryRecord),
                                       EntryRecord::HeaderBytes + std::size_t(utf8Key.size()) + std::size_t(valueSize));
    void *memory = std::malloc(bytes);
    if (!memory)
        throw std::bad_alloc();
    auto *record = static_cast<EntryRecord *>(memory);
    record->hlc = entry.hlc;
    record->writer = entry.writer;
    record->ref = 1;
    record->keySize = quint32(utf8Key.size());
    record->valueSize = quint32(valueSize) | (entry.tombstone ? EntryRecord::TombstoneBit : 0);
    char *data = static_cast<char *>(memory) + EntryRecord::HeaderBytes;
    if (!utf8Key.isEmpty())
        std::memcpy(data, utf8Key.data(), size_t(utf8Key.size()));
    if (valueSize)
        std::memcpy(data + utf8Key.size(), entry.value.constData(), size_t(valueSize));
    return record;
}

void EntryTable::release(EntryRecord *record)
{
    if (--record->ref == 0)
        std::free(record);
}

EntryTable::Position EntryTable::locate(QByteArrayView utf8Key) const
{
    Position pos;
    pos.hash = hashOf(utf8Key);
    if (!m_capacity)
        return pos;
    const quint32 h = quint32(pos.hash);
    const qsizetype mask = m_capacity - 1;
    qsizetype i = qsizetype(h) & mask;
    while (const EntryRecord *r = m_records[i]) {
        if (m_hashes[i] == h && r->keySize == quint32(utf8Key.size())
            && (utf8Key.isEmpty() || std::memcmp(r->keyData(), utf8Key.data(), size_t(utf8Key.size())) == 0)) {
            pos.slot = i;
            pos.found = true;
            return pos;
        }
        i = (i + 1) & mask;
    }
    pos.slot = i;
    return pos;
}

QString EntryRef::key() const
{
    QStringDecoder utf8(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless | QStringDecoder::Flag::ConvertInitialBom);
    return utf8.decode(utf8Key());
}

EntryRef EntryTable::find(QByteArrayView utf8Key) const
{
    return at(locate(utf8Key));
}

void EntryTable::store(const Position &pos, QByteArrayView utf8Key, const Entry &entry)
{
    put(pos, makeRecord(utf8Key, entry));
}

void EntryTable::insert(EntryRef ref)
{
    auto *record = const_cast<EntryRecord *>(ref.m_record);
    ++record->ref;
    put(locate(ref.utf8Key()), record);
}

void EntryTable::put(const Position &pos, EntryRecord *record)
{
    if (pos.found) {
        release(m_records[pos.slot]);
        m_records[pos.slot] = record;
        return;
    }
    if (pos.slot < 0 || overLoaded(m_size + 1, m_capacity)) {
        rehash(m_capacity ? m_capacity * 2 : 16);
        placeNew(pos.hash, record);
    } else {
        m_records[pos.slot] = record;
        m_hashes[pos.slot] = quint32(pos.hash);
    }
    ++m_size;
}

bool EntryTable::remove(QByteArrayView utf8Key)
{
    const Position pos = locate(utf8Key);
    if (!pos.found)
        return false;
    eraseSlot(pos.slot);
    return true;
}

void EntryTable::placeNew(std::size_t hash, EntryRecord *record)
{
    const qsizetype mask = m_capacity - 1;
    qsizetype i = qsizetype(quint32(hash)) & mask;
    while (m_records[i])
        i = (i + 1) & mask;
    m_records[i] = record;
    m_hashes[i] = quint32(hash);
}

void EntryTable::rehash(qsizetype capacity)
{
    m_layout = nextLayout();
    std::unique_ptr<EntryRecord *[]> records(std::move(m_records));
    std::unique_ptr<quint32[]> hashes(std::move(m_hashes));
    const qsizetype old = m_capacity;
    m_records.reset(new EntryRecord *[size_t(capacity)]());
    m_hashes.reset(new quint32[size_t(capacity)]);
    m_capacity = capacity;
    for (qsizetype i = 0; i < old; ++i) {
        if (records[i])
            placeNew(hashes[i], records[i]);
    }
}

void EntryTable::eraseSlot(qsizetype slot)
{
    m_layout = nextLayout();
    release(m_records[slot]);
    m_records[slot] = nullptr;
    --m_size;
    // Backward shift: pull later entries of the probe run into the hole
    // unless that would move one before its home slot. No grave markers,
    // so lookups never slow down after many deletes.
    const qsizetype mask = m_capacity - 1;
    qsizetype hole = slot;
    for (qsizetype j = (slot + 1) & mask; m_records[j]; j = (j + 1) & mask) {
        const qsizetype home = qsizetype(m_hashes[j]) & mask;
        const bool homeInRange = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (homeInRange)
            continue;
        m_records[hole] = m_records[j];
        m_hashes[hole] = m_hashes[j];
        m_records[j] = nullptr;
        hole = j;
    }
}
