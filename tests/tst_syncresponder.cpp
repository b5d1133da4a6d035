#include "syncresponder.h"

#include <QSet>
#include <QTest>

// The responder side of sync without a network: chunks, the window, acks,
// and which entries a request gets.
class tst_SyncResponder : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void aSmallStateIsOneFinalChunk();
    void aLargeStateKeepsAtMostFourChunksInFlight();
    void aStaleAckMovesNothing();
    void anAckOfAChunkNotSentIsIgnored();
    void sinceAndDigestChooseTheEntries_data();
    void sinceAndDigestChooseTheEntries();
    void aNewRequestReplacesTheSession();
    void noChunkIsLargerThanTheRelayAccepts();
};

namespace {

MapState stateOf(int keys, int valueBytes = 8)
{
    MapState state;
    for (int i = 0; i < keys; ++i)
        state.apply(QStringLiteral("key-%1").arg(i), Entry{QByteArray(valueBytes, 'v'), quint64(100 + i), 0xa, false});
    return state;
}

struct Chunk
{
    Wire::Header header;
    Wire::SyncChunk chunk;
};

Chunk decode(const QByteArray &frame)
{
    Chunk c;
    if (Wire::decodeHeader(frame, &c.header) != Wire::DecodeError::NoError)
        qFatal("bad header");
    if (Wire::decodeSyncChunk(frame.constData() + Wire::HeaderSize, frame.size() - Wire::HeaderSize, &c.chunk)
        != Wire::DecodeError::NoError)
        qFatal("bad chunk");
    return c;
}

} // namespace

void tst_SyncResponder::aSmallStateIsOneFinalChunk()
{
    SyncResponder responder;
    responder.start(0xb, {7, 0, {}}, stateOf(10));
    QByteArray frame;
    QVERIFY(responder.nextChunk(0xb, 3, &frame));
    const Chunk c = decode(frame);
    QCOMPARE(c.header.type, Wire::Type::SyncData);
    QCOMPARE(c.header.mapId, 3u);
    QCOMPARE(c.header.peer, quint64(0xb)); // addressed to the requester
    QCOMPARE(c.chunk.syncId, 7u);
    QCOMPARE(c.chunk.seq, 0u);
    QVERIFY(c.chunk.final);
    QCOMPARE(c.chunk.entries.size(), 10);
    QVERIFY(!responder.nextChunk(0xb, 3, &frame)); // nothing after the final chunk
    QVERIFY(responder.isServing(0xb));              // until it is acknowledged
    QVERIFY(responder.acknowledge(0xb, {7, 0}));
    QVERIFY(!responder.isServing(0xb));
}

void tst_SyncResponder::aLargeStateKeepsAtMostFourChunksInFlight()
{
    // 2,000 entries of about 1 KiB: about eight chunks of 256 KiB.
    const MapState state = stateOf(2000, 1024);
    SyncResponder responder;
    responder.start(0xb, {1, 0, {}}, state);
    QByteArray frame;
    QList<Chunk> sent;
    while (responder.nextChunk(0xb, 1, &frame))
        sent.append(decode(frame));
    QCOMPARE(sent.size(), int(SyncResponder::Window));
    int entries = 0;
    quint32 acked = 0;
    while (!sent.last().chunk.final) {
        QVERIFY(responder.acknowledge(0xb, {1, acked++}));
        QVERIFY(responder.nextChunk(0xb, 1, &frame)); // one acked, one more may go
        QByteArray beyond;
        QVERIFY(!responder.nextChunk(0xb, 1, &beyond));
        sent.append(decode(frame));
        QCOMPARE(sent.last().chunk.seq, quint32(sent.size() - 1));
    }
    for (const Chunk &c : std::as_const(sent)) {
        entries += int(c.chunk.entries.size());
        QVERIFY(c.chunk.final == (&c == &sent.last()));
    }
    QCOMPARE(entries, 2000);
    QVERIFY(sent.size() >= 6);
}

void tst_SyncResponder::aStaleAckMovesNothing()
{
    SyncResponder responder;
    responder.start(0xb, {5, 0, {}}, stateOf(3));
    QByteArray frame;
    QVERIFY(responder.nextChunk(0xb, 1, &frame));
    QVERIFY(!responder.acknowledge(0xb, {4, 0})); // an older sync's ack
    QVERIFY(!responder.acknowledge(0xc, {5, 0})); // another peer's
    QVERIFY(responder.isServing(0xb));
}

