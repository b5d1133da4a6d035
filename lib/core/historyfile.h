#pragma once

#include "historyfileindex.h"
#include "historyindex.h"
#include "journal.h"
#include "wire.h"

#include <QByteArrayView>
#include <QSet>

#include <functional>
#include <optional>

// History questions answered from a store file in place, for the CLI: the
// same answers as a HistoryIndex filled by Journal::read, at the cost of
// what they return. With a HistoryFileIndex that fits the file, a key's
// history reads that key's writes only and "as of" reads one run per key;
// the journal's tail (records appended since the compaction the index
// describes) is read whole, and so are the lost records at the end of the
// compacted part (they are few). Without a usable index the whole file is
// tail.
//
// Records are checked (checksum, every entry) before their writes are
// used; the covered part lazily, the tail at open(). A covered record that
// fails makes the reader drop the index and read the file as read() does.
//
// The file's bytes belong to the caller and must outlive this object.
class HistoryFile
{
public:
    // Reads the header and checks the tail; index may be empty. False on a
    // header problem (error()). data is read in place and must stay valid
    // while this object answers; index is kept (a mapped index comes as
    // QByteArray::fromRawData: its slots are read where they lie).
    bool open(const char *data, qsizetype size, const QByteArray &index, const QString &expectedUri);

    Journal::Error error() const { return m_read.error; }
    QString errorString() const { return m_read.message; }
    // Whether the index is in use, and if not, why (empty: none was given).
    bool usesIndex() const { return m_useIndex; }
    QString indexProblem() const { return m_indexProblem; }
    // Damage skipped so far, as Journal::ReadResult has it.
    const Journal::ReadResult &readResult() const { return m_read; }

    // With lost, whether each write lost a conflict (a lost record holds it).
    QVector<Entry> keyHistory(const QString &key, QVector<bool> *lost = nullptr) const;
    std::optional<Entry> at(const QString &key, quint64 instant) const;
    // As HistoryIndex answers them, but in no particular order (the CLI
    // sorts what it prints) and with Change::latest left 0.
    QVector<HistoryIndex::KeyedEntry> asOf(quint64 instant) const;
    QVector<HistoryIndex::Change> changes(quint64 from, quint64 to) const;

private:
    struct Span
    {
        qsizetype payload;
        qsizetype length;
        bool lost; // a lost record's
    };
    struct Newest
    {
        std::optional<Wire::EntryView> before; // at or before the earlier instant
        std::optional<Wire::EntryView> after;  // at or before the later one
    };
    using KeyVisitor = std::function<void(QByteArrayView key, const Newest &newest)>;

    template<typename F>
    auto guarded(F query) const;
    bool checkRecord(qsizetype record, Journal::RecordType type, qsizetype *payloadLength) const;
    bool readSlot(const HistoryFileIndex::Slot &slot, const std::function<bool(const Wire::EntryView &)> &visit) const;
    void scanTail(qsizetype from, qsizetype to) const;
    bool forEachNewest(quint64 before, quint64 after, const KeyVisitor &visit) const;
    void dropIndex() const;

    const char *m_data = nullptr;
    qsizetype m_size = 0;
    QByteArray m_indexBytes; // what m_index reads its slots from
    HistoryFileIndex m_index;
    mutable bool m_useIndex = false;
    mutable bool m_indexFailed = false;
    mutable QString m_indexProblem;
    mutable Journal::ReadResult m_read;
    mutable std::vector<Span> m_tail;
    mutable QSet<qsizetype> m_checked; // covered records that checked out
};
