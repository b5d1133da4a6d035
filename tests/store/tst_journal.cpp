// Unit tests of the store format (lib/core/journal.h): no files, no event
// loop. Corruption cases feed damaged images straight to Journal::read.

#include "historyindex.h"
#include "journal.h"
#include "jsontext.h"
#include "wire.h"

#include <QJsonArray>
#include <QJsonObject>
#include <QRandomGenerator>
#include <QSet>
#include <QTest>

namespace {

const QString Uri = QStringLiteral("/journal-test");

Entry setEntry(const QJsonValue &value, quint64 hlc, quint64 writer = 7)
{
    Entry e;
    e.value = JsonText::encode(value);
    e.hlc = hlc;
    e.writer = writer;
    return e;
}

Entry tombstone(quint64 hlc, quint64 writer = 7)
{
    Entry e;
    e.tombstone = true;
    e.hlc = hlc;
    e.writer = writer;
    return e;
}

QByteArray entriesRecord(const QString &key, const Entry &entry)
{
    QByteArray run;
    Wire::appendEntry(run, key, entry);
    QByteArray out;
    Journal::appendRecord(out, Journal::RecordType::Entries, run);
    return out;
}

bool sameEntry(const Entry &a, const Entry &b)
{
    return a.value == b.value && a.hlc == b.hlc && a.writer == b.writer && a.tombstone == b.tombstone;
}

// A small store: a header and one record per write, as a journal is after
// a few edits. writes receives every (key, entry) in order.
QByteArray smallStore(QVector<QPair<QString, Entry>> *writes, QVector<qsizetype> *recordEnds)
{
    QByteArray image = Journal::encodeHeader({Journal::FormatVersion, 0x1234, Uri});
    recordEnds->append(image.size());
    quint64 hlc = 1000;
    const QVector<QPair<QString, Entry>> history{
        {QStringLiteral("a"), setEntry(1, ++hlc)},
        {QStringLiteral("b"), setEntry(QStringLiteral("two"), ++hlc)},
        {QStringLiteral("a"), setEntry(QJsonArray{1, 2}, ++hlc)},
        {QStringLiteral("b"), tombstone(++hlc)},
        {QStringLiteral("c"), setEntry(QJsonObject{{QStringLiteral("x"), true}}, ++hlc)},
    };
    for (const auto &w : history) {
        image += entriesRecord(w.first, w.second);
        recordEnds->append(image.size());
        writes->append(w);
    }
    return image;
}

MapState stateOf(const QVector<QPair<QString, Entry>> &writes, int count)
{
    MapState s;
    for (int i = 0; i < count; ++i)
        s.apply(writes[i].first, writes[i].second);
    return s;
}

void compareStates(const MapState &actual, const MapState &expected)
{
    QCOMPARE(actual.entryCount(), expected.entryCount());
    for (const EntryRef want : expected.entries()) {
        const EntryRef got = actual.find(want.utf8Key());
        QVERIFY2(got, qPrintable(want.key()));
        QVERIFY2(sameEntry(*got, *want), qPrintable(want.key()));
    }
}

quint32 seedFromEnvironment()
{
    const QByteArray env = qgetenv("DISTMAP_SEED");
    const quint32 seed = env.isEmpty() ? QRandomGenerator::global()->generate() : env.toUInt();
    qInfo("seed %u (replay with DISTMAP_SEED=%u)", seed, seed);
    return seed;
}

} // namespace

class tst_Journal : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void crc32cMatchesTheStandardCheckValue();
    void headerRoundTrips();
    void snapshot_data();
    void snapshot();
    void journalMergesLastWriterWins();
    void truncationAtEveryOffset();
    void randomBitFlips();
    void header_data();
    void header();
    void damageInTheMiddleSkipsOnlyTheDamagedRecord();
    void aRecordThatChecksOutButDoesNotDecodeIsSkipped();
    void historyRecordsRoundTripWithoutTouchingTheState();
    void aVersionOneStoreStillReads();
    void aDamagedHistoryRecordCostsOnlyItsWrites();
};

