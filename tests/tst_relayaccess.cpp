#include "peerfixture.h"
#include "rawclient.h"
#include "relay.h"
#include "tokentable.h"
#include "wire.h"

#include <QElapsedTimer>
#include <QFile>
#include <QNetworkRequest>
#include <QProcess>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QSslCertificate>
#include <QSslKey>
#include <QSslSocket>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>
#include <memory>

using namespace RelayTest;

namespace {

const QByteArray WriterToken = "writer-token-0123456789";
const QByteArray ReaderToken = "reader-token-0123456789";
const QByteArray TokensFile = "# test tokens\n"
                              "writer-token-0123456789 rw /rooms/*\n"
                              "reader-token-0123456789 ro /rooms/*\n";

QNetworkRequest withHeader(const QUrl &url, const QByteArray &name, const QByteArray &value)
{
    QNetworkRequest request(url);
    request.setRawHeader(name, value);
    return request;
}

QNetworkRequest bearer(const QUrl &url, const QByteArray &token)
{
    return withHeader(url, "Authorization", "Bearer " + token);
}

bool runOpenssl(const QString &dir, const QStringList &arguments)
{
    QProcess p;
    p.setWorkingDirectory(dir);
    p.start(QStringLiteral("openssl"), arguments);
    return p.waitForFinished(30000) && p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
}

// Whether the spy on Connection::errorOccurred saw a message containing text.
bool sawError(const QSignalSpy &errors, QLatin1String text)
{
    for (const auto &e : errors) {
        if (e.at(1).toString().contains(text))
            return true;
    }
    return false;
}

} // namespace

// Access control and transport security: tokens, read-only maps, reloads,
// TLS and the origin allow-list (docs/RELIABILITY.md).
class tst_RelayAccess : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();

    void aConnectionWithoutAValidTokenIsRefused_data();
    void aConnectionWithoutAValidTokenIsRefused();
    void everyTokenFormIsAccepted_data();
    void everyTokenFormIsAccepted();
    void openingAMapOutsideTheGrantIsRefused();
    void aReadOnlyPeerCannotWrite();
    void theCliExitsNonZeroWhenItsWriteIsRefused_data();
    void theCliExitsNonZeroWhenItsWriteIsRefused();
    void aReadOnlyPeerIsNeverAskedToServeASync();
    void aReadOnlyPeerConfirmsWrites();
    void aWriterJoiningOnlyReadOnlyHoldersIsTold();
    void revokingATokenClosesItsConnections();
    void wssWorksWithAPrivateCa();
    void wssWithoutTheCaIsRefusedByThePeer();
    void plainWsToATlsPortGetsNowhere();
    void originsOutsideTheAllowListAreRefused();

private:
    std::unique_ptr<Relay> tokenRelay();
    QSslConfiguration serverTls() const;
    QSslConfiguration clientTls() const;

    QTemporaryDir m_dir;
};

void tst_RelayAccess::initTestCase()
{
    QVERIFY(m_dir.isValid());
    QVERIFY2(QSslSocket::supportsSsl(), "Qt's TLS backend did not load");
    // A private CA and a certificate for 127.0.0.1 signed by it, made now so
    // nothing expires in the repository. EC keys: much faster than RSA.
    const QString d = m_dir.path();
    QFile ext(d + QStringLiteral("/ext.cnf"));
    QVERIFY(ext.open(QIODevice::WriteOnly));
    ext.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n");
    ext.close();
    QVERIFY(runOpenssl(d, {QStringLiteral("req"), QStringLiteral("-x509"), QStringLiteral("-newkey"), QStringLiteral("ec"),
                           QStringLiteral("-pkeyopt"), QStringLiteral("ec_paramgen_curve:prime256v1"), QStringLiteral("-nodes"),
                           QStringLiteral("-keyout"), QStringLiteral("ca.key"), QStringLiteral("-out"), QStringLiteral("ca.pem"),
                           QStringLiteral("-days"), QStringLiteral("2"), QStringLiteral("-subj"), QStringLiteral("/CN=distmap test CA")}));
    QVERIFY(runOpenssl(d, {QStringLiteral("req"), QStringLiteral("-newkey"), QStringLiteral("ec"),
                           QStringLiteral("-pkeyopt"), QStringLiteral("ec_paramgen_curve:prime256v1"), QStringLiteral("-nodes"),
                           QStringLiteral("-keyout"), QStringLiteral("server.key"), QStringLiteral("-out"), QStringLiteral("server.csr"),
                           QStringLiteral("-subj"), QStringLiteral("/CN=127.0.0.1")}));
    QVERIFY(runOpenssl(d, {QStringLiteral("x509"), QStringLiteral("-req"), QStringLiteral("-in"), QStringLiteral("server.csr"),
                           QStringLiteral("-CA"), QStringLiteral("ca.pem"), QStringLiteral("-CAkey"), QStringLiteral("ca.key"),
                           QStringLiteral("-CAcreateserial"), QStringLiteral("-out"), QStringLiteral("server.pem"),
                           QStringLiteral("-days"), QStringLiteral("2"), QStringLiteral("-extfile"), QStringLiteral("ext.cnf")}));
}

