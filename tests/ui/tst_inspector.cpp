#include "connection.h"
#include "deltalogmodel.h"
#include "deltalogview.h"
#include "distributedmap.h"
#include "distributedmap_p.h"
#include "hybridclock.h"
#include "flashdelegate.h"
#include "hostedrelay.h"
#include "jsontreemodel.h"
#include "keyhistorymodel.h"
#include "mapdiffmodel.h"
#include "snapshotmodel.h"
#include "keysmodel.h"
#include "mainwindow.h"
#include "mapview.h"
#include "networkview.h"
#include "peersmodel.h"
#include "relay.h"
#include "valueeditor.h"

#include <QAbstractItemModelTester>
#include <QAction>
#include <QFile>
#include <QHeaderView>
#include <QJsonDocument>
#include <QJsonObject>
#include <QJsonArray>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTableView>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTreeView>
#include <QtTest>

#include <memory>

namespace {
constexpr int Timeout = 15000; // generous: CI machines are small and busy
const QString MapUri = QStringLiteral("/inspector-test");
} // namespace

// The inspector against a real in-process relay and real connections: what
// one window does reaches another peer, and what peers do shows up.
class tst_Inspector : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();
    void editingACellReachesAnotherPeer();
    void invalidJsonIsNotStoredUnlessAsText();
    void addingAKeyReachesAnotherPeer();
    void deletingSelectedKeysReachesAnotherPeer();
    void aRemoteChangeAppearsAndFlashes();
    void aJoiningPeerAppearsInPeersViewAndNetworkPicture();
    void theLogRowCapHolds();
    void statusBarShowsTheConnection();
    void exportAndImportTheMapAsJson();
    void theCurrentKeysValueShowsAsATree();
    void aKeysHistoryShowsItsWritesAndRestoresOne();
    void aWriteThatLostAConflictIsMarked();
    void theMapAtTwoMomentsIsCompared();
    void theTimelineShowsThePastReadOnly();
    void clickingAHeaderSortsTheKeysByThatColumn();
    void hostsARelayWhenNothingAnswers();

private:
    struct Peer
    {
        std::unique_ptr<Connection> connection;
        std::unique_ptr<DistributedMap> map;
    };
    std::unique_ptr<Peer> startPeer(const QString &name);
    MapView *view() const { return m_window->mapView(MapUri); }
    ValueEditor *openEditor(const QString &key);

    std::unique_ptr<Relay> m_relay;
    std::unique_ptr<MainWindow> m_window;
    std::unique_ptr<Peer> m_bob;
    std::vector<std::unique_ptr<QAbstractItemModelTester>> m_testers;
};

std::unique_ptr<tst_Inspector::Peer> tst_Inspector::startPeer(const QString &name)
{
    auto peer = std::make_unique<Peer>();
    peer->connection = std::make_unique<Connection>(m_relay->url());
    peer->map = std::make_unique<DistributedMap>(peer->connection.get(), MapUri);
    peer->map->setPresence({{QStringLiteral("name"), name}});
    peer->connection->open();
    return peer;
}

void tst_Inspector::init()
{
    m_relay = std::make_unique<Relay>();
    QVERIFY(m_relay->listen(QHostAddress::LocalHost, 0));
    MainWindow::Options options;
    options.url = m_relay->url().toString();
    options.maps = {MapUri};
    options.name = QStringLiteral("Alice");
    options.useSettings = false;
    options.useStore = false;
    m_window = std::make_unique<MainWindow>(options);
    m_window->resize(1100, 700);
    m_window->show();
    QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
    QVERIFY(view());
    const auto mode = QAbstractItemModelTester::FailureReportingMode::QtTest;
    m_testers.push_back(std::make_unique<QAbstractItemModelTester>(view()->keysModel(), mode));
    m_testers.push_back(std::make_unique<QAbstractItemModelTester>(view()->peersModel(), mode));
    m_testers.push_back(std::make_unique<QAbstractItemModelTester>(view()->logModel(), mode));
    m_testers.push_back(std::make_unique<QAbstractItemModelTester>(view()->valueTreeModel(), mode));
    m_testers.push_back(std::make_unique<QAbstractItemModelTester>(view()->keyHistoryModel(), mode));
    m_testers.push_back(std::make_unique<QAbstractItemModelTester>(view()->diffModel(), mode));
    m_testers.push_back(std::make_unique<QAbstractItemModelTester>(view()->snapshotModel(), mode));
    QTRY_VERIFY_WITH_TIMEOUT(view()->map()->isReady(), Timeout);

    m_bob = startPeer(QStringLiteral("Bob"));
    QTRY_VERIFY_WITH_TIMEOUT(m_bob->map->isReady(), Timeout);
    QTRY_VERIFY_WITH_TIMEOUT(view()->peersModel()->rowOf(m_bob->connection->peerId()) > 0, Timeout);
}

