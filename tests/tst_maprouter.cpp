#include "maprouter.h"

#include <QRegularExpression>
#include <QSet>
#include <QTest>

namespace {

// Peers are letters in the test data: a is 1, b is 2, ...
quint64 peerOf(const QString &name) { return quint64(name.at(0).unicode() - 'a' + 1); }
QString nameOf(quint64 peer) { return peer ? QString(QChar(char16_t('a' + peer - 1))) : QStringLiteral("alone"); }

} // namespace

class tst_MapRouter : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void route_data();
    void route();
    void answeredAndLeftRequestsAreNotKept();
    void membersKeepTheOrderTheyOpenedIn();
    void aRequestAfterABusLossGoesToAnotherRelay();
    void whileTheBusIsDownLocalMembersServeFirst();
};

// Each row is a script over one map, one step per string: an action, then
// after "=>" what the router decided, in order ("b: a" forwards b's request
// to a, "b: alone" tells b it is alone; nothing: no decision). Actions:
//   "a joins", "a leaves", "a is ready", "a asks" (a sends a sync request),
//   "a answers b" (a's first chunk to b), "at 3000" (the clock, in ms, then
//   waiting requests expire). The clock starts at 0; requests wait 3000 ms.
// refused names members the filter refuses (read-only, closing).
void tst_MapRouter::route_data()
{
    QTest::addColumn<QStringList>("steps");
    QTest::addColumn<QString>("refused");
    QTest::newRow("a lone member is told it is alone")
        << QStringList{"a joins =>", "a asks => a: alone"} << QString();
    QTest::newRow("a member told it is alone is ready and serves the next one")
        << QStringList{"a joins =>", "a asks => a: alone", "b joins =>", "b asks => b: a"} << QString();
    QTest::newRow("the only ready member serves every requester")
        << QStringList{"a joins =>", "a is ready =>", "b joins =>", "c joins =>", "b asks => b: a", "c asks => c: a"}
        << QString();
    QTest::newRow("first requests spread over the ready members in turn")
        << QStringList{"a joins =>", "b joins =>", "c joins =>", "a is ready =>", "b is ready =>", "c is ready =>",
                       "d joins =>", "e joins =>", "f joins =>", "d asks => d: a", "e asks => e: b", "f asks => f: c"}
        << QString();
    QTest::newRow("a member's next request goes to the member after its last responder")
        << QStringList{"a joins =>", "b joins =>", "c joins =>", "a is ready =>", "b is ready =>", "c is ready =>",
                       "d joins =>", "d asks => d: a", "d asks => d: b", "d asks => d: c", "d asks => d: a"}
        << QString();
    QTest::newRow("a requester never answers itself")
        << QStringList{"a joins =>", "b joins =>", "a is ready =>", "b is ready =>", "a asks => a: b", "a asks => a: b"}
        << QString();
    QTest::newRow("a member the filter refuses is skipped")
        << QStringList{"a joins =>", "b joins =>", "c joins =>", "a is ready =>", "b is ready =>", "c asks => c: b",
                       "c asks => c: b"}
        << QStringLiteral("a");
    QTest::newRow("a requester is alone when the filter refuses every ready member")
        << QStringList{"a joins =>", "b joins =>", "a is ready =>", "b asks => b: alone"} << QStringLiteral("a");
    QTest::newRow("a member the filter refuses is not waited for")
        << QStringList{"a joins =>", "b joins =>", "b asks => b: alone"} << QStringLiteral("a");
    QTest::newRow("a request waits for a member that is still syncing")
        << QStringList{"a joins =>", "b joins =>", "b asks =>", "a is ready => b: a"} << QString();
    QTest::newRow("two members syncing at once: the first to ask is alone, the other syncs from it")
        << QStringList{"a joins =>", "b joins =>", "a asks =>", "b asks => a: alone, b: a"} << QString();
    QTest::newRow("the first of many waiting requests is alone and serves the rest")
        << QStringList{"a joins =>", "b joins =>", "c joins =>", "d joins =>", "b asks =>", "c asks =>",
                       "a asks =>", "d asks => b: alone, c: b, a: b, d: b"}
        << QString();
    QTest::newRow("a waiting request is alone once the member it waits for leaves")
        << QStringList{"a joins =>", "b joins =>", "b asks =>", "a leaves => b: alone"} << QString();
    QTest::newRow("a waiting request is alone after the wait")
        << QStringList{"a joins =>", "b joins =>", "b asks =>", "at 2999 =>", "at 3000 => b: alone", "b is ready =>",
                       "a asks => a: b"}
        << QString();
    QTest::newRow("a requester that leaves while waiting is forgotten")
        << QStringList{"a joins =>", "b joins =>", "b asks =>", "b leaves =>", "at 9000 =>", "a asks => a: alone"}
        << QString();
    QTest::newRow("a responder that leaves before answering: the request goes to another")
        << QStringList{"a joins =>", "b joins =>", "a is ready =>", "b is ready =>", "c joins =>", "c asks => c: a",
                       "a leaves => c: b"}
        << QString();
    QTest::newRow("a responder that leaves before answering, with nobody else ready: the request waits, then is alone")
        << QStringList{"a joins =>", "a is ready =>", "b joins =>", "c joins =>", "c asks => c: a", "a leaves =>",
                       "b asks => c: alone, b: c"}
        << QString();
    QTest::newRow("a responder that leaves after answering: the requester asks again itself")
        << QStringList{"a joins =>", "b joins =>", "a is ready =>", "b is ready =>", "c joins =>", "c asks => c: a",
                       "a answers c =>", "a leaves =>", "c asks => c: b"}
        << QString();
    QTest::newRow("a member that left and came back starts not ready")
        << QStringList{"a joins =>", "a is ready =>", "a leaves =>", "a joins =>", "b joins =>", "a asks =>",
                       "b asks => a: alone, b: a"}
        << QString();
}