std::unique_ptr<Relay> tst_RelayAccess::tokenRelay()
{
    TokenTable tokens;
    QString error;
    if (!tokens.parse(TokensFile, &error))
        qFatal("test tokens do not parse: %s", qPrintable(error));
    auto relay = std::make_unique<Relay>();
    relay->setTokens(tokens);
    if (!relay->listen(QHostAddress::LocalHost, 0))
        return nullptr;
    return relay;
}

QSslConfiguration tst_RelayAccess::serverTls() const
{
    QSslConfiguration c = QSslConfiguration::defaultConfiguration();
    c.setLocalCertificateChain(QSslCertificate::fromPath(m_dir.filePath(QStringLiteral("server.pem"))));
    QFile key(m_dir.filePath(QStringLiteral("server.key")));
    key.open(QIODevice::ReadOnly);
    c.setPrivateKey(QSslKey(key.readAll(), QSsl::Ec));
    return c;
}

QSslConfiguration tst_RelayAccess::clientTls() const
{
    QSslConfiguration c = QSslConfiguration::defaultConfiguration();
    c.addCaCertificates(QSslCertificate::fromPath(m_dir.filePath(QStringLiteral("ca.pem"))));
    return c;
}

void tst_RelayAccess::aConnectionWithoutAValidTokenIsRefused_data()
{
    QTest::addColumn<QByteArray>("token");
    QTest::newRow("no token at all") << QByteArray();
    QTest::newRow("a token not in the file") << QByteArray("intruder-token-0123456789");
}

void tst_RelayAccess::aConnectionWithoutAValidTokenIsRefused()
{
    QFETCH(QByteArray, token);
    auto relay = tokenRelay();
    QVERIFY(relay);
    auto client = token.isEmpty() ? std::make_unique<RawClient>(relay->url()) : std::make_unique<RawClient>(bearer(relay->url(), token));
    RawClient &c = *client;
    QVERIFY(c.waitError(int(Wire::ErrorCode::Unauthorized)));
    QTRY_VERIFY_WITH_TIMEOUT(c.closed, Timeout);
    QCOMPARE(c.socket.closeCode(), QWebSocketProtocol::CloseCodePolicyViolated);
    // Nothing it sent was acted on.
    QVERIFY(c.last(Control::Type::Welcome).isEmpty());
    QCOMPARE(relay->stats().maps, 0);
}

void tst_RelayAccess::everyTokenFormIsAccepted_data()
{
    QTest::addColumn<int>("form");
    QTest::newRow("an Authorization header, as Qt peers send it") << 0;
    QTest::newRow("a distmap.token subprotocol, as a browser can send it") << 1;
    QTest::newRow("a token query parameter") << 2;
}

void tst_RelayAccess::everyTokenFormIsAccepted()
{
    QFETCH(int, form);
    auto relay = tokenRelay();
    QVERIFY(relay);
    QNetworkRequest request(relay->url());
    if (form == 0) {
        request = bearer(relay->url(), WriterToken);
    } else if (form == 1) {
        request = withHeader(relay->url(), "Sec-WebSocket-Protocol", "distmap, distmap.token." + WriterToken);
    } else {
        QUrl url = relay->url();
        url.setQuery(QStringLiteral("token=") + QString::fromUtf8(WriterToken));
        request = QNetworkRequest(url);
    }
    RawClient c(request);
    QVERIFY(c.waitConnected());
    if (form == 1)
        QCOMPARE(c.socket.subprotocol(), QStringLiteral("distmap")); // a browser insists on one
    QVERIFY(c.hello());
    QVERIFY(c.open(QStringLiteral("/rooms/1")));
    QCOMPARE(c.last(Control::Type::Opened).value(QStringLiteral("access")).toString(), QStringLiteral("rw"));
}

