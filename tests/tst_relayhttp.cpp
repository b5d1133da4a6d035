// The relay's web side: HTTP GET on the WebSocket's port serves the files of
// resources/web, compiled in; anything else gets a clean refusal, and the
// same port goes on serving WebSocket peers.
#include "httpget.h"
#include "peerfixture.h"
#include "rawclient.h"
#include "relay.h"

#include <QFile>
#include <QTcpSocket>
#include <QTest>

using namespace RelayTest;
using namespace HttpGet;

namespace {

QByteArray sourceFile(const QString &name)
{
    QFile file(QStringLiteral(DISTMAP_WEB_DIR "/") + name);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

} // namespace

class tst_RelayHttp : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void servesTheClientAndTheInspector_data();
    void servesTheClientAndTheInspector();
    void refusesWhatItDoesNotServe_data();
    void refusesWhatItDoesNotServe();
    void aHeadInPiecesIsServed();
    void theSamePortServesPeers();
    void noHttpLeavesOnlyUpgrades();
    void originsFollowTheAllowList();
    void metricsCountWhatHappens();
    void healthAndReadiness();
    void metricsCanMoveOffThePublicPort();
    void reloadedLimitsApplyAtOnce();
};

void tst_RelayHttp::servesTheClientAndTheInspector_data()
{
    QTest::addColumn<QByteArray>("path");
    QTest::addColumn<QString>("file");
    QTest::addColumn<QByteArray>("type");
    QTest::newRow("/") << QByteArray("/") << QStringLiteral("index.html") << QByteArray("text/html; charset=utf-8");
    QTest::newRow("/index.html") << QByteArray("/index.html") << QStringLiteral("index.html") << QByteArray("text/html; charset=utf-8");
    QTest::newRow("/distmap.js") << QByteArray("/distmap.js") << QStringLiteral("distmap.js") << QByteArray("text/javascript; charset=utf-8");
    QTest::newRow("/inspector.css") << QByteArray("/inspector.css") << QStringLiteral("inspector.css") << QByteArray("text/css; charset=utf-8");
}

void tst_RelayHttp::servesTheClientAndTheInspector()
{
    QFETCH(QByteArray, path);
    QFETCH(QString, file);
    QFETCH(QByteArray, type);
    Relay relay;
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    const QByteArray expected = sourceFile(file);
    QVERIFY2(!expected.isEmpty(), qPrintable(file));
    const Reply reply = get(relay.port(), path);
    QCOMPARE(reply.status, 200);
    QCOMPARE(reply.header("Content-Type"), type);
    QCOMPARE(reply.header("Content-Length").toLongLong(), expected.size());
    QCOMPARE(reply.header("X-Content-Type-Options"), QByteArray("nosniff"));
    QVERIFY(reply.body == expected); // the file as committed, byte for byte
}

void tst_RelayHttp::refusesWhatItDoesNotServe_data()
{
    QTest::addColumn<QByteArray>("request");
    QTest::addColumn<int>("status");
    QTest::newRow("unknown path") << QByteArray("GET /nothing.js HTTP/1.1\r\nHost: x\r\n\r\n") << 404;
    QTest::newRow("traversal") << QByteArray("GET /../CMakeLists.txt HTTP/1.1\r\nHost: x\r\n\r\n") << 404;
    QTest::newRow("encoded traversal") << QByteArray("GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n") << 404;
    QTest::newRow("resource syntax") << QByteArray("GET /:/web/index.html HTTP/1.1\r\nHost: x\r\n\r\n") << 404;
    QTest::newRow("POST") << QByteArray("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc") << 405;
    QTest::newRow("DELETE") << QByteArray("DELETE /distmap.js HTTP/1.1\r\nHost: x\r\n\r\n") << 405;
    QTest::newRow("GET with a body") << QByteArray("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n") << 413;
    QTest::newRow("GET chunked") << QByteArray("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n") << 413;
    QTest::newRow("oversized head") << "GET / HTTP/1.1\r\nX-Big: " + QByteArray(20000, 'a') + "\r\n\r\n" << 431;
    QTest::newRow("endless head") << "GET / HTTP/1.1\r\n" + QByteArray(40000, 'a') << 431;
}

void tst_RelayHttp::refusesWhatItDoesNotServe()
{
    QFETCH(QByteArray, request);
    QFETCH(int, status);
    Relay relay;
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    const Reply reply = exchange(relay.port(), {request});
    QCOMPARE(reply.status, status);
    QVERIFY(!reply.body.contains("<html")); // nothing of the page
    if (status == 405)
        QCOMPARE(reply.header("Allow"), QByteArray("GET"));
    // The relay is unharmed and serves the next request.
    QCOMPARE(get(relay.port(), "/distmap.js").status, 200);
}

