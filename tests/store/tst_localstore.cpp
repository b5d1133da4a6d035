// LocalStore over real files, with maps that never connect: round trips,
// durability signals, compaction, damaged and foreign files, tombstone GC
// with an injected clock.

#include "connection.h"
#include "distributedmap_p.h"
#include "distributedmap.h"
#include "historyfile.h"
#include "historyfileindex.h"
#include "historyindex.h"
#include "journal.h"
#include "wire.h"
#include "jsontext.h"
#include "localstore.h"
#include "storefile.h"

#include <QDateTime>
#include <QFile>
#include <QJsonArray>
#include <QJsonObject>
#include <QProcess>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

namespace {

const QString Uri = QStringLiteral("/store-test");
const QUrl Nowhere(QStringLiteral("ws://127.0.0.1:9"));

// A map with its own never-opened connection, as before the relay answers.
struct StoredReplica
{
    explicit StoredReplica(const QString &path, const LocalStore::Options &options = LocalStore::Options(),
                     const HybridClock::PhysicalSource &time = {})
        : connection(Nowhere)
        , map(&connection, Uri)
        , store(path, Uri, options)
    {
        if (time)
            DistributedMapPrivate::get(&map)->clock() = HybridClock(time);
    }
    bool open() { return store.open() && store.attach(&map); }

    Connection connection;
    DistributedMap map;
    LocalStore store;
};

QJsonObject everyType()
{
    return {
        {QStringLiteral("null"), QJsonValue::Null},
        {QStringLiteral("true"), true},
        {QStringLiteral("false"), false},
        {QStringLiteral("int"), 42},
        {QStringLiteral("double"), -3.25e-7},
        {QStringLiteral("string"), QStringLiteral("grüß 👋 \"q\"")},
        {QStringLiteral("empty string"), QString()},
        {QStringLiteral("array"), QJsonArray{1, QStringLiteral("two"), QJsonArray{}, QJsonObject{}}},
        {QStringLiteral("object"), QJsonObject{{QStringLiteral("nested"), QJsonObject{{QStringLiteral("x"), 1}}}}},
    };
}

void compareEntries(const MapState &actual, const MapState &expected)
{
    QCOMPARE(actual.entryCount(), expected.entryCount());
    for (const EntryRef want : expected.entries()) {
        const EntryRef got = actual.find(want.utf8Key());
        QVERIFY2(got, qPrintable(want.key()));
        QCOMPARE(got.value(), want.value());
        QCOMPARE(got.hlc(), want.hlc());
        QCOMPARE(got.writer(), want.writer());
        QCOMPARE(got.tombstone(), want.tombstone());
    }
}

} // namespace

class tst_LocalStore : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void roundTripKeepsValuesTombstonesClocksAndPeerId();
    void everyWriteIsDurableBeforeSetReturns();
    void batchedWritesBecomeDurableWithinTheInterval();
    void compactionShrinksTheFileAndKeepsTheState();
    void tornTailIsCutOff();
    void damageInsideTheFileIsCopiedAsideAndRewritten();
    void refusedFiles_data();
    void refusedFiles();
    void aSecondHolderIsLockedOut();
    void oldTombstonesAreCollectedWithAnInjectedClock();
    void collectedTombstoneLetsAStaleReplicaResurrectTheKey();
    void defaultPathIsKeyedByRelayAndMap();
    void compactionKeepsTheHistoryInsideTheWindow();
    void historyOlderThanTheWindowIsDroppedWithAnInjectedClock();
    void historyMaxBytesCapsTheHistory();
    void aDeltaThatLostToANewerWriteIsKeptInHistory();
    void aVersionOneStoreOpensAndIsRewrittenInTheCurrentVersion();
    void readHistoryReadsAStoreAnotherProcessHolds();
    void zeroRetentionKeepsNoHistory();
    void compactionWritesAHistoryIndex();
    void openInBackgroundLoadsWhatOpenLoads();

private:
    std::unique_ptr<QTemporaryDir> m_dir;
    QString path() const { return m_dir->filePath(QStringLiteral("map.distmap")); }
};

void tst_LocalStore::init()
{
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
}