void tst_RelayAccess::openingAMapOutsideTheGrantIsRefused()
{
    auto relay = tokenRelay();
    QVERIFY(relay);
    RawClient c(bearer(relay->url(), WriterToken));
    QVERIFY(c.waitConnected() && c.hello());
    c.send(Control::encodeOpen({QStringLiteral("/secret"), {}}));
    QVERIFY(c.waitError(int(Wire::ErrorCode::Unauthorized)));
    Control::Error error;
    QCOMPARE(Control::decodeError(c.last(Control::Type::Error), &error), Control::DecodeError::NoError);
    QCOMPARE(error.map, QStringLiteral("/secret")); // which open it refuses
    QVERIFY(c.last(Control::Type::Opened).isEmpty());
    QCOMPARE(relay->stats().maps, 0);
    QVERIFY(c.stillServed()); // its other maps are not its fault
}

void tst_RelayAccess::aReadOnlyPeerCannotWrite()
{
    auto relay = tokenRelay();
    QVERIFY(relay);
    RawClient writer(bearer(relay->url(), WriterToken));
    RawClient reader(bearer(relay->url(), ReaderToken));
    QVERIFY(writer.waitConnected() && reader.waitConnected());
    QVERIFY(writer.hello(QStringLiteral("00000000000000a1")) && reader.hello(QStringLiteral("00000000000000b1")));
    const quint32 id = writer.open(QStringLiteral("/rooms/ro"));
    QCOMPARE(reader.open(QStringLiteral("/rooms/ro")), id);
    QCOMPARE(reader.last(Control::Type::Opened).value(QStringLiteral("access")).toString(), QStringLiteral("ro"));
    for (Wire::Type type : {Wire::Type::Delta, Wire::Type::Repair, Wire::Type::SyncData}) {
        reader.messages.clear();
        reader.sendBinary(frame(type, id, type == Wire::Type::SyncData ? 0xa1 : 0, QByteArray("entries")));
        QVERIFY(reader.waitError(int(Wire::ErrorCode::ReadOnly)));
    }
    QVERIFY(reader.stillServed());
    // What the writer sends still reaches the reader; nothing came back.
    writer.sendBinary(frame(Wire::Type::Delta, id, 0, QByteArray("from the writer")));
    QTRY_COMPARE_WITH_TIMEOUT(reader.frames.size(), 1, Timeout);
    QVERIFY(writer.stillServed());
    QVERIFY(writer.frames.isEmpty());

    // Through the library: a write made offline stays local, and once the
    // relay says "ro" set() and remove() refuse; nothing is sent (section
    // 11 rule 16), so the relay refuses nothing more.
    const quint64 refusedBefore = relay->stats().droppedBy.value(QStringLiteral("read-only"));
    TestPeer peer(relay->url(), QStringLiteral("/rooms/ro"), QStringLiteral("ro"), false);
    peer.connection->setToken(ReaderToken);
    QVERIFY(peer->set(QStringLiteral("offline"), 0));
    QVERIFY(!peer->isReadOnly());
    peer.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(peer->isReady(), Timeout);
    QVERIFY(peer->isReadOnly());
    QSignalSpy errors(peer.map.get(), &DistributedMap::errorOccurred);
    QVERIFY(!peer->set(QStringLiteral("k"), 1));
    QCOMPARE(peer->error(), DistributedMap::ReadOnly);
    QVERIFY(!peer->contains(QStringLiteral("k")));
    QVERIFY(!peer->remove(QStringLiteral("offline")));
    QCOMPARE(errors.count(), 2);
    QSignalSpy pongs(peer.connection.get(), &Connection::pongReceived);
    peer.connection->ping();
    QVERIFY(pongs.wait(Timeout)); // orders after anything the peer sent
    QCOMPARE(relay->stats().droppedBy.value(QStringLiteral("read-only")), refusedBefore);
}