void tst_Journal::crc32cMatchesTheStandardCheckValue()
{
    // The check value every CRC-32C implementation publishes.
    QCOMPARE(Journal::crc32c("123456789", 9), 0xE3069283u);
    QCOMPARE(Journal::crc32c("", 0), 0u);
    // Chained calls equal one call over the whole buffer.
    const QByteArray text = QByteArrayLiteral("the quick brown fox jumps over the lazy dog");
    QCOMPARE(Journal::crc32c(text.constData() + 10, text.size() - 10, Journal::crc32c(text.constData(), 10)),
             Journal::crc32c(text.constData(), text.size()));
    // The tables and the CPU's instruction (where used) agree on every
    // length and alignment.
    QCOMPARE(Journal::crc32cPortable("123456789", 9), 0xE3069283u);
    QByteArray bytes(4096 + 16, Qt::Uninitialized);
    for (qsizetype i = 0; i < bytes.size(); ++i)
        bytes[i] = char((i * 131 + 7) ^ (i >> 3));
    for (qsizetype start = 0; start < 9; ++start) {
        for (const qsizetype length : {qsizetype(0), qsizetype(1), qsizetype(7), qsizetype(8), qsizetype(9), qsizetype(63), qsizetype(4096)}) {
            QCOMPARE(Journal::crc32c(bytes.constData() + start, length, 0x1234u),
                     Journal::crc32cPortable(bytes.constData() + start, length, 0x1234u));
        }
    }
}

void tst_Journal::headerRoundTrips()
{
    const QByteArray image = Journal::encodeHeader({Journal::FormatVersion, 0xfedcba9876543210ull, QStringLiteral("/ünïcode map")});
    const Journal::ReadResult r = Journal::read(image.constData(), image.size(), QStringLiteral("/ünïcode map"));
    QCOMPARE(r.error, Journal::Error::NoError);
    QCOMPARE(r.header.peerId, 0xfedcba9876543210ull);
    QCOMPARE(r.header.mapUri, QStringLiteral("/ünïcode map"));
    QCOMPARE(r.headerSize, image.size());
    QCOMPARE(r.records, 0);
    QVERIFY(r.damage.isEmpty());
}

void tst_Journal::snapshot_data()
{
    QTest::addColumn<QJsonValue>("value");
    QTest::newRow("null is kept") << QJsonValue(QJsonValue::Null);
    QTest::newRow("true is kept") << QJsonValue(true);
    QTest::newRow("false is kept") << QJsonValue(false);
    QTest::newRow("an integer is kept") << QJsonValue(42);
    QTest::newRow("a negative double is kept") << QJsonValue(-1.5e300);
    QTest::newRow("an empty string is kept") << QJsonValue(QString());
    QTest::newRow("a unicode string is kept") << QJsonValue(QStringLiteral("grüß 👋 \"quoted\"\n"));
    QTest::newRow("an empty array is kept") << QJsonValue(QJsonArray());
    QTest::newRow("a nested array is kept") << QJsonValue(QJsonArray{1, QJsonArray{2, QJsonObject{}}, QStringLiteral("x")});
    QTest::newRow("an empty object is kept") << QJsonValue(QJsonObject());
    QTest::newRow("a nested object is kept")
        << QJsonValue(QJsonObject{{QStringLiteral("a"), QJsonObject{{QStringLiteral("b"), QJsonValue::Null}}}});
}

void tst_Journal::snapshot()
{
    QFETCH(QJsonValue, value);
    MapState state;
    state.apply(QStringLiteral("value"), setEntry(value, 777, 0xabcdef));
    state.apply(QStringLiteral("deleted"), tombstone(99, 3));
    QByteArray image = Journal::encodeHeader({Journal::FormatVersion, 5, Uri});
    Journal::appendSnapshot(image, state, 123456);
    const Journal::ReadResult r = Journal::read(image.constData(), image.size(), Uri);
    QCOMPARE(r.error, Journal::Error::NoError);
    QVERIFY(r.damage.isEmpty());
    compareStates(r.state, state);
    QCOMPARE(JsonText::decode(r.state.find(QStringLiteral("value"))->value), value);
    QCOMPARE(r.clock, quint64(123456));
}

void tst_Journal::journalMergesLastWriterWins()
{
    QVector<QPair<QString, Entry>> writes;
    QVector<qsizetype> ends;
    QByteArray image = smallStore(&writes, &ends);
    // A stale write appended after a newer one loses, as it would in the map.
    image += entriesRecord(QStringLiteral("a"), setEntry(QStringLiteral("stale"), 5));
    const Journal::ReadResult r = Journal::read(image.constData(), image.size(), Uri);
    QCOMPARE(r.error, Journal::Error::NoError);
    QCOMPARE(r.records, writes.size() + 1);
    compareStates(r.state, stateOf(writes, writes.size()));
    QVERIFY(r.state.find(QStringLiteral("b"))->tombstone);
    QCOMPARE(r.clock, writes.last().second.hlc);
}

