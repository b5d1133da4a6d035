#include "binaryframe.h"
#include "closeframe.h"

#include <QStringDecoder>
#include <QTest>

class tst_CloseFrame : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void encode_data();
    void encode();
    void binaryFrame_data();
    void binaryFrame();
};

void tst_CloseFrame::encode_data()
{
    QTest::addColumn<QString>("reason");
    QTest::addColumn<int>("reasonBytes");
    QTest::newRow("an empty reason leaves only the code") << QString() << 0;
    QTest::newRow("a short reason is kept whole") << QStringLiteral("bye") << 3;
    QTest::newRow("an ASCII reason of 123 bytes is kept whole") << QString(123, QLatin1Char('a')) << 123;
    QTest::newRow("a longer ASCII reason is cut to 123 bytes") << QString(200, QLatin1Char('a')) << 123;
    QTest::newRow("a two-byte character across the limit is left out whole") << QString(100, QChar(0xe9)) << 122;
    QTest::newRow("three-byte characters that end at the limit are all kept") << QString(50, QChar(0x20ac)) << 123;
    QTest::newRow("a four-byte character across the limit is left out whole")
        << QStringLiteral("ab") + QString::fromUtf8("\xf0\x9f\x98\x80").repeated(40) << 122;
    QTest::newRow("a non-ASCII reason under the limit is kept whole")
        << QStringLiteral("version ") + QString(20, QChar(0xe9)) << 48;
}

void tst_CloseFrame::encode()
{
    QFETCH(QString, reason);
    QFETCH(int, reasonBytes);
    const QByteArray frame = CloseFrame::encode(1008, reason);
    QCOMPARE(frame.size(), 4 + reasonBytes);
    QCOMPARE(quint8(frame[0]), quint8(0x88));           // FIN, opcode close
    QCOMPARE(quint8(frame[1]), quint8(2 + reasonBytes)); // unmasked, the whole payload
    QVERIFY(quint8(frame[1]) <= 125);
    QCOMPARE(quint8(frame[2]), quint8(1008 >> 8));
    QCOMPARE(quint8(frame[3]), quint8(1008 & 0xff));
    const QByteArray sent = frame.mid(4);
    QVERIFY(reason.toUtf8().startsWith(sent));
    QStringDecoder utf8(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless);
    const QString decoded = utf8(sent);
    QVERIFY2(!utf8.hasError(), "the reason must stay valid UTF-8");
    QCOMPARE(decoded, reason.left(decoded.size()));
    QCOMPARE(CloseFrame::reason(reason), sent);
}

// The header by RFC 6455, 5.2, read back: FIN and opcode 2, no mask, and
// the length in the shortest of its three forms.
void tst_CloseFrame::binaryFrame_data()
{
    QTest::addColumn<int>("size");
    QTest::addColumn<int>("headerBytes");
    for (int size : {0, 1, 125})
        QTest::addRow("%d bytes: 7-bit length", size) << size << 2;
    for (int size : {126, 127, 65535})
        QTest::addRow("%d bytes: 16-bit length", size) << size << 4;
    for (int size : {65536, 1 << 20})
        QTest::addRow("%d bytes: 64-bit length", size) << size << 10;
}

void tst_CloseFrame::binaryFrame()
{
    QFETCH(int, size);
    QFETCH(int, headerBytes);
    QByteArray payload(size, Qt::Uninitialized);
    for (int i = 0; i < size; ++i)
        payload[i] = char(i * 7 + 3);
    QCOMPARE(BinaryFrame::headerSize(size), headerBytes);
    const QByteArray frame = BinaryFrame::encode(payload);
    QCOMPARE(frame.size(), headerBytes + size);
    QCOMPARE(quint8(frame[0]), quint8(0x82)); // FIN, opcode binary
    const quint8 second = quint8(frame[1]);
    QCOMPARE(second & 0x80, 0); // a server's frames are not masked
    quint64 length = second & 0x7f;
    if (length == 126) {
        length = quint64(quint8(frame[2])) << 8 | quint8(frame[3]);
        QVERIFY(length >= 126); // else the short form was due
    } else if (length == 127) {
        length = 0;
        for (int i = 2; i < 10; ++i)
            length = length << 8 | quint8(frame[i]);
        QVERIFY(length > 0xffff);
        QCOMPARE(quint8(frame[2]) & 0x80, 0); // the most significant bit must be 0
    }
    QCOMPARE(length, quint64(size));
    QCOMPARE(frame.mid(headerBytes), payload);
}

QTEST_APPLESS_MAIN(tst_CloseFrame)
#include "tst_closeframe.moc"
