#include "jsontext.h"
#include "wire.h"

#include <QJsonArray>
#include <QJsonObject>
#include <QRandomGenerator>
#include <QTest>

Q_DECLARE_METATYPE(Wire::DecodeError)

namespace {

QByteArray le32(quint32 v)
{
    QByteArray b(4, 0);
    qToLittleEndian(v, b.data());
    return b;
}

QByteArray le64(quint64 v)
{
    QByteArray b(8, 0);
    qToLittleEndian(v, b.data());
    return b;
}

QByteArray rawEntry(quint8 kind, const QByteArray &key, const QByteArray &value)
{
    QByteArray out;
    out.append(char(kind));
    out.append(le64(77));
    out.append(le64(5));
    out.append(le32(quint32(key.size())));
    out.append(key);
    if (kind == 1) {
        out.append(le32(quint32(value.size())));
        out.append(value);
    }
    return out;
}

} // namespace

class tst_Wire : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void jsonValuesRoundTrip_data();
    void jsonValuesRoundTrip();
    void invalidJsonIsRejectedWithAMessage_data();
    void invalidJsonIsRejectedWithAMessage();
    void validatorAgreesWithQtsParser();
    void appendStringRoundTrips();
    void headerRoundTripsAndHasTheDocumentedLayout();
    void headerRejects_data();
    void headerRejects();
    void entriesRoundTrip();
    void entryBytesMatchTheDocument();
    void malformedEntries_data();
    void malformedEntries();
    void everyTruncationOfAnEntryRunIsRejected();
    void syncRequestRoundTrip();
    void malformedSyncRequests_data();
    void malformedSyncRequests();
    void syncChunkRoundTrip();
    void syncAckRoundTrip();
    void writeAckBytesMatchTheDocument();
    void malformedWriteAcks_data();
    void malformedWriteAcks();
    void peerIdsFormatAsSixteenHexDigits();
};

void tst_Wire::jsonValuesRoundTrip_data()
{
    QTest::addColumn<QByteArray>("json");
    QTest::newRow("a string") << QByteArray("\"hello\"");
    QTest::newRow("a string with unicode and escapes") << QByteArray("\"h\\u00e9llo \\\"q\\\" \xe2\x82\xac\"");
    QTest::newRow("an integer") << QByteArray("42");
    QTest::newRow("a negative integer") << QByteArray("-7");
    QTest::newRow("a large integer") << QByteArray("9007199254740993");
    QTest::newRow("a fraction") << QByteArray("2.5");
    QTest::newRow("true") << QByteArray("true");
    QTest::newRow("false") << QByteArray("false");
    QTest::newRow("null") << QByteArray("null");
    QTest::newRow("an empty array") << QByteArray("[]");
    QTest::newRow("a nested array") << QByteArray("[1,[2,[3]],\"x\",null]");
    QTest::newRow("an object") << QByteArray("{\"a\":1,\"b\":{\"c\":[true,false]}}");
    QTest::newRow("an empty object") << QByteArray("{}");
}

void tst_Wire::jsonValuesRoundTrip()
{
    QFETCH(QByteArray, json);
    QString error;
    const QJsonValue value = JsonText::decode(json, &error);
    QVERIFY2(!value.isUndefined(), qPrintable(error));
    const QByteArray encoded = JsonText::encode(value);
    QCOMPARE(JsonText::decode(encoded), value);
    QVERIFY(JsonText::isValid(json));
    QVERIFY(JsonText::isValid(encoded));
    // Encoding is canonical: encoding twice gives the same bytes.
    QCOMPARE(JsonText::encode(JsonText::decode(encoded)), encoded);
}

void tst_Wire::invalidJsonIsRejectedWithAMessage_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::newRow("empty") << QByteArray("");
    QTest::newRow("a bare word") << QByteArray("hello");
    QTest::newRow("two values") << QByteArray("1, 2");
    QTest::newRow("an unclosed object") << QByteArray("{\"a\":1");
    QTest::newRow("a trailing comma") << QByteArray("[1,]");
}

void tst_Wire::invalidJsonIsRejectedWithAMessage()
{
    QFETCH(QByteArray, text);
    QString error;
    QVERIFY(JsonText::decode(text, &error).isUndefined());
    QVERIFY(!error.isEmpty());
    QVERIFY(!JsonText::isValid(text));
}