void tst_SyncResponder::anAckOfAChunkNotSentIsIgnored()
{
    const MapState state = stateOf(2000, 1024); // about eight chunks
    SyncResponder responder;
    responder.start(0xb, {2, 0, {}}, state);
    QByteArray frame;
    int sent = 0;
    while (responder.nextChunk(0xb, 1, &frame))
        ++sent;
    QCOMPARE(sent, int(SyncResponder::Window));
    QVERIFY(!responder.acknowledge(0xb, {2, 9}));          // seq 9 was never sent
    QVERIFY(!responder.acknowledge(0xb, {2, 0xffffffffu})); // nor the greatest seq
    QVERIFY(!responder.nextChunk(0xb, 1, &frame));          // the window is still full
    QVERIFY(responder.acknowledge(0xb, {2, 0}));
    QVERIFY(responder.nextChunk(0xb, 1, &frame));           // and still moves
    QCOMPARE(decode(frame).chunk.seq, 4u);
}

void tst_SyncResponder::sinceAndDigestChooseTheEntries_data()
{
    QTest::addColumn<quint64>("since");
    QTest::addColumn<bool>("sameDigest");
    QTest::addColumn<int>("expected");

    // stateOf(100) holds hlcs 100..199.
    QTest::newRow("since 0 without a digest sends everything") << quint64(0) << false << 100;
    QTest::newRow("since 149 sends the fifty newer entries") << quint64(149) << false << 50;
    QTest::newRow("a verify round with an equal digest sends nothing") << Wire::SinceNever << true << 0;
}

void tst_SyncResponder::sinceAndDigestChooseTheEntries()
{
    QFETCH(quint64, since);
    QFETCH(bool, sameDigest);
    QFETCH(int, expected);
    const MapState state = stateOf(100);
    Wire::SyncRequest request{1, since, {}};
    if (sameDigest)
        request.digest = state.digest(8);
    SyncResponder responder;
    responder.start(0xb, request, state);
    QByteArray frame;
    QVERIFY(responder.nextChunk(0xb, 1, &frame));
    const Chunk c = decode(frame);
    QCOMPARE(int(c.chunk.entries.size()), expected);
    QCOMPARE(c.chunk.digest.size(), request.digest.size()); // chunk 0 answers with our digest
    if (sameDigest)
        QCOMPARE(c.chunk.digest, request.digest);
}

void tst_SyncResponder::aNewRequestReplacesTheSession()
{
    SyncResponder responder;
    responder.start(0xb, {1, 0, {}}, stateOf(3));
    responder.start(0xb, {2, 0, {}}, stateOf(5));
    QCOMPARE(responder.sessionCount(), 1);
    QByteArray frame;
    QVERIFY(responder.nextChunk(0xb, 1, &frame));
    QCOMPARE(decode(frame).chunk.syncId, 2u);
    QCOMPARE(decode(frame).chunk.entries.size(), 5);
    responder.remove(0xb);
    QVERIFY(!responder.nextChunk(0xb, 1, &frame));
}

// With a message limit below a chunk's usual size, chunks shrink to fit,
// and an entry that cannot fit even alone is left out and reported, not
// sent (the relay would close the connection on it).
void tst_SyncResponder::noChunkIsLargerThanTheRelayAccepts()
{
    MapState state = stateOf(200, 100); // about 24 KB of entries
    state.apply(QStringLiteral("huge"), Entry{QByteArray(5000, 'h'), 50, 0xa, false});
    SyncResponder responder;
    const qint64 limit = 2000;
    responder.setMaxMessageBytes(limit);
    responder.start(0xb, {1, 0, {}}, state);
    QSet<QString> keys;
    QByteArray frame;
    quint32 seq = 0;
    bool final = false;
    while (!final) {
        QVERIFY(responder.nextChunk(0xb, 3, &frame));
        QVERIFY2(frame.size() <= limit, qPrintable(QString::number(frame.size())));
        const Chunk c = decode(frame);
        QVERIFY(!c.chunk.entries.isEmpty() || c.chunk.final);
        for (const Wire::DecodedEntry &d : c.chunk.entries)
            keys.insert(d.key);
        final = c.chunk.final;
        QVERIFY(responder.acknowledge(0xb, {1, seq++}));
    }
    QVERIFY(seq > 10);
    QCOMPARE(keys.size(), 200);
    QVERIFY(!keys.contains(QStringLiteral("huge")));
    const QVector<SyncResponder::TooLarge> tooLarge = responder.takeTooLarge();
    QCOMPARE(tooLarge.size(), 1);
    QCOMPARE(tooLarge.first().key, QStringLiteral("huge"));
    QVERIFY(tooLarge.first().bytes > limit);
    QVERIFY(responder.takeTooLarge().isEmpty());
}

QTEST_APPLESS_MAIN(tst_SyncResponder)
#include "tst_syncresponder.moc"
