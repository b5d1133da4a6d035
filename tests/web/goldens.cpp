// Writes the golden vectors the JavaScript peer's tests check against the
// C++ codec and merge rule: frames.json (messages, and payloads a receiver
// must reject) and merges.json (writes in some order, and the state and
// digests they must give). Usage: distmap_goldens DIRECTORY
#include "goldenjson.h"
#include "mapstate.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QJsonDocument>
#include <QRandomGenerator>

#include <algorithm>
#include <cstdio>

namespace {

QJsonObject entry(const char *kind, const QString &key, const char *value, quint64 hlc, quint64 writer)
{
    Entry e;
    e.tombstone = qstrcmp(kind, "delete") == 0;
    e.value = e.tombstone ? QByteArray() : QByteArray(value);
    e.hlc = hlc;
    e.writer = writer;
    return GoldenJson::entryToJson(key, e);
}

QJsonObject message(const char *type, int flags, quint32 map, quint64 peer)
{
    return {{QStringLiteral("type"), QLatin1String(type)},
            {QStringLiteral("flags"), flags},
            {QStringLiteral("map"), qint64(map)},
            {QStringLiteral("peer"), QString::number(peer)}};
}

QJsonArray words(std::initializer_list<quint64> list)
{
    QJsonArray out;
    for (quint64 w : list)
        out.append(QString::number(w));
    return out;
}

QVector<QJsonObject> messages()
{
    const quint64 max = ~quint64(0);
    QVector<QJsonObject> out;
    QJsonObject m = message("Delta", 0, 1, 0x0a);
    m.insert(QStringLiteral("entries"), QJsonArray{entry("set", QStringLiteral("k"), "1", 0x0102, 0x0a)}); // PROTOCOL.md 5.2
    out << m;
    m = message("Delta", Wire::FlagAckRequested, 7, 0x8f3c2a61d0e94b17);
    m.insert(QStringLiteral("entries"), QJsonArray{
        entry("set", QStringLiteral("colour"), "\"blue\"", 1764196800000ULL << 16, 0x8f3c2a61d0e94b17),
        entry("delete", QStringLiteral("gone"), "", (1764196800000ULL << 16) + 1, 0x8f3c2a61d0e94b17),
        entry("set", QStringLiteral("ключ-🔑-鍵"), "{\"nested\":[1,2.5,null,true,\"é\"]}", (1764196800000ULL << 16) + 2, 0x8f3c2a61d0e94b17),
        entry("set", QString(), "\"\"", (1764196800000ULL << 16) + 3, 0x8f3c2a61d0e94b17)});
    out << m;
    m = message("Delta", 0, 0xffffffffu, max);
    m.insert(QStringLiteral("entries"), QJsonArray{entry("set", QStringLiteral("max"), "18446744073709551615", max, max)});
    out << m;
    m = message("Repair", 0, 3, 0);
    m.insert(QStringLiteral("entries"), QJsonArray{entry("set", QStringLiteral("a"), "true", 5, 1), entry("delete", QStringLiteral("b"), "", 6, 2),
                                                   entry("set", QStringLiteral("c"), "[]", 7, max - 1)});
    out << m;
    m = message("SyncRequest", 0, 2, 0);
    m.insert(QStringLiteral("syncId"), 1);
    m.insert(QStringLiteral("since"), QStringLiteral("0"));
    m.insert(QStringLiteral("bucketCount"), 0);
    m.insert(QStringLiteral("digest"), QJsonArray());
    out << m;
    m = message("SyncRequest", 0, 2, 0);
    m.insert(QStringLiteral("syncId"), qint64(0xfffffffeu));
    m.insert(QStringLiteral("since"), QString::number(max));
    m.insert(QStringLiteral("bucketCount"), 4);
    m.insert(QStringLiteral("digest"), words({1, 0, max, 0x1234567890abcdefULL}));
    out << m;
    m = message("SyncData", 0, 2, 0x1122334455667788ULL);
    m.insert(QStringLiteral("syncId"), 9);
    m.insert(QStringLiteral("seq"), 0);
    m.insert(QStringLiteral("final"), false);
    m.insert(QStringLiteral("bucketCount"), 2);
    m.insert(QStringLiteral("digest"), words({42, 43}));
    m.insert(QStringLiteral("entries"), QJsonArray{entry("set", QStringLiteral("x"), "{\"a\":1}", 100, 3), entry("delete", QStringLiteral("y"), "", 101, 3)});
    out << m;
    m = message("SyncData", 0, 2, 0x1122334455667788ULL);
    m.insert(QStringLiteral("syncId"), 9);
    m.insert(QStringLiteral("seq"), 1);
    m.insert(QStringLiteral("final"), true);
    m.insert(QStringLiteral("bucketCount"), 0);
    m.insert(QStringLiteral("digest"), QJsonArray());
    m.insert(QStringLiteral("entries"), QJsonArray());
    out << m;
    m = message("SyncAck", 0, 2, 0x1122334455667788ULL);
    m.insert(QStringLiteral("syncId"), 9);
    m.insert(QStringLiteral("seq"), 1);
    out << m;
    m = message("WriteAck", 0, 7, 0x8f3c2a61d0e94b17);
    m.insert(QStringLiteral("durable"), true);
    m.insert(QStringLiteral("hlcs"), words({0x0102, 0x0203})); // PROTOCOL.md 5.8
    out << m;
    m = message("WriteAck", 0, 7, 5);
    m.insert(QStringLiteral("durable"), false);
    m.insert(QStringLiteral("hlcs"), QJsonArray());
    out << m;
    return out;
}

struct Malformed
{
    const char *name;
    const char *type;
    QByteArray payload;
};

QByteArray header(Wire::Type type)
{
    QByteArray out;
    Wire::appendHeader(out, {type, 0, 1, 0});
    return out;
}

QVector<Malformed> malformed()
{
    const QByteArray entryK = QByteArray::fromHex("01" "0201000000000000" "0a00000000000000" "01000000" "6b" "01000000" "31");
    QVector<Malformed> out;
    out.append({"entry cut in its value", "Delta", entryK.left(entryK.size() - 1)});
    out.append({"entry with kind 3", "Delta", QByteArray::fromHex("03") + entryK.mid(1)});
    out.append({"entry with kind 0", "Repair", QByteArray::fromHex("00") + entryK.mid(1)});
    out.append({"set with an empty value", "Delta", entryK.left(22) + QByteArray::fromHex("00000000")});
    out.append({"key that is not UTF-8", "Delta", entryK.left(17) + QByteArray::fromHex("01000000" "ff" "01000000" "31")});
    out.append({"key longer than 65535 bytes", "Delta", entryK.left(17) + QByteArray::fromHex("00000100") + QByteArray(65536, 'a') + QByteArray::fromHex("0100000031")});
    out.append({"value length beyond 64 MiB", "Delta", entryK.left(22) + QByteArray::fromHex("01000004") + "1"});
    out.append({"a good entry then a cut one", "Repair", entryK + entryK.left(10)});
    out.append({"sync request cut before its digest", "SyncRequest", QByteArray::fromHex("01000000" "0000000000000000" "02000000" "0100000000000000")});
    out.append({"sync request with 3 buckets", "SyncRequest", QByteArray::fromHex("01000000" "0000000000000000" "03000000") + QByteArray(24, 0)});
    out.append({"sync request with trailing bytes", "SyncRequest", QByteArray::fromHex("01000000" "0000000000000000" "00000000" "00")});
    out.append({"sync chunk cut in its head", "SyncData", QByteArray::fromHex("0900000000000000")});
    out.append({"sync ack of 7 bytes", "SyncAck", QByteArray::fromHex("09000000010000")});
    out.append({"sync ack with trailing bytes", "SyncAck", QByteArray::fromHex("090000000100000000")});
    out.append({"write ack with flag bit 1", "WriteAck", QByteArray::fromHex("02" "00000000")});
    out.append({"write ack count beyond its payload", "WriteAck", QByteArray::fromHex("01" "02000000" "0201000000000000")});
    out.append({"write ack with trailing bytes", "WriteAck", QByteArray::fromHex("01" "00000000" "ff")});
    out.append({"write ack of 4 bytes", "WriteAck", QByteArray::fromHex("01000000")});
    return out;
}

Wire::Type typeFromName(const char *name)
{
    for (Wire::Type t : {Wire::Type::Delta, Wire::Type::SyncRequest, Wire::Type::SyncData, Wire::Type::SyncAck, Wire::Type::WriteAck, Wire::Type::Repair}) {
        if (GoldenJson::typeName(t) == QLatin1String(name))
            return t;
    }
    return Wire::Type::Delta;
}

// Writes to a few keys by a few writers, with clashes on the same hlc (the
// writer breaks the tie) and deletes; applied in a random order.
QJsonObject mergeCase(const QString &name, QRandomGenerator &rng, int writes, int keys)
{
    static const char *const values[] = {"1", "\"a\"", "{\"x\":[1,2]}", "null", "false", "\"é🙂\"", "-0.5e3"};
    static const QString keyNames[] = {QStringLiteral("a"), QStringLiteral("b"), QStringLiteral("é"), QStringLiteral("🙂"),
                                       QStringLiteral("A"), QStringLiteral("z"), QString(), QStringLiteral("ключ")};
    MapState state;
    QJsonArray ops;
    for (int i = 0; i < writes; ++i) {
        Entry e;
        e.hlc = 1000 + rng.bounded(writes / 2 + 1);
        e.writer = 1 + rng.bounded(3) + (rng.bounded(4) == 0 ? 0xfffffffffffffff0ULL : 0);
        e.tombstone = rng.bounded(4) == 0;
        if (!e.tombstone)
            e.value = values[rng.bounded(7)];
        const QString key = keyNames[rng.bounded(keys)];
        QJsonObject op{{QStringLiteral("key"), key}, {QStringLiteral("hlc"), QString::number(e.hlc)}, {QStringLiteral("writer"), QString::number(e.writer)}};
        if (e.tombstone)
            op.insert(QStringLiteral("delete"), true);
        else
            op.insert(QStringLiteral("value"), QString::fromUtf8(e.value));
        ops.append(op);
        state.apply(key, e);
    }
    QStringList sorted;
    for (const EntryRef e : state.entries())
        sorted.append(e.key());
    std::sort(sorted.begin(), sorted.end(), [](const QString &a, const QString &b) { return a.toUtf8() < b.toUtf8(); });
    QJsonArray entries;
    for (const QString &key : sorted) {
        QJsonObject e = GoldenJson::entryToJson(key, *state.find(key));
        entries.append(e);
    }
    QJsonObject digests;
    for (int n : {1, 16}) {
        QJsonArray words;
        for (quint64 w : state.digest(n))
            words.append(QString::number(w));
        digests.insert(QString::number(n), words);
    }
    return {{QStringLiteral("name"), name}, {QStringLiteral("ops"), ops}, {QStringLiteral("state"), entries}, {QStringLiteral("digests"), digests}};
}

bool write(const QString &path, const QJsonObject &object)
{
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate) || file.write(QJsonDocument(object).toJson()) < 0) {
        std::fprintf(stderr, "distmap_goldens: cannot write %s: %s\n", qPrintable(path), qPrintable(file.errorString()));
        return false;
    }
    return true;
}

} // namespace

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    if (app.arguments().size() != 2) {
        std::fprintf(stderr, "usage: distmap_goldens DIRECTORY\n");
        return 2;
    }
    const QDir dir(app.arguments().at(1));
    if (!QDir().mkpath(dir.path())) {
        std::fprintf(stderr, "distmap_goldens: cannot create %s\n", qPrintable(dir.path()));
        return 1;
    }
    QJsonArray frames;
    for (const QJsonObject &m : messages()) {
        QString error;
        const QByteArray bytes = GoldenJson::encode(m, &error);
        const QJsonObject back = GoldenJson::describe(bytes, &error);
        if (bytes.isEmpty() || back != m) { // the bridge itself must round-trip
            std::fprintf(stderr, "distmap_goldens: %s does not round-trip: %s\n", qPrintable(QJsonDocument(m).toJson(QJsonDocument::Compact)), qPrintable(error));
            return 1;
        }
        frames.append(QJsonObject{{QStringLiteral("name"), QStringLiteral("%1 #%2").arg(m.value(QLatin1String("type")).toString()).arg(frames.size())},
                                  {QStringLiteral("hex"), QString::fromLatin1(bytes.toHex())},
                                  {QStringLiteral("message"), m}});
    }
    QJsonArray bad;
    for (const Malformed &m : malformed()) {
        const QByteArray bytes = header(typeFromName(m.type)) + m.payload;
        QString error;
        if (!GoldenJson::describe(bytes, &error).isEmpty()) {
            std::fprintf(stderr, "distmap_goldens: '%s' decodes, but should not\n", m.name);
            return 1;
        }
        bad.append(QJsonObject{{QStringLiteral("name"), QLatin1String(m.name)}, {QStringLiteral("type"), QLatin1String(m.type)},
                               {QStringLiteral("hex"), QString::fromLatin1(bytes.toHex())}, {QStringLiteral("error"), error}});
    }
    QRandomGenerator rng(20261205); // fixed: the files are the same on every run
    QJsonArray cases;
    cases.append(mergeCase(QStringLiteral("one key, two writers"), rng, 6, 1));
    cases.append(mergeCase(QStringLiteral("ties on hlc"), rng, 40, 3));
    for (int i = 0; i < 20; ++i)
        cases.append(mergeCase(QStringLiteral("random %1").arg(i), rng, 50 + 10 * i, 8));
    const bool ok = write(dir.filePath(QStringLiteral("frames.json")), {{QStringLiteral("version"), 1}, {QStringLiteral("frames"), frames}, {QStringLiteral("malformed"), bad}})
                    && write(dir.filePath(QStringLiteral("merges.json")), {{QStringLiteral("version"), 1}, {QStringLiteral("cases"), cases}});
    if (ok)
        std::printf("wrote %lld frames, %lld malformed payloads, %lld merge cases to %s\n", qint64(frames.size()), qint64(bad.size()),
                    qint64(cases.size()), qPrintable(dir.path()));
    return ok ? 0 : 1;
}