void tst_Wire::validatorAgreesWithQtsParser()
{
    // Seeded mutations of valid documents (a character inserted, dropped or
    // replaced from JSON's own alphabet): whatever isValid() accepts, Qt's
    // parser (JsonText::decode) reads. Qt also takes a few things RFC 8259
    // does not (checked below); isValid() follows the RFC.
    const quint32 seed = QRandomGenerator::global()->generate();
    qInfo("seed %u", seed);
    QRandomGenerator rng(seed);
    const QByteArray seeds[] = {"{\"a\":[1,2.5e-3,-0.25,true,false,null],\"b\":{\"c\":\"x\\ny\\u00e9\"}}",
                                "[[],{},\"\",0,-0,1E+2,\"\\\"\\\\/\\b\\f\\r\\t\"]", "\"text\"", "123", "null"};
    const char alphabet[] = "{}[]\",:.-+eE0123456789tfnrul \\/ab\t\n";
    int checked = 0, valid = 0, onlyQt = 0;
    for (const QByteArray &base : seeds) {
        for (int round = 0; round < 2000; ++round) {
            QByteArray text = base;
            for (int edits = int(rng.bounded(3)) + 1; edits > 0; --edits) {
                const int at = int(rng.bounded(text.size() + 1));
                const char c = alphabet[rng.bounded(int(sizeof alphabet) - 1)];
                switch (rng.bounded(3)) {
                case 0:
                    text.insert(at, c);
                    break;
                case 1:
                    if (at < text.size())
                        text.remove(at, 1);
                    break;
                default:
                    if (at < text.size())
                        text[at] = c;
                }
            }
            const bool qt = !JsonText::decode(text).isUndefined();
            const bool ours = JsonText::isValid(text);
            QVERIFY2(!ours || qt, qPrintable(QStringLiteral("seed %1: '%2' passes, Qt refuses it").arg(seed).arg(QString::fromUtf8(text))));
            ++checked;
            valid += ours;
            onlyQt += qt && !ours;
        }
    }
    qInfo("%d mutations checked: %d valid, %d more that only Qt's lenient parser takes", checked, valid, onlyQt);
    QVERIFY(valid > 100 && valid < checked - 100); // both kinds were tried
    // Qt's leniencies, which RFC 8259 (and JSON.parse) refuse.
    for (const char *lenient : {"2.", ".5", "2.e3", "\"a\tb\"", "\"\\3\"", "01", "-", "1e", "1e999", "-1E400"})
        QVERIFY2(!JsonText::isValid(lenient), lenient);
    // Nesting: as deep as Qt's parser goes, and no deeper.
    QVERIFY(JsonText::isValid(QByteArray(1024, '[') + QByteArray(1024, ']')));
    QVERIFY(!JsonText::isValid(QByteArray(1025, '[') + QByteArray(1025, ']')));
}

void tst_Wire::appendStringRoundTrips()
{
    QString all;
    for (char16_t c = 0; c < 0x80; ++c)
        all.append(QChar(c));
    all += QStringLiteral("é€鍵😀");
    const QString cases[] = {QString(), QStringLiteral("plain"), QStringLiteral("q\"uote\\back"), all};
    for (const QString &s : cases) {
        QByteArray json;
        JsonText::appendString(json, s.toUtf8());
        QVERIFY2(JsonText::isValid(json), json.constData());
        QCOMPARE(JsonText::decode(json).toString(), s);
    }
}

void tst_Wire::headerRoundTripsAndHasTheDocumentedLayout()
{
    QByteArray frame;
    Wire::appendHeader(frame, {Wire::Type::SyncData, 0, 0x01020304, 0x1122334455667788ull});
    QCOMPARE(frame.size(), Wire::HeaderSize);
    QCOMPARE(frame.toHex(), QByteArray("1300000004030201" "8877665544332211"));
    Wire::Header h;
    QCOMPARE(Wire::decodeHeader(frame, &h), Wire::DecodeError::NoError);
    QCOMPARE(h.type, Wire::Type::SyncData);
    QCOMPARE(h.mapId, 0x01020304u);
    QCOMPARE(h.peer, 0x1122334455667788ull);
    Wire::setHeaderPeer(frame, 9);
    QCOMPARE(Wire::peekPeer(frame), 9ull);
}

void tst_Wire::headerRejects_data()
{
    QTest::addColumn<QByteArray>("frame");
    QTest::addColumn<Wire::DecodeError>("error");
    QTest::newRow("an empty frame") << QByteArray() << Wire::DecodeError::Truncated;
    QTest::newRow("a 15-byte frame") << QByteArray(15, 0x10) << Wire::DecodeError::Truncated;
    QTest::newRow("type 0") << QByteArray(16, 0) << Wire::DecodeError::UnknownType;
    QTest::newRow("type 0xff") << (QByteArray(1, char(0xff)) + QByteArray(15, 0)) << Wire::DecodeError::UnknownType;
    QTest::newRow("reserved bytes set") << (QByteArray("\x10\x00\x01\x00", 4) + QByteArray(12, 0)) << Wire::DecodeError::ReservedNotZero;
}

