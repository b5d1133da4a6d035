#include "localstore.h"

#include "connection.h"
#include "distributedmap.h"
#include "distributedmap_p.h"
#include "historyfileindex.h"
#include "historyindex.h"
#include "journal.h"
#include "logging.h"
#include "wire.h"

#include <QCryptographicHash>
#include <QDateTime>
#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QRandomGenerator>
#include <QSaveFile>
#include <QStandardPaths>
#include <QThread>

#include <cerrno>
#include <cstring>
#include <optional>

#if defined(Q_OS_WIN)
#include <io.h>
#else
#include <fcntl.h>
#include <unistd.h>
#endif

namespace {

// fdatasync where there is one: the data and the size the next read needs,
// without forcing an mtime update; macOS needs F_FULLFSYNC to reach the disk.
bool syncFile(int fd)
{
#if defined(Q_OS_WIN)
    return ::_commit(fd) == 0;
#elif defined(Q_OS_MACOS)
    return ::fcntl(fd, F_FULLFSYNC) == 0 || ::fsync(fd) == 0;
#else
    return ::fdatasync(fd) == 0;
#endif
}

// After a rename the directory entry must reach the disk too, or a power
// cut can bring the old file back.
void syncDirectory(const QString &path)
{
#if !defined(Q_OS_WIN)
    const int fd = ::open(QFile::encodeName(QFileInfo(path).absolutePath()).constData(), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
#else
    Q_UNUSED(path);
#endif
}

LocalStore::Error storeError(Journal::Error error)
{
    switch (error) {
    case Journal::Error::NoError: return LocalStore::NoError;
    case Journal::Error::NotAStore: return LocalStore::NotAStore;
    case Journal::Error::UnsupportedVersion: return LocalStore::UnsupportedVersion;
    case Journal::Error::TruncatedHeader:
    case Journal::Error::DamagedHeader: return LocalStore::DamagedHeader;
    case Journal::Error::ForeignMap: return LocalStore::ForeignMap;
    }
    return LocalStore::IoError;
}

// Maps a store file read-only and reads it, into history if given.
// Mapping avoids a second copy of a large store; readAll is the fallback
// for file systems that cannot map.
bool readImage(QFile &file, const QString &expectedUri, HistoryIndex *history, Journal::ReadResult *result)
{
    if (!file.open(QIODevice::ReadOnly))
        return false;
    const qint64 size = file.size();
    QByteArray copy;
    const char *data = nullptr;
    if (size > 0)
        data = reinterpret_cast<const char *>(file.map(0, size));
    if (!data) {
        copy = file.readAll();
        data = copy.constData();
    }
    *result = Journal::read(data, qsizetype(copy.isEmpty() ? size : copy.size()), expectedUri, history);
    file.close();
    return true;
}

quint64 randomPeerId()
{
    quint64 id = 0;
    while (id == 0)
        id = QRandomGenerator::system()->generate64();
    return id;
}

QString readableName(const QString &text)
{
    QString name;
    for (const QChar c : text) {
        const bool plain = (c >= QLatin1Char('a') && c <= QLatin1Char('z')) || (c >= QLatin1Char('A') && c <= QLatin1Char('Z'))
            || (c >= QLatin1Char('0') && c <= QLatin1Char('9')) || c == QLatin1Char('.') || c == QLatin1Char('-');
        name.append(plain ? c : QLatin1Char('_'));
    }
    while (name.startsWith(QLatin1Char('_')) || name.startsWith(QLatin1Char('.')))
        name.remove(0, 1);
    name.truncate(60);
    return name.isEmpty() ? QStringLiteral("map") : name;
}

QString shortHash(const QString &text)
{
    return QString::fromLatin1(QCryptographicHash::hash(text.toUtf8(), QCryptographicHash::Sha256).toHex().left(12));
}

} // namespace

LocalStore::LocalStore(const QString &path, const QString &mapUri, QObject *parent)
    : LocalStore(path, mapUri, Options(), parent)
{
}

LocalStore::LocalStore(const QString &path, const QString &mapUri, const Options &options, QObject *parent)
    : QObject(parent)
    , m_path(path)
    , m_mapUri(mapUri)
    , m_options(options)
{
    m_flushTimer.setSingleShot(true);
    connect(&m_flushTimer, &QTimer::timeout, this, [this] { flush(); });
    m_gcTimer.setInterval(qMax(1000, m_options.gcIntervalMs));
    connect(&m_gcTimer, &QTimer::timeout, this, [this] { collectGarbage(); });
}

LocalStore::~LocalStore()
{
    if (m_reader) {
        // Its result is dropped with it; the read touches nothing of ours.
        m_reader->wait();
        delete m_reader;
    }
    if (m_file.isOpen())
        flush();
}

void LocalStore::fail(Error error, const QString &message)
{
    m_error = error;
    m_errorString = message;
    // errorOccurred and errorString() carry it to the user; the log line is
    // for diagnostics only, so that a CLI does not print it twice.
    qCInfo(lcStore).noquote() << message;
    Q_EMIT errorOccurred(error, message);
}

void LocalStore::ioError(const QString &message)
{
    fail(IoError, QStringLiteral("%1: %2").arg(m_path, message));
}

struct LocalStore::Loaded
{
    bool readable = false;
    QString ioError;
    Journal::ReadResult result;
    std::unique_ptr<HistoryIndex> history;
    qint64 liveBytes = 0; // the state's entries in the record format
};

std::unique_ptr<LocalStore::Loaded> LocalStore::readFile(const QString &path, const QString &mapUri, bool withHistory)
{
    auto loaded = std::make_unique<Loaded>();
    if (withHistory)
        loaded->history = std::make_unique<HistoryIndex>();
    QFile file(path);
    loaded->readable = readImage(file, mapUri, loaded->history.get(), &loaded->result);
    if (!loaded->readable)
        loaded->ioError = file.errorString();
    // Sort the history's indexes and size the state here, in
    // openInBackground()'s worker: each is a pass over a million entries
    // that the caller's thread would otherwise make at attach() or at the
    // first look at the past.
    if (loaded->history)
        loaded->history->prepareQueries();
    for (const EntryRef e : loaded->result.state.entries())
        loaded->liveBytes += Wire::EntryFixedSize + 4 + e.utf8Key().size() + e.valueView().size();
    return loaded;
}

bool LocalStore::open()
{
    if (m_file.isOpen())
        return true;
    if (m_reader) // openInBackground() holds the lock and will finish
        return false;
    bool exists = false;
    if (!beginOpen(&exists))
        return false;
    if (!exists)
        return createFile();
    return finishOpen(readFile(m_path, m_mapUri, m_options.historyRetentionMs > 0));
}

void LocalStore::openInBackground()
{
    auto finished = [this](bool ok) {
        QMetaObject::invokeMethod(this, [this, ok] { Q_EMIT openFinished(ok); }, Qt::QueuedConnection);
    };
    if (m_file.isOpen() || m_reader) {
        finished(m_file.isOpen());
        return;
    }
    bool exists = false;
    if (!beginOpen(&exists)) {
        finished(false);
        return;
    }
    if (!exists) {
        finished(createFile());
        return;
    }
    // Only the reading runs there: it touches nothing of this object.
    auto loaded = std::make_shared<std::unique_ptr<Loaded>>();
    m_reader = QThread::create([loaded, path = m_path, uri = m_mapUri, history = m_options.historyRetentionMs > 0] {
        *loaded = readFile(path, uri, history);
    });
    connect(m_reader, &QThread::finished, this, [this, loaded] {
        m_reader->deleteLater();
        m_reader = nullptr;
        Q_EMIT openFinished(finishOpen(std::move(*loaded)));
    });
    m_reader->start();
}

bool LocalStore::beginOpen(bool *exists)
{
    m_openTimer.start();
    m_error = NoError;
    m_errorString.clear();
    m_report = LoadReport();

    const QFileInfo info(m_path);
    if (!QDir().mkpath(info.absolutePath())) {
        ioError(QStringLiteral("cannot create the directory %1").arg(info.absolutePath()));
        return false;
    }
    // Two writers appending to one journal would interleave records; the
    // lock file names its holder and is taken over when that process died.
    m_lock = std::make_unique<QLockFile>(m_path + QStringLiteral(".lock"));
    m_lock->setStaleLockTime(0);
    if (!m_lock->tryLock(0)) {
        qint64 pid = 0;
        QString host, app;
        m_lock->getLockInfo(&pid, &host, &app);
        m_lock.reset();
        fail(Locked, QStringLiteral("%1: the store is in use by another process (pid %2 on %3)")
                         .arg(m_path)
                         .arg(pid)
                         .arg(host.isEmpty() ? QStringLiteral("this host") : host));
        return false;
    }
    *exists = info.exists();
    return true;
}

bool LocalStore::createFile()
{
    m_liveBytes = 0;
    m_loaded = std::make_unique<Journal::ReadResult>();
    if (m_options.historyRetentionMs > 0)
        m_history = std::make_unique<HistoryIndex>();
    m_peerId = randomPeerId();
    if (!writeSnapshot(Journal::encodeHeader({Journal::FormatVersion, m_peerId, m_mapUri}))) {
        m_loaded.reset();
        m_history.reset();
        m_lock.reset();
        return false;
    }
    m_report.created = true;
    qCInfo(lcStore).noquote() << "created" << m_path << "for" << m_mapUri;
    return finishOpen(nullptr);
}

bool LocalStore::finishOpen(std::unique_ptr<Loaded> loaded)
{
    if (loaded) {
        if (!loaded->readable) {
            ioError(loaded->ioError);
            m_lock.reset();
            return false;
        }
        m_loaded = std::make_unique<Journal::ReadResult>(std::move(loaded->result));
        m_liveBytes = loaded->liveBytes;
        m_history = std::move(loaded->history);
        if (m_loaded->error != Journal::Error::NoError) {
            fail(storeError(m_loaded->error), QStringLiteral("%1: %2").arg(m_path, m_loaded->message));
            m_loaded.reset();
            m_history.reset();
            m_lock.reset();
            return false;
        }
        m_report.formatVersion = m_loaded->header.version;
        // An older format is rewritten in this one at attach(), before
        // anything of the new format is appended to it.
        if (m_loaded->header.version != Journal::FormatVersion)
            m_rewriteOnAttach = true;
        m_peerId = m_loaded->header.peerId ? m_loaded->header.peerId : randomPeerId();
        m_report.records = m_loaded->records;
        m_report.damagedBytes = m_loaded->damagedBytes();
        if (m_loaded->tornTailOnly()) {
            // A crash during an append: everything before it is whole.
            m_report.tornTail = true;
            QFile cut(m_path);
            if (!cut.open(QIODevice::ReadWrite) || !cut.resize(m_loaded->goodEnd) || !syncFile(cut.handle())) {
                ioError(QStringLiteral("cannot cut off the torn tail: %1").arg(cut.errorString()));
                m_loaded.reset();
                m_history.reset();
                m_lock.reset();
                return false;
            }
            qCInfo(lcStore).noquote() << m_path << "recovered from a torn tail of" << m_report.damagedBytes << "bytes";
        } else if (!m_loaded->damage.isEmpty()) {
            // Damage inside the file is not a crash we caused: keep the
            // evidence, load what checks out and rewrite the file at attach.
            m_report.damagedCopy = m_path + QStringLiteral(".damaged-")
                + QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-hhmmss"));
            QFile::copy(m_path, m_report.damagedCopy);
            m_rewriteOnAttach = true;
            QStringList ranges;
            for (const Journal::Damage &d : std::as_const(m_loaded->damage))
                ranges << QStringLiteral("%1 bytes at %2 (%3)").arg(d.length).arg(d.offset).arg(Journal::recordErrorText(d.reason));
            qCWarning(lcStore).noquote() << m_path << "is damaged; skipped" << ranges.join(QStringLiteral(", "))
                                         << "; a copy is in" << m_report.damagedCopy;
        }
        if (!m_loaded->header.peerId)
            m_rewriteOnAttach = true;
    }
    if (!openForAppend()) {
        m_loaded.reset();
        m_history.reset();
        m_lock.reset();
        return false;
    }
    m_snapshotBytes = m_fileBytes;
    m_report.fileBytes = m_fileBytes;
    m_report.entries = m_loaded->state.entryCount();
    m_report.tombstones = m_loaded->state.tombstoneCount();
    m_report.historyWrites = m_history ? m_history->size() : 0;
    m_report.elapsedMs = m_openTimer.elapsed();
    return true;
}

bool LocalStore::openForAppend()
{
    m_file.close();
    m_file.setFileName(m_path);
    if (!m_file.open(QIODevice::WriteOnly | QIODevice::Append | QIODevice::Unbuffered)) {
        ioError(QStringLiteral("cannot open for writing: %1").arg(m_file.errorString()));
        return false;
    }
    m_fileBytes = m_file.size();
    return true;
}

DistributedMap *LocalStore::map() const
{
    return m_map;
}

bool LocalStore::attach(DistributedMap *map)
{
    if (!m_file.isOpen() || !map || !m_loaded)
        return false;
    m_map = map;
    if (Connection *connection = map->connection()) {
        if (connection->state() == Connection::Closed)
            connection->setPeerId(m_peerId);
        else
            qCWarning(lcStore).noquote() << m_path << "attached to an open connection; its writes keep peer id"
                                         << Wire::peerToString(connection->peerId());
    }
    DistributedMapPrivate *const hooks = DistributedMapPrivate::get(map);
    hooks->clock().observe(m_loaded->clock);
    // The map rejoins instead of resurrecting deletes when it has been away
    // longer than this store keeps tombstones.
    map->setTombstoneRetention(m_options.tombstoneMaxAgeMs);
    const qint64 liveBytes = m_liveBytes;
    hooks->load(std::move(m_loaded->state));
    m_loaded.reset();
    hooks->setEntryObserver([this](const QString &key, const Entry &entry, Replica::Source source) {
        journal(key, entry, source == Replica::Source::Local);
    });
    hooks->setDurableStore(this);
    if (m_history) {
        // A delta that lost to the key's newer write never becomes current,
        // so the entry observer does not see it; history keeps it.
        connect(map, &DistributedMap::deltaObserved, this, [this](const DistributedMap::DeltaEvent &event) {
            if (event.direction != DistributedMap::DeltaEvent::Incoming || event.outcome != distmap::Outcome::Superseded
                || event.operation == DistributedMap::DeltaEvent::SyncChunk)
                return;
            Entry entry;
            entry.hlc = event.hlc;
            entry.writer = event.writer;
            entry.tombstone = event.operation == DistributedMap::DeltaEvent::Delete;
            if (!entry.tombstone)
                entry.value = event.value;
            keepSuperseded(event.key, entry);
        });
    }

    const qint64 historyBytes = m_history ? m_history->bytes() : 0;
    const int collected = collectGarbage(); // compacts when it dropped any
    // What a compaction would write: the state, and the history (which
    // holds the current writes too).
    const qint64 keptBytes = qMax(liveBytes, historyBytes);
    // A journal much longer than what it holds is compacted at once.
    const bool bloated = m_fileBytes > 2 * keptBytes + m_options.compactionMinBytes;
    const bool compacted = (collected > 0 || m_compactedByGc) || ((m_rewriteOnAttach || bloated) && compact());
    m_rewriteOnAttach = false;
    // Without a fresh snapshot, what it would hold stands in for it when
    // deciding how much journal is too much.
    if (!compacted)
        m_snapshotBytes = qMin(m_fileBytes, keptBytes);
    if (m_options.tombstoneMaxAgeMs > 0 || m_history)
        m_gcTimer.start();
    return true;
}

void LocalStore::journal(const QString &key, const Entry &entry, bool local)
{
    Wire::appendEntry(m_run, key, entry);
    if (m_history)
        m_history->insert(key, entry);
    ++m_lastSeq;
    if (m_run.size() >= Journal::RecordTargetBytes)
        sealRun();
    scheduleFlush(local);
}

void LocalStore::keepSuperseded(const QString &key, const Entry &entry)
{
    // A write delivered twice is kept once.
    if (!m_history->insert(key, entry, true))
        return;
    Wire::appendEntry(m_lostRun, key, entry);
    if (m_lostRun.size() >= Journal::RecordTargetBytes)
        sealRun();
    scheduleFlush(false);
}

void LocalStore::scheduleFlush(bool local)
{
    if (m_options.durability == Durability::EveryWrite) {
        // Our own writes are durable before set() returns; writes from the
        // network come in bursts (a sync may bring millions) and can be
        // fetched again, so they share one fdatasync per event-loop pass.
        if (local)
            flush();
        else if (!m_flushTimer.isActive())
            m_flushTimer.start(0);
    } else if (!m_flushTimer.isActive()) {
        m_flushTimer.start(qMax(0, m_options.batchIntervalMs));
    }
}

void LocalStore::sealRun()
{
    // One record per batch: a torn append loses the batch, never half of it.
    if (!m_run.isEmpty()) {
        Journal::appendRecord(m_pending, Journal::RecordType::Entries, m_run);
        m_run.clear();
    }
    if (!m_lostRun.isEmpty()) {
        Journal::appendRecord(m_pending, Journal::RecordType::Lost, m_lostRun);
        m_lostRun.clear();
    }
}

bool LocalStore::flush()
{
    m_flushTimer.stop();
    if (!m_file.isOpen())
        return false;
    sealRun();
    if (m_pending.isEmpty())
        return true;
    const qint64 written = m_file.write(m_pending);
    if (written != m_pending.size()) {
        // Cut a partial append off so the next one starts on a record boundary.
        const QString why = m_file.errorString();
        m_file.resize(m_fileBytes);
        ioError(QStringLiteral("cannot append to the journal: %1").arg(why));
        m_flushTimer.start(qMax(1000, m_options.batchIntervalMs));
        return false;
    }
    m_fileBytes += written;
    m_pending.clear();
    QElapsedTimer syncTimer;
    syncTimer.start();
    const bool synced = syncFile(m_file.handle());
    m_syncTimes.lastSeconds = double(syncTimer.nsecsElapsed()) / 1e9;
    m_syncTimes.totalSeconds += m_syncTimes.lastSeconds;
    ++m_syncTimes.count;
    if (!synced) {
        // After a failed fdatasync the kernel may have dropped the pages, and
        // a second call can succeed without writing them: only a complete
        // rewrite makes these writes durable.
        ioError(QStringLiteral("fdatasync failed: %1").arg(QString::fromLocal8Bit(strerror(errno))));
        return compact();
    }
    m_durableSeq = m_lastSeq;
    Q_EMIT durable(m_durableSeq);
    if (m_map && m_fileBytes - m_snapshotBytes > qMax(m_options.compactionMinBytes, m_snapshotBytes))
        compact();
    return true;
}

bool LocalStore::writeSnapshot(const QByteArray &body)
{
    QSaveFile file(m_path);
    if (!file.open(QIODevice::WriteOnly)) {
        ioError(QStringLiteral("cannot write a snapshot: %1").arg(file.errorString()));
        return false;
    }
    if (file.write(body) != body.size() || !file.flush() || !syncFile(file.handle())) {
        const QString why = file.errorString();
        file.cancelWriting();
        ioError(QStringLiteral("cannot write a snapshot: %1").arg(why));
        return false;
    }
    if (!file.commit()) {
        ioError(QStringLiteral("cannot replace the store with its snapshot: %1").arg(file.errorString()));
        return false;
    }
    syncDirectory(m_path);
    return true;
}

bool LocalStore::compact()
{
    if (!m_file.isOpen() || !m_map)
        return false;
    QElapsedTimer timer;
    timer.start();
    m_flushTimer.stop();
    DistributedMapPrivate *const hooks = DistributedMapPrivate::get(m_map);
    QByteArray body = Journal::encodeHeader({Journal::FormatVersion, m_peerId, m_mapUri});
    // With history, an index of where each key's writes went lets the CLI
    // read one key's past without decoding the file.
    std::optional<HistoryFileIndex> index;
    if (m_history)
        index.emplace();
    Journal::appendSnapshot(body, hooks->state(), hooks->clock().last(), index ? &*index : nullptr);
    if (m_history) {
        applyHistoryRetention();
        Journal::appendHistory(body, *m_history, hooks->state(), &*index);
    }
    if (!writeSnapshot(body)) {
        // The old file is untouched: keep appending to it.
        if (!m_run.isEmpty() || !m_pending.isEmpty())
            m_flushTimer.start(qMax(1000, m_options.batchIntervalMs));
        return false;
    }
    m_run.clear();
    m_lostRun.clear();
    m_pending.clear();
    writeHistoryIndex(index ? index->encode(body.constData(), body.size()) : QByteArray());
    body.clear();
    if (!openForAppend())
        return false;
    m_snapshotBytes = m_fileBytes;
    m_durableSeq = m_lastSeq;
    qCInfo(lcStore).noquote() << "compacted" << m_path << "to" << m_fileBytes << "bytes in" << timer.elapsed() << "ms";
    Q_EMIT durable(m_durableSeq);
    Q_EMIT compacted(m_fileBytes);
    return true;
}

void LocalStore::writeHistoryIndex(const QByteArray &index)
{
    // Derived data, checked against the file by its readers: no fdatasync,
    // and a failure costs readers a pass over the file, not an answer.
    const QString path = HistoryFileIndex::pathFor(m_path);
    if (index.isEmpty()) {
        QFile::remove(path);
        return;
    }
    QSaveFile file(path);
    file.setDirectWriteFallback(false);
    if (!file.open(QIODevice::WriteOnly) || file.write(index) != index.size() || !file.commit()) {
        QFile::remove(path);
        qCWarning(lcStore).noquote() << path << "not written:" << file.errorString()
                                     << "(history questions from the CLI will read the whole store)";
    }
}

int LocalStore::collectGarbage()
{
    m_compactedByGc = false;
    if (!m_map)
        return 0;
    const int dropped = m_options.tombstoneMaxAgeMs > 0 ? m_map->purgeTombstones(m_options.tombstoneMaxAgeMs) : 0;
    if (dropped > 0)
        qCInfo(lcStore).noquote() << m_path << "dropped" << dropped << "tombstones older than"
                                  << m_options.tombstoneMaxAgeMs << "ms";
    const qint64 historyBefore = m_history ? m_history->bytes() : 0;
    if (applyHistoryRetention() > 0)
        qCInfo(lcStore).noquote() << m_path << "dropped" << historyBefore - m_history->bytes() << "bytes of history";
    // The file still holds what was dropped: only a snapshot forgets it.
    // Tombstones go at once (they must not come back at the next load);
    // old history may wait until it is worth a rewrite, since a load
    // applies the retention again.
    const qint64 historyDropped = historyBefore - (m_history ? m_history->bytes() : 0);
    if (dropped > 0 || (historyDropped > 0 && historyDropped * 8 >= historyBefore))
        m_compactedByGc = compact();
    if (dropped > 0)
        Q_EMIT garbageCollected(dropped);
    return dropped;
}

qsizetype LocalStore::applyHistoryRetention()
{
    if (!m_history || !m_map)
        return 0;
    // Age on the map's hybrid clock, as for tombstones.
    const qint64 nowMs = DistributedMapPrivate::get(m_map)->clock().physicalNow();
    quint64 windowStart = HybridClock::pack(qMax<qint64>(0, nowMs - m_options.historyRetentionMs), 0);
    if (m_options.historyMaxBytes > 0)
        windowStart = qMax(windowStart, m_history->windowStartForBytes(m_options.historyMaxBytes));
    return m_history->retain(windowStart);
}

LocalStore::Error LocalStore::readHistory(const QString &path, const QString &expectedUri, HistoryIndex *history,
                                          QString *message)
{
    QFile file(path);
    Journal::ReadResult r;
    if (!readImage(file, expectedUri, history, &r)) {
        *message = QStringLiteral("%1: %2").arg(path, file.errorString());
        return IoError;
    }
    if (r.error != Journal::Error::NoError) {
        *message = QStringLiteral("%1: %2").arg(path, r.message);
        return storeError(r.error);
    }
    message->clear();
    // A torn tail is the append in progress of the process that holds the
    // store, or its last before a crash: nothing to mention.
    if (!r.damage.isEmpty() && !r.tornTailOnly())
        *message = QStringLiteral("%1: skipped %2 damaged bytes").arg(path).arg(r.damagedBytes());
    return NoError;
}

QString LocalStore::fileNameFor(const QString &mapUri)
{
    return QStringLiteral("%1-%2.distmap").arg(readableName(mapUri), shortHash(mapUri));
}

QString LocalStore::defaultPathFor(const QUrl &relay, const QString &mapUri)
{
    const QString base = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    const QString server = readableName(QStringLiteral("%1-%2").arg(relay.host()).arg(relay.port(relay.scheme() == QLatin1String("wss") ? 443 : 80)));
    // ws://host:1/ and ws://host:1 are one relay.
    QUrl normalized = relay.adjusted(QUrl::NormalizePathSegments | QUrl::StripTrailingSlash);
    if (normalized.path() == QLatin1String("/"))
        normalized.setPath(QString());
    const QString key = normalized.toString() + QLatin1Char('\n') + mapUri;
    return QStringLiteral("%1/maps/%2/%3-%4.distmap").arg(base, server, readableName(mapUri), shortHash(key));
}