void tst_LocalStore::roundTripKeepsValuesTombstonesClocksAndPeerId()
{
    MapState before;
    quint64 peerId = 0;
    quint64 clock = 0;
    {
        StoredReplica a(path());
        QVERIFY2(a.open(), qPrintable(a.store.errorString()));
        QVERIFY(a.store.loadReport().created);
        const QJsonObject values = everyType();
        for (auto it = values.begin(); it != values.end(); ++it)
            QVERIFY(a.map.set(it.key(), it.value()));
        QVERIFY(a.map.set(QStringLiteral("gone"), 1));
        QVERIFY(a.map.remove(QStringLiteral("gone")));
        QVERIFY(a.map.set(QStringLiteral("int"), 43)); // overwritten
        before = DistributedMapPrivate::get(&a.map)->state();
        peerId = a.connection.peerId();
        QCOMPARE(peerId, a.store.peerId());
        clock = DistributedMapPrivate::get(&a.map)->clock().last();
    } // the destructor flushes
    StoredReplica b(path());
    QVERIFY2(b.open(), qPrintable(b.store.errorString()));
    QVERIFY(!b.store.loadReport().created);
    QCOMPARE(b.store.loadReport().damagedBytes, 0);
    compareEntries(DistributedMapPrivate::get(&b.map)->state(), before);
    QCOMPARE(b.map.value(QStringLiteral("int")), QJsonValue(43));
    QCOMPARE(b.map.value(QStringLiteral("gone")), QJsonValue(QJsonValue::Undefined));
    QVERIFY(DistributedMapPrivate::get(&b.map)->state().find(QStringLiteral("gone"))->tombstone);
    QCOMPARE(b.connection.peerId(), peerId);
    QVERIFY(DistributedMapPrivate::get(&b.map)->clock().last() >= clock);
    QVERIFY(DistributedMapPrivate::get(&b.map)->clock().tick() > clock); // new writes order after stored ones
    // Loading is not a change to announce or to journal again.
    QCOMPARE(b.store.lastSeq(), quint64(0));
}

void tst_LocalStore::everyWriteIsDurableBeforeSetReturns()
{
    LocalStore::Options options;
    options.durability = LocalStore::Durability::EveryWrite;
    StoredReplica a(path(), options);
    QVERIFY(a.open());
    QSignalSpy durable(&a.store, &LocalStore::durable);
    for (int i = 1; i <= 20; ++i) {
        a.map.set(QStringLiteral("k%1").arg(i % 3), i);
        QCOMPARE(a.store.lastSeq(), quint64(i));
        QCOMPARE(a.store.durableSeq(), quint64(i));
        // On disk already: a reader sees it without any flush.
        QFile file(path());
        QVERIFY(file.open(QIODevice::ReadOnly));
        const QByteArray image = file.readAll();
        const Journal::ReadResult r = Journal::read(image.constData(), image.size(), Uri);
        QCOMPARE(r.state.find(QStringLiteral("k%1").arg(i % 3))->value, JsonText::encode(i));
    }
    QCOMPARE(durable.size(), 20);
    QCOMPARE(durable.last().first().toULongLong(), quint64(20));
}

void tst_LocalStore::batchedWritesBecomeDurableWithinTheInterval()
{
    LocalStore::Options options;
    options.durability = LocalStore::Durability::Batched;
    options.batchIntervalMs = 50;
    StoredReplica a(path(), options);
    QVERIFY(a.open());
    QSignalSpy durable(&a.store, &LocalStore::durable);
    for (int i = 0; i < 100; ++i)
        a.map.set(QStringLiteral("k%1").arg(i), i);
    QCOMPARE(a.store.lastSeq(), quint64(100));
    QCOMPARE(a.store.durableSeq(), quint64(0));
    QVERIFY(durable.wait(5000));
    // One batch, one record, one fdatasync.
    QCOMPARE(durable.size(), 1);
    QCOMPARE(durable.first().first().toULongLong(), quint64(100));
    QCOMPARE(a.store.durableSeq(), quint64(100));
}

void tst_LocalStore::compactionShrinksTheFileAndKeepsTheState()
{
    LocalStore::Options options;
    options.durability = LocalStore::Durability::EveryWrite;
    options.compactionMinBytes = 16 * 1024;
    options.historyRetentionMs = 0; // history would keep every superseded write
    MapState before;
    {
        StoredReplica a(path(), options);
        QVERIFY(a.open());
        QSignalSpy compacted(&a.store, &LocalStore::compacted);
        // Ten keys rewritten many times: the journal grows, the state does not.
        for (int i = 0; i < 3000; ++i)
            a.map.set(QStringLiteral("k%1").arg(i % 10), QStringLiteral("value %1").arg(i));
        QVERIFY(compacted.size() >= 1);
        QVERIFY(QFileInfo(path()).size() < 40 * 1024);
        before = DistributedMapPrivate::get(&a.map)->state();
    }
    StoredReplica b(path(), options);
    QVERIFY(b.open());
    compareEntries(DistributedMapPrivate::get(&b.map)->state(), before);
}

