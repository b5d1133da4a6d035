// Checks the frames the JavaScript peer encoded (js-frames.json, written by
// tests/web/golden.test.mjs) with the C++ codec: each decodes to what the
// JS side meant, and re-encodes to the very same bytes.
#include "goldenjson.h"

#include <QFile>
#include <QJsonDocument>
#include <QSet>
#include <QTest>

class tst_WebGoldens : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void framesFromJavaScript_data();
    void framesFromJavaScript();
    void everyTypeIsCovered();

private:
    static QJsonArray frames();
};

QJsonArray tst_WebGoldens::frames()
{
    QFile file(qEnvironmentVariable("DISTMAP_GOLDEN_DIR") + QStringLiteral("/js-frames.json"));
    if (!file.open(QIODevice::ReadOnly))
        return {};
    return QJsonDocument::fromJson(file.readAll()).object().value(QLatin1String("frames")).toArray();
}

void tst_WebGoldens::framesFromJavaScript_data()
{
    QTest::addColumn<QJsonObject>("frame");
    const QJsonArray all = frames();
    for (const QJsonValue &f : all)
        QTest::newRow(qPrintable(f.toObject().value(QLatin1String("name")).toString())) << f.toObject();
}

void tst_WebGoldens::framesFromJavaScript()
{
    QFETCH(QJsonObject, frame);
    const QByteArray bytes = QByteArray::fromHex(frame.value(QLatin1String("hex")).toString().toLatin1());
    const QJsonObject meant = frame.value(QLatin1String("message")).toObject();
    QString error;
    const QJsonObject decoded = GoldenJson::describe(bytes, &error);
    QVERIFY2(!decoded.isEmpty(), qPrintable(QStringLiteral("the C++ codec rejects it: %1").arg(error)));
    QCOMPARE(QString::fromUtf8(QJsonDocument(decoded).toJson(QJsonDocument::Compact)),
             QString::fromUtf8(QJsonDocument(meant).toJson(QJsonDocument::Compact)));
    const QByteArray again = GoldenJson::encode(meant, &error);
    QCOMPARE(again.toHex(), bytes.toHex());
}

void tst_WebGoldens::everyTypeIsCovered()
{
    const QJsonArray all = frames();
    QVERIFY2(!all.isEmpty(), qPrintable(QStringLiteral("no js-frames.json in DISTMAP_GOLDEN_DIR (%1): run the JavaScript tests first")
                                            .arg(qEnvironmentVariable("DISTMAP_GOLDEN_DIR"))));
    QSet<QString> types;
    for (const QJsonValue &f : all)
        types.insert(f.toObject().value(QLatin1String("message")).toObject().value(QLatin1String("type")).toString());
    for (const char *type : {"Delta", "Repair", "SyncRequest", "SyncData", "SyncAck", "WriteAck"})
        QVERIFY2(types.contains(QLatin1String(type)), type);
}

QTEST_GUILESS_MAIN(tst_WebGoldens)
#include "tst_webgoldens.moc"
