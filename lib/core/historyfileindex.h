#pragma once

#include <QByteArray>
#include <QByteArrayView>
#include <QString>

#include <vector>

// The index file beside a store that keeps history: where each key's writes
// lie in the file as its last compaction wrote it, so that the CLI answers
// "this key's history" or "the map at 14:02" by reading what the answer
// holds instead of decoding the whole file (docs/PERSISTENCE.md, "History
// index"). It is derived data: a missing, damaged or stale index only makes
// readers fall back to reading every record.
//
// A compaction writes each key's current write in an entries record and,
// with history, each key's other writes one after another in clock order
// (Journal::appendHistory goes key by key). One slot per key records both
// places; slots are sorted by a 64-bit hash of the key's UTF-8 bytes.
//
// Layout, little-endian:
//   magic "DMAPHIDX", u16 version (1), u16 flags (0),
//   u64 coveredEnd     the image's size: records past it are the journal's tail
//   u32 headerCrc      the store header's checksum field
//   u32 firstCrc       the first record's checksum field
//   u64 lastRecord     offset of the image's last record
//   u32 lastCrc        its checksum field
//   u64 lostStart      where the lost records begin (coveredEnd: none);
//                      readers read them whole, like the tail
//   u32 slotCount, then slotCount slots of 40 bytes:
//     u64 keyHash, u64 currentRecord, u32 currentPos, u32 historyCount,
//     u64 historyRecord, u32 historyPos, u32 reserved (0)
//   (a record offset of 0 means none; a position is the entry's offset in
//   its record's payload), then u32 CRC-32C of everything before it.
class HistoryFileIndex
{
public:
    static constexpr char Magic[8] = {'D', 'M', 'A', 'P', 'H', 'I', 'D', 'X'};
    static constexpr quint16 Version = 1;
    static constexpr int FixedSize = 8 + 2 + 2 + 8 + 4 + 4 + 8 + 4 + 8 + 4;
    static constexpr int SlotSize = 40;

    struct Slot
    {
        quint64 keyHash = 0;
        quint64 currentRecord = 0;
        quint32 currentPos = 0;
        quint32 historyCount = 0;
        quint64 historyRecord = 0;
        quint32 historyPos = 0;
    };

    // The index of the store at storePath: FILE.index.
    static QString pathFor(const QString &storePath) { return storePath + QStringLiteral(".index"); }
    static quint64 hashKey(QByteArrayView utf8Key);

    // While an image is written: the entry at pos in the payload of the
    // record that starts at record. History writes of one key must come one
    // after another, in clock order.
    void addCurrent(QByteArrayView utf8Key, qsizetype record, qsizetype pos);
    void addHistory(QByteArrayView utf8Key, qsizetype record, qsizetype pos);
    // Where the image's lost records begin (the end of its history records).
    void setLostStart(qsizetype offset) { m_lostStart = offset; }

    // The index of image, the whole compacted file these offsets point into.
    QByteArray encode(const char *image, qsizetype imageSize) const;

    // Checks an index and that it belongs to image (a store file whose
    // header ends at headerSize). False with why when it does not; then
    // nothing is filled in. The slots are read from bytes when asked for,
    // not copied: bytes must outlive this object's use (a reader maps the
    // file; copying a million slots cost more than the question asked).
    bool decode(QByteArrayView bytes, const char *image, qsizetype imageSize, qsizetype headerSize, QString *why);

    qsizetype coveredEnd() const { return m_coveredEnd; }
    qsizetype lostStart() const { return m_lostStart; }
    size_t slotCount() const { return m_slotCount; }
    Slot slot(size_t i) const;
    // The slots whose key hash is hash: [first, last).
    std::pair<size_t, size_t> find(quint64 hash) const;

private:
    struct Pending
    {
        Slot slot;
        QByteArray key; // to merge slots of one key, and only those
    };
    std::vector<Pending> m_pending;
    qsizetype m_lastHistory = -1; // the pending slot of the key being added to
    const char *m_slotData = nullptr; // decode()'s bytes, at the first slot
    size_t m_slotCount = 0;
    qsizetype m_coveredEnd = 0;
    qsizetype m_lostStart = 0;
};
