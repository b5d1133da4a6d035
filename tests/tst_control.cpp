#include "control.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QTest>

Q_DECLARE_METATYPE(Control::DecodeError)
Q_DECLARE_METATYPE(Control::Type)
Q_DECLARE_METATYPE(Wire::ErrorCode)

// The control codec, message by message: what each encoder writes, what
// each decoder accepts, and the error it gives for what it refuses.
class tst_Control : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void typeNamesRoundTrip();
    void decodeMessage_data();
    void decodeMessage();
    void encodersWriteTheDocumentedJson_data();
    void encodersWriteTheDocumentedJson();
    void hello_data();
    void hello();
    void welcome_data();
    void welcome();
    void open_data();
    void open();
    void opened_data();
    void opened();
    void mapRefReadsAMissingIdAsZero();
    void presence_data();
    void presence();
    void joinedAndLeftNeedAPeer_data();
    void joinedAndLeftNeedAPeer();
    void pingEchoesSeqWhateverItsType();
    void error_data();
    void error();
};

namespace {

QJsonObject object(const char *json)
{
    return QJsonDocument::fromJson(json).object();
}

using Decoded = Control::DecodeError;

} // namespace

void tst_Control::typeNamesRoundTrip()
{
    const QStringList names{"hello", "welcome", "open", "opened", "close", "presence", "joined",
                            "left", "ready", "alone", "ping", "pong", "error"};
    for (const QString &name : names) {
        const Control::Type type = Control::typeFromName(name);
        QVERIFY2(type != Control::Type::Unknown, qPrintable(name));
        QCOMPARE(Control::typeName(type), name);
    }
    QCOMPARE(Control::typeFromName(QStringLiteral("Hello")), Control::Type::Unknown); // case matters
    QCOMPARE(Control::typeFromName(QString()), Control::Type::Unknown);
    QVERIFY(Control::typeName(Control::Type::Unknown).isEmpty());
}

void tst_Control::decodeMessage_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<Control::DecodeError>("error");
    QTest::addColumn<Control::Type>("type");
    QTest::addColumn<QString>("typeName");
    QTest::addColumn<QString>("why");

    QTest::newRow("a hello is a hello") << QByteArray(R"({"type":"hello","version":1})") << Decoded::NoError
                                        << Control::Type::Hello << "hello" << "";
    QTest::newRow("an unknown type decodes, typed Unknown, name kept")
        << QByteArray(R"({"type":"shout"})") << Decoded::NoError << Control::Type::Unknown << "shout" << "";
    QTest::newRow("a missing type decodes as Unknown with no name")
        << QByteArray(R"({"id":1})") << Decoded::NoError << Control::Type::Unknown << "" << "";
    QTest::newRow("a type that is not a string has no name")
        << QByteArray(R"({"type":7})") << Decoded::NoError << Control::Type::Unknown << "" << "";
    QTest::newRow("text that is not JSON is refused")
        << QByteArray("{not json") << Decoded::NotJson << Control::Type::Unknown << "" << "not valid JSON";
    QTest::newRow("an array is not an object")
        << QByteArray("[1,2]") << Decoded::NotObject << Control::Type::Unknown << "" << "not a JSON object";
    QTest::newRow("empty text is not JSON") << QByteArray() << Decoded::NotJson << Control::Type::Unknown << "" << "not valid JSON";
}

void tst_Control::decodeMessage()
{
    QFETCH(QByteArray, text);
    QFETCH(Control::DecodeError, error);
    QFETCH(Control::Type, type);
    QFETCH(QString, typeName);
    QFETCH(QString, why);
    Control::Message message;
    QString reason;
    QCOMPARE(Control::decodeMessage(text, &message, &reason), error);
    if (error == Decoded::NoError) {
        QCOMPARE(message.type, type);
        QCOMPARE(message.typeName, typeName);
    } else {
        QVERIFY2(reason.contains(why), qPrintable(reason));
    }
}

