// The relays' bus messages (relay/busmessage.h), byte by byte.
#include "busmessage.h"

#include <QTest>

class tst_BusMessage : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void roundTrips();
    void layoutIsAsDocumented();
    void rejectsWhatIsNotAMessage_data();
    void rejectsWhatIsNotAMessage();
    void channelsCarryAHashTagPerMap();
};

void tst_BusMessage::roundTrips()
{
    BusMessage m;
    m.kind = BusMessage::Kind::Joined;
    m.relay = 0x1122334455667788ULL;
    m.incarnation = ~quint64(0);
    m.seq = 42;
    m.peer = 0xab;
    m.target = 0;
    m.flags = BusMessage::FlagReady | BusMessage::FlagWritable;
    m.body = QByteArray("{\"name\":\"Ada\"}");
    BusMessage back;
    QString error;
    QVERIFY2(BusMessage::decode(m.encode(), &back, &error), qPrintable(error));
    QCOMPARE(int(back.kind), int(m.kind));
    QCOMPARE(back.relay, m.relay);
    QCOMPARE(back.incarnation, m.incarnation);
    QCOMPARE(back.seq, m.seq);
    QCOMPARE(back.peer, m.peer);
    QCOMPARE(back.target, m.target);
    QCOMPARE(back.flags, m.flags);
    QCOMPARE(back.body, m.body);
}

void tst_BusMessage::layoutIsAsDocumented()
{
    // docs/SCALING.md: "DM", version, kind, relay, incarnation, seq, peer,
    // target (u64 little-endian each), flags, body.
    BusMessage m;
    m.kind = BusMessage::Kind::Frame;
    m.relay = 1;
    m.incarnation = 2;
    m.seq = 3;
    m.peer = 4;
    m.target = 5;
    m.flags = 0;
    m.body = "xy";
    QCOMPARE(m.encode().toHex(), QByteArray("444d0101"
                                            "0100000000000000" "0200000000000000" "0300000000000000"
                                            "0400000000000000" "0500000000000000" "00" "7879"));
    QCOMPARE(BusMessage::HeaderSize, 45);
}

void tst_BusMessage::rejectsWhatIsNotAMessage_data()
{
    QTest::addColumn<QByteArray>("bytes");
    BusMessage ok;
    ok.relay = 1;
    const QByteArray good = ok.encode();
    QTest::newRow("empty") << QByteArray();
    QTest::newRow("short") << good.left(BusMessage::HeaderSize - 1);
    QTest::newRow("magic") << "XM" + good.mid(2);
    QTest::newRow("version 2") << good.left(2) + char(2) + good.mid(3);
    QTest::newRow("kind 0") << good.left(3) + char(0) + good.mid(4);
    QTest::newRow("kind 9") << good.left(3) + char(9) + good.mid(4);
    QByteArray noRelay = good;
    noRelay[4] = 0;
    QTest::newRow("relay 0") << noRelay;
}

void tst_BusMessage::rejectsWhatIsNotAMessage()
{
    QFETCH(QByteArray, bytes);
    BusMessage m;
    QString error;
    QVERIFY(!BusMessage::decode(bytes, &m, &error));
    QVERIFY(!error.isEmpty());
}

void tst_BusMessage::channelsCarryAHashTagPerMap()
{
    const QByteArray a = BusMessage::mapChannel(QStringLiteral("/rooms/1"));
    QVERIFY(a.startsWith("dm:{") && a.endsWith("}:map"));
    QCOMPARE(a.size(), 4 + 16 + 5);
    QCOMPARE(a, BusMessage::mapChannel(QStringLiteral("/rooms/1")));
    QVERIFY(a != BusMessage::mapChannel(QStringLiteral("/rooms/2")));
    // A URI with braces cannot break the tag: only its hash is in it.
    QVERIFY(!BusMessage::mapChannel(QStringLiteral("/{x}")).mid(4, 16).contains('{'));
}

QTEST_GUILESS_MAIN(tst_BusMessage)
#include "tst_busmessage.moc"
