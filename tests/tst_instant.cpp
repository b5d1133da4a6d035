// The times `distmap dump --at`, `diff` and `keep --history` accept.

#include "hybridclock.h"
#include "instant.h"

#include <QDateTime>
#include <QTest>

namespace {

const qint64 Now = 1714572137000; // 2024-05-01T14:02:17Z
constexpr quint32 EndOfMs = 0xffff;

qint64 utcMs(int y, int mo, int d, int h, int mi, int s, int ms = 0)
{
    return QDateTime(QDate(y, mo, d), QTime(h, mi, s, ms), Qt::UTC).toMSecsSinceEpoch();
}

} // namespace

class tst_Instant : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void parse_data();
    void parse();
    void badTimesAreRefusedSayingWhatIsAccepted_data();
    void badTimesAreRefusedSayingWhatIsAccepted();
    void parseDuration_data();
    void parseDuration();
    void isoTextIsUtcWithMilliseconds();
};

void tst_Instant::parse_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<quint64>("expected");

    QTest::newRow("UTC with Z") << "2024-05-01T14:02:17Z" << HybridClock::pack(utcMs(2024, 5, 1, 14, 2, 17), EndOfMs);
    QTest::newRow("milliseconds are kept") << "2024-05-01T14:02:17.250Z"
                                           << HybridClock::pack(utcMs(2024, 5, 1, 14, 2, 17, 250), EndOfMs);
    QTest::newRow("an offset moves the instant") << "2024-05-01T16:02:17+02:00"
                                                 << HybridClock::pack(utcMs(2024, 5, 1, 14, 2, 17), EndOfMs);
    QTest::newRow("no offset means local time")
        << "2024-05-01T14:02:17"
        << HybridClock::pack(QDateTime(QDate(2024, 5, 1), QTime(14, 2, 17), Qt::LocalTime).toMSecsSinceEpoch(), EndOfMs);
    QTest::newRow("a date alone is local midnight")
        << "2024-05-01" << HybridClock::pack(QDate(2024, 5, 1).startOfDay().toMSecsSinceEpoch(), EndOfMs);
    QTest::newRow("seconds ago") << "-30s" << HybridClock::pack(Now - 30 * 1000, EndOfMs);
    QTest::newRow("minutes ago") << "-10m" << HybridClock::pack(Now - 10 * 60 * 1000, EndOfMs);
    QTest::newRow("hours ago") << "-2h" << HybridClock::pack(Now - 2 * 3600 * 1000, EndOfMs);
    QTest::newRow("days ago") << "-1d" << HybridClock::pack(Now - 24 * 3600 * 1000, EndOfMs);
    QTest::newRow("now") << "now" << HybridClock::pack(Now, EndOfMs);
    QTest::newRow("surrounding spaces are ignored") << " -1d " << HybridClock::pack(Now - 24 * 3600 * 1000, EndOfMs);
    QTest::newRow("an exact clock value") << "hlc:112358132134" << quint64(112358132134);
}

void tst_Instant::parse()
{
    QFETCH(QString, text);
    QFETCH(quint64, expected);
    QString error;
    const std::optional<quint64> got = Instant::parse(text, Now, &error);
    QVERIFY2(got, qPrintable(error));
    QCOMPARE(*got, expected);
}

void tst_Instant::badTimesAreRefusedSayingWhatIsAccepted_data()
{
    QTest::addColumn<QString>("text");
    QTest::newRow("empty") << "";
    QTest::newRow("words") << "yesterday";
    QTest::newRow("a relative time without a unit") << "-10";
    QTest::newRow("an unknown unit") << "-10y";
    QTest::newRow("a future relative time") << "+10m";
    QTest::newRow("a month 13") << "2024-13-01T00:00:00Z";
    QTest::newRow("before 1970") << "1969-12-31T23:59:59Z";
    QTest::newRow("hlc without a number") << "hlc:abc";
    QTest::newRow("a relative time before 1970") << "-999999999w";
}

void tst_Instant::badTimesAreRefusedSayingWhatIsAccepted()
{
    QFETCH(QString, text);
    QString error;
    QVERIFY(!Instant::parse(text, Now, &error));
    QVERIFY2(error.startsWith(QStringLiteral("'%1' is not a time").arg(text)), qPrintable(error));
    QVERIFY2(error.contains(QLatin1String("ISO 8601")) && error.contains(QLatin1String("-10m")), qPrintable(error));
}

void tst_Instant::parseDuration_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<qint64>("expected"); // -1: refused
    QTest::newRow("days") << "7d" << qint64(7) * 24 * 3600 * 1000;
    QTest::newRow("hours") << "12h" << qint64(12) * 3600 * 1000;
    QTest::newRow("a week") << "1w" << qint64(7) * 24 * 3600 * 1000;
    QTest::newRow("zero turns it off") << "0" << qint64(0);
    QTest::newRow("a number alone is refused") << "7" << qint64(-1);
    QTest::newRow("a negative duration is refused") << "-7d" << qint64(-1);
}

void tst_Instant::parseDuration()
{
    QFETCH(QString, text);
    QFETCH(qint64, expected);
    QString error;
    const std::optional<qint64> got = Instant::parseDuration(text, &error);
    if (expected < 0) {
        QVERIFY(!got);
        QVERIFY2(error.contains(QLatin1String("is not a duration")), qPrintable(error));
    } else {
        QVERIFY2(got, qPrintable(error));
        QCOMPARE(*got, expected);
    }
}

void tst_Instant::isoTextIsUtcWithMilliseconds()
{
    QCOMPARE(Instant::isoText(HybridClock::pack(utcMs(2024, 5, 1, 14, 2, 17, 5), 3)), QStringLiteral("2024-05-01T14:02:17.005Z"));
}

QTEST_APPLESS_MAIN(tst_Instant)
#include "tst_instant.moc"
