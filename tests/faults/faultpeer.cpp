// A peer for the fault tests (tst_faults): one Connection and one map,
// driven by commands on stdin, answering with one line each on stdout.
//
//   write PREFIX N   sets PREFIX-0 .. PREFIX-(N-1) to their index; prints
//                    "wrote PREFIX", then "acked PREFIX" once a relay has
//                    forwarded them: a pong to a ping sent while the map was
//                    ready, after the writes, on a connection that did not
//                    drop in between (docs/PROTOCOL.md 4.1, ping)
//   set [KEY, VALUE] sets KEY to VALUE (the rest of the line is a JSON
//                    array, so keys and values may hold spaces); prints
//                    "set ok", or "error REASON" for bad JSON or a refused
//                    value
//   del [KEY]        deletes KEY; prints "del ok", "del none" (no such
//                    key) or "error REASON"
//   dump             prints "dump JSON": the live map as one JSON object
//   digest           prints "digest SIZE ENTRIES HASH": the live size, the
//                    entry count with tombstones and the one-bucket digest
//   count PREFIX N   prints "count PREFIX K": how many of PREFIX-0..N-1
//                    hold their index
//   verify           starts a digest round with a peer (anti-entropy)
//   quit             exits (flushing the store, if any)
//
// With STORE, the peer keeps the map in that file (LocalStore, batched
// durability): a keeper, whose write acknowledgements say durable (tst_chaos).
//
// Unprompted lines: "state connected|reconnecting|... MS" on every
// connection state change and "synced MS" each time a sync ends with the
// map ready (MS: wall clock, ms since the epoch, to compare with the test).
#include "connection.h"
#include "distributedmap_p.h"
#include "distributedmap.h"
#include "localstore.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>
#include <QMetaEnum>
#include <QSocketNotifier>
#include <QStringList>
#include <QTimer>

#include <cstdio>
#include <memory>
#include <unistd.h>

