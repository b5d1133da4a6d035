#include "closeframe.h"

#include <QStringDecoder>
#include <QTest>

class tst_CloseFrame : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void encode_data();
    void encode();
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

QTEST_APPLESS_MAIN(tst_CloseFrame)
#include "tst_closeframe.moc"