void tst_Journal::truncationAtEveryOffset()
{
    QVector<QPair<QString, Entry>> writes;
    QVector<qsizetype> ends;
    const QByteArray image = smallStore(&writes, &ends);
    const qsizetype headerSize = ends.first();
    for (qsizetype cut = 0; cut <= image.size(); ++cut) {
        const Journal::ReadResult r = Journal::read(image.constData(), cut, Uri);
        if (cut < headerSize) {
            // Inside the header: a clear error, never a half-read store.
            QVERIFY2(r.error == Journal::Error::TruncatedHeader, qPrintable(QString::number(cut)));
            QVERIFY(r.message.contains(QLatin1String("cut short")));
            continue;
        }
        QCOMPARE(r.error, Journal::Error::NoError);
        // Every record that ends before the cut is loaded, nothing else.
        int whole = 0;
        while (whole + 1 < ends.size() && ends[whole + 1] <= cut)
            ++whole;
        QCOMPARE(r.records, whole);
        QCOMPARE(r.goodEnd, ends[whole]);
        compareStates(r.state, stateOf(writes, whole));
        if (cut == ends[whole])
            QVERIFY(r.damage.isEmpty());
        else
            QVERIFY2(r.tornTailOnly(), qPrintable(QString::number(cut)));
    }
}

void tst_Journal::randomBitFlips()
{
    QVector<QPair<QString, Entry>> writes;
    QVector<qsizetype> ends;
    const QByteArray image = smallStore(&writes, &ends);
    QRandomGenerator rng(seedFromEnvironment());
    int rejected = 0;
    int damaged = 0;
    for (int round = 0; round < 20000; ++round) {
        QByteArray copy = image;
        const int flips = 1 + int(rng.bounded(3));
        for (int i = 0; i < flips; ++i) {
            const int bit = int(rng.bounded(quint32(copy.size() * 8)));
            copy[bit / 8] = char(quint8(copy[bit / 8]) ^ quint8(1u << (bit % 8)));
        }
        const Journal::ReadResult r = Journal::read(copy.constData(), copy.size(), Uri);
        if (r.error != Journal::Error::NoError) {
            QVERIFY(!r.message.isEmpty());
            ++rejected;
            continue;
        }
        if (!r.damage.isEmpty())
            ++damaged;
        // Whatever survives is a write that was made: a flip never invents
        // a value, a clock or a writer.
        for (const EntryRef e : r.state.entries()) {
            bool made = false;
            for (const auto &w : std::as_const(writes))
                made = made || (w.first == e.key() && sameEntry(w.second, *e));
            QVERIFY2(made, qPrintable(QStringLiteral("round %1 key %2").arg(round).arg(e.key())));
        }
    }
    qInfo("%d images rejected by the header check, %d loaded with skipped damage", rejected, damaged);
    QVERIFY(rejected > 0);
    QVERIFY(damaged > 0);
}

void tst_Journal::header_data()
{
    QTest::addColumn<QByteArray>("image");
    QTest::addColumn<QString>("expectedUri");
    QTest::addColumn<Journal::Error>("error");
    QTest::addColumn<QString>("message");

    const QByteArray good = Journal::encodeHeader({Journal::FormatVersion, 1, Uri});
    QTest::newRow("an empty file is a cut header") << QByteArray() << Uri << Journal::Error::TruncatedHeader << "cut short";
    QTest::newRow("a text file is not a store")
        << QByteArray("{\"hello\": \"world\"}\n") << Uri << Journal::Error::NotAStore << "not a distmap store";
    QByteArray v4 = good;
    v4[8] = 4;
    QTest::newRow("version 4 is named as unsupported")
        << v4 << Uri << Journal::Error::UnsupportedVersion << "format version 4 is not supported";
    QByteArray v0 = good;
    v0[8] = 0;
    QTest::newRow("version 0 is named as unsupported")
        << v0 << Uri << Journal::Error::UnsupportedVersion << "format version 0 is not supported";
    QTest::newRow("another map's store is refused")
        << good << QStringLiteral("/other") << Journal::Error::ForeignMap << "holds map '/journal-test', not '/other'";
    QByteArray flipped = good;
    flipped[14] = char(flipped[14] ^ 0x10); // inside the peer id
    QTest::newRow("a flipped header bit is caught by the checksum")
        << flipped << Uri << Journal::Error::DamagedHeader << "checksum mismatch";
    QByteArray longUri = good;
    qToLittleEndian<quint32>(0x7fffffff, longUri.data() + 20);
    QTest::newRow("an impossible URI length is damage") << longUri << Uri << Journal::Error::DamagedHeader << "URI length";
}