void tst_Control::encodersWriteTheDocumentedJson_data()
{
    QTest::addColumn<QByteArray>("encoded");
    QTest::addColumn<QByteArray>("expected");

    Control::Hello hello;
    hello.peer = 0xa;
    hello.time = 1764196800000;
    QTest::newRow("hello") << Control::encodeHello(hello)
                           << QByteArray(R"({"peer":"000000000000000a","time":1764196800000,"type":"hello","version":1})");
    QTest::newRow("hello without a peer asks the relay to choose")
        << Control::encodeHello({}) << QByteArray(R"({"type":"hello","version":1})");
    QTest::newRow("welcome") << Control::encodeWelcome({1, 0xa, 1764196800000})
                             << QByteArray(R"({"peer":"000000000000000a","time":1764196800000,"type":"welcome","version":1})");
    QTest::newRow("open") << Control::encodeOpen({QStringLiteral("/rooms/42"), QJsonObject{{"name", "Ada"}}})
                          << QByteArray(R"({"map":"/rooms/42","presence":{"name":"Ada"},"type":"open"})");
    QTest::newRow("opened read-only with a peer")
        << Control::encodeOpened({QStringLiteral("/rooms/42"), 1, false, {{0xa, QJsonObject{{"name", "Ada"}}}}})
        << QByteArray(R"({"access":"ro","id":1,"map":"/rooms/42","peers":[{"peer":"000000000000000a","presence":{"name":"Ada"}}],"type":"opened"})");
    QTest::newRow("close") << Control::encodeClose({3}) << QByteArray(R"({"id":3,"type":"close"})");
    QTest::newRow("ready") << Control::encodeReady({3}) << QByteArray(R"({"id":3,"type":"ready"})");
    QTest::newRow("alone") << Control::encodeAlone({3}) << QByteArray(R"({"id":3,"type":"alone"})");
    QTest::newRow("alone with read-only holders counts them")
        << Control::encodeAlone({3, 2}) << QByteArray(R"({"id":3,"readOnlyPeers":2,"type":"alone"})");
    QTest::newRow("welcome announcing the message limit")
        << Control::encodeWelcome({1, 0xa, 1764196800000, 65536})
        << QByteArray(R"({"maxMessage":65536,"peer":"000000000000000a","time":1764196800000,"type":"welcome","version":1})");
    QTest::newRow("presence from a peer names no peer")
        << Control::encodePresence({3, 0, QJsonObject{{"name", "Bob"}}}) << QByteArray(R"({"id":3,"presence":{"name":"Bob"},"type":"presence"})");
    QTest::newRow("presence from the relay names the peer")
        << Control::encodePresence({3, 0xb, QJsonObject{{"name", "Bob"}}})
        << QByteArray(R"({"id":3,"peer":"000000000000000b","presence":{"name":"Bob"},"type":"presence"})");
    QTest::newRow("joined") << Control::encodeJoined({3, 0xb, {}}) << QByteArray(R"({"id":3,"peer":"000000000000000b","presence":{},"type":"joined"})");
    QTest::newRow("left") << Control::encodeLeft({3, 0xb}) << QByteArray(R"({"id":3,"peer":"000000000000000b","type":"left"})");
    QTest::newRow("ping") << Control::encodePing({7}) << QByteArray(R"({"seq":7,"type":"ping"})");
    QTest::newRow("pong") << Control::encodePong({7}) << QByteArray(R"({"seq":7,"type":"pong"})");
    QTest::newRow("an error about a map carries its id")
        << Control::encodeError({Wire::ErrorCode::UnknownMap, {}, QStringLiteral("map id 9 is not open"), 9, {}})
        << QByteArray(R"({"code":5,"id":9,"message":"map id 9 is not open","name":"unknown-map","type":"error"})");
    QTest::newRow("an error refusing an open names its map")
        << Control::encodeError({Wire::ErrorCode::Unauthorized, {}, QStringLiteral("no grant"), 0, QStringLiteral("/secret")})
        << QByteArray(R"({"code":8,"map":"/secret","message":"no grant","name":"unauthorized","type":"error"})");
    QTest::newRow("an error about no map has no id")
        << Control::encodeError({Wire::ErrorCode::HandshakeRequired, {}, QStringLiteral("say hello"), 0, {}})
        << QByteArray(R"({"code":4,"message":"say hello","name":"handshake-required","type":"error"})");
}

