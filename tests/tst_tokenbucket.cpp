#include "tokenbucket.h"

#include <QTest>

#include <cmath>

class tst_TokenBucket : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void spend_data();
    void spend();
    void nsUntilIsWhenTheLevelIsBack();
    void unlimitedNeverRunsOut();
};

// spendsMs: when each spend() happens, in ms after the bucket was made;
// left: the whole tokens each leaves (floor), negative while in debt.
void tst_TokenBucket::spend_data()
{
    QTest::addColumn<int>("perSecond");
    QTest::addColumn<int>("burst");
    QTest::addColumn<QList<int>>("spendsMs");
    QTest::addColumn<QList<int>>("left");
    QTest::newRow("a full bucket pays for a whole burst at once")
        << 10 << 3 << QList<int>{0, 0, 0} << QList<int>{2, 1, 0};
    QTest::newRow("past the burst the bucket goes into debt")
        << 10 << 2 << QList<int>{0, 0, 0, 0} << QList<int>{1, 0, -1, -2};
    QTest::newRow("debt is paid back by the refill")
        << 10 << 1 << QList<int>{0, 0, 0, 300} << QList<int>{0, -1, -2, 0};
    QTest::newRow("refilling stops at the burst")
        << 1000 << 2 << QList<int>{0, 0, 10000, 10000, 10000} << QList<int>{1, 0, 1, 0, -1};
    QTest::newRow("a steady rate under the limit never goes into debt")
        << 50 << 1 << QList<int>{0, 20, 40, 60, 80, 100, 120} << QList<int>{0, 0, 0, 0, 0, 0, 0};
}

void tst_TokenBucket::spend()
{
    QFETCH(int, perSecond);
    QFETCH(int, burst);
    QFETCH(QList<int>, spendsMs);
    QFETCH(QList<int>, left);
    QCOMPARE(spendsMs.size(), left.size());
    const qint64 start = 123456789; // any monotonic origin
    TokenBucket bucket(perSecond, burst, start);
    QVERIFY(bucket.isLimited());
    QList<int> got;
    for (int ms : std::as_const(spendsMs))
        got.append(int(std::floor(bucket.spend(start + qint64(ms) * 1000000) + 1e-9)));
    QCOMPARE(got, left);
}

void tst_TokenBucket::nsUntilIsWhenTheLevelIsBack()
{
    const qint64 start = 5;
    TokenBucket bucket(100, 50, start); // a token every 10 ms
    QCOMPARE(bucket.tokens(start), 50.0);
    QCOMPARE(bucket.nsUntil(10, start), 0); // already there
    for (int i = 0; i < 60; ++i)
        bucket.spend(start);
    QCOMPARE(bucket.tokens(start), -10.0);
    // Back to 10 tokens: 20 tokens to refill, 200 ms.
    QCOMPARE(bucket.nsUntil(10, start), qint64(200) * 1000000);
    QCOMPARE(bucket.nsUntil(10, start + 150 * 1000000), qint64(50) * 1000000);
    QCOMPARE(bucket.nsUntil(10, start + 200 * 1000000), 0);
    QCOMPARE(bucket.tokens(start + 200 * 1000000), 10.0);
    // A level above the burst is capped at the burst.
    QCOMPARE(bucket.nsUntil(1000, start), qint64(600) * 1000000);
    // tokens() only looks: the debt is still there.
    QCOMPARE(bucket.tokens(start), -10.0);
}

void tst_TokenBucket::unlimitedNeverRunsOut()
{
    for (int rate : {0, -5}) {
        TokenBucket bucket(rate, 1, 0);
        QVERIFY(!bucket.isLimited());
        for (int i = 0; i < 1000; ++i)
            QVERIFY(bucket.spend(0) >= 0);
        QCOMPARE(bucket.nsUntil(1, 0), 0);
    }
    TokenBucket unlimited;
    QVERIFY(!unlimited.isLimited());
    QVERIFY(unlimited.spend(0) >= 0);
}

QTEST_APPLESS_MAIN(tst_TokenBucket)
#include "tst_tokenbucket.moc"