void tst_Inspector::cleanup()
{
    m_testers.clear();
    m_bob.reset();
    m_window.reset();
    m_relay.reset();
}

ValueEditor *tst_Inspector::openEditor(const QString &key)
{
    QTableView *table = view()->keysView();
    const QModelIndex index = view()->keysModel()->indexOf(key, KeysModel::ValueColumn);
    if (!index.isValid())
        return nullptr;
    table->setCurrentIndex(index);
    table->edit(index);
    return table->viewport()->findChild<ValueEditor *>();
}

void tst_Inspector::editingACellReachesAnotherPeer()
{
    m_bob->map->set(QStringLiteral("config"), QJsonObject{{QStringLiteral("depth"), 1}});
    QTRY_VERIFY_WITH_TIMEOUT(view()->keysModel()->rowOf(QStringLiteral("config")) >= 0, Timeout);

    ValueEditor *editor = openEditor(QStringLiteral("config"));
    QVERIFY(editor);
    QVERIFY(editor->isMultiLine()); // objects get the multi-line editor
    editor->textEdit()->setPlainText(QStringLiteral("{\n  \"depth\": 2,\n  \"tags\": [\"a\"]\n}"));
    QTest::keyClick(editor->textEdit(), Qt::Key_Return, Qt::ControlModifier);

    const QJsonValue expected = QJsonObject{{QStringLiteral("depth"), 2}, {QStringLiteral("tags"), QJsonArray{QStringLiteral("a")}}};
    QTRY_COMPARE_WITH_TIMEOUT(m_bob->map->value(QStringLiteral("config")), expected, Timeout);
    QTRY_COMPARE_WITH_TIMEOUT(view()->keysModel()->indexOf(QStringLiteral("config"), KeysModel::ValueColumn).data().toString(),
                              QStringLiteral("{\"depth\":2,\"tags\":[\"a\"]}"), Timeout);
}

void tst_Inspector::invalidJsonIsNotStoredUnlessAsText()
{
    m_bob->map->set(QStringLiteral("greeting"), 1);
    QTRY_VERIFY_WITH_TIMEOUT(view()->keysModel()->rowOf(QStringLiteral("greeting")) >= 0, Timeout);

    ValueEditor *editor = openEditor(QStringLiteral("greeting"));
    QVERIFY(editor);
    editor->lineEdit()->selectAll();
    QTest::keyClicks(editor->lineEdit(), QStringLiteral("hello there"));
    QTest::keyClick(editor->lineEdit(), Qt::Key_Return);
    QVERIFY(!editor->isAcceptable());
    QVERIFY(editor->errorString().size() > 0);
    // The editor stays open with the message, nothing was sent.
    QCOMPARE(view()->keysView()->viewport()->findChild<ValueEditor *>(), editor);

    editor->setStoreAsText(true);
    QTest::keyClick(editor->lineEdit(), Qt::Key_Return);
    QTRY_COMPARE_WITH_TIMEOUT(m_bob->map->value(QStringLiteral("greeting")), QJsonValue(QStringLiteral("hello there")), Timeout);
}

void tst_Inspector::addingAKeyReachesAnotherPeer()
{
    view()->newKeyEdit()->setText(QStringLiteral("fresh"));
    view()->newValueEditor()->setText(QStringLiteral("[1, 2, 3]"));
    QVERIFY(view()->addKey());
    QTRY_COMPARE_WITH_TIMEOUT(m_bob->map->value(QStringLiteral("fresh")), QJsonValue(QJsonArray{1, 2, 3}), Timeout);
    QVERIFY(view()->newKeyEdit()->text().isEmpty());

    view()->newKeyEdit()->setText(QStringLiteral("refused"));
    view()->newValueEditor()->setText(QStringLiteral("{broken"));
    QVERIFY(!view()->addKey());
    QVERIFY(!view()->map()->contains(QStringLiteral("refused")));
}