void tst_Control::encodersWriteTheDocumentedJson()
{
    QFETCH(QByteArray, encoded);
    QFETCH(QByteArray, expected);
    QCOMPARE(encoded, expected);
    // And every encoding decodes as its own type.
    Control::Message message;
    QCOMPARE(Control::decodeMessage(encoded, &message), Decoded::NoError);
    QVERIFY(message.type != Control::Type::Unknown);
}

void tst_Control::hello_data()
{
    QTest::addColumn<QByteArray>("json");
    QTest::addColumn<Control::DecodeError>("error");
    QTest::addColumn<int>("version");
    QTest::addColumn<quint64>("peer");

    QTest::newRow("with a peer id") << QByteArray(R"({"type":"hello","version":1,"peer":"8f3c2a61d0e94b17"})")
                                    << Decoded::NoError << 1 << Q_UINT64_C(0x8f3c2a61d0e94b17);
    QTest::newRow("without one the relay chooses") << QByteArray(R"({"type":"hello","version":1})") << Decoded::NoError << 1 << quint64(0);
    QTest::newRow("a version that is not a number reads as -1")
        << QByteArray(R"({"type":"hello","version":"1"})") << Decoded::NoError << -1 << quint64(0);
    QTest::newRow("a missing version reads as -1") << QByteArray(R"({"type":"hello"})") << Decoded::NoError << -1 << quint64(0);
    QTest::newRow("a short peer id is refused, version still read")
        << QByteArray(R"({"type":"hello","version":2,"peer":"abc"})") << Decoded::BadMember << 2 << quint64(0);
    QTest::newRow("peer id zero is refused")
        << QByteArray(R"({"type":"hello","version":1,"peer":"0000000000000000"})") << Decoded::BadMember << 1 << quint64(0);
    QTest::newRow("a numeric peer id is refused")
        << QByteArray(R"({"type":"hello","version":1,"peer":10})") << Decoded::BadMember << 1 << quint64(0);
}

void tst_Control::hello()
{
    QFETCH(QByteArray, json);
    QFETCH(Control::DecodeError, error);
    QFETCH(int, version);
    QFETCH(quint64, peer);
    Control::Hello hello;
    QString why;
    QCOMPARE(Control::decodeHello(object(json), &hello, &why), error);
    QCOMPARE(hello.version, version);
    QCOMPARE(hello.peer, peer);
    QCOMPARE(why.isEmpty(), error == Decoded::NoError);
}

void tst_Control::welcome_data()
{
    QTest::addColumn<QByteArray>("json");
    QTest::addColumn<Control::DecodeError>("error");
    QTest::addColumn<qint64>("time");
    QTest::addColumn<qint64>("maxMessage");

    QTest::newRow("a welcome") << QByteArray(R"({"type":"welcome","version":1,"peer":"000000000000000a","time":1764196800004})")
                               << Decoded::NoError << qint64(1764196800004) << qint64(0);
    QTest::newRow("without a time") << QByteArray(R"({"type":"welcome","version":1,"peer":"000000000000000a"})")
                                    << Decoded::NoError << qint64(0) << qint64(0);
    QTest::newRow("a time beyond 64 bits reads as unknown") << QByteArray(R"({"type":"welcome","version":1,"peer":"000000000000000a","time":1.7642e88})")
                                                         << Decoded::NoError << qint64(0) << qint64(0);
    QTest::newRow("a negative huge time too") << QByteArray(R"({"type":"welcome","version":1,"peer":"000000000000000a","time":-1e300})")
                                              << Decoded::NoError << qint64(0) << qint64(0);
    QTest::newRow("with the relay's message limit")
        << QByteArray(R"({"type":"welcome","version":1,"peer":"000000000000000a","maxMessage":1048576})")
        << Decoded::NoError << qint64(0) << qint64(1048576);
    QTest::newRow("a limit that is not a positive integer reads as not announced")
        << QByteArray(R"({"type":"welcome","version":1,"peer":"000000000000000a","maxMessage":-5})")
        << Decoded::NoError << qint64(0) << qint64(0);
    QTest::newRow("a fractional limit too")
        << QByteArray(R"({"type":"welcome","version":1,"peer":"000000000000000a","maxMessage":1.5})")
        << Decoded::NoError << qint64(0) << qint64(0);
    QTest::newRow("without a peer it is useless") << QByteArray(R"({"type":"welcome","version":1})") << Decoded::BadMember << qint64(0) << qint64(0);
    QTest::newRow("with peer zero too") << QByteArray(R"({"type":"welcome","peer":"0000000000000000"})") << Decoded::BadMember << qint64(0) << qint64(0);
}