void tst_RelayHttp::aHeadInPiecesIsServed()
{
    Relay relay;
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    const Reply reply = exchange(relay.port(), {"GET /distm", "ap.js HTTP/1.1\r\nHo", "st: x\r\n", "\r\n"});
    QCOMPARE(reply.status, 200);
    QVERIFY(reply.body == sourceFile(QStringLiteral("distmap.js")));
}

void tst_RelayHttp::theSamePortServesPeers()
{
    Relay relay;
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    QCOMPARE(get(relay.port(), "/").status, 200);
    TestPeer a(relay.url(), QStringLiteral("/web"), QStringLiteral("a"));
    TestPeer b(relay.url(), QStringLiteral("/web"), QStringLiteral("b"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady() && b->isReady(), Timeout);
    a->set(QStringLiteral("k"), QStringLiteral("v"));
    QTRY_COMPARE_WITH_TIMEOUT(b->value(QStringLiteral("k")).toString(), QStringLiteral("v"), Timeout);
    QCOMPARE(get(relay.port(), "/distmap.js").status, 200);
    QTRY_COMPARE_WITH_TIMEOUT(relay.stats().sockets, 2, Timeout); // the HTTP sockets are gone
}

void tst_RelayHttp::noHttpLeavesOnlyUpgrades()
{
    Relay::Options options;
    options.serveHttp = false;
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    const Reply reply = get(relay.port(), "/");
    QVERIFY2(reply.status != 200, reply.head.constData());
    QVERIFY(!reply.body.contains("<html"));
    TestPeer a(relay.url(), QStringLiteral("/web"), QStringLiteral("a"));
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady(), Timeout);
}

void tst_RelayHttp::originsFollowTheAllowList()
{
    Relay::Options options;
    options.allowedOrigins = {QStringLiteral("https://app.example")};
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    const Reply allowed = get(relay.port(), "/distmap.js", "Origin: https://app.example\r\n");
    QCOMPARE(allowed.status, 200);
    QCOMPARE(allowed.header("Access-Control-Allow-Origin"), QByteArray("https://app.example"));
    const Reply refused = get(relay.port(), "/distmap.js", "Origin: https://evil.example\r\n");
    QCOMPARE(refused.status, 403);
    QVERIFY(refused.body != sourceFile(QStringLiteral("distmap.js")));
    // Without an allow-list any page may import the client.
    Relay open;
    QVERIFY(open.listen(QHostAddress::LocalHost, 0));
    QCOMPARE(get(open.port(), "/distmap.js", "Origin: https://elsewhere.example\r\n").header("Access-Control-Allow-Origin"), QByteArray("*"));
}


void tst_RelayHttp::metricsCountWhatHappens()
{
    Relay::Options options;
    options.messagesPerSecond = 1;
    options.messageBurst = 5;
    options.rateCutoffMs = 1; // the flooder below is cut off as soon as it is over its rate
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    Reply reply = get(relay.port(), "/metrics");
    QCOMPARE(reply.status, 200);
    QCOMPARE(reply.header("Content-Type"), QByteArray("text/plain; version=0.0.4; charset=utf-8"));
    QCOMPARE(sample(reply.body, "distmap_relay_up"), 1.0);
    QCOMPARE(sample(reply.body, "distmap_relay_peers"), 0.0);
    QCOMPARE(sample(reply.body, "distmap_relay_connections_cut_total{reason=\"rate-limited\"}"), 0.0);
    QCOMPARE(sample(reply.body, "distmap_relay_slowed_total"), 0.0);
    QVERIFY(reply.body.contains("# TYPE distmap_relay_deliveries_total counter\n"));
    QVERIFY(sample(reply.body, "distmap_relay_resident_memory_bytes") > 1e6);

    RawClient a(relay.url()), b(relay.url());
    QVERIFY(a.waitConnected() && b.waitConnected());
    QVERIFY(a.hello() && b.hello());
    const quint32 idA = a.open(QStringLiteral("/m"));
    QVERIFY(idA && b.open(QStringLiteral("/m")));
    a.sendBinary(frame(Wire::Type::Delta, idA, 0, QByteArray(8, '\0')));
    QTRY_COMPARE_WITH_TIMEOUT(b.frames.size(), 1, Timeout);
    a.sendBinary(frame(Wire::Type::Delta, 999, 0)); // a map it never opened
    QVERIFY(a.waitError(int(Wire::ErrorCode::UnknownMap)));
    reply = get(relay.port(), "/metrics");
    QCOMPARE(sample(reply.body, "distmap_relay_peers"), 2.0);
    QCOMPARE(sample(reply.body, "distmap_relay_maps"), 1.0);
    QCOMPARE(sample(reply.body, "distmap_relay_deliveries_total"), 1.0);
    QCOMPARE(sample(reply.body, "distmap_relay_frames_dropped_total{reason=\"not-a-member\"}"), 1.0);
    QVERIFY(sample(reply.body, "distmap_relay_connections_accepted_total") >= 3); // the two peers and this scrape's socket

    // a floods past its burst and is cut off, for that reason.
    for (int i = 0; i < 20; ++i)
        a.send(Control::encodePing({i}));
    QVERIFY(a.waitError(int(Wire::ErrorCode::RateLimited)));
    QTRY_COMPARE_WITH_TIMEOUT(sample(get(relay.port(), "/metrics").body, "distmap_relay_connections_cut_total{reason=\"rate-limited\"}"),
                              1.0, Timeout);
    QCOMPARE(relay.stats().cutOff, 1u); // the inspector's figure is the same counter
}

