// The relay's web side: HTTP GET on the WebSocket's port serves the files of
// resources/web, compiled in; anything else gets a clean refusal, and the
// same port goes on serving WebSocket peers.
#include "peerfixture.h"
#include "rawclient.h"
#include "relay.h"

#include <QFile>
#include <QTcpSocket>
#include <QTest>

using namespace RelayTest;

namespace {

struct Reply
{
    int status = 0;
    QByteArray head;
    QByteArray body;
    QByteArray header(const QByteArray &name) const
    {
        for (const QByteArray &line : head.split('\n')) {
            const int colon = line.indexOf(':');
            if (colon > 0 && line.left(colon).trimmed().toLower() == name.toLower())
                return line.mid(colon + 1).trimmed();
        }
        return {};
    }
};

// Sends raw bytes (in pieces, when given several) and reads until the relay
// closes the connection: it serves one request per connection.
Reply exchange(quint16 port, const QList<QByteArray> &pieces)
{
    QTcpSocket socket;
    socket.connectToHost(QHostAddress::LocalHost, port);
    if (!socket.waitForConnected(Timeout))
        return {};
    for (const QByteArray &piece : pieces) {
        socket.write(piece);
        socket.flush();
        QTest::qWait(20); // so the pieces arrive apart, not a wait for a result
    }
    QByteArray all;
    (void)QTest::qWaitFor([&] { // the caller checks what came
        all += socket.readAll();
        return socket.state() == QAbstractSocket::UnconnectedState;
    }, Timeout);
    all += socket.readAll();
    Reply reply;
    const qsizetype end = all.indexOf("\r\n\r\n");
    reply.head = all.left(end);
    reply.body = end < 0 ? QByteArray() : all.mid(end + 4);
    reply.status = all.startsWith("HTTP/1.1 ") ? all.mid(9, 3).toInt() : 0;
    return reply;
}

Reply get(quint16 port, const QByteArray &path, const QByteArray &extra = {})
{
    return exchange(port, {"GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n"});
}

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

QTEST_GUILESS_MAIN(tst_RelayHttp)
#include "tst_relayhttp.moc"
