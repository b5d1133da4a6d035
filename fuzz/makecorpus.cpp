// Writes the seed corpora of the fuzz targets from real encodings:
//   fuzz_makecorpus DIR   ->  DIR/<target>/<seed name>
// Run by scripts/fuzz.sh --seeds; the output is checked in as fuzz/corpus.
#include "journal.h"
#include "control.h"
#include "jsontext.h"
#include "mapstate.h"
#include "wire.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonObject>

#include <cstdio>

namespace {

QString root;

void write(const char *target, const char *name, const QByteArray &bytes)
{
    QDir().mkpath(root + QLatin1Char('/') + QLatin1String(target));
    QFile file(QStringLiteral("%1/%2/%3").arg(root, QLatin1String(target), QLatin1String(name)));
    if (!file.open(QIODevice::WriteOnly) || file.write(bytes) != bytes.size()) {
        std::fprintf(stderr, "cannot write %s\n", qPrintable(file.fileName()));
        std::exit(1);
    }
}

Entry set(const QJsonValue &value, quint64 hlc, quint64 writer)
{
    Entry e;
    e.value = JsonText::encode(value);
    e.hlc = hlc;
    e.writer = writer;
    return e;
}

Entry tombstone(quint64 hlc, quint64 writer)
{
    Entry e;
    e.tombstone = true;
    e.hlc = hlc;
    e.writer = writer;
    return e;
}

QByteArray header(Wire::Type type, quint32 mapId, quint64 peer)
{
    QByteArray out;
    Wire::appendHeader(out, {type, 0, mapId, peer});
    return out;
}

const quint64 Hlc = quint64(1764196800000) << 16;

QByteArray someEntries()
{
    QByteArray run;
    Wire::appendEntry(run, QStringLiteral("color"), set(QStringLiteral("blue"), Hlc + 1, 0x0a));
    Wire::appendEntry(run, QStringLiteral("count"), set(42, Hlc + 2, 0x0a));
    Wire::appendEntry(run, QStringLiteral("gone"), tombstone(Hlc + 3, 0x0b));
    Wire::appendEntry(run, QStringLiteral("ключ/鍵"), set(QJsonObject{{QStringLiteral("a"), QJsonArray{1, true, QJsonValue()}}}, Hlc + 4, 0x0c));
    return run;
}

QByteArray message(quint8 kind, const QByteArray &bytes)
{
    QByteArray out;
    out.append(char(kind));
    out.append(char(bytes.size() & 0xff));
    out.append(char(bytes.size() >> 8));
    out.append(bytes);
    return out;
}

QByteArray textMessage(const char *json) { return message(0, QByteArray(json)); }

} // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: fuzz_makecorpus DIR\n");
        return 2;
    }
    root = QString::fromLocal8Bit(argv[1]);

    // Routed headers, one per type, plus a payload byte.
    write("fuzz_header", "delta", header(Wire::Type::Delta, 1, 0) + someEntries());
    write("fuzz_header", "syncrequest", header(Wire::Type::SyncRequest, 7, 0));
    write("fuzz_header", "syncdata", header(Wire::Type::SyncData, 1, 0x8f3c2a61d0e94b17ULL));
    write("fuzz_header", "syncack", header(Wire::Type::SyncAck, 0xffffffffu, 0x0b));
    write("fuzz_header", "repair", header(Wire::Type::Repair, 2, 0x0a) + QByteArray(1, '\x01'));

    // Entries: the protocol document's example, single kinds, a mixed run.
    {
        QByteArray one;
        Wire::appendEntry(one, QStringLiteral("k"), set(1, 0x0102, 0x0a));
        write("fuzz_entries", "protocol-example", one);
        QByteArray del;
        Wire::appendEntry(del, QStringLiteral("k"), tombstone(0x0103, 0x0a));
        write("fuzz_entries", "tombstone", del);
        QByteArray empty;
        Wire::appendEntry(empty, QString(), set(QStringLiteral(""), 1, 1));
        write("fuzz_entries", "empty-key", empty);
        write("fuzz_entries", "mixed", someEntries());
    }

    // Sync requests: full, catch-up, verify with digests.
    {
        MapState state;
        QVector<Wire::DecodedEntry> entries;
        Wire::decodeEntries(someEntries().constData(), someEntries().size(), &entries);
        for (const auto &d : entries)
            state.apply(d.key, d.entry);
        write("fuzz_syncrequest", "full", Wire::encodeSyncRequest({1, 0, {}}));
        write("fuzz_syncrequest", "catch-up", Wire::encodeSyncRequest({2, Hlc, {}}));
        write("fuzz_syncrequest", "verify-1", Wire::encodeSyncRequest({3, Wire::SinceNever, state.digest(1)}));
        write("fuzz_syncrequest", "verify-16", Wire::encodeSyncRequest({4, Wire::SinceNever, state.digest(16)}));

        QByteArray chunk;
        Wire::appendSyncChunkHead(chunk, 4, 0, false, state.digest(4));
        chunk += someEntries();
        write("fuzz_syncchunk", "first-with-digest", chunk);
        chunk.clear();
        Wire::appendSyncChunkHead(chunk, 4, 1, true, {});
        chunk += someEntries();
        write("fuzz_syncchunk", "final", chunk);
        chunk.clear();
        Wire::appendSyncChunkHead(chunk, 9, 0, true, {});
        write("fuzz_syncchunk", "empty-final", chunk);
    }

    write("fuzz_syncack", "ack", Wire::encodeSyncAck({4, 1}));
    write("fuzz_syncack", "ack-max", Wire::encodeSyncAck({0xffffffffu, 0xffffffffu}));
    write("fuzz_syncack", "writeack", Wire::encodeWriteAck({true, {0x0102, 0x0203}}));

    // JSON values as peers write them, and text as users type it.
    const char *json[] = {"42", "-0.5e-3", "true", "null", "\"text \\u00e9 \\ud83d\\ude00\"", "[1,[2,[3]],{}]",
                          "{\"name\":\"Ada\",\"n\":1.5,\"tags\":[\"a\",\"b\"]}", "  {\"a\" : {\"b\" : null}}  ", "9007199254740993",
                          "\"\"", "[]"};
    int n = 0;
    for (const char *j : json)
        write("fuzz_jsontext", qPrintable(QStringLiteral("value-%1").arg(++n)), QByteArray(j));

    // Control messages, one of each type as the codec writes them.
    {
        Control::Hello hello;
        hello.peer = 0x8f3c2a61d0e94b17;
        hello.time = 1764196800000;
        const QJsonObject ada{{QStringLiteral("name"), QStringLiteral("Ada")}};
        const QByteArray messages[] = {
            Control::encodeHello(hello),
            Control::encodeWelcome({1, 0xa, 1764196800004}),
            Control::encodeOpen({QStringLiteral("/rooms/42"), ada}),
            Control::encodeOpened({QStringLiteral("/rooms/42"), 1, true, {{0xa, ada}, {0xb, {}}}}),
            Control::encodeClose({1}),
            Control::encodeReady({1}),
            Control::encodeAlone({1}),
            Control::encodePresence({1, 0xb, ada}),
            Control::encodeJoined({1, 0xb, ada}),
            Control::encodeLeft({1, 0xb}),
            Control::encodePing({7}),
            Control::encodePong({7}),
            Control::encodeError({Wire::ErrorCode::UnknownMap, {}, QStringLiteral("map id 9 is not open on this connection"), 9, {}}),
        };
        int m = 0;
        for (const QByteArray &text : messages)
            write("fuzz_control", qPrintable(QStringLiteral("message-%1").arg(++m)), text);
    }

    // Store images: header only, a journal, a snapshot, a torn tail, a flipped byte.
    {
        const Journal::Header h{Journal::FormatVersion, 0x1234, QStringLiteral("/distributed-map")};
        QByteArray image = Journal::encodeHeader(h);
        write("fuzz_journal", "header-only", image);
        Journal::appendClockRecord(image, Hlc + 9);
        QByteArray run;
        Wire::appendEntry(run, QStringLiteral("a"), set(1, Hlc + 1, 0x1234));
        Journal::appendRecord(image, Journal::RecordType::Entries, run);
        Journal::appendRecord(image, Journal::RecordType::Entries, someEntries());
        write("fuzz_journal", "journal", image);
        write("fuzz_journal", "torn-tail", image.left(image.size() - 5));
        QByteArray flipped = image;
        flipped[int(Journal::encodeHeader(h).size()) + 20] ^= 0x10;
        write("fuzz_journal", "flipped-byte", flipped);

        MapState state;
        QVector<Wire::DecodedEntry> entries;
        Wire::decodeEntries(someEntries().constData(), someEntries().size(), &entries);
        for (const auto &d : entries)
            state.apply(d.key, d.entry);
        QByteArray snapshot = Journal::encodeHeader(h);
        Journal::appendSnapshot(snapshot, state, Hlc + 10);
        write("fuzz_journal", "snapshot", snapshot);
    }

    // Relay conversations (format in fuzz_relay.cpp). Session mode opens
    // "/fuzz" first; kind 3 = binary with the map id patched in, 7 = also
    // addressed to the witness.
    {
        write("fuzz_relay", "raw-hello", QByteArray(1, '\x01')
                  + textMessage("{\"type\":\"hello\",\"version\":1}")
                  + textMessage("{\"type\":\"open\",\"map\":\"/other\",\"presence\":{\"name\":\"Ada\"}}"));
        write("fuzz_relay", "raw-bad-version", QByteArray(1, '\x01') + textMessage("{\"type\":\"hello\",\"version\":2}"));
        write("fuzz_relay", "raw-binary-first", QByteArray(1, '\x01') + message(1, header(Wire::Type::Delta, 1, 0)));
        write("fuzz_relay", "delta", QByteArray(1, '\0') + message(3, header(Wire::Type::Delta, 0, 0) + someEntries()));
        write("fuzz_relay", "sync", QByteArray(1, '\0')
                  + message(3, header(Wire::Type::SyncRequest, 0, 0) + Wire::encodeSyncRequest({1, 0, {}}))
                  + message(7, header(Wire::Type::SyncAck, 0, 0) + Wire::encodeSyncAck({1, 0}))
                  + message(7, header(Wire::Type::SyncData, 0, 0) + QByteArray(13, '\0'))
                  + textMessage("{\"type\":\"ready\",\"id\":1}"));
        write("fuzz_relay", "control", QByteArray(1, '\0')
                  + textMessage("{\"type\":\"presence\",\"id\":1,\"presence\":{\"name\":\"Bob\"}}")
                  + textMessage("{\"type\":\"open\",\"map\":\"/fuzz\"}")
                  + textMessage("{\"type\":\"open\",\"map\":\"/second\"}")
                  + textMessage("{\"type\":\"close\",\"id\":1}")
                  + textMessage("{\"type\":\"hello\",\"version\":1}")
                  + textMessage("{\"type\":\"nope\"}")
                  + textMessage("[1,2")
                  + message(1, QByteArray("\x99short")));
    }
    std::printf("seed corpora written to %s\n", qPrintable(root));
    return 0;
}
