// HistoryFile against Journal::read: store images built from random writes
// (seed printed; DISTMAP_SEED replays), compacted with a HistoryFileIndex,
// then a journal tail of new writes, duplicates and lost deltas, sometimes
// torn. Every key history, "as of" over a set of instants and diffs between
// them must answer as a HistoryIndex filled by reading the whole file does,
// with the index, without it, with a stale or damaged index, and with a
// damaged record the index points to.

#include "historyfile.h"
#include "historyfileindex.h"
#include "historyindex.h"
#include "hybridclock.h"
#include "journal.h"
#include "mapstate.h"
#include "wire.h"

#include <QRandomGenerator>
#include <QTest>

#include <algorithm>
#include <functional>

namespace {

const QString Uri = QStringLiteral("/history-file");

quint32 seedFromEnvironment()
{
    return qEnvironmentVariableIsSet("DISTMAP_SEED") ? quint32(qgetenv("DISTMAP_SEED").toUInt())
                                                     : QRandomGenerator::global()->generate();
}

struct Write
{
    QString key;
    Entry entry;
};

struct Image
{
    QByteArray bytes;
    QByteArray index;
    QStringList keys;
    QVector<quint64> instants;
};

Entry randomWrite(QRandomGenerator &rng, qint64 baseMs, int spanMs, int writers, int i)
{
    // One writer never makes two writes at one clock value: what a write
    // holds follows from (hlc, writer), so a write seen twice is the same.
    Q_UNUSED(i);
    Entry e;
    e.hlc = HybridClock::pack(baseMs + rng.bounded(spanMs), rng.bounded(3));
    e.writer = 1 + rng.bounded(writers);
    e.tombstone = (e.hlc * 31 + e.writer) % 5 == 0;
    if (!e.tombstone)
        e.value = QByteArray::number(e.hlc % 1000003 * 10 + e.writer);
    return e;
}

// A holder's life in bytes: writes, a compaction with its index, then a tail.
Image makeImage(QRandomGenerator &rng)
{
    Image image;
    const int keyCount = 1 + int(rng.bounded(60));
    for (int k = 0; k < keyCount; ++k) {
        // Some keys not ASCII, one that starts with U+FEFF.
        image.keys << (k % 7 == 3 ? QStringLiteral("clé-%1").arg(k) : k == 5 ? QStringLiteral("\uFEFFbom") : QStringLiteral("key-%1").arg(k));
    }
    const int writers = 1 + int(rng.bounded(4));
    const qint64 baseMs = 1'700'000'000'000;
    const int spanMs = 1 + int(rng.bounded(300));
    auto randomKey = [&] { return image.keys[int(rng.bounded(keyCount))]; };

    MapState state;
    HistoryIndex history;
    const int before = int(rng.bounded(3000));
    for (int i = 0; i < before; ++i) {
        const QString key = randomKey();
        const Entry e = randomWrite(rng, baseMs, spanMs, writers, i);
        // A write older than the key's current one loses, as a store marks it.
        history.insert(key, e, state.apply(key, e).outcome == MapState::Outcome::Superseded);
    }
    image.bytes = Journal::encodeHeader({Journal::FormatVersion, 42, Uri});
    HistoryFileIndex index;
    Journal::appendSnapshot(image.bytes, state, HybridClock::pack(baseMs + spanMs, 0), &index);
    Journal::appendHistory(image.bytes, history, state, &index);
    image.index = index.encode(image.bytes.constData(), image.bytes.size());

    // The tail: entries records (writes that became current, sometimes one
    // already in the image) and history records (deltas that lost).
    const int records = int(rng.bounded(6));
    for (int r = 0; r < records; ++r) {
        QByteArray run;
        const int n = 1 + int(rng.bounded(200));
        for (int i = 0; i < n; ++i) {
            const QString key = randomKey();
            Entry e = randomWrite(rng, baseMs, spanMs, writers, before + r * 1000 + i);
            if (rng.bounded(8) == 0) {
                const QVector<Entry> past = history.keyHistory(key);
                if (!past.isEmpty())
                    e = past[int(rng.bounded(past.size()))]; // delivered again
            }
            Wire::appendEntry(run, key, e);
        }
        const Journal::RecordType types[] = {Journal::RecordType::Entries, Journal::RecordType::History, Journal::RecordType::Lost};
        Journal::appendRecord(image.bytes, types[rng.bounded(3)], run);
    }
    if (records > 0 && rng.bounded(3) == 0)
        image.bytes.chop(1 + int(rng.bounded(40))); // torn by a crash mid-append

    image.instants = {0, ~quint64(0), HybridClock::pack(baseMs + spanMs + 1, 0)};
    for (int i = 0; i < 40; ++i) {
        const quint64 t = HybridClock::pack(baseMs + rng.bounded(spanMs), rng.bounded(4));
        image.instants << t << t - 1 << t + 1;
    }
    return image;
}

bool same(const Entry &a, const Entry &b)
{
    return a.sameWrite(b) && a.tombstone == b.tombstone && a.value == b.value;
}

bool same(const std::optional<Entry> &a, const std::optional<Entry> &b)
{
    return a.has_value() == b.has_value() && (!a || same(*a, *b));
}

template<typename T>
void sortByKey(QVector<T> &list)
{
    std::sort(list.begin(), list.end(), [](const T &a, const T &b) { return a.key < b.key; });
}

// Every question, asked of the file and of the reference; the first
// difference is described in *why.
bool answersAlike(const HistoryFile &file, const HistoryIndex &reference, const Image &image, QString *why)
{
    for (const QString &key : image.keys) {
        QVector<bool> gotLost, wantLost;
        const QVector<Entry> got = file.keyHistory(key, &gotLost);
        const QVector<Entry> want = reference.keyHistory(key, &wantLost);
        if (got.size() != want.size() || !std::equal(got.begin(), got.end(), want.begin(), [](const Entry &a, const Entry &b) { return same(a, b); })) {
            *why = QStringLiteral("keyHistory(%1): %2 writes, expected %3").arg(key).arg(got.size()).arg(want.size());
            return false;
        }
        if (gotLost != wantLost) {
            *why = QStringLiteral("keyHistory(%1): the lost marks differ").arg(key);
            return false;
        }
        for (const quint64 t : image.instants) {
            if (!same(file.at(key, t), reference.at(key, t))) {
                *why = QStringLiteral("at(%1, %2)").arg(key).arg(t);
                return false;
            }
        }
    }
    for (const quint64 t : image.instants) {
        QVector<HistoryIndex::KeyedEntry> got = file.asOf(t);
        QVector<HistoryIndex::KeyedEntry> want = reference.asOf(t);
        sortByKey(got);
        sortByKey(want);
        if (got.size() != want.size()
            || !std::equal(got.begin(), got.end(), want.begin(), [](const auto &a, const auto &b) { return a.key == b.key && same(a.entry, b.entry); })) {
            *why = QStringLiteral("asOf(%1): %2 keys, expected %3").arg(t).arg(got.size()).arg(want.size());
            return false;
        }
    }
    for (int i = 0; i + 1 < image.instants.size(); i += 2) {
        const quint64 from = qMin(image.instants[i], image.instants[i + 1]);
        const quint64 to = qMax(image.instants[i], image.instants[i + 1]);
        QVector<HistoryIndex::Change> got = file.changes(from, to);
        QVector<HistoryIndex::Change> want = reference.changes(from, to);
        sortByKey(got);
        sortByKey(want);
        if (got.size() != want.size() || !std::equal(got.begin(), got.end(), want.begin(), [](const auto &a, const auto &b) {
                return a.key == b.key && same(a.before, b.before) && same(a.after, b.after);
            })) {
            *why = QStringLiteral("changes(%1, %2): %3 keys, expected %4").arg(from).arg(to).arg(got.size()).arg(want.size());
            return false;
        }
    }
    return true;
}

// A compacted image of large writes (3 KB each), so that the history spans
// several records: write i of keyOf(i) at ms i, for i < count. Returns where
// the history records start; the image's index goes to *index.
qsizetype bigImage(int count, const std::function<QString(int)> &keyOf, QByteArray *image, QByteArray *index)
{
    MapState state;
    HistoryIndex history;
    const QByteArray big(3000, 'x');
    for (int i = 0; i < count; ++i) {
        Entry e;
        e.hlc = HybridClock::pack(1'700'000'000'000 + i, 0);
        e.writer = 7;
        e.value = '"' + big + QByteArray::number(i) + '"';
        state.apply(keyOf(i), e);
        history.insert(keyOf(i), e);
    }
    *image = Journal::encodeHeader({Journal::FormatVersion, 42, Uri});
    HistoryFileIndex builder;
    Journal::appendSnapshot(*image, state, 0, &builder);
    const qsizetype historyStart = image->size();
    Journal::appendHistory(*image, history, state, &builder);
    *index = builder.encode(image->constData(), image->size());
    return historyStart;
}

HistoryIndex referenceOf(const QByteArray &bytes)
{
    HistoryIndex reference;
    Journal::read(bytes.constData(), bytes.size(), Uri, &reference);
    return reference;
}

} // namespace