void tst_Control::welcome()
{
    QFETCH(QByteArray, json);
    QFETCH(Control::DecodeError, error);
    QFETCH(qint64, time);
    QFETCH(qint64, maxMessage);
    Control::Welcome welcome;
    QCOMPARE(Control::decodeWelcome(object(json), &welcome), error);
    QCOMPARE(welcome.time, time);
    QCOMPARE(welcome.maxMessage, maxMessage);
    if (error == Decoded::NoError)
        QCOMPARE(welcome.peer, quint64(0xa));
}

void tst_Control::open_data()
{
    QTest::addColumn<QByteArray>("json");
    QTest::addColumn<Control::DecodeError>("error");
    QTest::addColumn<QString>("map");

    QTest::newRow("a map and a presence") << QByteArray(R"({"type":"open","map":"/rooms/42","presence":{"name":"Ada"}})")
                                          << Decoded::NoError << "/rooms/42";
    QTest::newRow("a presence is optional") << QByteArray(R"({"type":"open","map":"/m"})") << Decoded::NoError << "/m";
    QTest::newRow("a presence that is not an object reads as empty")
        << QByteArray(R"({"type":"open","map":"/m","presence":"Ada"})") << Decoded::NoError << "/m";
    QTest::newRow("a map is required") << QByteArray(R"({"type":"open"})") << Decoded::BadMember << "";
    QTest::newRow("an empty map is refused") << QByteArray(R"({"type":"open","map":""})") << Decoded::BadMember << "";
    QTest::newRow("a numeric map is refused") << QByteArray(R"({"type":"open","map":42})") << Decoded::BadMember << "";
    const QByteArray longest(Control::MaxUriBytes, 'u');
    QTest::newRow("a map of 1024 bytes is fine")
        << QByteArray(R"({"type":"open","map":")" + longest + R"("})") << Decoded::NoError << QString::fromLatin1(longest);
    QTest::newRow("a map of 1025 bytes is refused")
        << QByteArray(R"({"type":"open","map":")" + longest + R"(u"})") << Decoded::BadMember << QString::fromLatin1(longest + 'u');
    // 342 three-byte characters: 342 characters, 1026 bytes.
    const QString wide(342, QChar(0x20ac));
    QTest::newRow("the limit counts UTF-8 bytes, not characters")
        << QByteArray(R"({"type":"open","map":")" + wide.toUtf8() + R"("})") << Decoded::BadMember << wide;
}

void tst_Control::open()
{
    QFETCH(QByteArray, json);
    QFETCH(Control::DecodeError, error);
    QFETCH(QString, map);
    Control::Open open;
    QString why;
    QCOMPARE(Control::decodeOpen(object(json), &open, &why), error);
    QCOMPARE(open.map, map);
    if (error != Decoded::NoError)
        QVERIFY2(why.contains(QLatin1String("1 to 1024 bytes")), qPrintable(why));
}

