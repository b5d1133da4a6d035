// Offline work end to end with a real relay on 127.0.0.1: edits made with
// the relay down reach a peer that joins later, and a keeper's store alone
// brings a map back after every peer (and the relay) went away.

#include "connection.h"
#include "distributedmap_p.h"
#include "distributedmap.h"
#include "journal.h"
#include "localstore.h"
#include "relay.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonObject>
#include <QProcess>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>
#include <memory>

namespace {

const QString Uri = QStringLiteral("/offline-test");
constexpr int Timeout = 15000;

struct Peer
{
    explicit Peer(const QUrl &url, const QString &storePath = QString())
        : connection(url)
        , map(&connection, Uri)
    {
        connection.setReconnectDelays(50, 300);
        if (!storePath.isEmpty())
            store = std::make_unique<LocalStore>(storePath, Uri);
    }
    bool attachStore() { return store && store->open() && store->attach(&map); }

    Connection connection;
    DistributedMap map;
    std::unique_ptr<LocalStore> store; // destroyed first: flushes while the map lives
};

MapState storedState(const QString &path, const QString &uri)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return {};
    const QByteArray image = file.readAll();
    return Journal::read(image.constData(), image.size(), uri).state;
}

} // namespace

class tst_Offline : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();
    void offlineEditsReachAPeerThatJoinsLater();
    void keeperStoreAloneBringsTheMapBack();

private:
    QProcess *startKeeper(const QUrl &url, const QString &dir);
    void stopKeeper();
    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<QProcess> m_keeper;
    QByteArray m_keeperOutput;
};

void tst_Offline::init()
{
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
}

void tst_Offline::cleanup()
{
    if (m_keeper && m_keeper->state() != QProcess::NotRunning) {
        ::kill(pid_t(m_keeper->processId()), SIGKILL);
        m_keeper->waitForFinished(5000);
    }
    m_keeper.reset();
}

void tst_Offline::offlineEditsReachAPeerThatJoinsLater()
{
    const QString path = m_dir->filePath(QStringLiteral("a.distmap"));
    // A port where nothing listens: the relay is down.
    QUrl deadUrl;
    {
        Relay probe;
        QVERIFY(probe.listen(QHostAddress::LocalHost, 0));
        deadUrl = probe.url();
    }
    {
        Peer a(deadUrl, path);
        QVERIFY2(a.attachStore(), qPrintable(a.store->errorString()));
        a.connection.open();
        QTRY_COMPARE_WITH_TIMEOUT(a.connection.state(), Connection::Reconnecting, Timeout);
        QVERIFY(a.map.set(QStringLiteral("x"), 1));
        QVERIFY(a.map.set(QStringLiteral("y"), QStringLiteral("written offline")));
        QVERIFY(a.map.set(QStringLiteral("z"), QJsonArray{1, 2}));
        QVERIFY(a.map.remove(QStringLiteral("z")));
        QVERIFY(!a.map.isReady());
        QCOMPARE(a.map.value(QStringLiteral("y")), QJsonValue(QStringLiteral("written offline")));
    } // A quits while still offline

    Relay relay;
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    Peer a(relay.url(), path);
    QVERIFY(a.attachStore());
    // Readable from the store before any connection.
    QCOMPARE(a.map.value(QStringLiteral("x")), QJsonValue(1));
    QVERIFY(!a.map.contains(QStringLiteral("z")));
    a.connection.open();
    QTRY_VERIFY_WITH_TIMEOUT(a.map.isReady(), Timeout);

    Peer b(relay.url());
    b.connection.open();
    QTRY_VERIFY_WITH_TIMEOUT(b.map.isReady(), Timeout);
    const QJsonObject expected{{QStringLiteral("x"), 1}, {QStringLiteral("y"), QStringLiteral("written offline")}};
    QTRY_COMPARE_WITH_TIMEOUT(b.map.toJsonObject(), expected, Timeout);
    // The delete travelled too: B holds A's tombstone.
    QVERIFY(DistributedMapPrivate::get(&b.map)->state().find(QStringLiteral("z")) && DistributedMapPrivate::get(&b.map)->state().find(QStringLiteral("z"))->tombstone);

    // And back: B's write reaches A and A's store.
    QVERIFY(b.map.set(QStringLiteral("w"), true));
    QTRY_COMPARE_WITH_TIMEOUT(a.map.value(QStringLiteral("w")), QJsonValue(true), Timeout);
    QCOMPARE(a.map.toJsonObject(), b.map.toJsonObject());
    QVERIFY(a.store->flush());
    QVERIFY(storedState(path, Uri).contains(QStringLiteral("w")));
}

