#pragma once

#include "mapstate.h"

class HistoryFileIndex;
class HistoryIndex;

#include <QByteArray>
#include <QString>
#include <QVector>

#include <functional>

// The on-disk format of a local store, version 2 (docs/PERSISTENCE.md has
// the layout table; version 1 files are read as well). Plain functions over byte buffers: no file, no QObject,
// so every corruption case is tested directly and the reader can be fuzzed.
//
// A store file is a header (magic, format version, the writer's peer id, the
// map URI, a checksum) followed by records. Each record carries its own
// CRC-32C, so a torn or flipped record is found and skipped; because the map
// merges last-writer-wins, the good records still give a correct (if older)
// state whatever was lost between them. Readers never assert on input.
namespace Journal {

constexpr char Magic[8] = {'D', 'M', 'A', 'P', 'S', 'T', 'O', 'R'};
// Version 2 added history records, version 3 lost records; an older file
// is a newer one without them, so all are read, and writers write the newest.
constexpr quint16 FormatVersion = 3;
constexpr quint16 OldestReadableVersion = 1;
constexpr int HeaderFixedSize = 8 + 2 + 2 + 8 + 4; // magic, version, flags, peer, uri length
constexpr int RecordHeaderSize = 4 + 4 + 1;        // crc, payload length, type
constexpr quint32 MaxUriBytes = 65535;
// One record holds at most one oversized entry (Wire::MaxValueBytes) plus
// its key; writers seal records near RecordTargetBytes.
constexpr quint32 MaxRecordPayload = 80 * 1024 * 1024;
constexpr qsizetype RecordTargetBytes = 1024 * 1024;

enum class RecordType : quint8 {
    Entries = 1, // a run of entries in the wire entry format (docs/PROTOCOL.md)
    Clock = 2,   // 8 bytes: the replica's clock when the snapshot was written
    History = 3, // like Entries, but writes that are no longer (or never were)
                 // a key's current write: kept for history, never merged into the state
    Lost = 4,    // like History, for writes that lost a conflict: they arrived
                 // after a newer write of their key and never became current
};

// CRC-32C (Castagnoli), the checksum of iSCSI and ext4: better error
// detection than CRC-32 on short records, and cheap in software.
// Uses the CPU's crc32 instruction where there is one.
quint32 crc32c(const char *data, qsizetype size, quint32 crc = 0);
// The same with tables only, everywhere (tests compare the two).
quint32 crc32cPortable(const char *data, qsizetype size, quint32 crc = 0);

struct Header
{
    quint16 version = FormatVersion;
    quint64 peerId = 0;
    QString mapUri;
};

QByteArray encodeHeader(const Header &header);

enum class Error {
    NoError = 0,
    TruncatedHeader,    // shorter than a whole header: not a store, or cut
    NotAStore,          // wrong magic
    UnsupportedVersion, // a format version this build cannot read
    DamagedHeader,      // header checksum mismatch or an impossible field
    ForeignMap,         // a store of another map
};

// Appends one record: checksum, length, type, payload.
void appendRecord(QByteArray &out, RecordType type, const char *payload, qsizetype size);
inline void appendRecord(QByteArray &out, RecordType type, const QByteArray &payload)
{
    appendRecord(out, type, payload.constData(), payload.size());
}
void appendClockRecord(QByteArray &out, quint64 hlc);

enum class RecordError {
    NoError = 0,
    Truncated,   // fewer bytes left than the record claims
    BadLength,   // longer than any record may be
    BadType,
    BadChecksum,
    BadPayload,  // checksum fine but the payload does not decode
};
QString recordErrorText(RecordError error);

// A byte range the reader skipped, with why.
struct Damage
{
    qsizetype offset = 0;
    qsizetype length = 0;
    RecordError reason = RecordError::NoError;
};

struct ReadResult
{
    Error error = Error::NoError;
    QString message;          // a sentence for users when error != NoError
    Header header;
    qsizetype headerSize = 0;
    MapState state;           // every good record merged last-writer-wins
    quint64 clock = 0;        // highest clock seen (entries and clock records)
    int records = 0;          // good records
    qsizetype goodEnd = 0;    // end of the last good record
    qsizetype fileSize = 0;
    QVector<Damage> damage;   // skipped ranges, in file order
    // True when all damage is one range running to the end of the file: the
    // expected result of a crash during an append, repaired by truncating.
    bool tornTailOnly() const;
    qsizetype damagedBytes() const;
};

// Reads a whole store image. expectedUri empty: accept any map. Never fails
// on records: bad ones are skipped (see Damage); only header problems set
// error, and then nothing else is filled in except header fields read so far.
// With history, every write of entries and history records is added to it
// too; without, history records are checked but not decoded.
ReadResult read(const char *data, qsizetype size, const QString &expectedUri, HistoryIndex *history = nullptr);

// The pieces of read(), for readers that look at part of a file
// (HistoryFile). readHeader fills header, headerSize and goodEnd, or error
// and message (false). scanRecords walks the records from offset on: visit
// gets each one whose checksum holds and answers NoError or BadPayload;
// damage is skipped as read() does, and records, goodEnd and damage are
// filled in.
bool readHeader(const char *data, qsizetype size, const QString &expectedUri, ReadResult *result);
using RecordVisitor = std::function<RecordError(qsizetype offset, RecordType type, const char *payload, qsizetype length)>;
void scanRecords(const char *data, qsizetype size, qsizetype offset, const RecordVisitor &visit, ReadResult *result);
// Checks the record at offset (length, type, checksum).
RecordError checkRecordAt(const char *data, qsizetype size, qsizetype offset, RecordType *type, qsizetype *payloadLength);

QString errorText(Error error);

// The records of a snapshot of state: a clock record, then entries sealed
// into records of about RecordTargetBytes.
// With index, notes where each entry went (HistoryFileIndex).
void appendSnapshot(QByteArray &out, const MapState &state, quint64 clock, HistoryFileIndex *index = nullptr);

// History records of every write in history that is not its key's current
// write in state (appendSnapshot has those), sealed like a snapshot's, each
// key's writes together and oldest first; then lost records of the writes
// that lost a conflict.
void appendHistory(QByteArray &out, const HistoryIndex &history, const MapState &state, HistoryFileIndex *index = nullptr);

} // namespace Journal