void tst_Journal::header()
{
    QFETCH(QByteArray, image);
    QFETCH(QString, expectedUri);
    QFETCH(Journal::Error, error);
    QFETCH(QString, message);
    const Journal::ReadResult r = Journal::read(image.constData(), image.size(), expectedUri);
    QCOMPARE(r.error, error);
    QVERIFY2(r.message.contains(message), qPrintable(r.message));
    QCOMPARE(r.records, 0);
    QCOMPARE(r.state.entryCount(), 0);
}

void tst_Journal::damageInTheMiddleSkipsOnlyTheDamagedRecord()
{
    QVector<QPair<QString, Entry>> writes;
    QVector<qsizetype> ends;
    QByteArray image = smallStore(&writes, &ends);
    // Flip a byte inside the third record's payload ("a" = [1,2]).
    image[ends[2] + Journal::RecordHeaderSize + 3] = char(image[ends[2] + Journal::RecordHeaderSize + 3] ^ 0xff);
    const Journal::ReadResult r = Journal::read(image.constData(), image.size(), Uri);
    QCOMPARE(r.error, Journal::Error::NoError);
    QCOMPARE(r.damage.size(), 1);
    QCOMPARE(r.damage.first().offset, ends[2]);
    QCOMPARE(r.damage.first().length, ends[3] - ends[2]);
    QCOMPARE(r.damage.first().reason, Journal::RecordError::BadChecksum);
    QVERIFY(!r.tornTailOnly());
    QCOMPARE(r.records, writes.size() - 1);
    // "a" falls back to its first write; the records after the damage count.
    QVERIFY(sameEntry(*r.state.find(QStringLiteral("a")), writes[0].second));
    QVERIFY(r.state.find(QStringLiteral("b"))->tombstone);
    QVERIFY(r.state.contains(QStringLiteral("c")));
}

void tst_Journal::aRecordThatChecksOutButDoesNotDecodeIsSkipped()
{
    QByteArray image = Journal::encodeHeader({Journal::FormatVersion, 1, Uri});
    const qsizetype start = image.size();
    Journal::appendRecord(image, Journal::RecordType::Entries, QByteArrayLiteral("\x09garbage"));
    Journal::appendRecord(image, Journal::RecordType::Clock, QByteArrayLiteral("short"));
    const qsizetype good = image.size();
    image += entriesRecord(QStringLiteral("k"), setEntry(1, 10));
    const Journal::ReadResult r = Journal::read(image.constData(), image.size(), Uri);
    QCOMPARE(r.error, Journal::Error::NoError);
    QCOMPARE(r.records, 1);
    QCOMPARE(r.damage.size(), 1);
    QCOMPARE(r.damage.first().offset, start);
    QCOMPARE(r.damage.first().length, good - start);
    QCOMPARE(r.damage.first().reason, Journal::RecordError::BadPayload);
    QVERIFY(r.state.contains(QStringLiteral("k")));
}

