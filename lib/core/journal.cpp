#include "journal.h"

#include "historyfileindex.h"
#include "historyindex.h"
#include "wire.h"

#include <QStringDecoder>
#include <QtEndian>

#include <array>
#include <cstring>

namespace Journal {

namespace {

// Slicing-by-8 tables for the reflected Castagnoli polynomial: eight bytes
// per step keeps checksumming well below the cost of reading the file.
using CrcTables = std::array<std::array<quint32, 256>, 8>;

CrcTables makeCrcTables()
{
    CrcTables t{};
    for (quint32 i = 0; i < 256; ++i) {
        quint32 c = i;
        for (int k = 0; k < 8; ++k)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        t[0][i] = c;
    }
    for (int s = 1; s < 8; ++s) {
        for (quint32 i = 0; i < 256; ++i)
            t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
    return t;
}

const CrcTables &crcTables()
{
    static const CrcTables tables = makeCrcTables();
    return tables;
}

template<typename T>
void append(QByteArray &out, T value)
{
    char buf[sizeof(T)];
    qToLittleEndian<T>(value, buf);
    out.append(buf, sizeof(T));
}

template<typename T>
T load(const char *p)
{
    return qFromLittleEndian<T>(p);
}

// Checks one record at offset; on success fills type/payload position.
RecordError checkRecord(const char *data, qsizetype size, qsizetype offset, RecordType *type,
                        qsizetype *payloadLength)
{
    const qsizetype left = size - offset;
    if (left < RecordHeaderSize)
        return RecordError::Truncated;
    const char *p = data + offset;
    const quint32 length = load<quint32>(p + 4);
    const quint8 rawType = quint8(p[8]);
    if (length > MaxRecordPayload)
        return RecordError::BadLength;
    if (rawType != quint8(RecordType::Entries) && rawType != quint8(RecordType::Clock)
        && rawType != quint8(RecordType::History) && rawType != quint8(RecordType::Lost))
        return RecordError::BadType;
    if (left - RecordHeaderSize < qsizetype(length))
        return RecordError::Truncated;
    if (crc32c(p + 4, 5 + qsizetype(length)) != load<quint32>(p))
        return RecordError::BadChecksum;
    *type = RecordType(rawType);
    *payloadLength = length;
    return RecordError::NoError;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DISTMAP_HAVE_CRC32_INSTRUCTION 1
// SSE 4.2's crc32 instruction computes this very polynomial, eight bytes
// per instruction: several times the tables' speed, which matters when a
// history question checks hundreds of megabytes of records.
__attribute__((target("sse4.2"))) quint32 crc32cInstruction(const char *data, qsizetype size, quint32 crc)
{
    const auto *p = reinterpret_cast<const quint8 *>(data);
    quint64 c = ~crc;
    while (size >= 8) {
        quint64 word;
        std::memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        size -= 8;
    }
    auto c32 = quint32(c);
    while (size-- > 0)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}

bool hasCrc32Instruction()
{
    static const bool has = __builtin_cpu_supports("sse4.2");
    return has;
}
#endif

} // namespace

quint32 crc32c(const char *data, qsizetype size, quint32 crc)
{
#if defined(DISTMAP_HAVE_CRC32_INSTRUCTION)
    if (hasCrc32Instruction())
        return crc32cInstruction(data, size, crc);
#endif
    return crc32cPortable(data, size, crc);
}

quint32 crc32cPortable(const char *data, qsizetype size, quint32 crc)
{
    const CrcTables &t = crcTables();
    const auto *p = reinterpret_cast<const quint8 *>(data);
    crc = ~crc;
    while (size >= 8) {
        const quint32 lo = (quint32(p[0]) | quint32(p[1]) << 8 | quint32(p[2]) << 16 | quint32(p[3]) << 24) ^ crc;
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24]
            ^ t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
        p += 8;
        size -= 8;
    }
    while (size-- > 0)
        crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

QByteArray encodeHeader(const Header &header)
{
    const QByteArray uri = header.mapUri.toUtf8();
    QByteArray out;
    out.reserve(HeaderFixedSize + uri.size() + 4);
    out.append(Magic, sizeof(Magic));
    append<quint16>(out, header.version);
    append<quint16>(out, 0); // flags, none defined
    append<quint64>(out, header.peerId);
    append<quint32>(out, quint32(uri.size()));
    out.append(uri);
    append<quint32>(out, crc32c(out.constData(), out.size()));
    return out;
}

void appendRecord(QByteArray &out, RecordType type, const char *payload, qsizetype size)
{
    const qsizetype start = out.size();
    append<quint32>(out, 0); // checksum, filled in below
    append<quint32>(out, quint32(size));
    out.append(char(type));
    out.append(payload, size);
    const quint32 crc = crc32c(out.constData() + start + 4, 5 + size);
    qToLittleEndian<quint32>(crc, out.data() + start);
}

void appendClockRecord(QByteArray &out, quint64 hlc)
{
    char buf[8];
    qToLittleEndian<quint64>(hlc, buf);
    appendRecord(out, RecordType::Clock, buf, 8);
}

namespace {

// Collects entries into records of about RecordTargetBytes.
class RecordSealer
{
public:
    RecordSealer(QByteArray &out, RecordType type)
        : m_out(out)
        , m_type(type)
    {
        m_run.reserve(RecordTargetBytes + 4096);
    }
    ~RecordSealer()
    {
        if (!m_run.isEmpty())
            appendRecord(m_out, m_type, m_run);
    }
    void add(const QString &key, const Entry &entry, HistoryFileIndex *index)
    {
        const qsizetype pos = m_run.size();
        Wire::appendEntry(m_run, key, entry);
        if (index) {
            // The key as just encoded: kind, hlc, writer, then its length.
            const char *p = m_run.constData() + pos + 1 + 8 + 8;
            index->addHistory(QByteArrayView(p + 4, qFromLittleEndian<quint32>(p)), m_out.size(), pos);
        }
        sealIfFull();
    }
    void add(const EntryRef &entry, HistoryFileIndex *index)
    {
        const qsizetype pos = m_run.size();
        Wire::appendEntry(m_run, entry);
        if (index)
            index->addCurrent(entry.utf8Key(), m_out.size(), pos);
        sealIfFull();
    }

private:
    void sealIfFull()
    {
        if (m_run.size() >= RecordTargetBytes) {
            appendRecord(m_out, m_type, m_run);
            m_run.clear();
        }
    }

    QByteArray &m_out;
    RecordType m_type;
    QByteArray m_run;
};

} // namespace

void appendSnapshot(QByteArray &out, const MapState &state, quint64 clock, HistoryFileIndex *index)
{
    appendClockRecord(out, clock);
    RecordSealer sealer(out, RecordType::Entries);
    for (const EntryRef e : state.entries())
        sealer.add(e, index);
}

void appendHistory(QByteArray &out, const HistoryIndex &history, const MapState &state, HistoryFileIndex *index)
{
    {
        RecordSealer sealer(out, RecordType::History);
        history.forEach([&](const QString &key, const Entry &entry, bool lost) {
            const EntryRef current = state.find(key);
            if (!lost && (!current || !current.sameWrite(entry)))
                sealer.add(key, entry, index);
        });
    }
    // Last, so that a reader with the index reads them all as it reads the
    // journal's tail: they are few.
    if (index)
        index->setLostStart(out.size());
    if (history.lostCount() > 0) {
        RecordSealer sealer(out, RecordType::Lost);
        history.forEach([&](const QString &key, const Entry &entry, bool lost) {
            if (lost)
                sealer.add(key, entry, nullptr);
        });
    }
}

QString recordErrorText(RecordError error)
{
    switch (error) {
    case RecordError::NoError: return QStringLiteral("no error");
    case RecordError::Truncated: return QStringLiteral("record cut short");
    case RecordError::BadLength: return QStringLiteral("impossible record length");
    case RecordError::BadType: return QStringLiteral("unknown record type");
    case RecordError::BadChecksum: return QStringLiteral("checksum mismatch");
    case RecordError::BadPayload: return QStringLiteral("record payload does not decode");
    }
    return QStringLiteral("unknown record error");
}

QString errorText(Error error)
{
    switch (error) {
    case Error::NoError: return QStringLiteral("no error");
    case Error::TruncatedHeader: return QStringLiteral("file is shorter than a store header");
    case Error::NotAStore: return QStringLiteral("not a distmap store (bad magic)");
    case Error::UnsupportedVersion: return QStringLiteral("unsupported store format version");
    case Error::DamagedHeader: return QStringLiteral("store header is damaged");
    case Error::ForeignMap: return QStringLiteral("store belongs to another map");
    }
    return QStringLiteral("unknown store error");
}

bool ReadResult::tornTailOnly() const
{
    return damage.size() == 1 && damage.first().offset == goodEnd
        && damage.first().offset + damage.first().length == fileSize;
}

qsizetype ReadResult::damagedBytes() const
{
    qsizetype n = 0;
    for (const Damage &d : damage)
        n += d.length;
    return n;
}

bool readHeader(const char *data, qsizetype size, const QString &expectedUri, ReadResult *result)
{
    ReadResult &r = *result;
    r.fileSize = size;
    auto fail = [&r](Error error, const QString &message) {
        r.error = error;
        r.message = message;
        return false;
    };
    if (size < qsizetype(sizeof(Magic)) || std::memcmp(data, Magic, sizeof(Magic)) != 0) {
        // A prefix of the magic is a store cut inside its header, not a stranger.
        if (size < qsizetype(sizeof(Magic)) && std::memcmp(data, Magic, size_t(size)) == 0)
            return fail(Error::TruncatedHeader, QStringLiteral("the store header is cut short (%1 bytes)").arg(size));
        return fail(Error::NotAStore, QStringLiteral("not a distmap store (the file does not start with the store magic)"));
    }
    if (size < HeaderFixedSize)
        return fail(Error::TruncatedHeader, QStringLiteral("the store header is cut short (%1 bytes)").arg(size));
    r.header.version = load<quint16>(data + 8);
    // Magic and version come first and keep their place in every version,
    // so a newer file is named as such instead of looking damaged.
    if (r.header.version < OldestReadableVersion || r.header.version > FormatVersion)
        return fail(Error::UnsupportedVersion,
                    QStringLiteral("store format version %1 is not supported (this build reads versions %2 to %3)")
                        .arg(r.header.version)
                        .arg(OldestReadableVersion)
                        .arg(FormatVersion));
    const quint16 flags = load<quint16>(data + 10);
    r.header.peerId = load<quint64>(data + 12);
    const quint32 uriLength = load<quint32>(data + 20);
    if (uriLength > MaxUriBytes)
        return fail(Error::DamagedHeader, QStringLiteral("the store header is damaged (map URI length %1)").arg(uriLength));
    const qsizetype headerSize = HeaderFixedSize + qsizetype(uriLength) + 4;
    if (size < headerSize)
        return fail(Error::TruncatedHeader, QStringLiteral("the store header is cut short (%1 of %2 bytes)").arg(size).arg(headerSize));
    if (crc32c(data, headerSize - 4) != load<quint32>(data + headerSize - 4))
        return fail(Error::DamagedHeader, QStringLiteral("the store header is damaged (checksum mismatch)"));
    if (flags != 0)
        return fail(Error::UnsupportedVersion, QStringLiteral("the store uses header flags %1 this build does not know").arg(flags));
    // Keep a leading U+FEFF: QString::fromUtf8 drops it as a byte order
    // mark, and a store of such a map would then not open as its own.
    QStringDecoder utf8(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless | QStringDecoder::Flag::ConvertInitialBom);
    r.header.mapUri = utf8.decode(QByteArrayView(data + HeaderFixedSize, uriLength));
    r.headerSize = headerSize;
    if (!expectedUri.isEmpty() && r.header.mapUri != expectedUri)
        return fail(Error::ForeignMap, QStringLiteral("the store holds map '%1', not '%2'").arg(r.header.mapUri, expectedUri));
    r.goodEnd = headerSize;
    return true;
}

RecordError checkRecordAt(const char *data, qsizetype size, qsizetype offset, RecordType *type, qsizetype *payloadLength)
{
    return checkRecord(data, size, offset, type, payloadLength);
}

void scanRecords(const char *data, qsizetype size, qsizetype offset, const RecordVisitor &visit, ReadResult *result)
{
    ReadResult &r = *result;
    while (offset < size) {
        RecordType type = RecordType::Entries;
        qsizetype length = 0;
        RecordError error = checkRecord(data, size, offset, &type, &length);
        if (error == RecordError::NoError)
            error = visit(offset, type, data + offset + RecordHeaderSize, length);
        if (error == RecordError::NoError) {
            ++r.records;
            offset += RecordHeaderSize + length;
            r.goodEnd = offset;
            continue;
        }
        // Look for the next record that checks out. Records are independent
        // (last-writer-wins merges them in any order), so everything after a
        // damaged stretch is still worth loading.
        Damage damage;
        damage.offset = offset;
        damage.reason = error;
        qsizetype next = offset + 1;
        for (; next + RecordHeaderSize <= size; ++next) {
            RecordType t;
            qsizetype l;
            if (checkRecord(data, size, next, &t, &l) == RecordError::NoError)
                break;
        }
        if (next + RecordHeaderSize > size)
            next = size;
        damage.length = next - offset;
        if (!r.damage.isEmpty() && r.damage.last().offset + r.damage.last().length == damage.offset)
            r.damage.last().length += damage.length; // a false start inside one damaged stretch
        else
            r.damage.append(damage);
        offset = next;
    }
}

ReadResult read(const char *data, qsizetype size, const QString &expectedUri, HistoryIndex *history)
{
    ReadResult r;
    if (!readHeader(data, size, expectedUri, &r))
        return r;
    QVector<Wire::DecodedEntry> entries;
    scanRecords(data, size, r.headerSize, [&](qsizetype, RecordType type, const char *payload, qsizetype length) {
        if (type == RecordType::Clock) {
            if (length != 8)
                return RecordError::BadPayload;
            r.clock = qMax(r.clock, load<quint64>(payload));
            return RecordError::NoError;
        }
        const bool historyOnly = type == RecordType::History || type == RecordType::Lost;
        if (historyOnly && !history)
            return RecordError::NoError; // not asked for: the checksum vouches for the bytes
        if (length == 0 || Wire::decodeEntries(payload, length, &entries) != Wire::DecodeError::NoError)
            return RecordError::BadPayload;
        if (historyOnly) {
            // Older than the state by construction: they move no clock.
            for (const Wire::DecodedEntry &d : std::as_const(entries))
                history->insert(d.key, d.entry, type == RecordType::Lost);
            return RecordError::NoError;
        }
        for (const Wire::DecodedEntry &d : std::as_const(entries)) {
            r.clock = qMax(r.clock, d.entry.hlc);
            r.state.apply(d.key, d.entry);
            if (history)
                history->insert(d.key, d.entry);
        }
        return RecordError::NoError;
    }, &r);
    return r;
}

} // namespace Journal
