#include "peerfixture.h"
#include "relay.h"

#include <QElapsedTimer>
#include <QSignalSpy>
#include <QTest>

// A million keys must sync: chunked, flow-controlled, in bounded relay memory.
class tst_BigSync : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void millionKeysSync();
};

void tst_BigSync::millionKeysSync()
{
    const int keys = qEnvironmentVariableIntValue("DISTMAP_BIGSYNC_KEYS") > 0
        ? qEnvironmentVariableIntValue("DISTMAP_BIGSYNC_KEYS") : 1000000;
    Relay relay;
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    TestPeer a(relay.url(), QStringLiteral("/big"), QStringLiteral("a"), false);
    const QJsonValue value(QStringLiteral("0123456789abcdef0123456789abcdef"));
    for (int i = 0; i < keys; ++i)
        a->set(QStringLiteral("key-%1").arg(i, 7, 10, QLatin1Char('0')), value);
    a->remove(QStringLiteral("key-0000000"));
    a.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), 30000);

    QElapsedTimer timer;
    timer.start();
    TestPeer b(relay.url(), QStringLiteral("/big"), QStringLiteral("b"));
    QTRY_VERIFY_WITH_TIMEOUT(b->isReady(), 120000);
    qInfo("%d keys synced in %lld ms (%.1f MB received)", keys, timer.elapsed(),
          double(b.connection->bytesReceived()) / 1e6);
    QCOMPARE(b->size(), keys - 1);
    QCOMPARE(b.internals()->state().entryCount(), keys);
    QCOMPARE(b->value(QStringLiteral("key-0999999")).toString().isEmpty(), keys < 1000000);
    QCOMPARE(b.internals()->state().digest(4096), a.internals()->state().digest(4096));
}

QTEST_GUILESS_MAIN(tst_BigSync)
#include "tst_bigsync.moc"