void tst_Inspector::deletingSelectedKeysReachesAnotherPeer()
{
    for (const char *key : {"a", "b", "c"})
        m_bob->map->set(QString::fromLatin1(key), 1);
    QTRY_COMPARE_WITH_TIMEOUT(view()->keysModel()->rowCount(), 3, Timeout);

    QTableView *table = view()->keysView();
    table->setFocus();
    table->selectionModel()->select(view()->keysModel()->indexOf(QStringLiteral("b")),
                                    QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    m_window->deleteAction()->trigger();

    QTRY_VERIFY_WITH_TIMEOUT(!m_bob->map->contains(QStringLiteral("b")), Timeout);
    QVERIFY(m_bob->map->contains(QStringLiteral("a")));
    QTRY_COMPARE_WITH_TIMEOUT(view()->keysModel()->rowCount(), 2, Timeout);
    QCOMPARE(view()->keysModel()->rowOf(QStringLiteral("b")), -1);
}

void tst_Inspector::aRemoteChangeAppearsAndFlashes()
{
    m_bob->map->set(QStringLiteral("remote"), QStringLiteral("from Bob"));
    QTRY_VERIFY_WITH_TIMEOUT(view()->keysModel()->rowOf(QStringLiteral("remote")) >= 0, Timeout);
    KeysModel *model = view()->keysModel();
    const QModelIndex index = model->indexOf(QStringLiteral("remote"));
    QVERIFY(model->isFlashing(QStringLiteral("remote")));
    QVERIFY(index.data(KeysModel::FlashRole).toReal() > 0);
    QVERIFY(qobject_cast<FlashDelegate *>(view()->keysView()->itemDelegateForIndex(index)));
    QVERIFY(FlashDelegate::background(index, view()->keysView()->palette()).isValid());
    QCOMPARE(index.siblingAtColumn(KeysModel::WriterColumn).data().toString(), QStringLiteral("Bob"));
    // The flash fades out by itself.
    QTRY_VERIFY_WITH_TIMEOUT(!model->isFlashing(QStringLiteral("remote")), Timeout);
}

void tst_Inspector::aJoiningPeerAppearsInPeersViewAndNetworkPicture()
{
    PeersModel *peers = view()->peersModel();
    NetworkView *network = view()->networkView();
    QVERIFY(network->hasPeer(m_bob->connection->peerId()));
    QCOMPARE(peers->index(0, PeersModel::NameColumn).data().toString(), QStringLiteral("Alice (you)"));

    auto carol = startPeer(QStringLiteral("Carol"));
    const quint64 carolId = carol->connection->peerId();
    QTRY_VERIFY_WITH_TIMEOUT(peers->rowOf(carolId) > 0, Timeout);
    QCOMPARE(peers->index(peers->rowOf(carolId), PeersModel::NameColumn).data().toString(), QStringLiteral("Carol"));
    QVERIFY(network->hasPeer(carolId));
    QCOMPARE(network->peerName(carolId), QStringLiteral("Carol"));

    QTRY_VERIFY_WITH_TIMEOUT(carol->map->isReady(), Timeout);
    carol->map->set(QStringLiteral("hello"), 1);
    QTRY_VERIFY_WITH_TIMEOUT(peers->index(peers->rowOf(carolId), PeersModel::SentColumn).data().toInt() >= 1, Timeout);

    carol.reset();
    QTRY_COMPARE_WITH_TIMEOUT(peers->rowOf(carolId), -1, Timeout);
    QVERIFY(!network->hasPeer(carolId));
}

void tst_Inspector::theLogRowCapHolds()
{
    DeltaLogModel *log = view()->logModel();
    view()->logView()->findChild<QSpinBox *>()->setValue(100); // the cap's own control
    QCOMPARE(log->capacity(), 100);
    for (int i = 0; i < 400; ++i)
        m_bob->map->set(QStringLiteral("burst%1").arg(i), i);
    QTRY_COMPARE_WITH_TIMEOUT(view()->map()->size(), 400, Timeout);
    log->flush();
    QCOMPARE(log->rowCount(), 100);
    QCOMPARE(log->index(99, DeltaLogModel::KeyColumn).data().toString(), QStringLiteral("burst399"));
}

void tst_Inspector::statusBarShowsTheConnection()
{
    QTRY_VERIFY_WITH_TIMEOUT(m_window->connectionStateLabel()->text().startsWith(QStringLiteral("connected")), Timeout);
    QLabel *sync = m_window->syncStateLabel();
    QTRY_COMPARE_WITH_TIMEOUT(sync->text(), QStringLiteral("synced"), Timeout);
    const quint16 port = m_relay->url().port();
    m_relay.reset();
    QTRY_VERIFY_WITH_TIMEOUT(m_window->connectionStateLabel()->text().startsWith(QStringLiteral("reconnecting")), Timeout);

    // Changes made offline: counted until a relay confirms them.
    view()->map()->set(QStringLiteral("made offline"), 1);
    view()->map()->set(QStringLiteral("also offline"), 2);
    QTRY_COMPARE_WITH_TIMEOUT(sync->text(), QStringLiteral("offline, 2 change(s) not sent"), Timeout);
    QVERIFY2(sync->toolTip().contains(QStringLiteral("has not confirmed 2 local change(s)")), qPrintable(sync->toolTip()));

    m_relay = std::make_unique<Relay>();
    QVERIFY(m_relay->listen(QHostAddress::LocalHost, port));
    QTRY_COMPARE_WITH_TIMEOUT(sync->text(), QStringLiteral("synced"), Timeout);
    QVERIFY2(sync->toolTip().contains(QStringLiteral("The relay has every local change.")), qPrintable(sync->toolTip()));
    QTRY_COMPARE_WITH_TIMEOUT(m_bob->map->value(QStringLiteral("also offline")), QJsonValue(2), Timeout);
}

void tst_Inspector::exportAndImportTheMapAsJson()
{
    DistributedMap *map = view()->map();
    map->set(QStringLiteral("a"), 1);
    map->set(QStringLiteral("b"), QJsonObject{{QStringLiteral("x"), QStringLiteral("y")}});
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("map.json"));
    QString error;
    QCOMPARE(view()->exportMapTo(path, &error), 2);
    QFile file(path);
    QVERIFY(file.open(QIODevice::ReadOnly));
    QCOMPARE(QJsonDocument::fromJson(file.readAll()).object(), map->toJsonObject());

    // Imported values are normal writes: they reach the other peer.
    map->remove(QStringLiteral("a"));
    map->remove(QStringLiteral("b"));
    QTRY_VERIFY_WITH_TIMEOUT(m_bob->map->value(QStringLiteral("a")).isUndefined(), Timeout);
    QCOMPARE(view()->importMapFrom(path, &error), 2);
    QTRY_COMPARE_WITH_TIMEOUT(m_bob->map->value(QStringLiteral("a")), QJsonValue(1), Timeout);
    QCOMPARE(m_bob->map->value(QStringLiteral("b")).toObject().value(QStringLiteral("x")).toString(), QStringLiteral("y"));

    // Files that are not a JSON object set nothing and say why.
    const struct
    {
        QByteArray content;
        const char *why;
    } bad[] = {{"[1, 2]", "not a JSON object"}, {"{\"k\": ", "not JSON"}};
    for (const auto &b : bad) {
        QFile out(dir.filePath(QStringLiteral("bad.json")));
        QVERIFY(out.open(QIODevice::WriteOnly | QIODevice::Truncate));
        out.write(b.content);
        out.close();
        QCOMPARE(view()->importMapFrom(out.fileName(), &error), -1);
        QVERIFY2(error.contains(QLatin1String(b.why)), qPrintable(error));
    }
    QCOMPARE(view()->importMapFrom(dir.filePath(QStringLiteral("missing.json")), &error), -1);
    QVERIFY(!error.isEmpty());
    QCOMPARE(map->size(), 2);
    // An export that cannot be written says so and leaves nothing behind.
    QCOMPARE(view()->exportMapTo(dir.filePath(QStringLiteral("no/such/dir/map.json")), &error), -1);
    QVERIFY(!error.isEmpty());
}