void tst_MapRouter::route()
{
    QFETCH(QStringList, steps);
    QFETCH(QString, refused);
    MapRouter router;
    QSet<quint64> refusedPeers;
    for (const QChar c : refused)
        refusedPeers.insert(peerOf(c));
    router.setServeFilter([&refusedPeers](quint64 peer) { return !refusedPeers.contains(peer); });
    router.setWaitMs(3000);
    qint64 now = 0;
    static const QRegularExpression step(
        QStringLiteral("^(?:([a-z]) (joins|leaves|is ready|asks|answers ([a-z]))|at (\\d+)) =>(.*)$"));
    for (const QString &text : std::as_const(steps)) {
        const QRegularExpressionMatch m = step.match(text);
        QVERIFY2(m.hasMatch(), qPrintable(text));
        MapRouter::Decisions decisions;
        if (!m.captured(4).isEmpty()) {
            now = m.captured(4).toLongLong();
            decisions = router.expire(now);
        } else {
            const quint64 peer = peerOf(m.captured(1));
            const QString verb = m.captured(2);
            if (verb == QLatin1String("joins")) {
                router.add(peer);
                QVERIFY(router.contains(peer));
            } else if (verb == QLatin1String("leaves")) {
                decisions = router.remove(peer, now);
                QVERIFY(!router.contains(peer));
            } else if (verb == QLatin1String("is ready")) {
                decisions = router.setReady(peer, now);
                QVERIFY(router.isReady(peer));
            } else if (verb == QLatin1String("asks")) {
                // The frame names its requester, so a forward can be checked.
                decisions = router.request(peer, nameOf(peer).toLatin1(), now);
            } else {
                router.answered(peer, peerOf(m.captured(3)));
            }
        }
        QStringList got;
        for (const MapRouter::Decision &d : std::as_const(decisions)) {
            if (d.kind == MapRouter::Decision::Alone) {
                got.append(nameOf(d.requester) + QStringLiteral(": alone"));
                QVERIFY2(router.isReady(d.requester), "a requester told it is alone is ready");
            } else {
                got.append(nameOf(d.requester) + QStringLiteral(": ") + nameOf(d.responder));
                QCOMPARE(d.frame, nameOf(d.requester).toLatin1());
            }
        }
        QCOMPARE(got.join(QStringLiteral(", ")), m.captured(5).trimmed());
    }
}