void tst_Wire::headerRejects()
{
    QFETCH(QByteArray, frame);
    QFETCH(Wire::DecodeError, error);
    Wire::Header h;
    h.mapId = 123;
    QCOMPARE(Wire::decodeHeader(frame, &h), error);
    QCOMPARE(h.mapId, 123u); // untouched on error
}

void tst_Wire::entriesRoundTrip()
{
    const QVector<QPair<QString, Entry>> input{
        {QStringLiteral("key-000123"), Entry{QByteArray("\"v\""), 1, 2, false}},
        {QStringLiteral("ünïcødé ✓"), Entry{QByteArray("{\"a\":[1,2]}"), ~0ull, ~0ull, false}},
        {QString(), Entry{QByteArray("null"), 3, 4, false}},
        {QStringLiteral("gone"), Entry{QByteArray(), 5, 6, true}},
        // A leading U+FEFF is part of the key, not a byte order mark (fuzz_entries).
        {QStringLiteral("\uFEFFbom"), Entry{QByteArray("1"), 7, 8, false}},
    };
    QByteArray bytes;
    for (const auto &p : input) {
        Wire::appendEntry(bytes, p.first, p.second);
        QVERIFY(Wire::encodedEntrySize(p.first, p.second) >= 0);
    }
    QVector<Wire::DecodedEntry> out;
    QCOMPARE(Wire::decodeEntries(bytes.constData(), bytes.size(), &out), Wire::DecodeError::NoError);
    QCOMPARE(out.size(), input.size());
    for (int i = 0; i < input.size(); ++i) {
        QCOMPARE(out[i].key, input[i].first);
        QCOMPARE(out[i].entry.value, input[i].second.value);
        QCOMPARE(out[i].entry.hlc, input[i].second.hlc);
        QCOMPARE(out[i].entry.writer, input[i].second.writer);
        QCOMPARE(out[i].entry.tombstone, input[i].second.tombstone);
    }
}

void tst_Wire::entryBytesMatchTheDocument()
{
    QByteArray bytes;
    Wire::appendEntry(bytes, QStringLiteral("k"), Entry{QByteArray("1"), 0x0102, 0x0a, false});
    QCOMPARE(bytes.toHex(), QByteArray("01" "0201000000000000" "0a00000000000000" "01000000" "6b" "01000000" "31"));
    bytes.clear();
    Wire::appendEntry(bytes, QStringLiteral("k"), Entry{QByteArray(), 1, 2, true});
    QCOMPARE(bytes.toHex(), QByteArray("02" "0100000000000000" "0200000000000000" "01000000" "6b"));
}

void tst_Wire::malformedEntries_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<Wire::DecodeError>("error");
    QTest::newRow("kind 0") << rawEntry(0, "k", "1") << Wire::DecodeError::BadKind;
    QTest::newRow("kind 3") << rawEntry(3, "k", "1") << Wire::DecodeError::BadKind;
    QTest::newRow("a key of invalid UTF-8") << rawEntry(1, "\xff\xfe", "1") << Wire::DecodeError::BadUtf8;
    QTest::newRow("a set with an empty value") << rawEntry(1, "k", "") << Wire::DecodeError::EmptyValue;
    QByteArray longKey = rawEntry(2, "", "");
    qToLittleEndian<quint32>(70000, longKey.data() + 17);
    QTest::newRow("a key length over 65535") << longKey << Wire::DecodeError::KeyTooLong;
    QByteArray hugeValue = rawEntry(1, "k", "1");
    qToLittleEndian<quint32>(0xffffffffu, hugeValue.data() + 22);
    QTest::newRow("a value length of 4 GiB") << hugeValue << Wire::DecodeError::ValueTooLong;
    QByteArray lying = rawEntry(1, "k", "1");
    qToLittleEndian<quint32>(1000, lying.data() + 22);
    QTest::newRow("a value length past the end") << lying << Wire::DecodeError::Truncated;
    QTest::newRow("a good entry then garbage") << (rawEntry(1, "k", "1") + QByteArray("\x01\x02")) << Wire::DecodeError::Truncated;
}

void tst_Wire::malformedEntries()
{
    QFETCH(QByteArray, bytes);
    QFETCH(Wire::DecodeError, error);
    QVector<Wire::DecodedEntry> out{Wire::DecodedEntry{QStringLiteral("sentinel"), Entry()}};
    QCOMPARE(Wire::decodeEntries(bytes.constData(), bytes.size(), &out), error);
    // Nothing of a bad message is delivered.
    QCOMPARE(out.size(), 1);
    QCOMPARE(out[0].key, QStringLiteral("sentinel"));
}