class tst_HistoryFile : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void answersAsReadingTheWholeFileDoes();
    void aStaleOrDamagedIndexIsNotUsed();
    void aDamagedRecordUnderTheIndexDropsTheIndex();
    void aKeyHistoryReadsOnlyThatKeysRecords();
    void headerProblemsAreReported();

private:
    quint32 m_seed = 0;
};

void tst_HistoryFile::initTestCase()
{
    m_seed = seedFromEnvironment();
    qInfo("seed %u (replay with DISTMAP_SEED=%u)", m_seed, m_seed);
}

void tst_HistoryFile::answersAsReadingTheWholeFileDoes()
{
    for (int round = 0; round < 30; ++round) {
        QRandomGenerator rng(m_seed + quint32(round));
        const Image image = makeImage(rng);
        const HistoryIndex reference = referenceOf(image.bytes);
        const QString where = QStringLiteral("seed %1 round %2").arg(m_seed).arg(round);

        HistoryFile indexed;
        QVERIFY2(indexed.open(image.bytes.constData(), image.bytes.size(), image.index, Uri), qPrintable(where));
        QVERIFY2(indexed.usesIndex(), qPrintable(where + QLatin1Char(' ') + indexed.indexProblem()));
        QString why;
        QVERIFY2(answersAlike(indexed, reference, image, &why), qPrintable(where + QStringLiteral(", with the index: ") + why));
        QVERIFY2(indexed.usesIndex(), qPrintable(where));

        HistoryFile scanned;
        QVERIFY(scanned.open(image.bytes.constData(), image.bytes.size(), QByteArray(), Uri));
        QVERIFY(!scanned.usesIndex());
        QVERIFY(scanned.indexProblem().isEmpty());
        QVERIFY2(answersAlike(scanned, reference, image, &why), qPrintable(where + QStringLiteral(", without: ") + why));
    }
}