void tst_MapRouter::answeredAndLeftRequestsAreNotKept()
{
    MapRouter router;
    router.add(1);
    router.add(2);
    router.add(3);
    router.setReady(1);
    QCOMPARE(router.request(2, "two").size(), 1);
    QCOMPARE(router.request(2, "two again").size(), 1); // replaces its first
    QCOMPARE(router.pendingRequests(), 1);
    router.answered(3, 2); // not its responder: nothing
    QCOMPARE(router.pendingRequests(), 1);
    router.answered(1, 2);
    QCOMPARE(router.pendingRequests(), 0);
    QVERIFY(router.request(3, "three").size() == 1);
    router.remove(3);
    QCOMPARE(router.pendingRequests(), 0);
    QVERIFY(!router.hasWaiting());
}

// After the bus lost messages, members on this relay all lack the same
// ones: a member's next request goes to a remote member, once.
void tst_MapRouter::aRequestAfterABusLossGoesToAnotherRelay()
{
    MapRouter router;
    router.add(1);
    router.add(2);
    router.add(3, true);
    router.add(4, true);
    for (quint64 peer : {1, 2, 3, 4})
        router.setReady(peer);
    router.preferRemote(1);
    MapRouter::Decisions d = router.request(1, "after a loss");
    QCOMPARE(d.size(), 1);
    QCOMPARE(d.first().responder, quint64(3)); // not 2, which the turn order picks
    router.answered(3, 1);
    d = router.request(1, "later"); // the usual order again: the one after 3
    QCOMPARE(d.first().responder, quint64(4));
    router.answered(4, 1);
    d = router.request(1, "and then");
    QCOMPARE(d.first().responder, quint64(2)); // a local member may serve again
    router.answered(2, 1);

    // With no remote member ready, a local one serves.
    router.remove(3);
    router.remove(4);
    router.preferRemote(2);
    d = router.request(2, "alone on the bus");
    QCOMPARE(d.size(), 1);
    QCOMPARE(d.first().kind, MapRouter::Decision::Forward);
    QCOMPARE(d.first().responder, quint64(1));
}

void tst_MapRouter::whileTheBusIsDownLocalMembersServeFirst()
{
    MapRouter router;
    router.add(1, true);
    router.add(2);
    router.add(3);
    for (quint64 peer : {1, 2})
        router.setReady(peer);
    router.setRemoteReachable(false);
    MapRouter::Decisions d = router.request(3, "bus down");
    QCOMPARE(d.size(), 1);
    QCOMPARE(d.first().responder, quint64(2)); // the turn order would pick 1, unreachable now
    router.answered(2, 3);
    router.remove(2);
    d = router.request(3, "only a remote one left"); // not `alone`: it holds the map
    QCOMPARE(d.size(), 1);
    QCOMPARE(d.first().kind, MapRouter::Decision::Forward);
    QCOMPARE(d.first().responder, quint64(1));
}

void tst_MapRouter::membersKeepTheOrderTheyOpenedIn()
{
    MapRouter router;
    QVERIFY(router.isEmpty());
    for (quint64 peer : {5, 3, 9, 1})
        router.add(peer);
    router.remove(3);
    router.remove(42); // not a member: nothing happens
    QCOMPARE(router.size(), 3);
    QVector<quint64> order;
    for (const MapRouter::Member &m : router.members())
        order.append(m.peer);
    QCOMPARE(order, (QVector<quint64>{5, 9, 1}));
    QVERIFY(!router.isReady(9));
    QVERIFY(!router.isReady(42));
    router.setReady(42); // not a member: nothing happens
    QCOMPARE(router.size(), 3);
}

QTEST_APPLESS_MAIN(tst_MapRouter)
#include "tst_maprouter.moc"