void tst_RelayAccess::theCliExitsNonZeroWhenItsWriteIsRefused_data()
{
    QTest::addColumn<QByteArray>("token");
    QTest::addColumn<int>("exitCode");
    QTest::addColumn<bool>("written");
    QTest::newRow("a read-only token: exit 5, nothing reaches the holder") << ReaderToken << 5 << false;
    QTest::newRow("a read-write token: exit 0, the holder has it") << WriterToken << 0 << true;
}

void tst_RelayAccess::theCliExitsNonZeroWhenItsWriteIsRefused()
{
    QFETCH(QByteArray, token);
    QFETCH(int, exitCode);
    QFETCH(bool, written);
    auto relay = tokenRelay();
    QVERIFY(relay);
    // Another peer holds the map, so the CLI syncs from it and then writes.
    TestPeer holder(relay->url(), QStringLiteral("/rooms/cli"), QStringLiteral("holder"), false);
    holder.connection->setToken(WriterToken);
    holder.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(holder->isReady(), Timeout);
    QProcess cli;
    cli.start(qEnvironmentVariable("DISTMAP_BINARY"),
              {QStringLiteral("set"), QStringLiteral("k"), QStringLiteral("1"), QStringLiteral("--url"), relay->url().toString(),
               QStringLiteral("--map"), QStringLiteral("/rooms/cli"), QStringLiteral("--token"), QString::fromLatin1(token),
               QStringLiteral("--ack"), QStringLiteral("peer")}); // the holder keeps no store
    QVERIFY(cli.waitForStarted(Timeout));
    // The relay runs in this process: wait with the event loop running.
    QTRY_COMPARE_WITH_TIMEOUT(cli.state(), QProcess::NotRunning, Timeout);
    const QByteArray err = cli.readAllStandardError();
    QCOMPARE(cli.exitStatus(), QProcess::NormalExit);
    QVERIFY2(cli.exitCode() == exitCode, err.constData());
    QCOMPARE(err.contains("refused the change"), !written);
    if (written)
        QTRY_COMPARE_WITH_TIMEOUT(holder->value(QStringLiteral("k")).toInt(), 1, Timeout);
    // A refused write never reached the holder; a ping round trip to the
    // relay orders after anything it could have forwarded.
    QSignalSpy pongs(holder.connection.get(), &Connection::pongReceived);
    holder.connection->ping();
    QVERIFY(pongs.wait(Timeout));
    QCOMPARE(holder->contains(QStringLiteral("k")), written);
}

void tst_RelayAccess::aReadOnlyPeerIsNeverAskedToServeASync()
{
    auto relay = tokenRelay();
    QVERIFY(relay);
    RawClient reader(bearer(relay->url(), ReaderToken));
    RawClient writer(bearer(relay->url(), WriterToken));
    QVERIFY(reader.waitConnected() && writer.waitConnected());
    QVERIFY(reader.hello() && writer.hello());
    const quint32 id = reader.open(QStringLiteral("/rooms/s"));
    reader.send(Control::encodeReady({id}));
    QVERIFY(reader.stillServed());
    writer.open(QStringLiteral("/rooms/s"));
    writer.sendBinary(frame(Wire::Type::SyncRequest, id, 0, Wire::encodeSyncRequest({1, 0, {}})));
    // The only ready member may not answer: the writer is told it is alone,
    // and that one read-only peer holds the map.
    QVERIFY(writer.waitFor(Control::Type::Alone));
    Control::Alone alone;
    QCOMPARE(Control::decodeAlone(writer.last(Control::Type::Alone), &alone), Control::DecodeError::NoError);
    QCOMPARE(alone.id, id);
    QCOMPARE(alone.readOnlyPeers, 1);
    QVERIFY(reader.stillServed());
    QVERIFY(reader.frames.isEmpty());
}