void tst_LocalStore::tornTailIsCutOff()
{
    qint64 goodSize = 0;
    {
        StoredReplica a(path());
        QVERIFY(a.open());
        a.map.set(QStringLiteral("kept"), 1);
        QVERIFY(a.store.flush());
        goodSize = QFileInfo(path()).size();
    }
    // Half a record, as a crash in the middle of an append leaves it.
    QByteArray record;
    Journal::appendRecord(record, Journal::RecordType::Clock, QByteArrayLiteral("12345678"));
    QFile file(path());
    QVERIFY(file.open(QIODevice::Append));
    file.write(record.left(record.size() / 2));
    file.close();

    StoredReplica b(path());
    QVERIFY2(b.open(), qPrintable(b.store.errorString()));
    QVERIFY(b.store.loadReport().tornTail);
    QCOMPARE(b.store.loadReport().damagedBytes, record.size() / 2);
    QCOMPARE(QFileInfo(path()).size(), goodSize);
    QCOMPARE(b.map.value(QStringLiteral("kept")), QJsonValue(1));
    QVERIFY(b.store.loadReport().damagedCopy.isEmpty());
}

void tst_LocalStore::damageInsideTheFileIsCopiedAsideAndRewritten()
{
    qint64 firstEnd = 0;
    {
        LocalStore::Options options;
        options.durability = LocalStore::Durability::EveryWrite;
        StoredReplica a(path(), options);
        QVERIFY(a.open());
        a.map.set(QStringLiteral("one"), 1);
        firstEnd = QFileInfo(path()).size();
        a.map.set(QStringLiteral("two"), 2);
        a.map.set(QStringLiteral("three"), 3);
    }
    QFile file(path());
    QVERIFY(file.open(QIODevice::ReadWrite));
    QByteArray image = file.readAll();
    image[firstEnd + Journal::RecordHeaderSize + 2] = char(image[firstEnd + Journal::RecordHeaderSize + 2] ^ 0x40);
    file.seek(0);
    file.write(image);
    file.close();

    StoredReplica b(path());
    QVERIFY2(b.open(), qPrintable(b.store.errorString()));
    const LocalStore::LoadReport report = b.store.loadReport();
    QVERIFY(!report.tornTail);
    QVERIFY(report.damagedBytes > 0);
    QVERIFY(QFile::exists(report.damagedCopy));
    QCOMPARE(b.map.value(QStringLiteral("one")), QJsonValue(1));
    QCOMPARE(b.map.value(QStringLiteral("two")), QJsonValue(QJsonValue::Undefined));
    QCOMPARE(b.map.value(QStringLiteral("three")), QJsonValue(3));
    // attach() rewrote the file: it now reads clean.
    QFile again(path());
    QVERIFY(again.open(QIODevice::ReadOnly));
    const QByteArray clean = again.readAll();
    const Journal::ReadResult r = Journal::read(clean.constData(), clean.size(), Uri);
    QCOMPARE(r.error, Journal::Error::NoError);
    QVERIFY(r.damage.isEmpty());
    QCOMPARE(r.state.entryCount(), 2);
}

void tst_LocalStore::refusedFiles_data()
{
    QTest::addColumn<QByteArray>("content");
    QTest::addColumn<LocalStore::Error>("error");
    QTest::addColumn<QString>("message");
    QByteArray v9 = Journal::encodeHeader({Journal::FormatVersion, 1, Uri});
    v9[8] = 9;
    QTest::newRow("a newer format version is refused by name")
        << v9 << LocalStore::UnsupportedVersion << "format version 9 is not supported";
    QTest::newRow("another map's store is refused")
        << Journal::encodeHeader({Journal::FormatVersion, 1, QStringLiteral("/elsewhere")}) << LocalStore::ForeignMap
        << "holds map '/elsewhere', not '/store-test'";
    QTest::newRow("a stranger file is not a store") << QByteArray("PK\x03\x04 zip file") << LocalStore::NotAStore << "not a distmap store";
    QTest::newRow("a cut header is damage") << Journal::encodeHeader({Journal::FormatVersion, 1, Uri}).left(15)
                                            << LocalStore::DamagedHeader << "cut short";
}

void tst_LocalStore::refusedFiles()
{
    QFETCH(QByteArray, content);
    QFETCH(LocalStore::Error, error);
    QFETCH(QString, message);
    QFile file(path());
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write(content);
    file.close();
    StoredReplica a(path());
    QSignalSpy errors(&a.store, &LocalStore::errorOccurred);
    QVERIFY(!a.store.open());
    QCOMPARE(a.store.error(), error);
    QVERIFY2(a.store.errorString().contains(message), qPrintable(a.store.errorString()));
    QVERIFY(a.store.errorString().startsWith(path()));
    QCOMPARE(errors.size(), 1);
    QVERIFY(!a.store.attach(&a.map));
    // The file is left as it was, for the user to look at.
    QVERIFY(file.open(QIODevice::ReadOnly));
    QCOMPARE(file.readAll(), content);
}

void tst_LocalStore::aSecondHolderIsLockedOut()
{
    StoredReplica a(path());
    QVERIFY(a.open());
    StoredReplica b(path());
    QVERIFY(!b.store.open());
    QCOMPARE(b.store.error(), LocalStore::Locked);
    QVERIFY2(b.store.errorString().contains(QLatin1String("in use by another process")), qPrintable(b.store.errorString()));
}