QProcess *tst_Offline::startKeeper(const QUrl &url, const QString &dir)
{
    m_keeper = std::make_unique<QProcess>();
    m_keeperOutput.clear();
    connect(m_keeper.get(), &QProcess::readyReadStandardOutput, this, [this] { m_keeperOutput += m_keeper->readAllStandardOutput(); });
    m_keeper->setProcessChannelMode(QProcess::ForwardedErrorChannel);
    m_keeper->start(qEnvironmentVariable("DISTMAP_BINARY"),
                    {QStringLiteral("keep"), QStringLiteral("--url"), url.toString(), QStringLiteral("--map"), Uri,
                     QStringLiteral("--store"), dir, QStringLiteral("--durability"), QStringLiteral("every")});
    return m_keeper.get();
}

void tst_Offline::stopKeeper()
{
    // SIGTERM by PID: the keeper flushes and exits 0.
    ::kill(pid_t(m_keeper->processId()), SIGTERM);
    QVERIFY(m_keeper->waitForFinished(Timeout));
    m_keeperOutput += m_keeper->readAllStandardOutput();
    QCOMPARE(m_keeper->exitStatus(), QProcess::NormalExit);
    QCOMPARE(m_keeper->exitCode(), 0);
    QVERIFY2(m_keeperOutput.contains("flushed"), m_keeperOutput.constData());
}

void tst_Offline::keeperStoreAloneBringsTheMapBack()
{
    QVERIFY2(QFile::exists(qEnvironmentVariable("DISTMAP_BINARY")), "DISTMAP_BINARY must name the distmap binary");
    const QString dir = m_dir->filePath(QStringLiteral("kept"));
    const QString file = QDir(dir).filePath(LocalStore::fileNameFor(Uri));
    const QJsonObject expected{{QStringLiteral("a"), 1}, {QStringLiteral("b"), QJsonObject{{QStringLiteral("nested"), true}}}};
    {
        Relay relay;
        QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
        QVERIFY(startKeeper(relay.url(), dir)->waitForStarted(Timeout));
        QTRY_VERIFY2_WITH_TIMEOUT(m_keeperOutput.contains("no other peer holds it"), m_keeperOutput.constData(), Timeout);

        Peer c(relay.url());
        c.connection.open();
        QTRY_VERIFY_WITH_TIMEOUT(c.map.isReady(), Timeout);
        c.map.set(QStringLiteral("a"), 1);
        c.map.set(QStringLiteral("b"), expected.value(QStringLiteral("b")));
        c.map.set(QStringLiteral("c"), QStringLiteral("deleted later"));
        c.map.remove(QStringLiteral("c"));
        // The keeper has it when its file does.
        QTRY_VERIFY_WITH_TIMEOUT(storedState(file, Uri).size() == 2 && storedState(file, Uri).entryCount() == 3, Timeout);
        stopKeeper();
    } // C and the relay are gone too: nothing holds the map but the file

    Relay relay;
    QVERIFY(relay.listen(QHostAddress::LocalHost, 0));
    QVERIFY(startKeeper(relay.url(), dir)->waitForStarted(Timeout));
    QTRY_VERIFY2_WITH_TIMEOUT(m_keeperOutput.contains("loaded 3 entries (1 tombstones)"), m_keeperOutput.constData(), Timeout);
    QTRY_VERIFY2_WITH_TIMEOUT(m_keeperOutput.contains("serving 2 keys from the store"), m_keeperOutput.constData(), Timeout);

    Peer d(relay.url());
    d.connection.open();
    QTRY_VERIFY_WITH_TIMEOUT(d.map.isReady(), Timeout);
    QTRY_COMPARE_WITH_TIMEOUT(d.map.toJsonObject(), expected, Timeout);
    QVERIFY(d.map.lastSyncSource() != 0);
    stopKeeper();
}

QTEST_GUILESS_MAIN(tst_Offline)
#include "tst_offline.moc"
