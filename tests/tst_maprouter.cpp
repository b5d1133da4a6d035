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
    void membersKeepTheOrderTheyOpenedIn();
};

// Each row is a script over one map, one step per string:
//   "a joins", "a is ready", "a leaves", "a asks: b" (b answers a's sync
//   request), "a asks: alone" (nobody can; a is then ready).
// refused names members the caller's filter refuses (read-only, closing).
void tst_MapRouter::route_data()
{
    QTest::addColumn<QStringList>("steps");
    QTest::addColumn<QString>("refused");
    QTest::newRow("a lone member is told it is alone")
        << QStringList{"a joins", "a asks: alone", "a is ready"} << QString();
    QTest::newRow("members that are not ready are never asked")
        << QStringList{"a joins", "b joins", "c joins", "a asks: alone"} << QString();
    QTest::newRow("a member told it is alone serves the next one")
        << QStringList{"a joins", "b joins", "a asks: alone", "b asks: a"} << QString();
    QTest::newRow("the only ready member serves every requester")
        << QStringList{"a joins", "a is ready", "b joins", "c joins", "b asks: a", "c asks: a"} << QString();
    QTest::newRow("first requests spread over the ready members in turn")
        << QStringList{"a joins", "b joins", "c joins", "a is ready", "b is ready", "c is ready",
                       "d joins", "e joins", "f joins", "d asks: a", "e asks: b", "f asks: c"}
        << QString();
    QTest::newRow("a member's next request goes to the member after its last responder")
        << QStringList{"a joins", "b joins", "c joins", "a is ready", "b is ready", "c is ready", "d joins",
                       "d asks: a", "d asks: b", "d asks: c", "d asks: a"}
        << QString();
    QTest::newRow("a requester never answers itself")
        << QStringList{"a joins", "b joins", "a is ready", "b is ready", "a asks: b", "a asks: b"} << QString();
    QTest::newRow("a member the filter refuses is skipped")
        << QStringList{"a joins", "b joins", "c joins", "a is ready", "b is ready", "c asks: b", "c asks: b"}
        << QStringLiteral("a");
    QTest::newRow("a requester is alone when the filter refuses every ready member")
        << QStringList{"a joins", "b joins", "a is ready", "b asks: alone", "b is ready"} << QStringLiteral("a");
    QTest::newRow("a responder that left is not asked again")
        << QStringList{"a joins", "a is ready", "b joins", "c joins", "b asks: a", "a leaves", "b asks: alone"}
        << QString();
    QTest::newRow("a member that left and came back starts not ready")
        << QStringList{"a joins", "a is ready", "a leaves", "a joins", "b joins", "b asks: alone"} << QString();
}

void tst_MapRouter::route()
{
    QFETCH(QStringList, steps);
    QFETCH(QString, refused);
    MapRouter router;
    QSet<quint64> refusedPeers;
    for (const QChar c : refused)
        refusedPeers.insert(peerOf(c));
    const auto canServe = [&refusedPeers](quint64 peer) { return !refusedPeers.contains(peer); };
    static const QRegularExpression step(QStringLiteral("^([a-z]) (joins|leaves|is ready|asks: ([a-z]|alone))$"));
    for (const QString &text : std::as_const(steps)) {
        const QRegularExpressionMatch m = step.match(text);
        QVERIFY2(m.hasMatch(), qPrintable(text));
        const quint64 peer = peerOf(m.captured(1));
        const QString verb = m.captured(2);
        if (verb == QLatin1String("joins")) {
            router.add(peer);
            QVERIFY(router.contains(peer));
        } else if (verb == QLatin1String("leaves")) {
            router.remove(peer);
            QVERIFY(!router.contains(peer));
        } else if (verb == QLatin1String("is ready")) {
            if (!router.isReady(peer))
                router.setReady(peer);
            QVERIFY(router.isReady(peer));
        } else {
            QCOMPARE(nameOf(router.route(peer, canServe)), m.captured(3));
        }
    }
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
