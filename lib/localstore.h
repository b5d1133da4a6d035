#pragma once

#include "distmap_global.h"
#include "maptypes.h"

#include <QFile>
#include <QLockFile>
#include <QObject>
#include <QPointer>
#include <QElapsedTimer>
#include <QTimer>
#include <QUrl>

#include <memory>

class DistributedMap;
class HistoryIndex;
class QThread;
struct Entry;
namespace Journal {
struct ReadResult;
}

/// Keeps one map's replica (values, tombstones, clocks and this peer's id)
/// in a file, so the map outlives every process that holds it. The format and
/// the durability policy are in docs/PERSISTENCE.md; lib/core/journal.h reads
/// and writes the bytes.
///
/// Usage: construct, open() (reads the file or creates it), attach(map)
/// before the map's connection is opened: the stored entries are loaded at
/// once (readable and writable offline), the connection claims the stored
/// peer id, and from then on every write that becomes a key's current write,
/// local or from the network, is appended to the journal. The journal is
/// compacted into an atomically replaced snapshot when it outgrows it.
///
/// History: unless historyRetentionMs is 0, the store also keeps the writes
/// that were superseded (replaced by a newer write, or older than the key's
/// write when they arrived) for that long, in memory (history()) and in the
/// file, across compactions. readHistory() reads them from a file that
/// another process may hold.
///
/// Durable means: the record is written and fdatasync() has returned. Each
/// journaled write gets a sequence number (lastSeq()); durable(upToSeq) fires
/// once every write up to it is durable. With EveryWrite, a local set() or
/// remove() is durable before it returns; with Batched, within the batch
/// interval. One thread; a file is held by one LocalStore at a time (lock file).
class DISTMAP_EXPORT LocalStore : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY(LocalStore)
public:
    /// What errorOccurred() reports.
    enum Error {
        NoError = 0,        //!< no error yet
        IoError,            //!< the file or its directory cannot be read or written
        Locked,             //!< another process holds the store
        NotAStore,          //!< the file is something else
        UnsupportedVersion, //!< written by a newer (or unknown) format version
        DamagedHeader,      //!< the header is cut short or fails its checksum
        ForeignMap,         //!< the file holds another map
    };
    Q_ENUM(Error)

    /// When writes reach the disk (docs/PERSISTENCE.md).
    enum class Durability {
        EveryWrite, //!< fdatasync before a local write returns; network writes once per event-loop pass
        Batched,    //!< fdatasync every batchIntervalMs at most, one record per batch
    };
    Q_ENUM(Durability)

    /// How a store writes, compacts and forgets; fixed at construction.
    struct Options
    {
        Durability durability = Durability::Batched; //!< when writes reach the disk
        int batchIntervalMs = 100; //!< with Batched: how long a write may wait for its fdatasync, in ms
        /// Compact when the journal after the snapshot is larger than the
        /// snapshot and than this many bytes.
        qint64 compactionMinBytes = 4 * 1024 * 1024;
        /// Tombstones older than this are dropped (0: never). A peer offline
        /// for longer may bring a deleted key back: see docs/PERSISTENCE.md.
        qint64 tombstoneMaxAgeMs = distmap::DefaultTombstoneRetentionMs;
        /// Checks for old tombstones and history this often (1 s at least).
        int gcIntervalMs = 3600 * 1000;
        /// Superseded writes younger than this are kept for history (0: none
        /// are; the file then holds the state and the journal since the last
        /// compaction). Independent of tombstoneMaxAgeMs.
        qint64 historyRetentionMs = DefaultHistoryRetentionMs;
        /// Caps the history's size (its writes in the record format, current
        /// ones included); the oldest go first. 0: no cap. The index lives in
        /// memory too (about 2.5 times these bytes), hence a cap by default.
        qint64 historyMaxBytes = DefaultHistoryMaxBytes;
    };
    static constexpr qint64 DefaultHistoryRetentionMs = 7LL * 24 * 3600 * 1000; //!< 7 days
    static constexpr qint64 DefaultHistoryMaxBytes = 16LL * 1024 * 1024;       //!< 16 MiB

    /// What open() found.
    struct LoadReport
    {
        int records = 0;          //!< records read
        int entries = 0;          //!< keys, tombstones included
        int tombstones = 0;       //!< tombstones among the entries
        qint64 fileBytes = 0;     //!< the file's size once open
        qint64 damagedBytes = 0;  //!< skipped as unreadable
        bool tornTail = false;    //!< the damage was a torn last append (crash)
        bool created = false;     //!< no file existed; a new one was written
        int formatVersion = 0;    //!< of the file as found (0 when created)
        qint64 historyWrites = 0; //!< writes in history, current ones included
        QString damagedCopy;      //!< where a file with mid-file damage was copied
        qint64 elapsedMs = 0;     //!< how long open() took, in ms
    };

    /// A store for mapUri in the file at path, with the default Options.
    /// Nothing is read until open().
    explicit LocalStore(const QString &path, const QString &mapUri, QObject *parent = nullptr);
    /// The same, with options.
    LocalStore(const QString &path, const QString &mapUri, const Options &options, QObject *parent = nullptr);
    ~LocalStore() override; //!< flushes

    QString path() const { return m_path; }              //!< the store's file
    QString mapUri() const { return m_mapUri; }          //!< the map it keeps
    const Options &options() const { return m_options; } //!< as given at construction

    /// Reads the store, or creates it (and its directory) when missing. A torn
    /// tail is cut off; a file with other damage is copied aside and rewritten
    /// at attach(). False on errors that leave nothing to load (error()).
    bool open();
    /// The same, reading the file in a worker thread: returns at once, and
    /// openFinished() says how it went. The lock is taken (and a missing
    /// file created) in the calling thread first. A large store takes
    /// seconds to read; this keeps a window responsive meanwhile. open()
    /// returns false while a read started here is running.
    void openInBackground();
    /// Whether the file is open for appending (open() succeeded).
    bool isOpen() const { return m_file.isOpen(); }
    /// The last error reported through errorOccurred (NoError if none yet;
    /// open() clears it).
    Error error() const { return m_error; }
    /// The message of the last error reported through errorOccurred.
    QString errorString() const { return m_errorString; }
    /// What the last open() found.
    const LoadReport &loadReport() const { return m_report; }

    /// The peer id kept in the store (a new store takes a random one); 0
    /// before open().
    quint64 peerId() const { return m_peerId; }

    /// Loads the stored entries into map and journals its writes from now on.
    /// Call after open() and before map->connection()->open(); the map must
    /// be empty of local writes. Runs tombstone GC once, and sets the map's
    /// tombstone retention to tombstoneMaxAgeMs. False if not open (or
    /// attached already).
    bool attach(DistributedMap *map);
    /// The attached map (null before attach() and once it is destroyed).
    DistributedMap *map() const; // out of line: the header needs no DistributedMap

    quint64 lastSeq() const { return m_lastSeq; }       //!< last journaled write (its sequence number)
    quint64 durableSeq() const { return m_durableSeq; } //!< last durable write (its sequence number)
    qint64 fileBytes() const { return m_fileBytes; }    //!< the file's size now, in bytes
    /// fdatasync calls on the journal and the time they took (distmap keep's
    /// metrics): the latency every durable write waits for.
    struct SyncTimes
    {
        quint64 count = 0;       //!< calls so far
        double totalSeconds = 0; //!< their time together, in seconds
        double lastSeconds = 0;  //!< the last one's time, in seconds
    };
    /// fdatasync calls on the journal so far (see SyncTimes).
    const SyncTimes &syncTimes() const { return m_syncTimes; }

    /// Writes and fdatasyncs everything pending now. False on an I/O error
    /// (the writes stay pending and are retried).
    bool flush();
    /// Replaces the file with a snapshot of the attached map. False when
    /// no map is attached or on an I/O error (the old file stays).
    bool compact();
    /// Drops tombstones older than tombstoneMaxAgeMs from the map and, when
    /// there were any, from the file; drops history older than its window
    /// (compacting once an eighth of it went). Returns the tombstones dropped.
    int collectGarbage();

    /// Every write kept for history, the current ones included; null when
    /// historyRetentionMs is 0 or the store is not open.
    const HistoryIndex *history() const { return m_history.get(); }
    /// Reads the history of the store at path into history, read-only and
    /// without the lock, so it works beside the process that holds the store
    /// (a torn tail of its last append is skipped). expectedUri empty: any
    /// map. Returns NoError or the error that kept the file from being read,
    /// with a sentence in message; on success message says what damage was
    /// skipped, if any.
    static Error readHistory(const QString &path, const QString &expectedUri, HistoryIndex *history, QString *message);

    /// Where the desktop app keeps a map: AppDataLocation/maps/HOST-PORT/
    /// URI-HASH.distmap, a readable name plus a hash of relay URL and URI.
    static QString defaultPathFor(const QUrl &relay, const QString &mapUri);
    /// A file name for mapUri inside a directory of stores (distmap keep).
    static QString fileNameFor(const QString &mapUri);

