#include "wire.h"

#include <QStringDecoder>
#include <QStringEncoder>

#include <cstring>

namespace Wire {

namespace {

class Reader
{
public:
    Reader(const char *data, qsizetype size) : m_p(data), m_end(data + size) {}

    qsizetype remaining() const { return m_end - m_p; }
    bool atEnd() const { return m_p == m_end; }

    template<typename T>
    bool read(T *out)
    {
        if (remaining() < qsizetype(sizeof(T)))
            return false;
        *out = qFromLittleEndian<T>(m_p);
        m_p += sizeof(T);
        return true;
    }
    bool skip(qsizetype n, const char **start)
    {
        if (n < 0 || remaining() < n)
            return false;
        *start = m_p;
        m_p += n;
        return true;
    }

private:
    const char *m_p;
    const char *m_end;
};

template<typename T>
void append(QByteArray &out, T value)
{
    char buf[sizeof(T)];
    qToLittleEndian<T>(value, buf);
    out.append(buf, sizeof(T));
}

bool decodeUtf8(const char *data, qsizetype size, QString *out)
{
    // ConvertInitialBom: a key that starts with U+FEFF keeps it. Without
    // the flag the decoder drops it as a byte order mark, and the receiver
    // would hold the write under another key than the writer (found by
    // fuzz/fuzz_entries' round-trip check).
    QStringDecoder decoder(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless | QStringDecoder::Flag::ConvertInitialBom);
    *out = decoder.decode(QByteArrayView(data, size));
    return !decoder.hasError();
}

DecodeError readDigest(Reader &r, QVector<quint64> *digest, bool allowEmpty)
{
    quint32 count = 0;
    if (!r.read(&count))
        return DecodeError::Truncated;
    if (count == 0 && allowEmpty) {
        digest->clear();
        return DecodeError::NoError;
    }
    if (count > quint32(MaxBucketCount) || (count & (count - 1)) != 0 || count == 0)
        return DecodeError::BadBucketCount;
    if (r.remaining() < qsizetype(count) * 8)
        return DecodeError::Truncated;
    digest->resize(count);
    for (quint32 i = 0; i < count; ++i)
        r.read(&(*digest)[i]);
    return DecodeError::NoError;
}

void appendDigest(QByteArray &out, const QVector<quint64> &digest)
{
    append<quint32>(out, quint32(digest.size()));
    for (quint64 h : digest)
        append<quint64>(out, h);
}

} // namespace

bool isKnownType(quint8 type)
{
    switch (Type(type)) {
    case Type::Delta:
    case Type::SyncRequest:
    case Type::SyncData:
    case Type::SyncAck:
    case Type::WriteAck:
    case Type::Repair:
        return true;
    }
    return false;
}

bool isAddressed(Type type)
{
    return type == Type::SyncData || type == Type::SyncAck || type == Type::WriteAck;
}

QString errorName(ErrorCode code)
{
    switch (code) {
    case ErrorCode::NoError: return QStringLiteral("no-error");
    case ErrorCode::BadMessage: return QStringLiteral("bad-message");
    case ErrorCode::UnknownType: return QStringLiteral("unknown-type");
    case ErrorCode::UnsupportedVersion: return QStringLiteral("unsupported-version");
    case ErrorCode::HandshakeRequired: return QStringLiteral("handshake-required");
    case ErrorCode::UnknownMap: return QStringLiteral("unknown-map");
    case ErrorCode::TooLarge: return QStringLiteral("too-large");
    case ErrorCode::DuplicatePeer: return QStringLiteral("duplicate-peer");
    case ErrorCode::Unauthorized: return QStringLiteral("unauthorized");
    case ErrorCode::ReadOnly: return QStringLiteral("read-only");
    case ErrorCode::RateLimited: return QStringLiteral("rate-limited");
    case ErrorCode::AlreadyOpen: return QStringLiteral("already-open");
    case ErrorCode::UnknownPeer: return QStringLiteral("unknown-peer");
    case ErrorCode::Backlog: return QStringLiteral("backlog");
    case ErrorCode::ServerFull: return QStringLiteral("server-full");
    }
    return QStringLiteral("unknown-error");
}

QString decodeErrorText(DecodeError error)
{
    switch (error) {
    case DecodeError::NoError: return QStringLiteral("no error");
    case DecodeError::Truncated: return QStringLiteral("message truncated");
    case DecodeError::TrailingBytes: return QStringLiteral("unexpected bytes after the message");
    case DecodeError::BadKind: return QStringLiteral("entry kind is neither 1 (set) nor 2 (delete)");
    case DecodeError::KeyTooLong: return QStringLiteral("key longer than 65535 bytes");
    case DecodeError::ValueTooLong: return QStringLiteral("value longer than 64 MiB");
    case DecodeError::BadUtf8: return QStringLiteral("key is not valid UTF-8");
    case DecodeError::EmptyValue: return QStringLiteral("a set entry has an empty value");
    case DecodeError::BadBucketCount: return QStringLiteral("digest bucket count is not a power of two in 1..65536");
    case DecodeError::UnknownType: return QStringLiteral("unknown message type");
    case DecodeError::ReservedNotZero: return QStringLiteral("reserved header bytes are not zero");
    case DecodeError::BadAckFlags: return QStringLiteral("write ack flags other than 1 (durable) are set");
    }
    return QStringLiteral("unknown decode error");
}

DecodeError decodeHeader(const QByteArray &frame, Header *header)
{
    if (frame.size() < HeaderSize)
        return DecodeError::Truncated;
    const quint8 type = quint8(frame[0]);
    if (!isKnownType(type))
        return DecodeError::UnknownType;
    if (frame[2] != 0 || frame[3] != 0)
        return DecodeError::ReservedNotZero;
    header->type = Type(type);
    header->flags = quint8(frame[1]);
    header->mapId = peekMapId(frame);
    header->peer = peekPeer(frame);
    return DecodeError::NoError;
}

void appendHeader(QByteArray &out, const Header &header)
{
    out.append(char(header.type));
    out.append(char(header.flags));
    out.append('\0');
    out.append('\0');
    append<quint32>(out, header.mapId);
    append<quint64>(out, header.peer);
}

qsizetype encodedEntrySize(const QString &key, const Entry &entry)
{
    // UTF-8 never needs more than 3 bytes per UTF-16 unit.
    return EntryFixedSize + key.size() * 3 + (entry.tombstone ? 0 : 4 + entry.value.size());
}

void appendEntry(QByteArray &out, const QString &key, const Entry &entry)
{
    // Encodes the key straight into the output: a sync writes millions of
    // entries, and a temporary QByteArray per key showed up in profiles.
    const qsizetype start = out.size();
    out.resize(start + encodedEntrySize(key, entry));
    char *p = out.data() + start;
    *p++ = char(entry.tombstone ? 2 : 1);
    qToLittleEndian<quint64>(entry.hlc, p);
    qToLittleEndian<quint64>(entry.writer, p + 8);
    char *keyLength = p + 16;
    char *keyStart = p + 20;
    QStringEncoder encoder(QStringEncoder::Utf8, QStringEncoder::Flag::Stateless);
    p = encoder.appendToBuffer(keyStart, key);
    qToLittleEndian<quint32>(quint32(p - keyStart), keyLength);
    if (!entry.tombstone) {
        qToLittleEndian<quint32>(quint32(entry.value.size()), p);
        memcpy(p + 4, entry.value.constData(), size_t(entry.value.size()));
        p += 4 + entry.value.size();
    }
    out.resize(p - out.constData());
}

void appendEntry(QByteArray &out, const EntryRef &entry)
{
    const QByteArrayView key = entry.utf8Key();
    const QByteArrayView value = entry.valueView();
    const qsizetype start = out.size();
    out.resize(start + EntryFixedSize + key.size() + (entry.tombstone() ? 0 : 4 + value.size()));
    char *p = out.data() + start;
    *p++ = char(entry.tombstone() ? 2 : 1);
    qToLittleEndian<quint64>(entry.hlc(), p);
    qToLittleEndian<quint64>(entry.writer(), p + 8);
    qToLittleEndian<quint32>(quint32(key.size()), p + 16);
    p += 20;
    memcpy(p, key.data(), size_t(key.size()));
    p += key.size();
    if (!entry.tombstone()) {
        qToLittleEndian<quint32>(quint32(value.size()), p);
        memcpy(p + 4, value.data(), size_t(value.size()));
    }
}

QString keyFromUtf8(QByteArrayView utf8)
{
    QString key;
    decodeUtf8(utf8.data(), utf8.size(), &key);
    return key;
}

DecodeError readEntry(const char *data, qsizetype size, qsizetype *pos, EntryView *out)
{
    Reader r(data + *pos, size - *pos);
    quint8 kind = 0;
    quint32 keyLen = 0;
    if (!r.read(&kind))
        return DecodeError::Truncated;
    if (kind != 1 && kind != 2)
        return DecodeError::BadKind;
    if (!r.read(&out->hlc) || !r.read(&out->writer) || !r.read(&keyLen))
        return DecodeError::Truncated;
    if (keyLen > MaxKeyBytes)
        return DecodeError::KeyTooLong;
    const char *key = nullptr;
    if (!r.skip(keyLen, &key))
        return DecodeError::Truncated;
    out->key = QByteArrayView(key, keyLen);
    if (!out->key.isValidUtf8())
        return DecodeError::BadUtf8;
    out->tombstone = kind == 2;
    out->value = QByteArrayView();
    if (kind == 1) {
        quint32 valueLen = 0;
        if (!r.read(&valueLen))
            return DecodeError::Truncated;
        if (valueLen > MaxValueBytes)
            return DecodeError::ValueTooLong;
        if (valueLen == 0)
            return DecodeError::EmptyValue;
        const char *value = nullptr;
        if (!r.skip(valueLen, &value))
            return DecodeError::Truncated;
        out->value = QByteArrayView(value, valueLen);
    }
    *pos = size - r.remaining();
    return DecodeError::NoError;
}

static DecodeError readEntries(Reader &r, QVector<DecodedEntry> *out)
{
    QVector<DecodedEntry> entries;
    const char *data = nullptr;
    const qsizetype size = r.remaining();
    r.skip(size, &data);
    qsizetype pos = 0;
    EntryView view;
    while (pos < size) {
        if (const DecodeError e = readEntry(data, size, &pos, &view); e != DecodeError::NoError)
            return e;
        DecodedEntry d;
        if (!decodeUtf8(view.key.data(), view.key.size(), &d.key))
            return DecodeError::BadUtf8;
        d.entry = view.toEntry();
        entries.append(std::move(d));
    }
    *out = std::move(entries);
    return DecodeError::NoError;
}

DecodeError decodeEntries(const char *data, qsizetype size, QVector<DecodedEntry> *out)
{
    Reader r(data, size);
    return readEntries(r, out);
}

QByteArray encodeSyncRequest(const SyncRequest &request)
{
    QByteArray out;
    out.reserve(16 + request.digest.size() * 8);
    append<quint32>(out, request.syncId);
    append<quint64>(out, request.since);
    appendDigest(out, request.digest);
    return out;
}

DecodeError decodeSyncRequest(const char *data, qsizetype size, SyncRequest *out)
{
    Reader r(data, size);
    SyncRequest request;
    if (!r.read(&request.syncId) || !r.read(&request.since))
        return DecodeError::Truncated;
    if (DecodeError e = readDigest(r, &request.digest, true); e != DecodeError::NoError)
        return e;
    if (!r.atEnd())
        return DecodeError::TrailingBytes;
    *out = std::move(request);
    return DecodeError::NoError;
}

void appendSyncChunkHead(QByteArray &out, quint32 syncId, quint32 seq, bool final,
                         const QVector<quint64> &digest)
{
    append<quint32>(out, syncId);
    append<quint32>(out, seq);
    out.append(char(final ? 1 : 0));
    appendDigest(out, digest);
}

void setSyncChunkFinal(QByteArray &out, qsizetype head, bool final)
{
    out[head + 8] = final ? 1 : 0; // after syncId and seq
}

DecodeError decodeSyncChunk(const char *data, qsizetype size, SyncChunk *out)
{
    Reader r(data, size);
    SyncChunk chunk;
    quint8 final = 0;
    if (!r.read(&chunk.syncId) || !r.read(&chunk.seq) || !r.read(&final))
        return DecodeError::Truncated;
    if (final > 1)
        return DecodeError::BadKind;
    chunk.final = final == 1;
    if (DecodeError e = readDigest(r, &chunk.digest, true); e != DecodeError::NoError)
        return e;
    if (DecodeError e = readEntries(r, &chunk.entries); e != DecodeError::NoError)
        return e;
    *out = std::move(chunk);
    return DecodeError::NoError;
}

QByteArray encodeSyncAck(const SyncAck &ack)
{
    QByteArray out;
    append<quint32>(out, ack.syncId);
    append<quint32>(out, ack.seq);
    return out;
}

DecodeError decodeSyncAck(const char *data, qsizetype size, SyncAck *out)
{
    Reader r(data, size);
    SyncAck ack;
    if (!r.read(&ack.syncId) || !r.read(&ack.seq))
        return DecodeError::Truncated;
    if (!r.atEnd())
        return DecodeError::TrailingBytes;
    *out = ack;
    return DecodeError::NoError;
}

QString peerToString(quint64 peer)
{
    return QStringLiteral("%1").arg(peer, 16, 16, QLatin1Char('0'));
}

bool peerFromString(const QString &text, quint64 *peer)
{
    if (text.size() != 16)
        return false;
    bool ok = false;
    const quint64 value = text.toULongLong(&ok, 16);
    if (!ok)
        return false;
    *peer = value;
    return true;
}

QByteArray encodeWriteAck(const WriteAck &ack)
{
    QByteArray out;
    out.reserve(1 + 4 + 8 * ack.hlcs.size());
    append<quint8>(out, ack.durable ? 1 : 0);
    append<quint32>(out, quint32(ack.hlcs.size()));
    for (quint64 hlc : ack.hlcs)
        append<quint64>(out, hlc);
    return out;
}

DecodeError decodeWriteAck(const char *data, qsizetype size, WriteAck *out)
{
    Reader r(data, size);
    quint8 flags = 0;
    quint32 count = 0;
    if (!r.read(&flags) || !r.read(&count))
        return DecodeError::Truncated;
    if (flags & ~quint8(1))
        return DecodeError::BadAckFlags;
    // Checked before reserving: a forged count must not allocate.
    if (r.remaining() < qsizetype(count) * 8)
        return DecodeError::Truncated;
    if (r.remaining() > qsizetype(count) * 8)
        return DecodeError::TrailingBytes;
    WriteAck ack;
    ack.durable = flags & 1;
    ack.hlcs.resize(count);
    for (quint32 i = 0; i < count; ++i)
        r.read(&ack.hlcs[i]);
    *out = std::move(ack);
    return DecodeError::NoError;
}

} // namespace Wire
