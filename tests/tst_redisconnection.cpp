// RedisConnection against a real redis-server started by the test.
#include "redisconnection.h"
#include "redisserver.h"

#include <QSignalSpy>
#include <QTest>

namespace {
constexpr int Timeout = 20000;

RedisConnection::Address addressOf(const RedisServer &server, const QString &suffix = QString())
{
    RedisConnection::Address a;
    QString error;
    if (!RedisConnection::parseUrl(server.url() + suffix, &a, &error))
        qFatal("%s", qPrintable(error));
    return a;
}

// Sends a command and waits for its one reply.
RedisReply call(RedisConnection &c, const QList<QByteArray> &arguments)
{
    QSignalSpy replies(&c, &RedisConnection::replyReceived);
    if (!c.send(arguments) || !replies.wait(Timeout))
        return {};
    return replies.first().first().value<RedisReply>();
}
} // namespace

Q_DECLARE_METATYPE(RedisReply)

class tst_RedisConnection : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() { qRegisterMetaType<RedisReply>(); }
    void urls_data();
    void urls();
    void commandsAreBinarySafe();
    void pubSubAndShardedPubSubPushesArrive();
    void passwordAndDatabase();
    void aWrongPasswordIsAClearError();
    void aServerThatGoesAwayIsNoticed();
    void nothingListeningIsNoticed();
};

void tst_RedisConnection::urls_data()
{
    QTest::addColumn<QString>("url");
    QTest::addColumn<bool>("valid");
    QTest::addColumn<QString>("host");
    QTest::addColumn<int>("port");
    QTest::addColumn<int>("db");
    QTest::newRow("plain") << "redis://127.0.0.1" << true << "127.0.0.1" << 6379 << 0;
    QTest::newRow("port and db") << "redis://localhost:7000/3" << true << "localhost" << 7000 << 3;
    QTest::newRow("password") << "redis://:s3cret@h:1" << true << "h" << 1 << 0;
    QTest::newRow("user") << "redis://ada:s3cret@h" << true << "h" << 6379 << 0;
    QTest::newRow("user without password") << "redis://ada@h" << false << "" << 0 << 0;
    QTest::newRow("tls") << "rediss://h" << false << "" << 0 << 0;
    QTest::newRow("http") << "http://h" << false << "" << 0 << 0;
    QTest::newRow("no host") << "redis://" << false << "" << 0 << 0;
    QTest::newRow("db not a number") << "redis://h/x" << false << "" << 0 << 0;
    QTest::newRow("bad port") << "redis://h:99999" << false << "" << 0 << 0;
}

void tst_RedisConnection::urls()
{
    QFETCH(QString, url);
    QFETCH(bool, valid);
    RedisConnection::Address a;
    QString error;
    QCOMPARE(RedisConnection::parseUrl(url, &a, &error), valid);
    if (!valid) {
        QVERIFY(!error.isEmpty());
        QVERIFY2(!error.contains(QLatin1String("s3cret")), qPrintable(error));
        return;
    }
    QFETCH(QString, host);
    QFETCH(int, port);
    QFETCH(int, db);
    QCOMPARE(a.host, host);
    QCOMPARE(int(a.port), port);
    QCOMPARE(a.db, db);
}

void tst_RedisConnection::commandsAreBinarySafe()
{
    RedisServer server;
    QVERIFY(server.isRunning());
    RedisConnection c;
    QSignalSpy opened(&c, &RedisConnection::opened);
    c.open(addressOf(server));
    QVERIFY(opened.wait(Timeout));
    const QByteArray value("a\0b\r\n$3\r\n*1\r\n\xff", 15);
    QCOMPARE(call(c, {"SET", "k", value}).string, QByteArray("OK"));
    const RedisReply got = call(c, {"GET", "k"});
    QCOMPARE(int(got.type), int(RedisReply::Type::String));
    QCOMPARE(got.string, value);
    QCOMPARE(int(call(c, {"GET", "missing"}).type), int(RedisReply::Type::Nil));
    QCOMPARE(call(c, {"INCRBY", "n", "41"}).integer, 41);
    const RedisReply error = call(c, {"NOSUCHCOMMAND"});
    QVERIFY(error.isError());
    QVERIFY(c.isOpen()); // an error reply is not a broken connection
}