Q_SIGNALS:
    /// openInBackground() is done: ok as open() would have returned.
    void openFinished(bool ok);
    /// Every journaled write up to upToSeq is on disk.
    void durable(quint64 upToSeq);
    /// The file was replaced with a snapshot; bytes is its new size.
    void compacted(qint64 bytes);
    /// collectGarbage() dropped this many tombstones (not emitted for none).
    void garbageCollected(int tombstones);
    /// Something went wrong; message says what, naming the file. error()
    /// and errorString() keep it.
    void errorOccurred(LocalStore::Error error, const QString &message);

private:
    void journal(const QString &key, const Entry &entry, bool local);
    void keepSuperseded(const QString &key, const Entry &entry);
    void scheduleFlush(bool now);
    // What reading the file gives (readFile(), a pure function of the
    // file, so that openInBackground() can run it in a worker thread).
    struct Loaded;
    static std::unique_ptr<Loaded> readFile(const QString &path, const QString &mapUri, bool withHistory);
    bool beginOpen(bool *exists);
    bool createFile();
    bool finishOpen(std::unique_ptr<Loaded> loaded);
    qsizetype applyHistoryRetention();
    void writeHistoryIndex(const QByteArray &index);
    void sealRun();
    bool writeSnapshot(const QByteArray &body);
    bool openForAppend();
    void fail(Error error, const QString &message);
    void ioError(const QString &message);

    QString m_path;
    QString m_mapUri;
    Options m_options;
    Error m_error = NoError;
    QString m_errorString;
    LoadReport m_report;
    std::unique_ptr<QLockFile> m_lock;
    QFile m_file;
    quint64 m_peerId = 0;
    std::unique_ptr<Journal::ReadResult> m_loaded; // between open() and attach()
    bool m_rewriteOnAttach = false;
    QPointer<DistributedMap> m_map;

    std::unique_ptr<HistoryIndex> m_history;
    QThread *m_reader = nullptr; // openInBackground()'s, while it reads
    qint64 m_liveBytes = 0;      // of the state read, for attach()
    QElapsedTimer m_openTimer;
    QByteArray m_run;     // entries not yet sealed into a record
    QByteArray m_lostRun; // writes that lost a conflict, not yet sealed into a record
    QByteArray m_pending; // sealed records not yet written
    quint64 m_lastSeq = 0;
    quint64 m_durableSeq = 0;
    qint64 m_fileBytes = 0;
    SyncTimes m_syncTimes;
    qint64 m_snapshotBytes = 0;
    bool m_compactedByGc = false; // the last collectGarbage() compacted
    QTimer m_flushTimer;
    QTimer m_gcTimer;
};
