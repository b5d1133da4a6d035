#include "tokenbucket.h"

#include <QTest>

class tst_TokenBucket : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void take_data();
    void take();
};

// takesMs: when each take() happens, in ms after the bucket was made;
// allowed: what each returns, y or n.
void tst_TokenBucket::take_data()
{
    QTest::addColumn<int>("perSecond");
    QTest::addColumn<int>("burst");
    QTest::addColumn<QList<int>>("takesMs");
    QTest::addColumn<QString>("allowed");
    QTest::newRow("a full bucket allows a whole burst at once")
        << 10 << 3 << QList<int>{0, 0, 0, 0} << QStringLiteral("yyyn");
    QTest::newRow("an empty bucket allows the next take once a token has refilled")
        << 10 << 1 << QList<int>{0, 0, 50, 100} << QStringLiteral("ynny");
    QTest::newRow("a refused take costs no token")
        << 10 << 1 << QList<int>{0, 90, 100} << QStringLiteral("yny");
    QTest::newRow("refilling stops at the burst")
        << 1000 << 2 << QList<int>{0, 0, 10000, 10000, 10000} << QStringLiteral("yyyyn");
    QTest::newRow("a steady rate under the limit is never refused")
        << 50 << 1 << QList<int>{0, 20, 40, 60, 80, 100, 120} << QStringLiteral("yyyyyyy");
    QTest::newRow("a rate of zero never limits")
        << 0 << 0 << QList<int>{0, 0, 0, 0, 0} << QStringLiteral("yyyyy");
    QTest::newRow("a negative rate never limits either")
        << -5 << 1 << QList<int>{0, 0, 0} << QStringLiteral("yyy");
}

void tst_TokenBucket::take()
{
    QFETCH(int, perSecond);
    QFETCH(int, burst);
    QFETCH(QList<int>, takesMs);
    QFETCH(QString, allowed);
    QCOMPARE(takesMs.size(), allowed.size());
    const qint64 start = 123456789; // any monotonic origin
    TokenBucket bucket(perSecond, burst, start);
    QString got;
    for (int ms : std::as_const(takesMs))
        got += bucket.take(start + qint64(ms) * 1000000) ? QLatin1Char('y') : QLatin1Char('n');
    QCOMPARE(got, allowed);
}

QTEST_APPLESS_MAIN(tst_TokenBucket)
#include "tst_tokenbucket.moc"
