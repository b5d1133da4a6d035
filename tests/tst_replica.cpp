#include "replica.h"
#include "control.h"
#include "hybridclock.h"
#include "wire.h"

#include <QDateTime>
#include <QSet>
#include <QTest>

namespace {

// Records what a replica sends; no network.
class RecordingHost : public Replica::Host
{
public:
    quint64 peerId() const override { return id; }
    void sendFrame(const QByteArray &frame) override { frames.append(frame); }
    void sendControl(const QByteArray &text) override
    {
        Control::Message message;
        QVERIFY(Control::decodeMessage(text, &message) == Control::DecodeError::NoError);
        controls.append(message);
    }
    void flushRequested() override {}
    void syncTimerRequested(qint64 ms) override { timer = ms > 0; timerMs = ms; }
    void onChanged(const Replica::Change &c) override { changes.append(c); }
    void onTooLarge(const QString &key, qsizetype) override { tooLarge.append(key); }

    quint64 id = 0xA;
    bool timer = false;
    qint64 timerMs = 0;
    QList<QByteArray> frames;
    QList<Control::Message> controls;
    QList<Replica::Change> changes;
    QStringList tooLarge;
};

QByteArray deltaFrom(quint64 origin, const QString &key, const Entry &entry, quint8 flags = 0)
{
    QByteArray frame;
    Wire::appendHeader(frame, {Wire::Type::Delta, flags, 1, origin});
    Wire::appendEntry(frame, key, entry);
    return frame;
}

void feed(Replica &r, const QByteArray &frame)
{
    Wire::Header h;
    QCOMPARE(Wire::decodeHeader(frame, &h), Wire::DecodeError::NoError);
    r.handleFrame(h, frame);
}

QByteArray writeAckFrom(quint64 origin, const Wire::WriteAck &ack)
{
    QByteArray frame;
    Wire::appendHeader(frame, {Wire::Type::WriteAck, 0, 1, origin});
    frame.append(Wire::encodeWriteAck(ack));
    return frame;
}

// The frames of one type the host sent, with their headers.
QList<QPair<Wire::Header, QByteArray>> sentOfType(const QList<QByteArray> &frames, Wire::Type type)
{
    QList<QPair<Wire::Header, QByteArray>> out;
    for (const QByteArray &f : frames) {
        Wire::Header h;
        if (Wire::decodeHeader(f, &h) == Wire::DecodeError::NoError && h.type == type)
            out.append({h, f.mid(Wire::HeaderSize)});
    }
    return out;
}

// Records what the write acknowledgements tell the host.
struct AckHost : RecordingHost
{
    bool onAckRequested(quint64 writer, const QVector<quint64> &hlcs) override
    {
        requested.append({writer, hlcs});
        return storesDurably;
    }
    void onWriteAcknowledged(const QString &key, int peers, bool durable) override
    {
        acknowledged.append({key, peers, durable});
    }
    void onWriteSuperseded(const QString &key) override { superseded.append(key); }

    struct Acked
    {
        QString key;
        int peers = 0;
        bool durable = false;
    };
    bool storesDurably = false;
    QList<QPair<quint64, QVector<quint64>>> requested;
    QList<Acked> acknowledged;
    QStringList superseded;
};

} // namespace

class tst_Replica : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void aClockADayAheadDoesNotDragOurs();
    void aLocalWriteBeatsAFutureDatedWrite();
    void forgedWriterInADeltaIsDropped();
    void writesBeforeOpenAreNotSentButKept();
    void openedWithNoPeersThenAloneMakesReady();
    void aloneWithReadOnlyHoldersIsReported();
    void aWriteFitsOnlyWithinTheRelaysLimit();
    void batchesNeverExceedTheRelaysLimit();
    void anEntryTooLargeToSendIsNeverPushed();
    void aSyncIsAskedAgainAfterTwoSecondsOfSilence();
    void aGapInTheChunksAsksAgain();
    void anInterruptedRejoinStaysARejoin();
    void aDeltaAskingForAcksIsAcknowledgedEntryByEntry();
    void aDroppedDeltaIsNotAcknowledged();
    void aHostThatStoresAcknowledgesDurablyLater();
    void aWriteStaysUnconfirmedUntilADurableAck();
    void unconfirmedWritesAreSentAgainWhenAPeerJoins();
    void aNewerWriteOfAnotherPeerSupersedesAnUnconfirmedOne();
};