void tst_LocalStore::oldTombstonesAreCollectedWithAnInjectedClock()
{
    const qint64 day = 24 * 3600 * 1000;
    qint64 now = 1700000000000;
    auto time = [&now] { return now; };
    LocalStore::Options options;
    options.tombstoneMaxAgeMs = 7 * day;
    {
        StoredReplica a(path(), options, time);
        QVERIFY(a.open());
        a.map.set(QStringLiteral("old"), 1);
        a.map.set(QStringLiteral("young"), 2);
        a.map.set(QStringLiteral("live"), 3);
        a.map.remove(QStringLiteral("old"));
        now += 5 * day;
        a.map.remove(QStringLiteral("young"));
        now += 3 * day; // "old" is 8 days dead, "young" 3
        QSignalSpy collected(&a.store, &LocalStore::garbageCollected);
        QCOMPARE(a.store.collectGarbage(), 1);
        QCOMPARE(collected.size(), 1);
        QVERIFY(!DistributedMapPrivate::get(&a.map)->state().find(QStringLiteral("old")));
        QVERIFY(DistributedMapPrivate::get(&a.map)->state().find(QStringLiteral("young"))->tombstone);
        QCOMPARE(a.store.collectGarbage(), 0);
    }
    // Gone from the file too (it was compacted), not only from memory.
    QFile file(path());
    QVERIFY(file.open(QIODevice::ReadOnly));
    const QByteArray image = file.readAll();
    const Journal::ReadResult r = Journal::read(image.constData(), image.size(), Uri);
    QVERIFY(!r.state.find(QStringLiteral("old")));
    QVERIFY(r.state.find(QStringLiteral("young")));
    file.close();

    // Opening later runs GC at attach: "young" is past the age by then.
    now += 5 * day;
    StoredReplica b(path(), options, time);
    QVERIFY(b.open());
    QVERIFY(!DistributedMapPrivate::get(&b.map)->state().find(QStringLiteral("young")));
    QCOMPARE(b.map.value(QStringLiteral("live")), QJsonValue(3));
}

void tst_LocalStore::collectedTombstoneLetsAStaleReplicaResurrectTheKey()
{
    // The documented caveat, shown: once the tombstone is gone, a replica
    // that was offline since before the delete brings the key back.
    const qint64 day = 24 * 3600 * 1000;
    qint64 now = 1700000000000;
    LocalStore::Options options;
    options.tombstoneMaxAgeMs = 7 * day;
    StoredReplica a(path(), options, [&now] { return now; });
    QVERIFY(a.open());
    a.map.set(QStringLiteral("k"), QStringLiteral("before the delete"));
    const Entry stale = *DistributedMapPrivate::get(&a.map)->state().find(QStringLiteral("k"));
    now += day;
    a.map.remove(QStringLiteral("k"));

    // Within the grace period the tombstone wins over the stale write.
    DistributedMapPrivate::get(&a.map)->load({{QStringLiteral("k"), stale}});
    QVERIFY(!a.map.contains(QStringLiteral("k")));

    now += 8 * day;
    QCOMPARE(a.store.collectGarbage(), 1);
    DistributedMapPrivate::get(&a.map)->load({{QStringLiteral("k"), stale}});
    QCOMPARE(a.map.value(QStringLiteral("k")), QJsonValue(QStringLiteral("before the delete")));
}

void tst_LocalStore::defaultPathIsKeyedByRelayAndMap()
{
    const QString a = LocalStore::defaultPathFor(QUrl(QStringLiteral("ws://relay.example:7357")), QStringLiteral("/team/board"));
    const QString b = LocalStore::defaultPathFor(QUrl(QStringLiteral("ws://relay.example:7357")), QStringLiteral("/team/other"));
    const QString c = LocalStore::defaultPathFor(QUrl(QStringLiteral("ws://relay.example:7358")), QStringLiteral("/team/board"));
    QVERIFY(a != b);
    QVERIFY(a != c);
    QCOMPARE(LocalStore::defaultPathFor(QUrl(QStringLiteral("ws://relay.example:7357/")), QStringLiteral("/team/board")), a);
    QVERIFY2(a.contains(QLatin1String("/maps/relay.example-7357/team_board-")), qPrintable(a));
    QVERIFY(a.endsWith(QLatin1String(".distmap")));
    QVERIFY(LocalStore::fileNameFor(QStringLiteral("/a/b")) != LocalStore::fileNameFor(QStringLiteral("/a_b")));
}

namespace {

QVector<qint64> historyValues(const HistoryIndex &history, const QString &key)
{
    QVector<qint64> values;
    for (const Entry &e : history.keyHistory(key))
        values.append(e.tombstone ? -1 : qint64(JsonText::decode(e.value).toDouble()));
    return values;
}

} // namespace