void tst_HistoryFile::aStaleOrDamagedIndexIsNotUsed()
{
    QRandomGenerator rng(m_seed);
    Image image = makeImage(rng);
    const Image other = makeImage(rng);
    const HistoryIndex reference = referenceOf(image.bytes);
    QString why;

    HistoryFile file;
    QVERIFY(file.open(image.bytes.constData(), image.bytes.size(), other.index, Uri));
    QVERIFY(!file.usesIndex());
    QVERIFY2(file.indexProblem().contains(QLatin1String("another version")), qPrintable(file.indexProblem()));
    QVERIFY2(answersAlike(file, reference, image, &why), qPrintable(why));

    for (const qsizetype at : {qsizetype(0), qsizetype(9), qsizetype(14), image.index.size() / 2, image.index.size() - 1}) {
        QByteArray damaged = image.index;
        damaged[at] = char(damaged[at] ^ 0x10);
        QVERIFY(file.open(image.bytes.constData(), image.bytes.size(), damaged, Uri));
        QVERIFY2(!file.usesIndex(), qPrintable(QString::number(at)));
        QVERIFY(!file.indexProblem().isEmpty());
        QVERIFY2(answersAlike(file, reference, image, &why), qPrintable(why));
    }
    QVERIFY(file.open(image.bytes.constData(), image.bytes.size(), image.index.left(image.index.size() - 7), Uri));
    QVERIFY(!file.usesIndex());
    QVERIFY2(file.indexProblem().contains(QLatin1String("cut short")), qPrintable(file.indexProblem()));
}