static const qint64 Now = 1'700'000'000'000;
static const qint64 Day = 24 * 3600 * 1000;

void tst_Replica::aClockADayAheadDoesNotDragOurs()
{
    RecordingHost host;
    Replica r(&host, QStringLiteral("/m"));
    r.clock() = HybridClock([] { return Now; });
    r.handleOpened({QStringLiteral("/m"), 1, true, {}});
    const Entry future{QByteArray("1"), HybridClock::pack(Now + Day, 0), 0xB, false};
    Wire::Header h;
    const QByteArray frame = deltaFrom(0xB, QStringLiteral("far"), future);
    QCOMPARE(Wire::decodeHeader(frame, &h), Wire::DecodeError::NoError);
    r.handleFrame(h, frame);
    QVERIFY(r.state().contains(QStringLiteral("far"))); // applied like any write
    const Replica::Change mine = r.write(QStringLiteral("other"), QByteArray("2"));
    // At most the allowed drift (60 s) ahead, not a day.
    QVERIFY(HybridClock::physicalPart(mine.hlc) <= Now + 60'000);
    QVERIFY(HybridClock::physicalPart(mine.hlc) >= Now);
}

void tst_Replica::aLocalWriteBeatsAFutureDatedWrite()
{
    RecordingHost host;
    Replica r(&host, QStringLiteral("/m"));
    r.clock() = HybridClock([] { return Now; });
    const Entry future{QByteArray("\"from the future\""), HybridClock::pack(Now + Day, 5), 0xB, false};
    r.load({Wire::DecodedEntry{QStringLiteral("k"), future}});
    const Replica::Change c = r.write(QStringLiteral("k"), QByteArray("\"now\""));
    QCOMPARE(r.state().find(QStringLiteral("k"))->value, QByteArray("\"now\""));
    QVERIFY(c.hlc > future.hlc);
    const Replica::Change d = r.erase(QStringLiteral("k"));
    QVERIFY(d.hlc > c.hlc);
    QVERIFY(!r.state().contains(QStringLiteral("k")));
}

void tst_Replica::forgedWriterInADeltaIsDropped()
{
    RecordingHost host;
    Replica r(&host, QStringLiteral("/m"));
    r.handleOpened({QStringLiteral("/m"), 1, true, {}});
    const QByteArray frame = deltaFrom(0xB, QStringLiteral("k"), Entry{QByteArray("1"), 10, 0xC, false});
    Wire::Header h;
    Wire::decodeHeader(frame, &h);
    r.handleFrame(h, frame);
    QVERIFY(!r.state().contains(QStringLiteral("k")));
    QVERIFY(host.changes.isEmpty());
}

void tst_Replica::writesBeforeOpenAreNotSentButKept()
{
    RecordingHost host;
    Replica r(&host, QStringLiteral("/m"));
    r.write(QStringLiteral("offline"), QByteArray("true"));
    r.flush();
    QVERIFY(host.frames.isEmpty());
    QVERIFY(r.state().contains(QStringLiteral("offline")));
    // Once open, the catch-up round offers it to the network.
    r.connectionUp();
    QCOMPARE(host.controls.last().type, Control::Type::Open);
    r.handleOpened({QStringLiteral("/m"), 7, true, {}});
    QCOMPARE(host.frames.size(), 1);
    Wire::Header h;
    QCOMPARE(Wire::decodeHeader(host.frames[0], &h), Wire::DecodeError::NoError);
    QCOMPARE(h.type, Wire::Type::SyncRequest);
    QCOMPARE(h.mapId, 7u);
    QVERIFY(host.timer);
}

void tst_Replica::openedWithNoPeersThenAloneMakesReady()
{
    RecordingHost host;
    Replica r(&host, QStringLiteral("/m"));
    r.connectionUp();
    r.handleOpened({QStringLiteral("/m"), 1, true, {}});
    QVERIFY(r.isSyncing());
    QVERIFY(!r.isReady());
    r.handleAlone();
    QVERIFY(r.isReady());
    QVERIFY(!r.isSyncing());
    QVERIFY(!host.timer);
    QCOMPARE(host.controls.last().type, Control::Type::Ready);
}

void tst_Replica::aloneWithReadOnlyHoldersIsReported()
{
    struct Host : RecordingHost
    {
        void onReadOnlyHoldersOnly(int count) override { holders = count; }
        int holders = -1;
    } host;
    Replica r(&host, QStringLiteral("/m"));
    r.connectionUp();
    r.handleOpened({QStringLiteral("/m"), 1, true, {}});
    r.handleAlone({1, 2});
    QVERIFY(r.isReady()); // from its own state, as with a plain alone
    QCOMPARE(host.holders, 2);
}

void tst_Replica::aWriteFitsOnlyWithinTheRelaysLimit()
{
    RecordingHost host;
    Replica r(&host, QStringLiteral("/m"));
    QVERIFY(r.fits(QStringLiteral("k"), 15 * 1024 * 1024)); // the default limit is 16 MiB
    QVERIFY(!r.fits(QStringLiteral("k"), 17 * 1024 * 1024));
    r.setMaxMessageBytes(1000);
    // header 16 + entry 21 + key 1 + length 4 + value
    QVERIFY(r.fits(QStringLiteral("k"), 1000 - 42));
    QVERIFY(!r.fits(QStringLiteral("k"), 1000 - 41));
    QVERIFY(!r.fits(QStringLiteral("\u00e9"), 1000 - 42)); // two bytes of UTF-8
}

// Many writes in one event-loop pass go out as several deltas, none larger
// than the relay accepts, with every write in one of them.
void tst_Replica::batchesNeverExceedTheRelaysLimit()
{
    RecordingHost host;
    Replica r(&host, QStringLiteral("/m"));
    r.setMaxMessageBytes(1000);
    r.handleOpened({QStringLiteral("/m"), 1, true, {}});
    r.handleAlone();
    host.frames.clear();
    for (int i = 0; i < 30; ++i)
        r.write(QStringLiteral("key-%1").arg(i), QByteArray(100, '1'));
    r.flush();
    QSet<QString> sent;
    for (const QByteArray &frame : std::as_const(host.frames)) {
        QVERIFY2(frame.size() <= 1000, qPrintable(QString::number(frame.size())));
        QVector<Wire::DecodedEntry> entries;
        QCOMPARE(Wire::decodeEntries(frame.constData() + Wire::HeaderSize, frame.size() - Wire::HeaderSize, &entries),
                 Wire::DecodeError::NoError);
        for (const Wire::DecodedEntry &d : entries)
            sent.insert(d.key);
    }
    QVERIFY(host.frames.size() >= 4);
    QCOMPARE(sent.size(), 30);
    QVERIFY(host.tooLarge.isEmpty());
}

// A stored value larger than this relay accepts (it came through a relay
// with a larger limit) is never sent: sending it would get the peer cut
// off, and the next sync would push it again, forever.
void tst_Replica::anEntryTooLargeToSendIsNeverPushed()
{
    RecordingHost host;
    Replica r(&host, QStringLiteral("/m"));
    r.clock() = HybridClock([] { return Now; });
    const Entry big{QByteArray(5000, '7'), HybridClock::pack(Now, 1), 0xA, false};
    const Entry small{QByteArray("1"), HybridClock::pack(Now, 2), 0xA, false};
    r.load({Wire::DecodedEntry{QStringLiteral("big"), big}, Wire::DecodedEntry{QStringLiteral("small"), small}});
    r.setMaxMessageBytes(1000);
    for (int round = 0; round < 2; ++round) {
        host.frames.clear();
        r.connectionUp();
        r.handleOpened({QStringLiteral("/m"), 1, true, {}});
        // A catch-up request went out; answer it with an empty final chunk
        // from peer 0xB: both our entries are candidates to push.
        QCOMPARE(host.frames.size(), 1);
        Wire::SyncRequest request;
        QCOMPARE(Wire::decodeSyncRequest(host.frames[0].constData() + Wire::HeaderSize,
                                         host.frames[0].size() - Wire::HeaderSize, &request),
                 Wire::DecodeError::NoError);
        QByteArray chunk;
        Wire::appendHeader(chunk, {Wire::Type::SyncData, 0, 1, 0xB});
        Wire::appendSyncChunkHead(chunk, request.syncId, 0, true, {});
        Wire::Header h;
        Wire::decodeHeader(chunk, &h);
        r.handleFrame(h, chunk);
        QSet<QString> pushed;
        for (const QByteArray &frame : std::as_const(host.frames)) {
            QVERIFY(frame.size() <= 1000);
            Wire::decodeHeader(frame, &h);
            if (h.type != Wire::Type::Repair)
                continue;
            QVector<Wire::DecodedEntry> entries;
            Wire::decodeEntries(frame.constData() + Wire::HeaderSize, frame.size() - Wire::HeaderSize, &entries);
            for (const Wire::DecodedEntry &d : entries)
                pushed.insert(d.key);
        }
        QCOMPARE(pushed, QSet<QString>{QStringLiteral("small")});
        r.connectionDown();
    }
    // Reported once, not at every sync.
    QCOMPARE(host.tooLarge, QStringList{QStringLiteral("big")});
    QVERIFY(r.state().contains(QStringLiteral("big"))); // kept, just not sent
}

// Before the first chunk the relay may hold the request (3 s) while a
// member finishes its own sync; after it, 2 s without a chunk means the
// responder stalled or is gone, and the request goes out again.
void tst_Replica::aSyncIsAskedAgainAfterTwoSecondsOfSilence()
{
    RecordingHost host;
    Replica r(&host, QStringLiteral("/m"));
    r.write(QStringLiteral("mine"), QByteArray("1"));
    r.connectionUp();
    r.handleOpened({QStringLiteral("/m"), 1, true, {}});
    QCOMPARE(host.timerMs, Replica::DefaultSyncTimeoutMs + Replica::RelaySyncHoldMs);
    const auto requests = sentOfType(host.frames, Wire::Type::SyncRequest);
    QCOMPARE(requests.size(), 1);
    Wire::SyncRequest request;
    QCOMPARE(Wire::decodeSyncRequest(requests[0].second.constData(), requests[0].second.size(), &request), Wire::DecodeError::NoError);

    QByteArray chunk;
    Wire::appendHeader(chunk, {Wire::Type::SyncData, 0, 1, 0xB});
    Wire::appendSyncChunkHead(chunk, request.syncId, 0, false, {});
    feed(r, chunk);
    QCOMPARE(host.timerMs, Replica::DefaultSyncTimeoutMs);

    // The responder goes quiet: the timer fires and a new request goes out.
    host.frames.clear();
    r.syncTimedOut();
    const auto again = sentOfType(host.frames, Wire::Type::SyncRequest);
    QCOMPARE(again.size(), 1);
    Wire::SyncRequest retry;
    QCOMPARE(Wire::decodeSyncRequest(again[0].second.constData(), again[0].second.size(), &retry), Wire::DecodeError::NoError);
    QVERIFY(retry.syncId != request.syncId);
    QCOMPARE(host.timerMs, Replica::DefaultSyncTimeoutMs + Replica::RelaySyncHoldMs);

    r.setSyncTimeout(500);
    r.syncTimedOut();
    QCOMPARE(host.timerMs, 500 + Replica::RelaySyncHoldMs);
}

namespace {
Wire::SyncRequest lastRequest(const RecordingHost &host)
{
    const auto requests = sentOfType(host.frames, Wire::Type::SyncRequest);
    Wire::SyncRequest request;
    if (!requests.isEmpty())
        Wire::decodeSyncRequest(requests.last().second.constData(), requests.last().second.size(), &request);
    return request;
}

QByteArray chunkFrom(quint64 responder, quint32 syncId, quint32 seq, bool final, const QList<QPair<QString, Entry>> &entries = {})
{
    QByteArray chunk;
    Wire::appendHeader(chunk, {Wire::Type::SyncData, 0, 1, responder});
    Wire::appendSyncChunkHead(chunk, syncId, seq, final, {});
    for (const auto &e : entries)
        Wire::appendEntry(chunk, e.first, e.second);
    return chunk;
}
} // namespace

// Chunks come in seq order over one relay; over a federated relay's bus one
// can be lost. Finishing the round without it would miss its entries.
void tst_Replica::aGapInTheChunksAsksAgain()
{
    RecordingHost host;
    Replica r(&host, QStringLiteral("/m"));
    r.connectionUp();
    r.handleOpened({QStringLiteral("/m"), 1, true, {}});
    const Wire::SyncRequest first = lastRequest(host);
    feed(r, chunkFrom(0xB, first.syncId, 0, false, {{QStringLiteral("a"), Entry{QByteArray("1"), 10, 0xB, false}}}));
    host.frames.clear();
    feed(r, chunkFrom(0xB, first.syncId, 2, true, {{QStringLiteral("c"), Entry{QByteArray("3"), 12, 0xB, false}}}));
    const Wire::SyncRequest again = lastRequest(host);
    QVERIFY(again.syncId != first.syncId); // asked again
    QVERIFY(r.isSyncing());
    QVERIFY(!r.state().contains(QStringLiteral("c"))); // nothing taken from after the gap
    for (const Control::Message &m : host.controls)
        QVERIFY(m.type != Control::Type::Ready);
}

// A rejoin's partial chunks raise the newest hlc heard from the network, so
// re-deciding the mode after a timeout would pick a catch-up and push the
// stale state back: it must stay a rejoin until one completes.
void tst_Replica::anInterruptedRejoinStaysARejoin()
{
    RecordingHost host;
    Replica r(&host, QStringLiteral("/m"));
    const qint64 day = 24 * 3600 * 1000LL;
    r.setTombstoneRetention(7 * day);
    const quint64 nowHlc = quint64(QDateTime::currentMSecsSinceEpoch()) << 16;
    const quint64 longAgo = quint64(QDateTime::currentMSecsSinceEpoch() - 10 * day) << 16;
    r.load({{QStringLiteral("deleted-meanwhile"), Entry{QByteArray("1"), longAgo, 0xB, false}}});
    r.connectionUp();
    r.handleOpened({QStringLiteral("/m"), 1, true, {}});
    const Wire::SyncRequest first = lastRequest(host);
    QCOMPARE(first.since, quint64(0)); // a rejoin asks for everything
    QVERIFY(first.digest.isEmpty());
    feed(r, chunkFrom(0xC, first.syncId, 0, false, {{QStringLiteral("fresh"), Entry{QByteArray("2"), nowHlc, 0xC, false}}}));
    r.syncTimedOut(); // the responder went quiet
    const Wire::SyncRequest second = lastRequest(host);
    QVERIFY(second.syncId != first.syncId);
    QCOMPARE(second.since, quint64(0)); // still a rejoin, not a catch-up from "fresh"
    host.frames.clear();
    feed(r, chunkFrom(0xD, second.syncId, 0, true, {{QStringLiteral("fresh"), Entry{QByteArray("2"), nowHlc, 0xC, false}}}));
    QVERIFY(!r.isSyncing());
    QVERIFY(!r.state().contains(QStringLiteral("deleted-meanwhile"))); // dropped, not pushed back
    QVERIFY(sentOfType(host.frames, Wire::Type::Repair).isEmpty());
}

void tst_Replica::aDeltaAskingForAcksIsAcknowledgedEntryByEntry()
{
    AckHost host;
    Replica r(&host, QStringLiteral("/m"));
    r.handleOpened({QStringLiteral("/m"), 1, true, {}});
    // One entry new, one older than what we hold, one we hold already:
    // each is held (or beaten by a newer write), so each is confirmed.
    feed(r, deltaFrom(0xC, QStringLiteral("old"), Entry{QByteArray("9"), 50, 0xC, false}));
    feed(r, deltaFrom(0xB, QStringLiteral("dup"), Entry{QByteArray("1"), 30, 0xB, false}));
    host.frames.clear();
    QByteArray frame;
    Wire::appendHeader(frame, {Wire::Type::Delta, Wire::FlagAckRequested, 1, 0xB});
    Wire::appendEntry(frame, QStringLiteral("new"), Entry{QByteArray("2"), 40, 0xB, false});
    Wire::appendEntry(frame, QStringLiteral("old"), Entry{QByteArray("3"), 20, 0xB, false});
    Wire::appendEntry(frame, QStringLiteral("dup"), Entry{QByteArray("1"), 30, 0xB, false});
    feed(r, frame);
    QCOMPARE(r.state().find(QStringLiteral("new"))->value, QByteArray("2"));
    QCOMPARE(r.state().find(QStringLiteral("old"))->value, QByteArray("9"));

    QCOMPARE(host.requested.size(), 1);
    QCOMPARE(host.requested[0].first, 0xBull);
    const auto acks = sentOfType(host.frames, Wire::Type::WriteAck);
    QCOMPARE(acks.size(), 1);
    QCOMPARE(acks[0].first.peer, 0xBull); // addressed to the writer
    Wire::WriteAck ack;
    QCOMPARE(Wire::decodeWriteAck(acks[0].second.constData(), acks[0].second.size(), &ack), Wire::DecodeError::NoError);
    QVERIFY(!ack.durable); // this host keeps nothing on disk
    QCOMPARE(ack.hlcs, (QVector<quint64>{40, 20, 30}));

    // Without the flag, nothing is confirmed.
    host.frames.clear();
    feed(r, deltaFrom(0xB, QStringLiteral("quiet"), Entry{QByteArray("4"), 60, 0xB, false}));
    QVERIFY(sentOfType(host.frames, Wire::Type::WriteAck).isEmpty());
}

void tst_Replica::aDroppedDeltaIsNotAcknowledged()
{
    AckHost host;
    Replica r(&host, QStringLiteral("/m"));
    r.handleOpened({QStringLiteral("/m"), 1, true, {}});
    // A forged writer: dropped whole, so nothing is held and nothing confirmed.
    feed(r, deltaFrom(0xB, QStringLiteral("k"), Entry{QByteArray("1"), 10, 0xC, false}, Wire::FlagAckRequested));
    // A malformed entry run.
    QByteArray bad = deltaFrom(0xB, QStringLiteral("k"), Entry{QByteArray("1"), 10, 0xB, false}, Wire::FlagAckRequested);
    bad.chop(1);
    feed(r, bad);
    QVERIFY(!r.state().contains(QStringLiteral("k")));
    QVERIFY(host.requested.isEmpty());
    QVERIFY(sentOfType(host.frames, Wire::Type::WriteAck).isEmpty());
}

void tst_Replica::aHostThatStoresAcknowledgesDurablyLater()
{
    AckHost host;
    host.storesDurably = true; // takes the ack over, as a peer with a store does
    Replica r(&host, QStringLiteral("/m"));
    r.handleOpened({QStringLiteral("/m"), 1, true, {}});
    feed(r, deltaFrom(0xB, QStringLiteral("k"), Entry{QByteArray("1"), 10, 0xB, false}, Wire::FlagAckRequested));
    QCOMPARE(host.requested.size(), 1);
    QVERIFY(sentOfType(host.frames, Wire::Type::WriteAck).isEmpty()); // not before the disk has it
    r.acknowledge(host.requested[0].first, host.requested[0].second, true);
    const auto acks = sentOfType(host.frames, Wire::Type::WriteAck);
    QCOMPARE(acks.size(), 1);
    Wire::WriteAck ack;
    QCOMPARE(Wire::decodeWriteAck(acks[0].second.constData(), acks[0].second.size(), &ack), Wire::DecodeError::NoError);
    QVERIFY(ack.durable);
    QCOMPARE(ack.hlcs, QVector<quint64>{10});
}

void tst_Replica::aWriteStaysUnconfirmedUntilADurableAck()
{
    AckHost host;
    Replica r(&host, QStringLiteral("/m"));
    r.setWriteAcknowledgements(true);
    r.handleOpened({QStringLiteral("/m"), 1, true, {}});
    r.handleAlone();
    host.frames.clear();
    const Replica::Change first = r.write(QStringLiteral("k"), QByteArray("1"));
    const Replica::Change c = r.write(QStringLiteral("k"), QByteArray("2")); // replaces the first
    r.flush();
    const auto deltas = sentOfType(host.frames, Wire::Type::Delta);
    QCOMPARE(deltas.size(), 1);
    QCOMPARE(deltas[0].first.flags, Wire::FlagAckRequested);
    QCOMPARE(r.unconfirmedWrites(), 1); // one per key: the latest

    feed(r, writeAckFrom(0xB, {false, {first.hlc}})); // the replaced write: nothing to report
    QVERIFY(host.acknowledged.isEmpty());
    feed(r, writeAckFrom(0xB, {false, {c.hlc}}));
    feed(r, writeAckFrom(0xB, {false, {c.hlc}})); // the same peer again counts once
    QCOMPARE(host.acknowledged.size(), 2);
    QCOMPARE(host.acknowledged.last().peers, 1);
    QVERIFY(!host.acknowledged.last().durable);
    QCOMPARE(r.unconfirmedWrites(), 1); // in memory is not enough

    feed(r, writeAckFrom(0xC, {true, {c.hlc}}));
    QCOMPARE(host.acknowledged.last().key, QStringLiteral("k"));
    QCOMPARE(host.acknowledged.last().peers, 2);
    QVERIFY(host.acknowledged.last().durable);
    QCOMPARE(r.unconfirmedWrites(), 0);
    feed(r, writeAckFrom(0xD, {true, {c.hlc}})); // settled: later acks change nothing
    QCOMPARE(host.acknowledged.size(), 3);
}

void tst_Replica::unconfirmedWritesAreSentAgainWhenAPeerJoins()
{
    AckHost host;
    Replica r(&host, QStringLiteral("/m"));
    r.setWriteAcknowledgements(true);
    r.handleOpened({QStringLiteral("/m"), 1, true, {}});
    r.handleAlone();
    const Replica::Change settled = r.write(QStringLiteral("settled"), QByteArray("1"));
    const Replica::Change pending = r.write(QStringLiteral("pending"), QByteArray("2"));
    r.flush();
    feed(r, writeAckFrom(0xB, {true, {settled.hlc}}));
    host.frames.clear();

    r.handleJoined({1, 0xC, {}}); // perhaps the keeper, back from a lost link
    const auto deltas = sentOfType(host.frames, Wire::Type::Delta);
    QCOMPARE(deltas.size(), 1);
    QCOMPARE(deltas[0].first.flags, Wire::FlagAckRequested);
    QVector<Wire::DecodedEntry> entries;
    QCOMPARE(Wire::decodeEntries(deltas[0].second.constData(), deltas[0].second.size(), &entries), Wire::DecodeError::NoError);
    QCOMPARE(entries.size(), 1);
    QCOMPARE(entries[0].key, QStringLiteral("pending"));
    QCOMPARE(entries[0].entry.hlc, pending.hlc);

    // And after a reconnect's sync, before the application hears ready.
    r.connectionDown();
    r.connectionUp();
    r.handleOpened({QStringLiteral("/m"), 2, true, {}});
    host.frames.clear();
    r.handleAlone();
    QCOMPARE(sentOfType(host.frames, Wire::Type::Delta).size(), 1);
}

void tst_Replica::aNewerWriteOfAnotherPeerSupersedesAnUnconfirmedOne()
{
    AckHost host;
    Replica r(&host, QStringLiteral("/m"));
    r.clock() = HybridClock([] { return Now; });
    r.setWriteAcknowledgements(true);
    r.handleOpened({QStringLiteral("/m"), 1, true, {}});
    r.handleAlone();
    const Replica::Change mine = r.write(QStringLiteral("k"), QByteArray("1"));
    feed(r, deltaFrom(0xB, QStringLiteral("k"), Entry{QByteArray("2"), mine.hlc + 1, 0xB, false}));
    QCOMPARE(host.superseded, QStringList{QStringLiteral("k")});
    QCOMPARE(r.unconfirmedWrites(), 0);
    host.frames.clear();
    r.handleJoined({1, 0xC, {}});
    QVERIFY(sentOfType(host.frames, Wire::Type::Delta).isEmpty()); // nothing of ours to send again
}

QTEST_APPLESS_MAIN(tst_Replica)
#include "tst_replica.moc"
