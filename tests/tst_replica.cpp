#include "replica.h"
#include "control.h"
#include "hybridclock.h"
#include "wire.h"

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
    void syncTimerRequested(bool running) override { timer = running; }
    void onChanged(const Replica::Change &c) override { changes.append(c); }

    quint64 id = 0xA;
    bool timer = false;
    QList<QByteArray> frames;
    QList<Control::Message> controls;
    QList<Replica::Change> changes;
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

QTEST_APPLESS_MAIN(tst_Replica)
#include "tst_replica.moc"