void tst_RedisConnection::pubSubAndShardedPubSubPushesArrive()
{
    RedisServer server;
    RedisConnection subscriber;
    RedisConnection publisher;
    QSignalSpy subOpened(&subscriber, &RedisConnection::opened);
    QSignalSpy pubOpened(&publisher, &RedisConnection::opened);
    subscriber.open(addressOf(server));
    publisher.open(addressOf(server));
    QVERIFY(subOpened.wait(Timeout) || !subOpened.isEmpty());
    QTRY_COMPARE_WITH_TIMEOUT(pubOpened.size(), 1, Timeout);
    QSignalSpy pushes(&subscriber, &RedisConnection::replyReceived);
    QVERIFY(subscriber.send({"SUBSCRIBE", "dm:plain"}));
    QVERIFY(subscriber.send({"SSUBSCRIBE", "dm:{m1}:map"}));
    QTRY_COMPARE_WITH_TIMEOUT(pushes.size(), 2, Timeout); // the two confirmations
    QCOMPARE(pushes.at(1).first().value<RedisReply>().at(0), QByteArray("ssubscribe"));
    const QByteArray payload("\x01\x00\x02binary", 9);
    QCOMPARE(call(publisher, {"PUBLISH", "dm:plain", payload}).integer, 1);
    QCOMPARE(call(publisher, {"SPUBLISH", "dm:{m1}:map", payload}).integer, 1);
    QTRY_COMPARE_WITH_TIMEOUT(pushes.size(), 4, Timeout);
    const RedisReply message = pushes.at(2).first().value<RedisReply>();
    QCOMPARE(message.at(0), QByteArray("message"));
    QCOMPARE(message.at(1), QByteArray("dm:plain"));
    QCOMPARE(message.at(2), payload);
    const RedisReply sharded = pushes.at(3).first().value<RedisReply>();
    QCOMPARE(sharded.at(0), QByteArray("smessage"));
    QCOMPARE(sharded.at(1), QByteArray("dm:{m1}:map"));
    QCOMPARE(sharded.at(2), payload);
}

void tst_RedisConnection::passwordAndDatabase()
{
    RedisServer server({QStringLiteral("--requirepass"), QStringLiteral("s3cret")});
    RedisConnection c;
    QSignalSpy opened(&c, &RedisConnection::opened);
    RedisConnection::Address a;
    QString error;
    QVERIFY(RedisConnection::parseUrl(QStringLiteral("redis://:s3cret@127.0.0.1:%1/2").arg(server.port()), &a, &error));
    c.open(a);
    QVERIFY(opened.wait(Timeout));
    QCOMPARE(call(c, {"SET", "in2", "x"}).string, QByteArray("OK"));
    QCOMPARE(call(c, {"SELECT", "0"}).string, QByteArray("OK"));
    QCOMPARE(int(call(c, {"GET", "in2"}).type), int(RedisReply::Type::Nil)); // it went to database 2
}

void tst_RedisConnection::aWrongPasswordIsAClearError()
{
    RedisServer server({QStringLiteral("--requirepass"), QStringLiteral("s3cret")});
    RedisConnection c;
    QSignalSpy closed(&c, &RedisConnection::closed);
    RedisConnection::Address a;
    QString error;
    QVERIFY(RedisConnection::parseUrl(QStringLiteral("redis://:wrong-pass@127.0.0.1:%1").arg(server.port()), &a, &error));
    c.open(a);
    QVERIFY(closed.wait(Timeout));
    const QString reason = closed.first().first().toString();
    QVERIFY2(reason.contains(QLatin1String("refused")), qPrintable(reason));
    QVERIFY2(!reason.contains(QLatin1String("wrong-pass")), qPrintable(reason));
    QVERIFY(!c.isOpen());
    QVERIFY(!c.send({"PING"}));
}

void tst_RedisConnection::aServerThatGoesAwayIsNoticed()
{
    RedisServer server;
    RedisConnection c;
    QSignalSpy opened(&c, &RedisConnection::opened);
    QSignalSpy closed(&c, &RedisConnection::closed);
    c.open(addressOf(server));
    QVERIFY(opened.wait(Timeout));
    server.stop();
    QVERIFY(closed.wait(Timeout));
    QVERIFY(!c.isOpen());
    // And it opens again once the server is back.
    QVERIFY(server.start());
    c.open(addressOf(server));
    QTRY_COMPARE_WITH_TIMEOUT(opened.size(), 2, Timeout);
    QCOMPARE(call(c, {"PING"}).string, QByteArray("PONG"));
}

void tst_RedisConnection::nothingListeningIsNoticed()
{
    QTcpServer probe;
    QVERIFY(probe.listen(QHostAddress::LocalHost, 0));
    RedisConnection::Address a;
    a.host = QStringLiteral("127.0.0.1");
    a.port = probe.serverPort();
    probe.close();
    RedisConnection c;
    QSignalSpy closed(&c, &RedisConnection::closed);
    c.open(a);
    QVERIFY(closed.wait(Timeout));
    QVERIFY(!closed.first().first().toString().isEmpty());
}

QTEST_GUILESS_MAIN(tst_RedisConnection)
#include "tst_redisconnection.moc"