void tst_RelayHttp::healthAndReadiness()
{
    Relay relay;
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    Reply reply = get(relay.port(), "/healthz");
    QCOMPARE(reply.status, 200);
    QCOMPARE(reply.body, QByteArray("ok\n"));
    reply = get(relay.port(), "/readyz");
    QCOMPARE(reply.status, 200);
    QCOMPARE(reply.body, QByteArray("ready\n"));
    // A federated relay whose Redis does not answer is alive but not ready.
    Relay federated;
    QString error;
    QVERIFY2(federated.joinBus(QStringLiteral("redis://127.0.0.1:1"), 0, &error), qPrintable(error));
    QVERIFY(federated.listen(QHostAddress::LocalHost, 0));
    QCOMPARE(get(federated.port(), "/healthz").status, 200);
    reply = get(federated.port(), "/readyz");
    QCOMPARE(reply.status, 503);
    QCOMPARE(reply.body, QByteArray("not ready: the Redis bus is not connected\n"));
    QCOMPARE(sample(get(federated.port(), "/metrics").body, "distmap_relay_bus_connected"), 0.0);
}

void tst_RelayHttp::metricsCanMoveOffThePublicPort()
{
    Relay relay;
    QString error;
    QVERIFY2(relay.listenMetrics(QHostAddress::LocalHost, 0, &error), qPrintable(error));
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    QVERIFY(relay.metricsPort() != 0 && relay.metricsPort() != relay.port());
    QCOMPARE(get(relay.port(), "/metrics").status, 404);
    QCOMPARE(get(relay.port(), "/distmap.js").status, 200); // the public port still serves the page
    QCOMPARE(get(relay.metricsPort(), "/metrics").status, 200);
    QCOMPARE(get(relay.metricsPort(), "/readyz").status, 200);
    // The metrics port serves no files and no peers.
    QCOMPARE(get(relay.metricsPort(), "/distmap.js").status, 404);
    QCOMPARE(get(relay.metricsPort(), "/", "Upgrade: websocket\r\nConnection: Upgrade\r\n").status, 400);
}

void tst_RelayHttp::reloadedLimitsApplyAtOnce()
{
    Relay::Options options;
    options.messagesPerSecond = 1;
    options.messageBurst = 3;
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    RawClient a(relay.url());
    QVERIFY(a.waitConnected() && a.hello());
    Relay::Options raised = relay.options();
    raised.messagesPerSecond = 100000;
    raised.messageBurst = 100000;
    QCOMPARE(relay.setLimits(raised), (QStringList{QStringLiteral("max-rate"), QStringLiteral("burst")}));
    QCOMPARE(relay.setLimits(raised), QStringList()); // nothing changed the second time
    // Under the old limits this would be slowed to a ping a second.
    for (int i = 0; i < 50; ++i)
        a.send(Control::encodePing({i}));
    QVERIFY(a.stillServed());
    QCOMPARE(relay.stats().cutOff, 0u);
    QCOMPARE(relay.stats().slowed, 0u);
}

QTEST_GUILESS_MAIN(tst_RelayHttp)
#include "tst_relayhttp.moc"