void tst_Control::opened_data()
{
    QTest::addColumn<QByteArray>("json");
    QTest::addColumn<Control::DecodeError>("error");
    QTest::addColumn<bool>("writable");
    QTest::addColumn<int>("peers");

    QTest::newRow("read-write with two peers")
        << QByteArray(R"({"type":"opened","map":"/m","id":1,"access":"rw","peers":[{"peer":"000000000000000a","presence":{}},{"peer":"000000000000000b"}]})")
        << Decoded::NoError << true << 2;
    QTest::newRow("read-only") << QByteArray(R"({"type":"opened","map":"/m","id":1,"access":"ro","peers":[]})") << Decoded::NoError << false << 0;
    QTest::newRow("no access member reads as read-write (older relays)")
        << QByteArray(R"({"type":"opened","map":"/m","id":1,"peers":[]})") << Decoded::NoError << true << 0;
    QTest::newRow("list items without a valid peer id are skipped")
        << QByteArray(R"({"type":"opened","map":"/m","id":1,"peers":[{"peer":"zz"},7,{"peer":"000000000000000a"}]})")
        << Decoded::NoError << true << 1;
    QTest::newRow("id zero is refused") << QByteArray(R"({"type":"opened","map":"/m","id":0,"peers":[]})") << Decoded::BadMember << true << 0;
    QTest::newRow("a missing id is refused") << QByteArray(R"({"type":"opened","map":"/m"})") << Decoded::BadMember << true << 0;
}

void tst_Control::opened()
{
    QFETCH(QByteArray, json);
    QFETCH(Control::DecodeError, error);
    QFETCH(bool, writable);
    QFETCH(int, peers);
    Control::Opened opened;
    QCOMPARE(Control::decodeOpened(object(json), &opened), error);
    QCOMPARE(opened.map, QStringLiteral("/m"));
    QCOMPARE(opened.writable, writable);
    QCOMPARE(opened.peers.size(), peers);
}

void tst_Control::mapRefReadsAMissingIdAsZero()
{
    Control::MapRef ref{99};
    QCOMPARE(Control::decodeMapRef(object(R"({"type":"ready","id":12})"), &ref), Decoded::NoError);
    QCOMPARE(ref.id, 12u);
    // The relay answers unknown-map for id 0, as for any id not open.
    QCOMPARE(Control::decodeMapRef(object(R"({"type":"ready"})"), &ref), Decoded::NoError);
    QCOMPARE(ref.id, 0u);
    QCOMPARE(Control::decodeMapRef(object(R"({"type":"close","id":"12"})"), &ref), Decoded::NoError);
    QCOMPARE(ref.id, 0u);
}

void tst_Control::presence_data()
{
    QTest::addColumn<QByteArray>("json");
    QTest::addColumn<Control::DecodeError>("error");
    QTest::addColumn<quint64>("peer");
    QTest::addColumn<QString>("name");

    QTest::newRow("from a peer, without a peer id")
        << QByteArray(R"({"type":"presence","id":1,"presence":{"name":"Ada"}})") << Decoded::NoError << quint64(0) << "Ada";
    QTest::newRow("from the relay, with the peer's id")
        << QByteArray(R"({"type":"presence","id":1,"peer":"000000000000000b","presence":{"name":"Bob"}})")
        << Decoded::NoError << quint64(0xb) << "Bob";
    QTest::newRow("a peer member that is not an id is refused")
        << QByteArray(R"({"type":"presence","id":1,"peer":"b","presence":{}})") << Decoded::BadMember << quint64(0) << "";
}

void tst_Control::presence()
{
    QFETCH(QByteArray, json);
    QFETCH(Control::DecodeError, error);
    QFETCH(quint64, peer);
    QFETCH(QString, name);
    Control::Presence presence;
    QCOMPARE(Control::decodePresence(object(json), &presence), error);
    QCOMPARE(presence.id, 1u);
    QCOMPARE(presence.peer, peer);
    QCOMPARE(presence.presence.value(QStringLiteral("name")).toString(), name);
    // The size the relay limits is the compact JSON text of the object.
    QCOMPARE(Control::presenceBytes(presence.presence), Control::toText(presence.presence).size());
}

void tst_Control::joinedAndLeftNeedAPeer_data()
{
    QTest::addColumn<QByteArray>("json");
    QTest::addColumn<Control::DecodeError>("error");

    QTest::newRow("joined with a peer") << QByteArray(R"({"type":"joined","id":2,"peer":"000000000000000b","presence":{}})") << Decoded::NoError;
    QTest::newRow("joined without a peer") << QByteArray(R"({"type":"joined","id":2,"presence":{}})") << Decoded::BadMember;
    QTest::newRow("left with a peer") << QByteArray(R"({"type":"left","id":2,"peer":"000000000000000b"})") << Decoded::NoError;
    QTest::newRow("left with peer zero") << QByteArray(R"({"type":"left","id":2,"peer":"0000000000000000"})") << Decoded::BadMember;
}

