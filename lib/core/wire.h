#pragma once

#include "entry.h"
#include "entrytable.h"
#include "maptypes.h"

#include <QByteArray>
#include <QString>
#include <QVector>
#include <QtEndian>

// The distmap wire format, version 1. docs/PROTOCOL.md is the reference;
// this file implements it. Decoders never throw or assert on input: they
// return an error code, and a caller that gets one drops the whole message.
namespace Wire {

constexpr int ProtocolVersion = 1;
constexpr int HeaderSize = 16;
constexpr int EntryFixedSize = 1 + 8 + 8 + 4;
constexpr quint32 MaxKeyBytes = 65535;
constexpr quint32 MaxValueBytes = 64 * 1024 * 1024;
constexpr int MaxBucketCount = 65536;
// DefaultMaxMessageBytes and ErrorCode are in maptypes.h (public API).

// Binary (routed) message types. The relay reads the 16-byte header only.
enum class Type : quint8 {
    Delta = 0x10,       // broadcast: entries written by the origin
    SyncRequest = 0x11, // routed by the relay to one ready peer
    SyncData = 0x13,    // addressed: a chunk of the responder's state
    SyncAck = 0x14,     // addressed: the requester took a chunk
    WriteAck = 0x15,    // addressed: the sender holds the writes listed
    Repair = 0x16,      // broadcast: entries of any writer (two-way sync)
};

bool isKnownType(quint8 type);
bool isAddressed(Type type); // peer field names a target on the way in

// Header flags. A Delta with AckRequested asks every peer that receives it
// to answer with a WriteAck (docs/PROTOCOL.md section 5.8).
constexpr quint8 FlagAckRequested = 0x01;

QString errorName(ErrorCode code); // "bad-message", ...

// Decoding failures, for tests and messages.
enum class DecodeError {
    NoError = 0,
    Truncated,
    TrailingBytes,
    BadKind,
    KeyTooLong,
    ValueTooLong,
    BadUtf8,
    EmptyValue,
    BadBucketCount,
    UnknownType,
    ReservedNotZero,
    BadAckFlags,
};
QString decodeErrorText(DecodeError error);

struct Header
{
    Type type = Type::Delta;
    quint8 flags = 0;
    quint32 mapId = 0;
    quint64 peer = 0; // target (client -> relay, addressed types) or origin (relay -> client)
};

DecodeError decodeHeader(const QByteArray &frame, Header *header);
void appendHeader(QByteArray &out, const Header &header);
// Overwrites the peer field in place (the relay stamps the origin this way).
inline void setHeaderPeer(QByteArray &frame, quint64 peer)
{
    qToLittleEndian<quint64>(peer, frame.data() + 8);
}
inline quint32 peekMapId(const QByteArray &frame) { return qFromLittleEndian<quint32>(frame.constData() + 4); }
inline quint64 peekPeer(const QByteArray &frame) { return qFromLittleEndian<quint64>(frame.constData() + 8); }

// Entries ----------------------------------------------------------------
void appendEntry(QByteArray &out, const QString &key, const Entry &entry);
// The same bytes from a stored write, its UTF-8 key copied as is.
void appendEntry(QByteArray &out, const EntryRef &entry);
qsizetype encodedEntrySize(const QString &key, const Entry &entry);

// Reads consecutive entries from [data, data + size) and calls
// visit(const QString &key, Entry &&entry) for each. Nothing is visited when
// the whole run is not valid, so a bad message is dropped entirely.
struct DecodedEntry
{
    QString key;
    Entry entry;
};
DecodeError decodeEntries(const char *data, qsizetype size, QVector<DecodedEntry> *out);

// One entry read in place: views into the buffer it was read from.
struct EntryView
{
    quint64 hlc = 0;
    quint64 writer = 0;
    bool tombstone = false;
    QByteArrayView key;   // UTF-8, checked
    QByteArrayView value; // JSON text as sent; empty for a tombstone

    Entry toEntry() const { return {value.toByteArray(), hlc, writer, tombstone}; }
};
// A key's text from its UTF-8 bytes as the decoders read it (a leading
// U+FEFF is kept, not taken for a byte order mark).
QString keyFromUtf8(QByteArrayView utf8);

// Reads the entry at *pos in [data, data + size) and moves *pos past it.
// The same checks as decodeEntries, without copying the key or the value.
DecodeError readEntry(const char *data, qsizetype size, qsizetype *pos, EntryView *out);

// Sync payloads ----------------------------------------------------------
struct SyncRequest
{
    quint32 syncId = 0;
    quint64 since = 0;       // send every entry with hlc > since (~0: none by age)
    QVector<quint64> digest; // empty, or a power-of-two bucket count: also send differing buckets
};
constexpr quint64 SinceNever = ~quint64(0);
QByteArray encodeSyncRequest(const SyncRequest &request);
DecodeError decodeSyncRequest(const char *data, qsizetype size, SyncRequest *out);

struct SyncChunk
{
    quint32 syncId = 0;
    quint32 seq = 0;
    bool final = false;
    QVector<quint64> digest;    // the responder's digest, on seq 0 only
    QVector<DecodedEntry> entries;
};
// Writes the chunk's fixed part; the caller appends entries after it.
void appendSyncChunkHead(QByteArray &out, quint32 syncId, quint32 seq, bool final,
                         const QVector<quint64> &digest);
// Sets the final flag of a chunk head written at offset `head` of out, for
// a chunk that learns it is the last only once its entries are in.
void setSyncChunkFinal(QByteArray &out, qsizetype head, bool final);
DecodeError decodeSyncChunk(const char *data, qsizetype size, SyncChunk *out);

struct SyncAck
{
    quint32 syncId = 0;
    quint32 seq = 0;
};
QByteArray encodeSyncAck(const SyncAck &ack);
DecodeError decodeSyncAck(const char *data, qsizetype size, SyncAck *out);

struct WriteAck
{
    bool durable = false;   // every write listed is on the sender's disk
    QVector<quint64> hlcs;  // the writes held, by hlc (the target wrote them all)
};
QByteArray encodeWriteAck(const WriteAck &ack);
DecodeError decodeWriteAck(const char *data, qsizetype size, WriteAck *out);

// Peer ids as control messages write them (control.h has the messages) ---
QString peerToString(quint64 peer);                 // 16 lowercase hex digits
bool peerFromString(const QString &text, quint64 *peer);

} // namespace Wire