// The library does not take `alone` for "empty" when read-only peers hold
// the map: the map is ready (from its own state) and says why it may lack
// data, so an application, the CLI and the inspector can tell the user.
void tst_RelayAccess::aReadOnlyPeerConfirmsWrites()
{
    // A WriteAck is the one routed message a read-only member may send
    // (PROTOCOL.md section 8.1): it says the reader holds the write.
    auto relay = tokenRelay();
    QVERIFY(relay);
    TestPeer writer(relay->url(), QStringLiteral("/rooms/acks"), QStringLiteral("writer"), false);
    writer.connection->setToken(WriterToken);
    writer->setWriteAcknowledgements(true);
    TestPeer reader(relay->url(), QStringLiteral("/rooms/acks"), QStringLiteral("reader"), false);
    reader.connection->setToken(ReaderToken);
    QSignalSpy readerErrors(reader.connection.get(), &Connection::errorOccurred);
    writer.connection->open();
    reader.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(writer->isReady() && reader->isReady(), Timeout);
    QTRY_COMPARE_WITH_TIMEOUT(writer->peers().size(), 1, Timeout);
    QSignalSpy acks(writer.map.get(), &DistributedMap::writeAcknowledged);
    writer->set(QStringLiteral("k"), 1);
    QTRY_VERIFY_WITH_TIMEOUT(!acks.isEmpty(), Timeout);
    QCOMPARE(acks.first().at(0).toString(), QStringLiteral("k"));
    QCOMPARE(acks.first().at(1).toInt(), 1);
    QCOMPARE(acks.first().at(2).toBool(), false); // in memory only: no store
    QCOMPARE(reader->value(QStringLiteral("k")).toInt(), 1);
    QVERIFY(readerErrors.isEmpty()); // no read-only refusal for the ack
}

void tst_RelayAccess::aWriterJoiningOnlyReadOnlyHoldersIsTold()
{
    auto relay = tokenRelay();
    QVERIFY(relay);
    TestPeer first(relay->url(), QStringLiteral("/rooms/held"), QStringLiteral("first"), false);
    first.connection->setToken(WriterToken);
    first.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(first->isReady(), Timeout);
    first->set(QStringLiteral("k"), 1);
    TestPeer viewer(relay->url(), QStringLiteral("/rooms/held"), QStringLiteral("viewer"), false);
    viewer.connection->setToken(ReaderToken);
    viewer.connection->open();
    QTRY_COMPARE_WITH_TIMEOUT(viewer->value(QStringLiteral("k")).toInt(), 1, Timeout);
    QTRY_VERIFY_WITH_TIMEOUT(viewer->isReady(), Timeout);
    first.connection->close();

    TestPeer joiner(relay->url(), QStringLiteral("/rooms/held"), QStringLiteral("joiner"), false);
    joiner.connection->setToken(WriterToken);
    QSignalSpy errors(joiner.map.get(), &DistributedMap::errorOccurred);
    joiner.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(joiner->isReady(), Timeout);
    QCOMPARE(joiner->size(), 0);
    QTRY_VERIFY_WITH_TIMEOUT(!errors.isEmpty(), Timeout);
    QCOMPARE(errors.first().at(0).value<DistributedMap::Error>(), DistributedMap::ReadOnlyHoldersOnly);
    QCOMPARE(joiner->error(), DistributedMap::ReadOnlyHoldersOnly);
    QVERIFY2(errors.first().at(1).toString().contains(QLatin1String("read-only peers (1)")),
             qPrintable(errors.first().at(1).toString()));
}

void tst_RelayAccess::revokingATokenClosesItsConnections()
{
    const QString path = m_dir.filePath(QStringLiteral("tokens"));
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
    file.write(TokensFile);
    file.close();
    QProcess relay;
    relay.start(qEnvironmentVariable("DISTMAP_BINARY"), {QStringLiteral("relay"), QStringLiteral("--port"), QStringLiteral("0"),
                                                         QStringLiteral("--log"), QStringLiteral("--tokens"), path});
    QVERIFY(relay.waitForStarted(Timeout));
    QByteArray log;
    QTRY_VERIFY_WITH_TIMEOUT((log += relay.readAllStandardOutput()).contains('\n'), Timeout);
    const QRegularExpressionMatch m = QRegularExpression(QStringLiteral("listening on (ws://\\S+)")).match(QString::fromUtf8(log));
    QVERIFY2(m.hasMatch(), log.constData());
    const QUrl url(m.captured(1));

    RawClient revoked(bearer(url, ReaderToken));
    RawClient kept(bearer(url, WriterToken));
    RawClient wrong(bearer(url, "wrong-token-0123456789"));
    QVERIFY(revoked.waitConnected() && kept.waitConnected());
    QVERIFY(revoked.hello() && kept.hello());
    QVERIFY(wrong.waitError(int(Wire::ErrorCode::Unauthorized)));

    QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
    file.write("writer-token-0123456789 rw /rooms/*\n");
    file.close();
    QElapsedTimer timer;
    timer.start();
    QCOMPARE(::kill(pid_t(relay.processId()), SIGHUP), 0); // our own child, by PID
    QVERIFY(revoked.waitError(int(Wire::ErrorCode::Unauthorized)));
    QTRY_VERIFY_WITH_TIMEOUT(revoked.closed, Timeout);
    qInfo("revoked connection closed %lld ms after SIGHUP", timer.elapsed());
    QVERIFY(kept.stillServed());

    relay.terminate();
    QVERIFY(relay.waitForFinished(Timeout));
    log += relay.readAllStandardOutput() + relay.readAllStandardError();
    QVERIFY2(log.contains("tokens reloaded"), log.constData());
    QVERIFY2(log.contains("token revoked"), log.constData());
    // Neither good nor bad tokens show up in the log.
    for (const QByteArray &token : {WriterToken, ReaderToken, QByteArray("wrong-token-0123456789")})
        QVERIFY2(!log.contains(token), log.constData());
}