void tst_HistoryFile::aDamagedRecordUnderTheIndexDropsTheIndex()
{
    // Enough writes for several history records, none in a tail.
    QByteArray bytes, indexBytes;
    const qsizetype historyStart = bigImage(2000, [](int i) { return QStringLiteral("key-%1").arg(i % 10); }, &bytes, &indexBytes);
    QVERIFY(bytes.size() - historyStart > 4 * Journal::RecordTargetBytes);
    // A flipped byte in the middle of the history records.
    bytes[historyStart + (bytes.size() - historyStart) / 2] ^= 0x01;

    const HistoryIndex reference = referenceOf(bytes);
    QVERIFY(reference.size() < 2000); // the reader lost that record's writes
    HistoryFile file;
    QVERIFY(file.open(bytes.constData(), bytes.size(), indexBytes, Uri));
    QVERIFY(file.usesIndex()); // the index itself is fine
    Image image;
    for (int k = 0; k < 10; ++k)
        image.keys << QStringLiteral("key-%1").arg(k);
    image.instants = {0, HybridClock::pack(1'700'000'000'000 + 500, 0), HybridClock::pack(1'700'000'000'000 + 1500, 0), ~quint64(0)};
    QString why;
    QVERIFY2(answersAlike(file, reference, image, &why), qPrintable(why));
    QVERIFY(!file.usesIndex());
    QVERIFY2(file.indexProblem().contains(QLatin1String("does not check out")), qPrintable(file.indexProblem()));
    QCOMPARE(file.readResult().damage.size(), 1);
    QCOMPARE(file.readResult().damage.first().reason, Journal::RecordError::BadChecksum);
}

void tst_HistoryFile::aKeyHistoryReadsOnlyThatKeysRecords()
{
    // Damage in a record holding only another key's writes: with the index,
    // this key's history never reads it, so the index stays in use.
    QByteArray bytes, indexBytes;
    const qsizetype historyStart = bigImage(2000, [](int i) { return i < 1000 ? QStringLiteral("a") : QStringLiteral("b"); }, &bytes, &indexBytes);
    // Key "a" sorts first: its run is the first half of the history; break
    // a byte three quarters in, inside "b"'s run (not in the last record,
    // which ties the index to the file).
    bytes[historyStart + (bytes.size() - historyStart) * 3 / 4] ^= 0x01;

    HistoryFile file;
    QVERIFY(file.open(bytes.constData(), bytes.size(), indexBytes, Uri));
    QCOMPARE(file.keyHistory(QStringLiteral("a")).size(), 1000);
    QVERIFY2(file.usesIndex(), qPrintable(file.indexProblem()));
    QVERIFY(file.readResult().damage.isEmpty());
    QVERIFY(file.keyHistory(QStringLiteral("b")).size() < 1000);
    QVERIFY(!file.usesIndex());
    QCOMPARE(file.readResult().damage.size(), 1);
}

void tst_HistoryFile::headerProblemsAreReported()
{
    HistoryFile file;
    const QByteArray notAStore("hello, world, this is not a store at all");
    QVERIFY(!file.open(notAStore.constData(), notAStore.size(), QByteArray(), QString()));
    QCOMPARE(file.error(), Journal::Error::NotAStore);
    const QByteArray header = Journal::encodeHeader({Journal::FormatVersion, 42, Uri});
    QVERIFY(!file.open(header.constData(), header.size(), QByteArray(), QStringLiteral("/other")));
    QCOMPARE(file.error(), Journal::Error::ForeignMap);
    QVERIFY(file.errorString().contains(QLatin1String("/other")));
    QVERIFY(file.open(header.constData(), header.size(), QByteArray(), Uri));
    QVERIFY(file.keyHistory(QStringLiteral("k")).isEmpty());
    QVERIFY(file.asOf(~quint64(0)).isEmpty());
}

QTEST_APPLESS_MAIN(tst_HistoryFile)
#include "tst_historyfile.moc"