void tst_Inspector::theCurrentKeysValueShowsAsATree()
{
    const QString key = QStringLiteral("tree");
    m_bob->map->set(key, QJsonObject{{QStringLiteral("name"), QStringLiteral("x")},
                                     {QStringLiteral("tags"), QJsonArray{QStringLiteral("a"), QStringLiteral("b")}},
                                     {QStringLiteral("nested"), QJsonObject{{QStringLiteral("deep"), 1}}}});
    QTRY_VERIFY_WITH_TIMEOUT(view()->keysModel()->indexOf(key).isValid(), Timeout);
    view()->keysView()->setCurrentIndex(view()->keysModel()->indexOf(key, KeysModel::ValueColumn));
    QCOMPARE(view()->shownKey(), key);

    const JsonTreeModel *tree = view()->valueTreeModel();
    auto text = [tree](const QModelIndex &parent, int row, int column) { return tree->index(row, column, parent).data().toString(); };
    QCOMPARE(tree->rowCount(), 3); // the object's members, by name
    QCOMPARE(text({}, 0, JsonTreeModel::NameColumn), QStringLiteral("name"));
    QCOMPARE(text({}, 0, JsonTreeModel::ValueColumn), QStringLiteral("\"x\""));
    QCOMPARE(text({}, 2, JsonTreeModel::NameColumn), QStringLiteral("tags"));
    QCOMPARE(text({}, 2, JsonTreeModel::ValueColumn), QStringLiteral("[2 item(s)]"));
    QCOMPARE(text({}, 2, JsonTreeModel::TypeColumn), QStringLiteral("array"));
    const QModelIndex tags = tree->index(2, 0);
    QCOMPARE(tree->rowCount(tags), 2);
    QCOMPARE(text(tags, 1, JsonTreeModel::NameColumn), QStringLiteral("[1]"));
    QCOMPARE(text(tags, 1, JsonTreeModel::ValueColumn), QStringLiteral("\"b\""));
    const QModelIndex nested = tree->index(1, 0);
    QCOMPARE(text(nested, 0, JsonTreeModel::NameColumn), QStringLiteral("deep"));
    QCOMPARE(text(nested, 0, JsonTreeModel::TypeColumn), QStringLiteral("number"));
    QVERIFY(view()->valueTreeView()->isExpanded(nested)); // the first levels unfold

    // Another peer changes the shown key: the tree follows.
    m_bob->map->set(key, 42);
    QTRY_COMPARE_WITH_TIMEOUT(text({}, 0, JsonTreeModel::ValueColumn), QStringLiteral("42"), Timeout);
    QCOMPARE(tree->rowCount(), 1);
    QCOMPARE(text({}, 0, JsonTreeModel::TypeColumn), QStringLiteral("number"));
    m_bob->map->remove(key);
    QTRY_COMPARE_WITH_TIMEOUT(tree->rowCount(), 0, Timeout);
}