void tst_RelayAccess::wssWorksWithAPrivateCa()
{
    Relay relay;
    relay.setSslConfiguration(serverTls());
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    QCOMPARE(relay.url().scheme(), QStringLiteral("wss"));
    TestPeer a(relay.url(), QStringLiteral("/tls"), QStringLiteral("a"), false);
    TestPeer b(relay.url(), QStringLiteral("/tls"), QStringLiteral("b"), false);
    for (TestPeer *p : {&a, &b}) {
        p->connection->setSslConfiguration(clientTls());
        p->connection->open();
    }
    QTRY_VERIFY_WITH_TIMEOUT(a->isReady() && b->isReady(), Timeout);
    a->set(QStringLiteral("over"), QStringLiteral("tls"));
    QTRY_COMPARE_WITH_TIMEOUT(b->value(QStringLiteral("over")).toString(), QStringLiteral("tls"), Timeout);
}

void tst_RelayAccess::wssWithoutTheCaIsRefusedByThePeer()
{
    Relay relay;
    relay.setSslConfiguration(serverTls());
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    TestPeer p(relay.url(), QStringLiteral("/tls"), QStringLiteral("p"), false);
    QSignalSpy errors(p.connection.get(), &Connection::errorOccurred);
    p.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(sawError(errors, QLatin1String("TLS error")), Timeout);
    QVERIFY(p.connection->state() != Connection::Connected);
    QCOMPARE(relay.stats().connections, 0);
}

void tst_RelayAccess::plainWsToATlsPortGetsNowhere()
{
    Relay::Options options;
    options.handshakeTimeoutMs = 1000;
    Relay relay(options);
    relay.setSslConfiguration(serverTls());
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    QUrl plain = relay.url();
    plain.setScheme(QStringLiteral("ws"));
    RawClient c(plain);
    QTRY_VERIFY_WITH_TIMEOUT(c.closed || c.socket.error() != QAbstractSocket::UnknownSocketError, Timeout);
    QVERIFY(c.last(Control::Type::Welcome).isEmpty());
    QTRY_COMPARE_WITH_TIMEOUT(relay.stats().sockets, 0, Timeout);
    // The port still serves TLS.
    TestPeer p(relay.url(), QStringLiteral("/tls"), QStringLiteral("p"), false);
    p.connection->setSslConfiguration(clientTls());
    p.connection->open();
    QTRY_VERIFY_WITH_TIMEOUT(p->isReady(), Timeout);
}

void tst_RelayAccess::originsOutsideTheAllowListAreRefused()
{
    Relay::Options options;
    options.allowedOrigins = {QStringLiteral("https://app.example")};
    Relay relay(options);
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    RawClient evil(relay.url(), QStringLiteral("https://evil.example"));
    RawClient good(relay.url(), QStringLiteral("https://app.example"));
    RawClient none(relay.url()); // not a browser: no Origin header
    QVERIFY(good.waitConnected() && good.hello());
    QVERIFY(none.waitConnected() && none.hello());
    QTRY_VERIFY_WITH_TIMEOUT(evil.closed || evil.socket.error() != QAbstractSocket::UnknownSocketError, Timeout);
    QVERIFY(evil.socket.state() != QAbstractSocket::ConnectedState);
    QVERIFY(relay.stats().refused >= 1);
}

QTEST_GUILESS_MAIN(tst_RelayAccess)
#include "tst_relayaccess.moc"