namespace {

void say(const QString &line)
{
    std::fputs(qPrintable(line), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

qint64 now() { return QDateTime::currentMSecsSinceEpoch(); }

} // namespace

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    if (args.size() != 5 && args.size() != 6) {
        std::fprintf(stderr, "usage: faultpeer URL MAP MIN_RECONNECT_MS MAX_RECONNECT_MS [STORE]\n");
        return 2;
    }
    Connection connection{QUrl(args.at(1))};
    connection.setReconnectDelays(args.at(3).toInt(), args.at(4).toInt());
    DistributedMap map(&connection, args.at(2));
    std::unique_ptr<LocalStore> store;
    if (args.size() == 6) {
        store = std::make_unique<LocalStore>(args.at(5), args.at(2));
        if (!store->open() || !store->attach(&map)) {
            std::fprintf(stderr, "faultpeer: %s\n", qPrintable(store->errorString()));
            return 4;
        }
    }

    // Writes waiting for their acknowledgement, and the ping that covers them.
    QStringList unacked;
    QStringList inFlight;
    quint32 pingSeq = 0;
    auto pingIfReady = [&] {
        if (pingSeq != 0 || unacked.isEmpty() || !map.isReady() || map.isSyncing()
            || connection.state() != Connection::Connected)
            return;
        map.flush();
        pingSeq = connection.ping();
        if (pingSeq)
            inFlight = unacked;
    };
    QObject::connect(&connection, &Connection::stateChanged, &app, [&](Connection::State state) {
        say(QStringLiteral("state %1 %2").arg(QString::fromLatin1(QMetaEnum::fromType<Connection::State>().valueToKey(state)).toLower()).arg(now()));
        if (state != Connection::Connected) {
            pingSeq = 0; // that pong will not come; ask again on the next connection
            inFlight.clear();
        }
    });
    QObject::connect(&connection, &Connection::pongReceived, &app, [&](quint32 seq) {
        if (seq != pingSeq)
            return;
        for (const QString &prefix : std::as_const(inFlight)) {
            unacked.removeOne(prefix);
            say(QStringLiteral("acked %1").arg(prefix));
        }
        inFlight.clear();
        pingSeq = 0;
        pingIfReady();
    });
    QObject::connect(&map, &DistributedMap::syncingChanged, &app, [&](bool syncing) {
        if (syncing)
            return;
        // A lost connection ends a sync too: look again once the connection
        // has settled its state, and report only a sync that completed.
        QTimer::singleShot(0, &app, [&] {
            if (connection.state() == Connection::Connected && map.isReady() && !map.isSyncing()) {
                say(QStringLiteral("synced %1").arg(now()));
                pingIfReady();
            }
        });
    });
    QObject::connect(&map, &DistributedMap::ready, &app, [&] {
        say(QStringLiteral("synced %1").arg(now()));
        pingIfReady();
    });

    QSocketNotifier input(STDIN_FILENO, QSocketNotifier::Read);
    QByteArray buffer;
    QObject::connect(&input, &QSocketNotifier::activated, &app, [&] {
        char chunk[4096];
        const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
        if (n <= 0) {
            QCoreApplication::quit(); // the test is gone
            return;
        }
        buffer.append(chunk, n);
        int newline;
        while ((newline = buffer.indexOf('\n')) >= 0) {
            const QByteArray line = buffer.left(newline);
            const QStringList words = QString::fromUtf8(line).split(QLatin1Char(' '), Qt::SkipEmptyParts);
            buffer.remove(0, newline + 1);
            const QString command = words.value(0);
            if (command == QLatin1String("set") || command == QLatin1String("del")) {
                const int arity = command == QLatin1String("set") ? 2 : 1;
                QJsonParseError error;
                const QJsonDocument document = QJsonDocument::fromJson(line.mid(command.size()), &error);
                const QJsonArray a = document.array();
                if (error.error != QJsonParseError::NoError || a.size() != arity || !a.at(0).isString()) {
                    say(QStringLiteral("error %1 wants a JSON array [KEY%2]").arg(command, arity == 2 ? QStringLiteral(", VALUE") : QString()));
                } else if (arity == 1) {
                    say(map.remove(a.at(0).toString()) ? QStringLiteral("del ok") : QStringLiteral("del none"));
                } else if (map.set(a.at(0).toString(), a.at(1))) {
                    say(QStringLiteral("set ok"));
                } else {
                    say(QStringLiteral("error %1").arg(map.errorString()));
                }
            } else if (command == QLatin1String("dump")) {
                say(QStringLiteral("dump ") + QString::fromUtf8(map.toJson()));
            } else if (command == QLatin1String("write") && words.size() == 3) {
                const int count = words.at(2).toInt();
                for (int i = 0; i < count; ++i)
                    map.set(QStringLiteral("%1-%2").arg(words.at(1)).arg(i), i);
                unacked.append(words.at(1));
                say(QStringLiteral("wrote %1").arg(words.at(1)));
                pingIfReady();
            } else if (command == QLatin1String("digest")) {
                say(QStringLiteral("digest %1 %2 %3").arg(map.size()).arg(DistributedMapPrivate::get(&map)->state().entryCount()).arg(DistributedMapPrivate::get(&map)->state().digest(1).value(0), 16, 16, QLatin1Char('0')));
            } else if (command == QLatin1String("count") && words.size() == 3) {
                const int count = words.at(2).toInt();
                int have = 0;
                for (int i = 0; i < count; ++i)
                    have += map.value(QStringLiteral("%1-%2").arg(words.at(1)).arg(i)) == QJsonValue(i) ? 1 : 0;
                say(QStringLiteral("count %1 %2").arg(words.at(1)).arg(have));
            } else if (command == QLatin1String("verify")) {
                map.verify();
                say(QStringLiteral("verifying"));
            } else if (command == QLatin1String("quit")) {
                QCoreApplication::quit();
            } else {
                say(QStringLiteral("error unknown command"));
            }
        }
    });
    connection.open();
    return app.exec();
}