void tst_Wire::everyTruncationOfAnEntryRunIsRejected()
{
    QByteArray bytes;
    Wire::appendEntry(bytes, QStringLiteral("alpha"), Entry{QByteArray("[1,2,3]"), 10, 1, false});
    Wire::appendEntry(bytes, QStringLiteral("beta"), Entry{QByteArray(), 11, 1, true});
    const qsizetype boundary = bytes.indexOf("beta") - 21; // start of the second entry
    for (qsizetype n = 1; n < bytes.size(); ++n) {
        QVector<Wire::DecodedEntry> out;
        const Wire::DecodeError e = Wire::decodeEntries(bytes.constData(), n, &out);
        if (n == boundary)
            QCOMPARE(e, Wire::DecodeError::NoError);
        else
            QVERIFY2(e == Wire::DecodeError::Truncated, qPrintable(QStringLiteral("length %1").arg(n)));
    }
}

void tst_Wire::syncRequestRoundTrip()
{
    Wire::SyncRequest in{7, 0x1122334455667788ull, {1, 2, 3, 4}};
    const QByteArray bytes = Wire::encodeSyncRequest(in);
    QCOMPARE(bytes.size(), 4 + 8 + 4 + 4 * 8);
    QCOMPARE(bytes.left(16).toHex(), QByteArray("07000000" "8877665544332211" "04000000"));
    Wire::SyncRequest out;
    QCOMPARE(Wire::decodeSyncRequest(bytes.constData(), bytes.size(), &out), Wire::DecodeError::NoError);
    QCOMPARE(out.syncId, 7u);
    QCOMPARE(out.since, 0x1122334455667788ull);
    QCOMPARE(out.digest, in.digest);

    // A request without a digest asks by age only.
    const QByteArray byAge = Wire::encodeSyncRequest({8, 99, {}});
    QCOMPARE(byAge.size(), 16);
    QCOMPARE(Wire::decodeSyncRequest(byAge.constData(), byAge.size(), &out), Wire::DecodeError::NoError);
    QCOMPARE(out.since, 99ull);
    QVERIFY(out.digest.isEmpty());
}

void tst_Wire::malformedSyncRequests_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<Wire::DecodeError>("error");
    QTest::newRow("nothing") << QByteArray() << Wire::DecodeError::Truncated;
    QTest::newRow("no since") << le32(1) << Wire::DecodeError::Truncated;
    QTest::newRow("no bucket count") << (le32(1) + le64(0)) << Wire::DecodeError::Truncated;
    QTest::newRow("three buckets") << (le32(1) + le64(0) + le32(3) + QByteArray(24, 0)) << Wire::DecodeError::BadBucketCount;
    QTest::newRow("2^17 buckets") << (le32(1) + le64(0) + le32(1u << 17)) << Wire::DecodeError::BadBucketCount;
    QTest::newRow("fewer hashes than announced") << (le32(1) + le64(0) + le32(4) + QByteArray(24, 0)) << Wire::DecodeError::Truncated;
    QTest::newRow("bytes after the digest") << (le32(1) + le64(0) + le32(1) + QByteArray(9, 0)) << Wire::DecodeError::TrailingBytes;
}

void tst_Wire::malformedSyncRequests()
{
    QFETCH(QByteArray, bytes);
    QFETCH(Wire::DecodeError, error);
    Wire::SyncRequest out;
    QCOMPARE(Wire::decodeSyncRequest(bytes.constData(), bytes.size(), &out), error);
}

void tst_Wire::syncChunkRoundTrip()
{
    QByteArray bytes;
    Wire::appendSyncChunkHead(bytes, 3, 0, true, {5, 6});
    Wire::appendEntry(bytes, QStringLiteral("k"), Entry{QByteArray("true"), 1, 2, false});
    Wire::SyncChunk chunk;
    QCOMPARE(Wire::decodeSyncChunk(bytes.constData(), bytes.size(), &chunk), Wire::DecodeError::NoError);
    QCOMPARE(chunk.syncId, 3u);
    QCOMPARE(chunk.seq, 0u);
    QVERIFY(chunk.final);
    QCOMPARE(chunk.digest, (QVector<quint64>{5, 6}));
    QCOMPARE(chunk.entries.size(), 1);
    QCOMPARE(chunk.entries[0].entry.value, QByteArray("true"));

    bytes.clear();
    Wire::appendSyncChunkHead(bytes, 3, 1, false, {});
    QCOMPARE(Wire::decodeSyncChunk(bytes.constData(), bytes.size(), &chunk), Wire::DecodeError::NoError);
    QVERIFY(!chunk.final);
    QVERIFY(chunk.digest.isEmpty());
    QVERIFY(chunk.entries.isEmpty());
    bytes[8] = 2; // final flag must be 0 or 1
    QCOMPARE(Wire::decodeSyncChunk(bytes.constData(), bytes.size(), &chunk), Wire::DecodeError::BadKind);
}