void tst_Control::joinedAndLeftNeedAPeer()
{
    QFETCH(QByteArray, json);
    QFETCH(Control::DecodeError, error);
    const QJsonObject o = object(json);
    if (o.value(QStringLiteral("type")).toString() == QLatin1String("joined")) {
        Control::Joined joined;
        QString why;
        QCOMPARE(Control::decodeJoined(o, &joined, &why), error);
        QCOMPARE(joined.id, 2u);
        if (error != Decoded::NoError)
            QCOMPARE(why, QStringLiteral("joined without a valid peer id"));
        else
            QCOMPARE(joined.peer, quint64(0xb));
    } else {
        Control::Left left;
        QCOMPARE(Control::decodeLeft(o, &left), error);
        QCOMPARE(left.id, 2u);
        if (error == Decoded::NoError)
            QCOMPARE(left.peer, quint64(0xb));
    }
}

void tst_Control::pingEchoesSeqWhateverItsType()
{
    for (const char *json : {R"({"type":"ping","seq":41})", R"({"type":"ping","seq":"x"})", R"({"type":"ping","seq":[1]})"}) {
        Control::Ping ping;
        QCOMPARE(Control::decodePing(object(json), &ping), Decoded::NoError);
        const QJsonObject pong = QJsonDocument::fromJson(Control::encodePong(ping)).object();
        QCOMPARE(pong.value(QStringLiteral("type")).toString(), QStringLiteral("pong"));
        QCOMPARE(pong.value(QStringLiteral("seq")), object(json).value(QStringLiteral("seq")));
    }
}

void tst_Control::error_data()
{
    QTest::addColumn<QByteArray>("json");
    QTest::addColumn<Control::DecodeError>("decoded");
    QTest::addColumn<Wire::ErrorCode>("code");
    QTest::addColumn<quint32>("id");

    QTest::newRow("an error about a map")
        << QByteArray(R"({"type":"error","code":5,"name":"unknown-map","message":"map id 9 is not open on this connection","id":9})")
        << Decoded::NoError << Wire::ErrorCode::UnknownMap << 9u;
    QTest::newRow("an error about the connection") << QByteArray(R"({"type":"error","code":10,"name":"rate-limited","message":"slow down"})")
                                                   << Decoded::NoError << Wire::ErrorCode::RateLimited << 0u;
    QTest::newRow("a code from a newer relay is kept as a number")
        << QByteArray(R"({"type":"error","code":99,"name":"new-thing","message":"?"})") << Decoded::NoError << Wire::ErrorCode(99) << 0u;
    QTest::newRow("an error without a code is refused") << QByteArray(R"({"type":"error","message":"?"})") << Decoded::BadMember
                                                        << Wire::ErrorCode::NoError << 0u;
    QTest::newRow("code 0 is not an error") << QByteArray(R"({"type":"error","code":0})") << Decoded::BadMember
                                            << Wire::ErrorCode::NoError << 0u;
}

void tst_Control::error()
{
    QFETCH(QByteArray, json);
    QFETCH(Control::DecodeError, decoded);
    QFETCH(Wire::ErrorCode, code);
    QFETCH(quint32, id);
    Control::Error error;
    QCOMPARE(Control::decodeError(object(json), &error), decoded);
    QCOMPARE(error.code, code);
    QCOMPARE(error.id, id);
    if (decoded == Decoded::NoError) {
        // What the relay encodes decodes to the same code, name and message.
        Control::Error again;
        QCOMPARE(Control::decodeError(QJsonDocument::fromJson(Control::encodeError(error)).object(), &again), Decoded::NoError);
        QCOMPARE(again.code, error.code);
        QCOMPARE(again.message, error.message);
        QCOMPARE(again.id, error.id);
        QCOMPARE(again.name, Wire::errorName(error.code));
    }
}

QTEST_APPLESS_MAIN(tst_Control)
#include "tst_control.moc"
