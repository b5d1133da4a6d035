#include "replica.h"
#include "control.h"
#include "hybridclock.h"
#include "wire.h"

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

QByteArray deltaFrom(quint64 origin, const QString &key, const Entry &entry)
{
    QByteArray frame;
    Wire::appendHeader(frame, {Wire::Type::Delta, 0, 1, origin});
    Wire::appendEntry(frame, key, entry);
    return frame;
}

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

QTEST_APPLESS_MAIN(tst_Replica)
#include "tst_replica.moc"