void tst_Wire::syncAckRoundTrip()
{
    const QByteArray bytes = Wire::encodeSyncAck({9, 4});
    Wire::SyncAck ack;
    QCOMPARE(Wire::decodeSyncAck(bytes.constData(), bytes.size(), &ack), Wire::DecodeError::NoError);
    QCOMPARE(ack.syncId, 9u);
    QCOMPARE(ack.seq, 4u);
    QCOMPARE(Wire::decodeSyncAck(bytes.constData(), 7, &ack), Wire::DecodeError::Truncated);
    const QByteArray longer = bytes + "x";
    QCOMPARE(Wire::decodeSyncAck(longer.constData(), longer.size(), &ack), Wire::DecodeError::TrailingBytes);
}

void tst_Wire::writeAckBytesMatchTheDocument()
{
    // docs/PROTOCOL.md 5.8: a durable ack of hlcs 0x0102 and 0x0203.
    const QByteArray expected = QByteArray::fromHex("01" "02000000" "0201000000000000" "0302000000000000");
    QCOMPARE(Wire::encodeWriteAck({true, {0x0102, 0x0203}}), expected);
    Wire::WriteAck ack;
    QCOMPARE(Wire::decodeWriteAck(expected.constData(), expected.size(), &ack), Wire::DecodeError::NoError);
    QVERIFY(ack.durable);
    QCOMPARE(ack.hlcs, (QVector<quint64>{0x0102, 0x0203}));
    const QByteArray none = Wire::encodeWriteAck({false, {}});
    QCOMPARE(none, QByteArray::fromHex("00" "00000000"));
    QCOMPARE(Wire::decodeWriteAck(none.constData(), none.size(), &ack), Wire::DecodeError::NoError);
    QVERIFY(!ack.durable);
    QVERIFY(ack.hlcs.isEmpty());
    QVERIFY(Wire::isKnownType(0x15));
    QVERIFY(Wire::isAddressed(Wire::Type::WriteAck));
}

void tst_Wire::malformedWriteAcks_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<Wire::DecodeError>("error");
    QTest::newRow("empty") << QByteArray() << Wire::DecodeError::Truncated;
    QTest::newRow("no count") << QByteArray::fromHex("01000000") << Wire::DecodeError::Truncated;
    QTest::newRow("flags 2") << QByteArray::fromHex("02" "00000000") << Wire::DecodeError::BadAckFlags;
    QTest::newRow("flags 0x81") << QByteArray::fromHex("81" "00000000") << Wire::DecodeError::BadAckFlags;
    QTest::newRow("one hlc short") << QByteArray::fromHex("00" "02000000" "0100000000000000") << Wire::DecodeError::Truncated;
    QTest::newRow("a count of 2^32-1 and nothing behind it") << QByteArray::fromHex("00" "ffffffff") << Wire::DecodeError::Truncated;
    QTest::newRow("trailing byte") << QByteArray::fromHex("00" "01000000" "0100000000000000" "00") << Wire::DecodeError::TrailingBytes;
}

void tst_Wire::malformedWriteAcks()
{
    QFETCH(QByteArray, bytes);
    QFETCH(Wire::DecodeError, error);
    Wire::WriteAck ack;
    ack.hlcs = {42};
    QCOMPARE(Wire::decodeWriteAck(bytes.constData(), bytes.size(), &ack), error);
    QCOMPARE(ack.hlcs, QVector<quint64>{42}); // untouched on error
}

void tst_Wire::peerIdsFormatAsSixteenHexDigits()
{
    QCOMPARE(Wire::peerToString(0xabcull), QStringLiteral("0000000000000abc"));
    quint64 id = 0;
    QVERIFY(Wire::peerFromString(QStringLiteral("ffffffffffffffff"), &id));
    QCOMPARE(id, ~0ull);
    QVERIFY(!Wire::peerFromString(QStringLiteral("abc"), &id));
    QVERIFY(!Wire::peerFromString(QStringLiteral("zzzzzzzzzzzzzzzz"), &id));
}

QTEST_APPLESS_MAIN(tst_Wire)
#include "tst_wire.moc"