void tst_LocalStore::compactionKeepsTheHistoryInsideTheWindow()
{
    LocalStore::Options options;
    options.durability = LocalStore::Durability::Batched;
    options.batchIntervalMs = 0;
    options.compactionMinBytes = 16 * 1024;
    QVector<qint64> expected;
    {
        StoredReplica a(path(), options);
        QVERIFY(a.open());
        QSignalSpy compacted(&a.store, &LocalStore::compacted);
        for (int i = 0; i < 3000; ++i) {
            a.map.set(QStringLiteral("k%1").arg(i % 10), i);
            if (i % 10 == 0)
                expected.append(i);
            if (i % 100 == 99)
                QTRY_COMPARE_WITH_TIMEOUT(a.store.durableSeq(), a.store.lastSeq(), 5000);
        }
        QVERIFY(compacted.size() >= 2);
        QCOMPARE(a.store.history()->size(), 3000);
        QCOMPARE(historyValues(*a.store.history(), QStringLiteral("k0")), expected);
    }
    // The file after compactions holds all of it, in history records.
    HistoryIndex fromFile;
    const Journal::ReadResult r = readStoreFile(path(), Uri, &fromFile);
    QCOMPARE(r.header.version, Journal::FormatVersion);
    QCOMPARE(fromFile.size(), 3000);
    QCOMPARE(r.state.entryCount(), 10);
    StoredReplica b(path(), options);
    QVERIFY(b.open());
    QCOMPARE(b.store.loadReport().historyWrites, 3000);
    QCOMPARE(historyValues(*b.store.history(), QStringLiteral("k0")), expected);
    QCOMPARE(b.map.value(QStringLiteral("k0")), QJsonValue(2990));
}

void tst_LocalStore::historyOlderThanTheWindowIsDroppedWithAnInjectedClock()
{
    const qint64 day = 24 * 3600 * 1000;
    qint64 now = 1700000000000;
    auto time = [&now] { return now; };
    LocalStore::Options options;
    options.historyRetentionMs = 2 * day;
    options.tombstoneMaxAgeMs = 0;
    {
        StoredReplica a(path(), options, time);
        QVERIFY(a.open());
        a.map.set(QStringLiteral("k"), 1);
        a.map.set(QStringLiteral("quiet"), 1); // never written again
        a.map.set(QStringLiteral("gone"), 1);
        now += day;
        a.map.set(QStringLiteral("k"), 2);
        a.map.remove(QStringLiteral("gone"));
        now += day;
        a.map.set(QStringLiteral("k"), 3);
        now += day + day / 2; // the window starts between the writes of 2 and 3
        QCOMPARE(a.store.collectGarbage(), 0);
        // k keeps its value at the window start (2), the current value of
        // quiet stays, and gone's tombstone goes with the value it hid.
        QCOMPARE(historyValues(*a.store.history(), QStringLiteral("k")), (QVector<qint64>{2, 3}));
        QCOMPARE(historyValues(*a.store.history(), QStringLiteral("quiet")), (QVector<qint64>{1}));
        QVERIFY(a.store.history()->keyHistory(QStringLiteral("gone")).isEmpty());
        now += 2 * day;
        a.store.collectGarbage();
        QCOMPARE(historyValues(*a.store.history(), QStringLiteral("k")), (QVector<qint64>{3}));
        // The map itself keeps its tombstone: GC of tombstones is off.
        QVERIFY(DistributedMapPrivate::get(&a.map)->state().find(QStringLiteral("gone"))->tombstone);
    }
    // Dropping most of the history compacted the file.
    HistoryIndex fromFile;
    readStoreFile(path(), Uri, &fromFile);
    QCOMPARE(historyValues(fromFile, QStringLiteral("k")), (QVector<qint64>{3}));
    QCOMPARE(historyValues(fromFile, QStringLiteral("gone")), (QVector<qint64>{-1})); // the state's tombstone
}

void tst_LocalStore::historyMaxBytesCapsTheHistory()
{
    LocalStore::Options options;
    options.historyMaxBytes = 4096;
    options.compactionMinBytes = 1024;
    options.batchIntervalMs = 0;
    StoredReplica a(path(), options);
    QVERIFY(a.open());
    for (int i = 0; i < 2000; ++i) {
        a.map.set(QStringLiteral("k%1").arg(i % 5), i);
        if (i % 100 == 99)
            QTRY_COMPARE_WITH_TIMEOUT(a.store.durableSeq(), a.store.lastSeq(), 5000);
    }
    a.store.flush();
    // Compaction applies the cap: the newest writes that fit, plus each
    // key's value at the cut.
    const HistoryIndex &history = *a.store.history();
    QVERIFY2(history.size() < 2000, qPrintable(QString::number(history.size())));
    QCOMPARE(historyValues(history, QStringLiteral("k0")).last(), 1995);
    QVERIFY(a.store.compact());
    QVERIFY2(history.bytes() <= 4096 + 5 * 64, qPrintable(QString::number(history.bytes())));
    QVERIFY2(QFileInfo(path()).size() < 3 * 4096, qPrintable(QString::number(QFileInfo(path()).size())));
}