void tst_Journal::historyRecordsRoundTripWithoutTouchingTheState()
{
    // a: three values; b: set then deleted, its tombstone since collected
    // from the state; c: a delta that lost to c's newer write.
    HistoryIndex history;
    MapState state;
    const QVector<QPair<QString, Entry>> writes{
        {QStringLiteral("a"), setEntry(1, 10)},        {QStringLiteral("a"), setEntry(2, 20)},
        {QStringLiteral("a"), setEntry(3, 30)},        {QStringLiteral("b"), setEntry(QStringLiteral("x"), 15)},
        {QStringLiteral("b"), tombstone(25)},          {QStringLiteral("c"), setEntry(QStringLiteral("new"), 40, 9)},
        {QStringLiteral("c"), setEntry(QStringLiteral("lost"), 35, 8)},
    };
    for (const auto &[key, entry] : writes) {
        // c's older write came last: it lost.
        history.insert(key, entry, state.apply(key, entry).outcome == MapState::Outcome::Superseded);
    }
    QCOMPARE(history.lostCount(), 1);
    state.purgeTombstones(26);
    QVERIFY(!state.find(QStringLiteral("b")));
    QByteArray image = Journal::encodeHeader({Journal::FormatVersion, 1, Uri});
    Journal::appendSnapshot(image, state, 40);
    Journal::appendHistory(image, history, state);

    HistoryIndex read;
    const Journal::ReadResult r = Journal::read(image.constData(), image.size(), Uri, &read);
    QCOMPARE(r.error, Journal::Error::NoError);
    QVERIFY(r.damage.isEmpty());
    QCOMPARE(r.records, 4); // clock, entries, history, lost
    // History records never reach the state: b stays collected.
    QCOMPARE(r.state.entryCount(), 2);
    QVERIFY(!r.state.find(QStringLiteral("b")));
    QVERIFY(sameEntry(*r.state.find(QStringLiteral("c")), setEntry(QStringLiteral("new"), 40, 9)));
    QCOMPARE(read.size(), writes.size());
    for (const QString &key : {QStringLiteral("a"), QStringLiteral("b"), QStringLiteral("c")}) {
        QVector<bool> expectedLost, gotLost;
        const QVector<Entry> expected = history.keyHistory(key, &expectedLost);
        const QVector<Entry> got = read.keyHistory(key, &gotLost);
        QCOMPARE(got.size(), expected.size());
        for (int i = 0; i < got.size(); ++i)
            QVERIFY2(sameEntry(got[i], expected[i]), qPrintable(key));
        QCOMPARE(gotLost, expectedLost); // the lost record keeps c's loser marked
    }
    QVERIFY(read.isLost(QStringLiteral("c"), setEntry(QStringLiteral("lost"), 35, 8)));
    // Without an index the history records are checked, not decoded.
    const Journal::ReadResult plain = Journal::read(image.constData(), image.size(), Uri);
    QCOMPARE(plain.records, 4);
    QCOMPARE(plain.state.entryCount(), 2);
}

void tst_Journal::aVersionOneStoreStillReads()
{
    // Version 1 is version 2 without history records.
    QByteArray image = Journal::encodeHeader({1, 0x77, Uri});
    image += entriesRecord(QStringLiteral("k"), setEntry(1, 10));
    image += entriesRecord(QStringLiteral("k"), setEntry(2, 20));
    HistoryIndex history;
    const Journal::ReadResult r = Journal::read(image.constData(), image.size(), Uri, &history);
    QCOMPARE(r.error, Journal::Error::NoError);
    QCOMPARE(r.header.version, quint16(1));
    QCOMPARE(r.header.peerId, quint64(0x77));
    QVERIFY(sameEntry(*r.state.find(QStringLiteral("k")), setEntry(2, 20)));
    // Its journal is history already: both writes.
    QCOMPARE(history.keyHistory(QStringLiteral("k")).size(), 2);
}

void tst_Journal::aDamagedHistoryRecordCostsOnlyItsWrites()
{
    QByteArray image = Journal::encodeHeader({Journal::FormatVersion, 1, Uri});
    image += entriesRecord(QStringLiteral("k"), setEntry(3, 30));
    QByteArray run;
    Wire::appendEntry(run, QStringLiteral("k"), setEntry(1, 10));
    const qsizetype damaged = image.size();
    Journal::appendRecord(image, Journal::RecordType::History, run);
    image[image.size() - 2] = char(image[image.size() - 2] ^ 0x40);
    run.clear();
    Wire::appendEntry(run, QStringLiteral("k"), setEntry(2, 20));
    Journal::appendRecord(image, Journal::RecordType::History, run);
    HistoryIndex history;
    const Journal::ReadResult r = Journal::read(image.constData(), image.size(), Uri, &history);
    QCOMPARE(r.damage.size(), 1);
    QCOMPARE(r.damage.first().offset, damaged);
    QCOMPARE(r.damage.first().reason, Journal::RecordError::BadChecksum);
    const QVector<Entry> got = history.keyHistory(QStringLiteral("k"));
    QCOMPARE(got.size(), 2);
    QCOMPARE(got[0].hlc, quint64(20));
    QCOMPARE(got[1].hlc, quint64(30));
}

QTEST_APPLESS_MAIN(tst_Journal)
#include "tst_journal.moc"