void tst_Inspector::aWriteThatLostAConflictIsMarked()
{
    // Bob's clock runs ten seconds behind: his write, made before Alice's
    // reached him, is older than hers and loses when it reaches her.
    DistributedMap *alice = view()->map();
    const qint64 behindMs = 10000;
    DistributedMapPrivate::get(m_bob->map.get())->clock() =
        HybridClock([behindMs] { return QDateTime::currentMSecsSinceEpoch() - behindMs; });
    alice->set(QStringLiteral("contested"), QStringLiteral("alice"));
    m_bob->map->set(QStringLiteral("contested"), QStringLiteral("bob"));
    QTRY_COMPARE_WITH_TIMEOUT(m_bob->map->value(QStringLiteral("contested")), QJsonValue(QStringLiteral("alice")), Timeout);
    QCOMPARE(alice->value(QStringLiteral("contested")), QJsonValue(QStringLiteral("alice")));

    view()->keysModel()->flush();
    view()->keysView()->setCurrentIndex(view()->keysModel()->indexOf(QStringLiteral("contested")));
    KeyHistoryModel *panel = view()->keyHistoryModel();
    QTRY_COMPARE_WITH_TIMEOUT(panel->rowCount(), 2, Timeout); // no store: what this view saw, the loser included
    QCOMPARE(panel->writeAt(0).value, QByteArray("\"alice\""));
    QVERIFY(!panel->lostAt(0));
    QCOMPARE(panel->index(0, KeyHistoryModel::NoteColumn).data().toString(), QStringLiteral("current"));
    QCOMPARE(panel->writeAt(1).value, QByteArray("\"bob\""));
    QVERIFY(panel->lostAt(1));
    QCOMPARE(panel->index(1, KeyHistoryModel::NoteColumn).data().toString(), QStringLiteral("lost a conflict"));
    QVERIFY(panel->index(1, KeyHistoryModel::NoteColumn).data(Qt::ToolTipRole).toString().contains(QLatin1String("never took effect")));
    QCOMPARE(panel->index(1, 0).data(KeyHistoryModel::LostRole), QVariant(true));
}

void tst_Inspector::aKeysHistoryShowsItsWritesAndRestoresOne()
{
    // No store here (init: useStore false): the history is what the view
    // saw since it opened, and the label says so.
    const QString key = QStringLiteral("h");
    for (int v = 1; v <= 3; ++v) {
        m_bob->map->set(key, v);
        QTRY_COMPARE_WITH_TIMEOUT(view()->map()->value(key), QJsonValue(v), Timeout);
    }
    m_bob->map->remove(key);
    QTRY_VERIFY_WITH_TIMEOUT(view()->map()->value(key).isUndefined(), Timeout);
    m_bob->map->set(key, 4);
    // Wait for the row to show 4, not only for a row: the deleted row may
    // still be shown until the model's next batch removes it, and a row
    // selected then would be gone, with the history panel empty.
    QTRY_COMPARE_WITH_TIMEOUT(view()->keysModel()->indexOf(key, KeysModel::ValueColumn).data().toString(),
                              QStringLiteral("4"), Timeout);
    view()->keysView()->setCurrentIndex(view()->keysModel()->indexOf(key, KeysModel::ValueColumn));

    const KeyHistoryModel *history = view()->keyHistoryModel();
    auto cell = [history](int row, int column) { return history->index(row, column).data().toString(); };
    QTRY_COMPARE_WITH_TIMEOUT(history->rowCount(), 5, Timeout);
    // Newest first: 4, deleted, 3, 2, 1; the first is the current write, by Bob.
    QCOMPARE(cell(0, KeyHistoryModel::ValueColumn), QStringLiteral("4"));
    QCOMPARE(cell(0, KeyHistoryModel::NoteColumn), QStringLiteral("current"));
    QCOMPARE(cell(0, KeyHistoryModel::WriterColumn), view()->peersModel()->displayName(m_bob->connection->peerId()));
    QCOMPARE(cell(1, KeyHistoryModel::ValueColumn), QStringLiteral("(deleted)"));
    QCOMPARE(cell(4, KeyHistoryModel::ValueColumn), QStringLiteral("1"));
    QCOMPARE(cell(4, KeyHistoryModel::NoteColumn), QString());
    QVERIFY2(view()->keyHistoryLabel()->text().contains(QStringLiteral("no store")), qPrintable(view()->keyHistoryLabel()->text()));

    // Restore the first value: a new write that reaches Bob, and a sixth row.
    QVERIFY(!view()->restoreSelectedWrite()); // nothing selected yet
    view()->keyHistoryView()->selectRow(4);
    QVERIFY(view()->restoreSelectedWrite());
    QTRY_COMPARE_WITH_TIMEOUT(m_bob->map->value(key), QJsonValue(1), Timeout);
    QTRY_COMPARE_WITH_TIMEOUT(history->rowCount(), 6, Timeout);
    QCOMPARE(cell(0, KeyHistoryModel::ValueColumn), QStringLiteral("1"));
    QCOMPARE(cell(0, KeyHistoryModel::NoteColumn), QStringLiteral("current"));

    // Restoring a deleted write deletes the key.
    view()->keyHistoryView()->selectRow(2);
    QCOMPARE(cell(2, KeyHistoryModel::ValueColumn), QStringLiteral("(deleted)"));
    QVERIFY(view()->restoreSelectedWrite());
    QTRY_VERIFY_WITH_TIMEOUT(m_bob->map->value(key).isUndefined(), Timeout);
}