void tst_LocalStore::aDeltaThatLostToANewerWriteIsKeptInHistory()
{
    const quint64 other = 0xabcdef;
    auto deltaFrame = [other](const QString &key, const Entry &entry) {
        QByteArray frame;
        Wire::Header header;
        header.peer = other;
        Wire::appendHeader(frame, header);
        Wire::appendEntry(frame, key, entry);
        return std::make_pair(header, frame);
    };
    Entry late;
    late.writer = other;
    late.value = "\"late\"";
    {
        StoredReplica a(path());
        QVERIFY(a.open());
        a.map.set(QStringLiteral("k"), QStringLiteral("mine"));
        const Entry mine = *DistributedMapPrivate::get(&a.map)->state().find(QStringLiteral("k"));
        late.hlc = mine.hlc - 1; // written before ours, delivered after
        QSignalSpy deltas(&a.map, &DistributedMap::deltaObserved);
        for (int delivery = 0; delivery < 2; ++delivery) {
            const auto [header, frame] = deltaFrame(QStringLiteral("k"), late);
            DistributedMapPrivate::get(&a.map)->frameReceived(header, frame);
        }
        QCOMPARE(deltas.size(), 2);
        QCOMPARE(deltas.first().first().value<DistributedMap::DeltaEvent>().outcome, distmap::Outcome::Superseded);
        QCOMPARE(a.map.value(QStringLiteral("k")), QJsonValue(QStringLiteral("mine")));
        QVector<bool> lost;
        const QVector<Entry> history = a.store.history()->keyHistory(QStringLiteral("k"), &lost);
        QCOMPARE(history.size(), 2); // kept once
        QCOMPARE(history.first().writer, other);
        QCOMPARE(lost, (QVector<bool>{true, false})); // it lost; ours did not
    }
    // Stored as a lost record: there after a reload, still lost, not in the
    // state; and so after a compaction, which rewrites it.
    for (int reload = 0; reload < 2; ++reload) {
        StoredReplica b(path());
        QVERIFY(b.open());
        QCOMPARE(b.map.value(QStringLiteral("k")), QJsonValue(QStringLiteral("mine")));
        QVector<bool> lost;
        const QVector<Entry> history = b.store.history()->keyHistory(QStringLiteral("k"), &lost);
        QCOMPARE(history.size(), 2);
        QCOMPARE(history.first().value, late.value);
        QCOMPARE(lost, (QVector<bool>{true, false}));
        QVERIFY(b.store.compact());
        // The CLI's reader, through the index the compaction wrote.
        QFile file(path());
        QFile index(HistoryFileIndex::pathFor(path()));
        QVERIFY(file.open(QIODevice::ReadOnly) && index.open(QIODevice::ReadOnly));
        const QByteArray bytes = file.readAll();
        HistoryFile reader;
        QVERIFY(reader.open(bytes.constData(), bytes.size(), index.readAll(), Uri));
        QVERIFY(reader.usesIndex());
        QCOMPARE(reader.keyHistory(QStringLiteral("k"), &lost).size(), 2);
        QCOMPARE(lost, (QVector<bool>{true, false}));
    }
}

void tst_LocalStore::aVersionOneStoreOpensAndIsRewrittenInTheCurrentVersion()
{
    // A store as the version 1 code wrote it: a snapshot and a journal.
    QByteArray image = Journal::encodeHeader({1, 0x5151, Uri});
    MapState state;
    Entry first;
    first.hlc = HybridClock::pack(QDateTime::currentMSecsSinceEpoch() - 1000, 0); // inside the window
    first.writer = 0x5151;
    first.value = "1";
    state.apply(QStringLiteral("k"), first);
    Journal::appendSnapshot(image, state, first.hlc);
    Entry second = first;
    second.hlc += 1;
    second.value = "2";
    QByteArray run;
    Wire::appendEntry(run, QStringLiteral("k"), second);
    Journal::appendRecord(image, Journal::RecordType::Entries, run);
    QFile file(path());
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write(image);
    file.close();

    StoredReplica a(path());
    QVERIFY2(a.open(), qPrintable(a.store.errorString()));
    QCOMPARE(a.store.loadReport().formatVersion, 1);
    QCOMPARE(a.store.peerId(), quint64(0x5151));
    QCOMPARE(a.map.value(QStringLiteral("k")), QJsonValue(2));
    QCOMPARE(historyValues(*a.store.history(), QStringLiteral("k")), (QVector<qint64>{1, 2}));
    // attach() rewrote it in the current version, history included.
    HistoryIndex fromFile;
    const Journal::ReadResult r = readStoreFile(path(), Uri, &fromFile);
    QCOMPARE(r.header.version, Journal::FormatVersion);
    QCOMPARE(historyValues(fromFile, QStringLiteral("k")), (QVector<qint64>{1, 2}));
}

