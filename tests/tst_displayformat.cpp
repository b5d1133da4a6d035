#include "displayformat.h"

#include <QJsonArray>
#include <QJsonObject>
#include <QTest>

// The public formatting helper: what apps print must not change when the
// core's codec or clock does.
class tst_DisplayFormat : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void peerIdsAreSixteenHexDigits_data();
    void peerIdsAreSixteenHexDigits();
    void clockStampsSplitIntoTimeAndCounter();
    void jsonTextRoundTripsAnyValue_data();
    void jsonTextRoundTripsAnyValue();
    void invalidJsonSaysWhy_data();
    void invalidJsonSaysWhy();
    void elidedUtf8CutsLongTextOnly();
};

void tst_DisplayFormat::peerIdsAreSixteenHexDigits_data()
{
    QTest::addColumn<quint64>("peer");
    QTest::addColumn<QString>("text");
    QTest::newRow("zero is padded") << quint64(0) << "0000000000000000";
    QTest::newRow("a small id keeps its leading zeros") << quint64(0xabc) << "0000000000000abc";
    QTest::newRow("the largest id is lowercase") << ~quint64(0) << "ffffffffffffffff";
}

void tst_DisplayFormat::peerIdsAreSixteenHexDigits()
{
    QFETCH(quint64, peer);
    QFETCH(QString, text);
    QCOMPARE(DisplayFormat::peerId(peer), text);
}

void tst_DisplayFormat::clockStampsSplitIntoTimeAndCounter()
{
    const qint64 ms = 1700000000123;
    const quint64 hlc = (quint64(ms) << 16) | 7;
    QCOMPARE(DisplayFormat::clockMsSinceEpoch(hlc), ms);
    QCOMPARE(DisplayFormat::clockCounter(hlc), 7u);
    QCOMPARE(DisplayFormat::clockMsSinceEpoch(0), 0);
}

void tst_DisplayFormat::jsonTextRoundTripsAnyValue_data()
{
    QTest::addColumn<QJsonValue>("value");
    QTest::addColumn<QByteArray>("text");
    QTest::newRow("a number") << QJsonValue(42) << QByteArray("42");
    QTest::newRow("a string is quoted") << QJsonValue(QStringLiteral("hi")) << QByteArray("\"hi\"");
    QTest::newRow("null") << QJsonValue(QJsonValue::Null) << QByteArray("null");
    QTest::newRow("an array is compact") << QJsonValue(QJsonArray{1, 2}) << QByteArray("[1,2]");
    QTest::newRow("an object is compact") << QJsonValue(QJsonObject{{QStringLiteral("a"), true}}) << QByteArray("{\"a\":true}");
}

void tst_DisplayFormat::jsonTextRoundTripsAnyValue()
{
    QFETCH(QJsonValue, value);
    QFETCH(QByteArray, text);
    QCOMPARE(DisplayFormat::jsonText(value), text);
    QString error;
    QCOMPARE(DisplayFormat::parseJson(text, &error), value);
    QVERIFY(error.isEmpty());
}

void tst_DisplayFormat::invalidJsonSaysWhy_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::newRow("plain words are not JSON") << QByteArray("hello there");
    QTest::newRow("an unclosed object") << QByteArray("{broken");
    QTest::newRow("two values") << QByteArray("1 2");
    QTest::newRow("nothing") << QByteArray("  ");
}

void tst_DisplayFormat::invalidJsonSaysWhy()
{
    QFETCH(QByteArray, text);
    QString error;
    QVERIFY(DisplayFormat::parseJson(text, &error).isUndefined());
    QVERIFY(!error.isEmpty());
    QVERIFY(DisplayFormat::jsonText(QJsonValue(QJsonValue::Undefined)).isEmpty());
}

void tst_DisplayFormat::elidedUtf8CutsLongTextOnly()
{
    QCOMPARE(DisplayFormat::elidedUtf8("\"short\"", 10), QStringLiteral("\"short\""));
    QCOMPARE(DisplayFormat::elidedUtf8("abcdefghij", 10), QStringLiteral("abcdefghij"));
    QCOMPARE(DisplayFormat::elidedUtf8("abcdefghijk", 10), QStringLiteral("abcdefghi\u2026"));
    // Multi-byte characters count as characters, not bytes.
    const QByteArray cyrillic = QStringLiteral("ключключключ").toUtf8(); // 12 characters, 24 bytes
    QCOMPARE(DisplayFormat::elidedUtf8(cyrillic, 12), QStringLiteral("ключключключ"));
    QCOMPARE(DisplayFormat::elidedUtf8(cyrillic, 5), QStringLiteral("ключ\u2026"));
    QCOMPARE(DisplayFormat::elidedUtf8(QByteArray(), 5), QString());
}

QTEST_APPLESS_MAIN(tst_DisplayFormat)
#include "tst_displayformat.moc"