void tst_Inspector::theMapAtTwoMomentsIsCompared()
{
    DistributedMap *alice = view()->map();
    m_bob->map->set(QStringLiteral("a"), 1);
    m_bob->map->set(QStringLiteral("b"), 1);
    m_bob->map->set(QStringLiteral("same"), 1);
    QTRY_VERIFY_WITH_TIMEOUT(alice->size() == 3, Timeout);
    // The first moment: after those writes' millisecond, before the next.
    const qint64 first = QDateTime::currentMSecsSinceEpoch();
    QTRY_VERIFY_WITH_TIMEOUT(QDateTime::currentMSecsSinceEpoch() > first, Timeout);
    m_bob->map->set(QStringLiteral("a"), 2);
    m_bob->map->remove(QStringLiteral("b"));
    m_bob->map->set(QStringLiteral("c"), 3);
    QTRY_VERIFY_WITH_TIMEOUT(alice->value(QStringLiteral("c")) == QJsonValue(3) && alice->value(QStringLiteral("b")).isUndefined(),
                             Timeout);
    const qint64 second = QDateTime::currentMSecsSinceEpoch();

    QCOMPARE(view()->compareMoments(first, second), 3);
    const MapDiffModel *diff = view()->diffModel();
    auto cell = [diff](int row, int column) { return diff->index(row, column).data().toString(); };
    QCOMPARE(cell(0, MapDiffModel::KeyColumn), QStringLiteral("a"));
    QCOMPARE(cell(0, MapDiffModel::BeforeColumn), QStringLiteral("1"));
    QCOMPARE(cell(0, MapDiffModel::AfterColumn), QStringLiteral("2"));
    QCOMPARE(cell(1, MapDiffModel::KeyColumn), QStringLiteral("b"));
    QCOMPARE(cell(1, MapDiffModel::AfterColumn), QStringLiteral("(deleted)"));
    QCOMPARE(cell(2, MapDiffModel::KeyColumn), QStringLiteral("c"));
    QCOMPARE(cell(2, MapDiffModel::BeforeColumn), QStringLiteral("(none)"));
    QCOMPARE(cell(2, MapDiffModel::AfterColumn), QStringLiteral("3"));
    QVERIFY2(view()->diffLabel()->text().contains(QStringLiteral("3 key(s) changed")), qPrintable(view()->diffLabel()->text()));
    // Up to the first moment, all three keys were new; backwards, nothing.
    QCOMPARE(view()->compareMoments(first - 60000, first), 3);
    QCOMPARE(view()->compareMoments(second, first), 0);
}