void tst_LocalStore::readHistoryReadsAStoreAnotherProcessHolds()
{
    StoredReplica a(path());
    QVERIFY(a.open());
    a.map.set(QStringLiteral("k"), 1);
    a.map.set(QStringLiteral("k"), 2);
    QVERIFY(a.store.flush());
    // Held and locked by a; the reader needs neither.
    HistoryIndex history;
    QString message;
    QCOMPARE(LocalStore::readHistory(path(), Uri, &history, &message), LocalStore::NoError);
    QVERIFY2(message.isEmpty(), qPrintable(message));
    QCOMPARE(historyValues(history, QStringLiteral("k")), (QVector<qint64>{1, 2}));
    QCOMPARE(LocalStore::readHistory(path(), QString(), &history, &message), LocalStore::NoError);

    QCOMPARE(LocalStore::readHistory(path(), QStringLiteral("/other"), &history, &message), LocalStore::ForeignMap);
    QVERIFY2(message.startsWith(path()) && message.contains(QLatin1String("/other")), qPrintable(message));
    const QString missing = m_dir->filePath(QStringLiteral("missing.distmap"));
    QCOMPARE(LocalStore::readHistory(missing, Uri, &history, &message), LocalStore::IoError);
    QVERIFY2(message.startsWith(missing), qPrintable(message));
    QVERIFY(!QFile::exists(missing)); // a reader creates nothing
}

void tst_LocalStore::compactionWritesAHistoryIndex()
{
    const QString indexPath = HistoryFileIndex::pathFor(path());
    StoredReplica a(path());
    QVERIFY(a.open());
    for (int i = 0; i < 300; ++i)
        a.map.set(QStringLiteral("key-%1").arg(i % 30), i);
    a.map.remove(QStringLiteral("key-3"));
    QVERIFY(a.store.compact());
    QVERIFY(QFile::exists(indexPath));
    // Writes after the compaction are in the journal's tail, outside the index.
    for (int i = 300; i < 330; ++i)
        a.map.set(QStringLiteral("key-%1").arg(i % 7), i);
    QVERIFY(a.store.flush());

    // HistoryFile reads the image in place: the caller keeps it.
    auto readBoth = [&](HistoryFile *file, QByteArray *image, HistoryIndex *reference) {
        QFile f(path());
        QFile i(indexPath);
        if (!f.open(QIODevice::ReadOnly))
            return false;
        *image = f.readAll();
        const QByteArray index = i.open(QIODevice::ReadOnly) ? i.readAll() : QByteArray();
        QString message;
        return file->open(image->constData(), image->size(), index, Uri)
            && LocalStore::readHistory(path(), Uri, reference, &message) == LocalStore::NoError;
    };
    {
        HistoryFile file;
        QByteArray image;
        HistoryIndex reference;
        QVERIFY(readBoth(&file, &image, &reference));
        QVERIFY2(file.usesIndex(), qPrintable(file.indexProblem()));
        for (int k = 0; k < 30; ++k) {
            const QString key = QStringLiteral("key-%1").arg(k);
            QCOMPARE(file.keyHistory(key).size(), reference.keyHistory(key).size());
        }
        QCOMPARE(file.keyHistory(QStringLiteral("key-3")).size(), 15); // ten sets, the delete, four sets after
        QCOMPARE(file.asOf(reference.newestHlc()).size(), reference.asOf(reference.newestHlc()).size());
        QVERIFY(file.usesIndex());
    }

    // The CLI reads the index, and answers the same without it.
    const QString binary = qEnvironmentVariable("DISTMAP_BINARY");
    if (!binary.isEmpty()) {
        QByteArray notes;
        auto cli = [&](const QStringList &arguments) {
            QProcess p;
            p.start(binary, arguments + QStringList{QStringLiteral("--store"), path()});
            p.waitForFinished(60000);
            notes += p.readAllStandardError();
            return p.exitCode() == 0 ? p.readAllStandardOutput() : QByteArray("failed");
        };
        const QStringList questions[] = {{QStringLiteral("history"), QStringLiteral("key-3")},
                                         {QStringLiteral("dump"), QStringLiteral("--at"), QStringLiteral("now")},
                                         {QStringLiteral("diff"), QStringLiteral("--from"), QStringLiteral("-1h")}};
        QVector<QByteArray> indexed;
        for (const QStringList &q : questions)
            indexed << cli(q);
        QCOMPARE(indexed[0].count('\n'), 15);
        QCOMPARE(notes, QByteArray());
        QVERIFY(QFile::rename(indexPath, indexPath + QStringLiteral(".away")));
        for (int q = 0; q < 3; ++q)
            QCOMPARE(cli(questions[q]), indexed[q]);
        QCOMPARE(notes, QByteArray()); // no index: nothing to say
        // A damaged index is named, and not used.
        QFile away(indexPath + QStringLiteral(".away"));
        QVERIFY(away.open(QIODevice::ReadOnly));
        QByteArray damaged = away.readAll();
        away.close();
        damaged[damaged.size() / 2] = char(damaged[damaged.size() / 2] ^ 0x40);
        QFile bad(indexPath);
        QVERIFY(bad.open(QIODevice::WriteOnly));
        bad.write(damaged);
        bad.close();
        QCOMPARE(cli(questions[0]), indexed[0]);
        QVERIFY2(notes.contains("the history index is damaged (checksum mismatch); reading the whole store"), notes.constData());
        QVERIFY(QFile::remove(indexPath));
        QVERIFY(QFile::rename(indexPath + QStringLiteral(".away"), indexPath));
    }

    // Without history, a compaction removes the index it would not keep up.
    a.map.set(QStringLiteral("after"), 1);
    QVERIFY(a.store.flush());
    {
        LocalStore::Options off;
        off.historyRetentionMs = 0;
        StoredReplica b(m_dir->filePath(QStringLiteral("other.distmap")), off);
        QVERIFY(b.open());
        QFile::copy(indexPath, HistoryFileIndex::pathFor(b.store.path()));
        b.map.set(QStringLiteral("k"), 1);
        QVERIFY(b.store.compact());
        QVERIFY(!QFile::exists(HistoryFileIndex::pathFor(b.store.path())));
    }
}

