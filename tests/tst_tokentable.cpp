#include "tokentable.h"

#include <QTest>

class tst_TokenTable : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void globMatch_data();
    void globMatch();
    void access_data();
    void access();
    void badFilesAreRefusedWholeAndNameTheLine_data();
    void badFilesAreRefusedWholeAndNameTheLine();
};

void tst_TokenTable::globMatch_data()
{
    QTest::addColumn<QString>("pattern");
    QTest::addColumn<QString>("uri");
    QTest::addColumn<bool>("matches");
    QTest::newRow("a star matches a whole subtree") << "/rooms/*" << "/rooms/a/b" << true;
    QTest::newRow("a star matches nothing too") << "/rooms/*" << "/rooms/" << true;
    QTest::newRow("a prefix is not enough") << "/rooms/*" << "/room" << false;
    QTest::newRow("a question mark is one character") << "/r?" << "/r1" << true;
    QTest::newRow("a question mark is not two") << "/r?" << "/r12" << false;
    QTest::newRow("a literal pattern is exact") << "/a" << "/a/" << false;
    QTest::newRow("stars in the middle backtrack") << "/*/x/*" << "/a/y/x/b" << true;
    QTest::newRow("a lone star matches everything") << "*" << "/anything" << true;
}

void tst_TokenTable::globMatch()
{
    QFETCH(QString, pattern);
    QFETCH(QString, uri);
    QFETCH(bool, matches);
    QCOMPARE(TokenTable::globMatch(pattern, uri), matches);
}

void tst_TokenTable::access_data()
{
    QTest::addColumn<QByteArray>("token");
    QTest::addColumn<QString>("uri");
    QTest::addColumn<int>("access");
    QTest::newRow("a read-write grant") << QByteArray("alpha-token-0123456") << "/rooms/1" << int(TokenTable::ReadWrite);
    QTest::newRow("outside every grant") << QByteArray("alpha-token-0123456") << "/admin" << int(TokenTable::NoAccess);
    QTest::newRow("read-only on one pattern") << QByteArray("beta-token-01234567") << "/rooms/1" << int(TokenTable::ReadOnly);
    QTest::newRow("the strongest matching line wins") << QByteArray("beta-token-01234567") << "/rooms/beta" << int(TokenTable::ReadWrite);
    QTest::newRow("an unknown token") << QByteArray("gamma-token-0123456") << "/rooms/1" << int(TokenTable::NoAccess);
}

void tst_TokenTable::access()
{
    QFETCH(QByteArray, token);
    QFETCH(QString, uri);
    QFETCH(int, access);
    TokenTable table;
    QString error;
    QVERIFY2(table.parse("# comment\n\n"
                         "alpha-token-0123456 rw /rooms/*\n"
                         "  beta-token-01234567   ro   /rooms/*  \n"
                         "beta-token-01234567 rw /rooms/beta\n",
                         &error),
             qPrintable(error));
    QCOMPARE(table.tokenCount(), 2);
    QCOMPARE(int(table.access(token, uri)), access);
}

void tst_TokenTable::badFilesAreRefusedWholeAndNameTheLine_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QString>("message");
    QTest::newRow("a missing pattern") << QByteArray("ok-token-0123456789 rw /a\nbad-token-0123456789 rw\n") << "line 2: expected";
    QTest::newRow("an unknown access") << QByteArray("ok-token-0123456789 admin /a\n") << "line 1: access must be";
    QTest::newRow("a short token") << QByteArray("short rw /a\n") << "line 1: a token must be 16";
}

void tst_TokenTable::badFilesAreRefusedWholeAndNameTheLine()
{
    QFETCH(QByteArray, text);
    QFETCH(QString, message);
    TokenTable table;
    QVERIFY(table.parse("keep-token-0123456789 rw /*\n", nullptr));
    QString error;
    QVERIFY(!table.parse(text, &error));
    QVERIFY2(error.startsWith(message), qPrintable(error));
    QVERIFY(!error.contains(QLatin1String("token-0123456789"))); // never echo a token
    QVERIFY(table.contains("keep-token-0123456789"));           // the old table stands
}

QTEST_GUILESS_MAIN(tst_TokenTable)
#include "tst_tokentable.moc"