void tst_Inspector::theTimelineShowsThePastReadOnly()
{
    DistributedMap *alice = view()->map();
    m_bob->map->set(QStringLiteral("a"), 1);
    m_bob->map->set(QStringLiteral("b"), 1);
    m_bob->map->set(QStringLiteral("same"), 1);
    QTRY_VERIFY_WITH_TIMEOUT(alice->size() == 3, Timeout);
    const qint64 past = QDateTime::currentMSecsSinceEpoch();
    QTRY_VERIFY_WITH_TIMEOUT(QDateTime::currentMSecsSinceEpoch() > past, Timeout);
    m_bob->map->set(QStringLiteral("a"), 2);
    m_bob->map->remove(QStringLiteral("b"));
    m_bob->map->set(QStringLiteral("c"), 3);
    QTRY_VERIFY_WITH_TIMEOUT(alice->value(QStringLiteral("c")) == QJsonValue(3) && alice->size() == 3, Timeout);

    view()->showMoment(past);
    QVERIFY(!view()->isLive());
    QCOMPARE(view()->keysView()->model(), static_cast<QAbstractItemModel *>(view()->snapshotModel()));
    const SnapshotModel *then = view()->snapshotModel();
    auto cell = [then](const QString &key, int column) {
        return then->index(then->rowOf(key), column).data().toString();
    };
    QCOMPARE(then->rowCount(), 3); // a, b, same; c did not exist yet
    QCOMPARE(cell(QStringLiteral("a"), KeysModel::ValueColumn), QStringLiteral("1"));
    QCOMPARE(cell(QStringLiteral("b"), KeysModel::ValueColumn), QStringLiteral("1"));
    QCOMPARE(then->rowOf(QStringLiteral("c")), -1);
    // The keys changed since are marked, the others not.
    QVERIFY(then->index(then->rowOf(QStringLiteral("a")), 0).data(SnapshotModel::ChangedSinceRole).toBool());
    QVERIFY(then->index(then->rowOf(QStringLiteral("b")), 0).data(SnapshotModel::ChangedSinceRole).toBool());
    QVERIFY(!then->index(then->rowOf(QStringLiteral("same")), 0).data(SnapshotModel::ChangedSinceRole).toBool());
    // Read-only, and said so.
    QVERIFY(view()->timelineBanner()->isVisible());
    QVERIFY2(view()->timelineBanner()->text().contains(QStringLiteral("live edits paused")), qPrintable(view()->timelineBanner()->text()));
    QCOMPARE(view()->keysView()->editTriggers(), QAbstractItemView::NoEditTriggers);
    QVERIFY(!view()->addButton()->isEnabled());
    // Selecting a row of the past shows that key as it was then.
    view()->keysView()->setCurrentIndex(then->index(then->rowOf(QStringLiteral("b")), KeysModel::ValueColumn));
    QCOMPARE(view()->shownKey(), QStringLiteral("b"));
    view()->keysView()->setCurrentIndex(then->index(then->rowOf(QStringLiteral("a")), KeysModel::ValueColumn));
    QCOMPARE(view()->valueTreeModel()->value(), QJsonValue(1));

    // Back to live: the table is the live map again, editable, and the
    // shown key shows its live value.
    view()->goLive();
    QCOMPARE(view()->shownKey(), QStringLiteral("a"));
    QCOMPARE(view()->valueTreeModel()->value(), QJsonValue(2));
    QVERIFY(view()->isLive());
    QCOMPARE(view()->keysView()->model(), static_cast<QAbstractItemModel *>(view()->keysModel()));
    QVERIFY(!view()->timelineBanner()->isVisible());
    QVERIFY(view()->addButton()->isEnabled());
    QVERIFY(view()->keysView()->editTriggers() != QAbstractItemView::NoEditTriggers);
    QTRY_VERIFY_WITH_TIMEOUT(view()->keysModel()->indexOf(QStringLiteral("c")).isValid(), Timeout); // the model batches
    view()->keysView()->setCurrentIndex(view()->keysModel()->indexOf(QStringLiteral("a"), KeysModel::ValueColumn));
    QCOMPARE(view()->valueTreeModel()->value(), QJsonValue(2)); // live again
    QCOMPARE(view()->keysModel()->rowCount(), 3);
    view()->keysView()->setCurrentIndex(view()->keysModel()->indexOf(QStringLiteral("c"), KeysModel::ValueColumn));
    QCOMPARE(view()->shownKey(), QStringLiteral("c"));

    // The slider drives the same: its left end is the past, its right end live.
    view()->timeline()->setValue(0);
    QTRY_VERIFY_WITH_TIMEOUT(!view()->isLive(), Timeout);
    view()->timeline()->setValue(view()->timeline()->maximum());
    QTRY_VERIFY_WITH_TIMEOUT(view()->isLive(), Timeout);
}