void tst_LocalStore::openInBackgroundLoadsWhatOpenLoads()
{
    {
        StoredReplica a(path());
        QVERIFY(a.open());
        a.map.set(QStringLiteral("k"), 1);
        a.map.set(QStringLiteral("k"), 2);
        a.map.set(QStringLiteral("gone"), 3);
        a.map.remove(QStringLiteral("gone"));
        QVERIFY(a.store.flush());
    }
    QVERIFY(QFile::copy(path(), m_dir->filePath(QStringLiteral("copy.distmap"))));

    LocalStore store(path(), Uri);
    QSignalSpy finished(&store, &LocalStore::openFinished);
    store.openInBackground();
    QVERIFY(!store.open()); // the read holds the lock and finishes the open
    QVERIFY(finished.wait(10000));
    QCOMPARE(finished.first().first().toBool(), true);
    QVERIFY(store.isOpen());
    Connection connection(Nowhere);
    DistributedMap map(&connection, Uri);
    QVERIFY(store.attach(&map));
    QCOMPARE(map.value(QStringLiteral("k")), QJsonValue(2));
    QVERIFY(!map.contains(QStringLiteral("gone")));
    QCOMPARE(DistributedMapPrivate::get(&map)->state().tombstoneCount(), 1);
    QCOMPARE(store.history()->keyHistory(QStringLiteral("k")).size(), 2);
    QCOMPARE(store.loadReport().entries, 2);

    // Held: a second one says so, through the signal too.
    LocalStore second(path(), Uri);
    QSignalSpy refused(&second, &LocalStore::openFinished);
    second.openInBackground();
    QVERIFY(refused.wait(10000));
    QCOMPARE(refused.first().first().toBool(), false);
    QCOMPARE(second.error(), LocalStore::Locked);

    // Gone while it reads: the read is waited for and dropped, and the
    // lock with it.
    {
        LocalStore third(m_dir->filePath(QStringLiteral("copy.distmap")), Uri);
        third.openInBackground();
    }
    LocalStore reopened(m_dir->filePath(QStringLiteral("copy.distmap")), Uri);
    QVERIFY2(reopened.open(), qPrintable(reopened.errorString()));
    // A missing file is created, and said so the same way.
    LocalStore fresh(m_dir->filePath(QStringLiteral("fresh.distmap")), Uri);
    QSignalSpy created(&fresh, &LocalStore::openFinished);
    fresh.openInBackground();
    QVERIFY(created.wait(10000));
    QCOMPARE(created.first().first().toBool(), true);
    QVERIFY(fresh.loadReport().created);
}

void tst_LocalStore::zeroRetentionKeepsNoHistory()
{
    LocalStore::Options options;
    options.historyRetentionMs = 0;
    StoredReplica a(path(), options);
    QVERIFY(a.open());
    QVERIFY(!a.store.history());
    a.map.set(QStringLiteral("k"), 1);
    a.map.set(QStringLiteral("k"), 2);
    QVERIFY(a.store.compact());
    HistoryIndex fromFile;
    readStoreFile(path(), Uri, &fromFile);
    QCOMPARE(historyValues(fromFile, QStringLiteral("k")), (QVector<qint64>{2}));
}

QTEST_GUILESS_MAIN(tst_LocalStore)
#include "tst_localstore.moc"
