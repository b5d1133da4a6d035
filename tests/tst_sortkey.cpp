// SortKey, the order of a sorted keys table's values, names and clocks:
// pairs of JSON texts, each row says which goes first.

#include "sortkey.h"

#include <QTest>

class tst_SortKey : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void valuesSortByTypeThenContent_data();
    void valuesSortByTypeThenContent();
    void equalValuesTie_data();
    void equalValuesTie();
    void namesAndClocks();
};

void tst_SortKey::valuesSortByTypeThenContent_data()
{
    QTest::addColumn<QByteArray>("first");
    QTest::addColumn<QByteArray>("second");
    QTest::newRow("null before false") << QByteArray("null") << QByteArray("false");
    QTest::newRow("false before true") << QByteArray("false") << QByteArray("true");
    QTest::newRow("true before any number") << QByteArray("true") << QByteArray("-1e300");
    QTest::newRow("numbers by value, not by text") << QByteArray("9") << QByteArray("10");
    QTest::newRow("a negative number before a smaller positive one") << QByteArray("-2") << QByteArray("1");
    QTest::newRow("the more negative first") << QByteArray("-10") << QByteArray("-9.5");
    QTest::newRow("fractions by value, whatever the notation") << QByteArray("0.25") << QByteArray("2.6e-1");
    QTest::newRow("an overflowing number after every finite one") << QByteArray("1e308") << QByteArray("1e999");
    QTest::newRow("a negative overflow before every finite number") << QByteArray("-1e999") << QByteArray("-1e308");
    QTest::newRow("any number before any string") << QByteArray("1e300") << QByteArray("\"\"");
    QTest::newRow("strings by code point") << QByteArray("\"B\"") << QByteArray("\"a\"");
    QTest::newRow("a prefix first") << QByteArray("\"ab\"") << QByteArray("\"abc\"");
    QTest::newRow("an escape sorts as its character") << QByteArray("\"\\u0041z\"") << QByteArray("\"B\"");
    QTest::newRow("non-ASCII after ASCII") << QByteArray("\"z\"") << QByteArray("\"\xc3\xa9\"");
    QTest::newRow("any string before any array") << QByteArray("\"zzz\"") << QByteArray("[]");
    QTest::newRow("arrays by JSON text") << QByteArray("[1,2]") << QByteArray("[1,3]");
    QTest::newRow("any array before any object") << QByteArray("[9]") << QByteArray("{}");
    QTest::newRow("objects by JSON text") << QByteArray("{\"a\":2}") << QByteArray("{\"b\":1}");
    QTest::newRow("nothing before null") << QByteArray() << QByteArray("null");
}

void tst_SortKey::valuesSortByTypeThenContent()
{
    QFETCH(QByteArray, first);
    QFETCH(QByteArray, second);
    const SortKey a = SortKey::ofValue(first);
    const SortKey b = SortKey::ofValue(second);
    QVERIFY(a < b);
    QVERIFY(!(b < a));
    QVERIFY(a != b);
    QVERIFY(SortKey::compare(a, b) < 0 && SortKey::compare(b, a) > 0);
}

void tst_SortKey::equalValuesTie_data()
{
    QTest::addColumn<QByteArray>("first");
    QTest::addColumn<QByteArray>("second");
    QTest::newRow("one number written two ways") << QByteArray("100") << QByteArray("1e2");
    QTest::newRow("zero and minus zero") << QByteArray("0") << QByteArray("-0");
    QTest::newRow("an underflowing number and zero") << QByteArray("1e-999") << QByteArray("0");
    QTest::newRow("whitespace around a value") << QByteArray(" true ") << QByteArray("true");
    QTest::newRow("a string with and without an escape") << QByteArray("\"\\u0061\"") << QByteArray("\"a\"");
    const QByteArray head(SortKey::TextBytes, 'x');
    QTest::newRow("long strings past the compared head")
        << QByteArray("\"" + head + "1\"") << QByteArray("\"" + head + "2\"");
}

void tst_SortKey::equalValuesTie()
{
    QFETCH(QByteArray, first);
    QFETCH(QByteArray, second);
    QCOMPARE(SortKey::compare(SortKey::ofValue(first), SortKey::ofValue(second)), 0);
    QVERIFY(SortKey::ofValue(first) == SortKey::ofValue(second));
}

void tst_SortKey::namesAndClocks()
{
    QVERIFY(SortKey::ofClock(5) < SortKey::ofClock(6));
    QVERIFY(SortKey() < SortKey::ofClock(1));
    QVERIFY(SortKey::ofName("Bob") < SortKey::ofName("ann")); // by code point, not by case
    QVERIFY(SortKey::ofName("ann") < SortKey::ofName("anna"));
    const QByteArray bob("bob");
    QVERIFY(SortKey::ofName(bob) == SortKey::ofName(bob));
    QVERIFY(SortKey::ofName("bob") == SortKey::ofName(QByteArray("b") + "ob"));
}

QTEST_APPLESS_MAIN(tst_SortKey)
#include "tst_sortkey.moc"