void tst_Inspector::clickingAHeaderSortsTheKeysByThatColumn()
{
    KeysModel *model = view()->keysModel();
    m_bob->map->set(QStringLiteral("a"), 3);
    m_bob->map->set(QStringLiteral("b"), 1);
    m_bob->map->set(QStringLiteral("c"), 2);
    QTRY_COMPARE_WITH_TIMEOUT(model->rowCount(), 3, Timeout);
    QTableView *table = view()->keysView();
    const auto shownKeys = [table] {
        QStringList keys;
        for (int row = 0; row < table->model()->rowCount(); ++row)
            keys.append(table->model()->index(row, KeysModel::KeyColumn).data().toString());
        return keys;
    };
    const auto currentKey = [table] { return table->currentIndex().siblingAtColumn(KeysModel::KeyColumn).data().toString(); };
    QCOMPARE(shownKeys(), (QStringList{"a", "b", "c"}));
    table->setCurrentIndex(model->indexOf(QStringLiteral("a"), KeysModel::ValueColumn));
    QHeaderView *header = table->horizontalHeader();
    const auto clickHeader = [header](int column) {
        const QPoint middle(header->sectionViewportPosition(column) + header->sectionSize(column) / 2, header->height() / 2);
        QTest::mouseClick(header->viewport(), Qt::LeftButton, {}, middle);
    };

    // By value, then the other way: the indicator, the model and the rows
    // agree, and the selection stays on its key.
    clickHeader(KeysModel::ValueColumn);
    QCOMPARE(header->sortIndicatorSection(), int(KeysModel::ValueColumn));
    QCOMPARE(model->sortColumn(), int(KeysModel::ValueColumn));
    QCOMPARE(model->sortOrder(), header->sortIndicatorOrder());
    const QStringList ascending{"b", "c", "a"};
    const QStringList descending{"a", "c", "b"};
    QCOMPARE(shownKeys(), model->sortOrder() == Qt::AscendingOrder ? ascending : descending);
    QCOMPARE(currentKey(), QStringLiteral("a"));
    QVERIFY(table->selectionModel()->isRowSelected(model->rowOf(QStringLiteral("a")), {}));
    clickHeader(KeysModel::ValueColumn);
    QCOMPARE(model->sortOrder(), header->sortIndicatorOrder());
    QCOMPARE(shownKeys(), model->sortOrder() == Qt::AscendingOrder ? ascending : descending);
    QCOMPARE(currentKey(), QStringLiteral("a"));
    table->sortByColumn(KeysModel::ValueColumn, Qt::AscendingOrder);
    QCOMPARE(shownKeys(), ascending);

    // A remote change moves its row; the current key stays current.
    m_bob->map->set(QStringLiteral("b"), 10);
    QTRY_COMPARE_WITH_TIMEOUT(shownKeys(), (QStringList{"c", "a", "b"}), Timeout);
    QCOMPARE(currentKey(), QStringLiteral("a"));

    // The past sorts as the header says, and so does live again after a
    // click there.
    view()->showMoment(QDateTime::currentMSecsSinceEpoch());
    QCOMPARE(table->model(), static_cast<QAbstractItemModel *>(view()->snapshotModel()));
    QCOMPARE(shownKeys(), (QStringList{"c", "a", "b"}));
    table->sortByColumn(KeysModel::KeyColumn, Qt::DescendingOrder);
    QCOMPARE(shownKeys(), (QStringList{"c", "b", "a"}));
    view()->goLive();
    QCOMPARE(table->model(), static_cast<QAbstractItemModel *>(model));
    QCOMPARE(model->sortColumn(), int(KeysModel::KeyColumn));
    QCOMPARE(shownKeys(), (QStringList{"c", "b", "a"}));
    QCOMPARE(currentKey(), QStringLiteral("a"));
}

void tst_Inspector::hostsARelayWhenNothingAnswers()
{
    QTcpServer probe;
    QVERIFY(probe.listen(QHostAddress::LocalHost, 0));
    const quint16 port = probe.serverPort();
    probe.close();

    MainWindow::Options options;
    options.url = QStringLiteral("ws://127.0.0.1:%1").arg(port);
    options.maps = {MapUri};
    options.name = QStringLiteral("First");
    options.useSettings = false;
    options.useStore = false;
    options.hostWhenMissing = true;
    MainWindow first(options);
    QTRY_VERIFY_WITH_TIMEOUT(first.relay() != nullptr, Timeout);
    QCOMPARE(first.relay()->port(), port);
    QTRY_VERIFY_WITH_TIMEOUT(first.mapView(MapUri) && first.mapView(MapUri)->map()->isReady(), Timeout);

    options.name = QStringLiteral("Second");
    MainWindow second(options);
    QTRY_VERIFY_WITH_TIMEOUT(second.mapView(MapUri) && second.mapView(MapUri)->map()->isReady(), Timeout);
    QVERIFY(second.relay() == nullptr);
    first.mapView(MapUri)->map()->set(QStringLiteral("shared"), true);
    QTRY_COMPARE_WITH_TIMEOUT(second.mapView(MapUri)->map()->value(QStringLiteral("shared")), QJsonValue(true), Timeout);
    QTRY_VERIFY_WITH_TIMEOUT(second.mapView(MapUri)->peersModel()->rowOf(first.connection()->peerId()) > 0, Timeout);
}

QTEST_MAIN(tst_Inspector)
#include "tst_inspector.moc"
