#include "commands.h"
#include "signalwatcher.h"

#include "connection.h"
#include "displayformat.h"
#include "distributedmap.h"
#include "localstore.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QDateTime>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QSslCertificate>
#include <QTimer>

#include <cstdio>
#include <memory>

namespace {

struct CommandSpec
{
    const char *name;
    const char *arguments; // positional synopsis
    int argumentCount;
    const char *description;
};

const CommandSpec Specs[] = {
    {"set", "KEY VALUE", 2,
     "Sets KEY to VALUE and exits once a peer that stores the map has it on disk (see --ack). VALUE is read as JSON "
     "(42, true, null, \"text\", [1,2], {\"a\":1}); use --string to store it as plain text."},
    {"get", "KEY", 1, "Prints KEY's value as JSON. Exits with 1 if the key does not exist. With --store and the relay "
                      "unreachable, answers from the store."},
    {"del", "KEY", 1, "Deletes KEY and exits once a peer that stores the map has it on disk (see --ack). "
                      "Exits with 1 if the key does not exist."},
    {"dump", "", 0, "Prints the whole map as one JSON object once it is synced. With --store and the relay "
                    "unreachable, prints the store's copy. With --at TIME and --store, prints the map as it was then, "
                    "from the store alone."},
    {"watch", "", 0, "Prints one JSON object per line for every event (ready, set, delete, joined, left) until interrupted."},
};

QString valueText(const QJsonValue &value)
{
    return QString::fromUtf8(DisplayFormat::jsonText(value));
}

} // namespace

int Commands::peer(const QString &command, const QStringList &arguments)
{
    const CommandSpec *spec = nullptr;
    for (const CommandSpec &s : Specs) {
        if (command == QLatin1String(s.name))
            spec = &s;
    }
    Q_ASSERT(spec);

    QCommandLineParser parser;
    parser.setApplicationDescription(QString::fromUtf8(spec->description));
    parser.addHelpOption();
    const QCommandLineOption urlOption(QStringLiteral("url"), QStringLiteral("Relay URL (default %1); repeat for relays of one federated network, tried in turn.").arg(defaultUrl()),
                                       QStringLiteral("URL"), defaultUrl());
    const QCommandLineOption mapOption(QStringLiteral("map"), QStringLiteral("Map URI (default %1).").arg(defaultMap()),
                                       QStringLiteral("URI"), defaultMap());
    const QCommandLineOption nameOption(QStringLiteral("name"), QStringLiteral("Display name other peers see (default: distmap-cli)."),
                                        QStringLiteral("NAME"), QStringLiteral("distmap-cli"));
    const QCommandLineOption timeoutOption(QStringLiteral("timeout"), QStringLiteral("Give up when not synced (or, for set and del, not "
                                                                                 "confirmed) within this many ms (default 10000)."),
                                           QStringLiteral("MS"), QStringLiteral("10000"));
    const QCommandLineOption storeOption(QStringLiteral("store"), QStringLiteral("Keep the map in FILE: load it before connecting and store every change. "
                                                                             "set and del then write at once, even with the relay down."),
                                         QStringLiteral("FILE"));
    const QCommandLineOption tokenOption(QStringLiteral("token"), QStringLiteral("Access token for the relay (default: $DISTMAP_TOKEN)."),
                                         QStringLiteral("TOKEN"));
    const QCommandLineOption caOption(QStringLiteral("ca"), QStringLiteral("Trust the CA certificates in FILE (PEM) for wss:// besides the system's."),
                                      QStringLiteral("FILE"));
    parser.addOptions({urlOption, mapOption, nameOption, timeoutOption, storeOption, tokenOption, caOption});
    const QCommandLineOption stringOption({QStringLiteral("s"), QStringLiteral("string")}, QStringLiteral("Store VALUE as a plain string instead of parsing it as JSON."));
    const QCommandLineOption prettyOption(QStringLiteral("pretty"), QStringLiteral("Indent the JSON output."));
    const QCommandLineOption ackOption(QStringLiteral("ack"), QStringLiteral("When to call the write done: durable (default): a peer that stores "
                                                                         "the map has it on disk; peer: another peer holds it; none: the relay "
                                                                         "has forwarded it. Exits with 7 when it is not confirmed so."),
                                       QStringLiteral("none|peer|durable"), QStringLiteral("durable"));
    const bool isWrite = command == QLatin1String("set") || command == QLatin1String("del");
    if (command == QLatin1String("set"))
        parser.addOption(stringOption);
    if (isWrite)
        parser.addOption(ackOption);
    if (command == QLatin1String("dump") || command == QLatin1String("get"))
        parser.addOption(prettyOption);
    const QCommandLineOption atOption(QStringLiteral("at"), QStringLiteral("Print the map as it was at TIME, from the --store file "
                                                                       "alone: ISO 8601 (2024-05-01T14:02:17Z), -30s, -10m, -2h, -1d, now or hlc:N."),
                                      QStringLiteral("TIME"));
    if (command == QLatin1String("dump"))
        parser.addOption(atOption);
    for (const QString &name : QString::fromLatin1(spec->arguments).split(QLatin1Char(' '), Qt::SkipEmptyParts))
        parser.addPositionalArgument(name, QString());

    const QString usage = QStringLiteral("distmap %1 [options] %2").arg(command, QString::fromLatin1(spec->arguments));
    if (const int exitCode = parseOrExit(parser, arguments, spec->name, usage); exitCode >= 0)
        return exitCode;
    if (command == QLatin1String("dump") && parser.isSet(atOption)) // the past is in the store, not on the network
        return Commands::history(command, arguments);
    const QStringList positional = parser.positionalArguments();
    if (positional.size() != spec->argumentCount) {
        std::fprintf(stderr, "distmap %s: expected %d argument(s), got %d\nUsage: %s\n", spec->name, spec->argumentCount,
                     int(positional.size()), qPrintable(usage));
        return ExitUsage;
    }
    QList<QUrl> urls;
    for (const QString &text : parser.values(urlOption)) {
        const QUrl url(text, QUrl::StrictMode);
        if (!url.isValid() || (url.scheme() != QLatin1String("ws") && url.scheme() != QLatin1String("wss")) || url.host().isEmpty()) {
            std::fprintf(stderr, "distmap %s: --url must look like ws://HOST:PORT, not '%s'\n", spec->name, qPrintable(text));
            return ExitUsage;
        }
        urls.append(url);
    }
    const QUrl url = urls.first();
    const QString mapUri = parser.value(mapOption);
    if (mapUri.isEmpty()) {
        std::fprintf(stderr, "distmap %s: --map must not be empty\n", spec->name);
        return ExitUsage;
    }
    bool ok = false;
    const int timeoutMs = parser.value(timeoutOption).toInt(&ok);
    if (!ok || timeoutMs <= 0) {
        std::fprintf(stderr, "distmap %s: --timeout must be a positive number of milliseconds\n", spec->name);
        return ExitUsage;
    }
    enum class Ack { None, Peer, Durable } ack = Ack::None;
    if (isWrite) {
        const QString a = parser.value(ackOption);
        if (a == QLatin1String("durable")) {
            ack = Ack::Durable;
        } else if (a == QLatin1String("peer")) {
            ack = Ack::Peer;
        } else if (a != QLatin1String("none")) {
            std::fprintf(stderr, "distmap %s: --ack must be none, peer or durable, not '%s'\n", spec->name, qPrintable(a));
            return ExitUsage;
        }
    }
    QJsonValue newValue;
    if (command == QLatin1String("set")) {
        const QString raw = positional.at(1);
        if (parser.isSet(stringOption)) {
            newValue = raw;
        } else {
            QString error;
            newValue = DisplayFormat::parseJson(raw.toUtf8(), &error);
            if (newValue.isUndefined()) {
                std::fprintf(stderr, "distmap set: VALUE is not valid JSON (%s).\n"
                                     "To store it as a plain string, pass --string, or quote it as JSON: '\"%s\"'\n",
                             qPrintable(error), qPrintable(raw));
                return ExitUsage;
            }
        }
    }
    const QString key = positional.value(0);
    const bool pretty = (command == QLatin1String("dump") || command == QLatin1String("get")) && parser.isSet(prettyOption);
    const QJsonDocument::JsonFormat format = pretty ? QJsonDocument::Indented : QJsonDocument::Compact;

    Connection connection(url);
    connection.setUrls(urls);
    connection.setReconnectDelays(100, 1000);
    const QByteArray token = parser.isSet(tokenOption) ? parser.value(tokenOption).toUtf8() : qgetenv("DISTMAP_TOKEN");
    if (!token.isEmpty())
        connection.setToken(token);
    if (parser.isSet(caOption)) {
        const QList<QSslCertificate> cas = QSslCertificate::fromPath(parser.value(caOption), QSsl::Pem);
        if (cas.isEmpty()) {
            std::fprintf(stderr, "distmap %s: no PEM certificate in %s\n", spec->name, qPrintable(parser.value(caOption)));
            return ExitUsage;
        }
        QSslConfiguration ssl = QSslConfiguration::defaultConfiguration();
        ssl.addCaCertificates(cas);
        connection.setSslConfiguration(ssl);
    }
    DistributedMap map(&connection, mapUri);
    map.setPresence({{QStringLiteral("name"), parser.value(nameOption)}});
    map.setWriteAcknowledgements(ack != Ack::None);
    // Nothing is stored unless asked: the store is optional and lives (and
    // flushes, in its destructor) inside the map's lifetime.
    std::unique_ptr<LocalStore> store;
    if (parser.isSet(storeOption)) {
        store = std::make_unique<LocalStore>(parser.value(storeOption), mapUri);
        if (!store->open()) {
            std::fprintf(stderr, "distmap %s: %s\n", spec->name, qPrintable(store->errorString()));
            return ExitStore;
        }
        store->attach(&map);
    }
    int exitCode = -1;
    // The first verdict stands: events queued behind it must not change it.
    auto finish = [&exitCode](int code) {
        if (exitCode >= 0)
            return;
        exitCode = code;
        QCoreApplication::exit(code);
    };

    QString lastError;
    QString refusal; // why the relay refused a write of ours, if it did
    bool writeSent = false; // a write went out and waits for its confirmation
    auto refuse = [&] {
        std::fprintf(stderr, "distmap %s: the relay refused the change: this token may only read %s\n", spec->name,
                     qPrintable(mapUri));
        finish(ExitRefused);
    };
    QObject::connect(&connection, &Connection::errorOccurred, &connection,
                     [&lastError](Connection::Error, const QString &message) { lastError = message; });
    QObject::connect(&map, &DistributedMap::errorOccurred, &map, [&](DistributedMap::Error error, const QString &message) {
        lastError = message;
        if (error == DistributedMap::RelayError && map.relayErrorCode() == Wire::ErrorCode::ReadOnly)
            refusal = message;
        std::fprintf(stderr, "distmap: %s\n", qPrintable(message));
        if (!refusal.isEmpty() && writeSent)
            refuse(); // no peer will confirm what the relay did not forward
    });
    // The connection gives up by itself only when retrying cannot help
    // (a refused token, an unsupported version): exit at once, saying why.
    QObject::connect(&connection, &Connection::stateChanged, &connection, [&](Connection::State state) {
        if (state != Connection::Closed)
            return;
        std::fprintf(stderr, "distmap %s: %s\n", spec->name, qPrintable(lastError));
        finish(ExitNetwork);
    });
    bool awaitingRelay = false; // --ack none: a write went out, the relay's confirmation is due
    QTimer timeout;
    timeout.setSingleShot(true);
    bool writtenOffline = false;
    int readerExit = -1; // set once a reader has printed what it read
    int confirmedBy = 0;    // peers that confirmed it so far (not durably)
    QObject::connect(&timeout, &QTimer::timeout, &map, [&] {
        if (readerExit >= 0) {
            finish(readerExit); // the answer is out; only the goodbye was slow
            return;
        }
        const DistributedMap::SyncStatus status = map.syncStatus();
        const QString pending = QStringLiteral("%1 write(s) pending for %2 ms")
                                    .arg(status.pendingWrites).arg(status.oldestPendingAgeMs(QDateTime::currentMSecsSinceEpoch()));
        if (writeSent) {
            std::fprintf(stderr, "distmap %s: the change went out, but %s within %d ms (%s; %s)\n", spec->name,
                         ack == Ack::Durable ? "no peer that stores the map confirmed it" : "no peer confirmed it", timeoutMs,
                         confirmedBy ? qPrintable(QStringLiteral("%1 peer(s) hold it in memory only").arg(confirmedBy))
                                     : "no confirmation at all",
                         status.pendingWrites == 0 ? "the relay has it"
                                                   : qPrintable(QStringLiteral("the relay has not confirmed it either: ") + pending));
            finish(ExitUnconfirmed);
            return;
        }
        if (awaitingRelay) {
            std::fprintf(stderr, "distmap %s: the change went out, but %s within %d ms\n", spec->name,
                         status.pendingWrites == 0 ? "it did not reach the disk"
                                                   : qPrintable(QStringLiteral("the relay did not confirm it (") + pending + QLatin1Char(')')),
                         timeoutMs);
            finish(ExitUnconfirmed);
            return;
        }
        if (writtenOffline)
            std::fprintf(stderr, "distmap %s: the change is saved in %s and goes out with the next sync\n", spec->name,
                         qPrintable(store->path()));
        std::fprintf(stderr, "distmap %s: no sync with %s within %d ms: %s\n", spec->name, qPrintable(url.toString()), timeoutMs,
                     qPrintable(lastError.isEmpty() ? QStringLiteral("no answer") : lastError));
        finish(ExitNetwork);
    });
    timeout.start(timeoutMs);

    quint32 pingSeq = 0;
    // A reader exits after a ping round trip, not at once: the pong comes
    // after the relay took the final sync acknowledgement and `ready`, so
    // the responder's session ends instead of waiting for a peer gone.
    auto finishAfterRelay = [&](int code) {
        readerExit = code;
        pingSeq = connection.ping();
        timeout.start(timeoutMs);
    };
    QObject::connect(&connection, &Connection::pongReceived, &map, [&](quint32 seq) {
        if (seq != pingSeq)
            return;
        if (readerExit >= 0)
            finish(readerExit);
    });

    // --ack none: done once the map's sync status says the relay has the
    // change (and, with --store, that it is on this machine's disk).
    auto relayHasIt = [&map] {
        const DistributedMap::SyncStatus status = map.syncStatus();
        return status.state == DistributedMap::SyncStatus::Synced && status.pendingWrites == 0
            && (!status.hasStore || status.onDisk);
    };
    QObject::connect(&map, &DistributedMap::syncStatusChanged, &map, [&] {
        if (!awaitingRelay || !relayHasIt())
            return;
        // The relay answers in order: a refusal of the write came before
        // the answer that confirmed it.
        if (!refusal.isEmpty()) {
            refuse();
            return;
        }
        if (map.lastSyncSource() == 0 && map.peers().isEmpty() && !store)
            std::fprintf(stderr, "distmap: warning: no other peer holds %s; the value lives only in peers and "
                                 "vanished with this process\n", qPrintable(mapUri));
        finish(ExitOk);
    });

    // With --ack peer|durable a write is done when confirmed so; every other
    // peer confirming in memory only means none of them stores the map.
    QObject::connect(&map, &DistributedMap::writeAcknowledged, &map, [&](const QString &k, int peers, bool durable) {
        if (!writeSent || k != key)
            return;
        confirmedBy = peers;
        if (durable || ack == Ack::Peer) {
            finish(ExitOk);
            return;
        }
        if (peers >= map.peers().size()) {
            std::fprintf(stderr, "distmap %s: not stored: the %d other peer(s) of %s hold the change in memory only, and "
                                 "none keeps the map on disk (start `distmap keep`, or pass --ack peer)\n",
                         spec->name, peers, qPrintable(mapUri));
            finish(ExitUnconfirmed);
        }
    });
    QObject::connect(&map, &DistributedMap::writeSuperseded, &map, [&](const QString &k) {
        if (!writeSent || k != key)
            return;
        std::fprintf(stderr, "distmap %s: a newer write of '%s' by another peer replaced this one\n", spec->name, qPrintable(key));
        finish(ExitOk);
    });

    SignalWatcher watcher;
    QObject::connect(&watcher, &SignalWatcher::terminationRequested, &map, [&](int) { finish(ExitOk); });

    if (command == QLatin1String("watch")) {
        auto peerObject = [](const DistributedMap::Peer &peer) {
            return QJsonObject{{QStringLiteral("peer"), DisplayFormat::peerId(peer.id)}, {QStringLiteral("presence"), peer.presence}};
        };
        QObject::connect(&map, &DistributedMap::valueSet, &map, [](const QJsonValue &value, const QString &k) {
            printJsonLine({{QStringLiteral("event"), QStringLiteral("set")}, {QStringLiteral("key"), k}, {QStringLiteral("value"), value}});
        });
        QObject::connect(&map, &DistributedMap::valueDeleted, &map, [](const QJsonValue &old, const QString &k) {
            printJsonLine({{QStringLiteral("event"), QStringLiteral("delete")}, {QStringLiteral("key"), k}, {QStringLiteral("oldValue"), old}});
        });
        QObject::connect(&map, &DistributedMap::peerJoined, &map, [peerObject](const DistributedMap::Peer &peer) {
            QJsonObject o = peerObject(peer);
            o.insert(QStringLiteral("event"), QStringLiteral("joined"));
            printJsonLine(o);
        });
        QObject::connect(&map, &DistributedMap::peerLeft, &map, [](quint64 id) {
            printJsonLine({{QStringLiteral("event"), QStringLiteral("left")}, {QStringLiteral("peer"), DisplayFormat::peerId(id)}});
        });
    }

    // Prints what a reader asked for; returns the exit code.
    auto answer = [&]() -> int {
        if (command == QLatin1String("dump")) {
            // Compact: the stored JSON texts as they are, streamed (no
            // parse, no whole copy); --pretty goes through QJsonDocument.
            if (pretty) {
                const QByteArray json = QJsonDocument(map.toJsonObject()).toJson(format).trimmed();
                std::fwrite(json.constData(), 1, size_t(json.size()), stdout);
                std::fputc('\n', stdout);
                std::fflush(stdout);
                return ExitOk;
            }
            std::fflush(stdout);
            QFile out;
            if (!out.open(stdout, QIODevice::WriteOnly) || !map.writeJson(&out) || out.write("\n", 1) != 1 || !out.flush()) {
                std::fprintf(stderr, "distmap dump: cannot write to standard output: %s\n", qPrintable(out.errorString()));
                return ExitOutput;
            }
            return ExitOk;
        }
        const QJsonValue v = map.value(key);
        if (v.isUndefined()) {
            std::fprintf(stderr, "distmap get: key '%s' not found in %s\n", qPrintable(key), qPrintable(mapUri));
            return ExitNotFound;
        }
        if (v.isObject() || v.isArray()) {
            const QJsonDocument doc = v.isObject() ? QJsonDocument(v.toObject()) : QJsonDocument(v.toArray());
            std::fputs(doc.toJson(format).trimmed().constData(), stdout);
        } else {
            std::fputs(qPrintable(valueText(v)), stdout);
        }
        std::fputc('\n', stdout);
        std::fflush(stdout);
        return ExitOk;
    };
    const bool isRead = command == QLatin1String("get") || command == QLatin1String("dump");
    if (isRead && store) {
        // The relay cannot be reached: the store's copy is the best answer
        // there is, so give it, and say where it came from.
        QObject::connect(&connection, &Connection::errorOccurred, &map, [&, failures = 0](Connection::Error error, const QString &message) mutable {
            if (error != Connection::SocketError || map.isReady() || readerExit >= 0)
                return;
            if (++failures < urls.size()) // another relay may answer
                return;
            std::fprintf(stderr, "distmap %s: the relay is unreachable (%s); answering from %s, which may be behind the network\n",
                         spec->name, qPrintable(message), qPrintable(store->path()));
            readerExit = answer();
            finish(readerExit);
        });
    }

    map.onReady([&] {
        timeout.stop();
        if (isRead) {
            finishAfterRelay(answer());
        } else if (command == QLatin1String("watch")) {
            printJsonLine({{QStringLiteral("event"), QStringLiteral("ready")},
                       {QStringLiteral("map"), mapUri},
                       {QStringLiteral("peer"), DisplayFormat::peerId(connection.peerId())},
                       {QStringLiteral("size"), map.size()}});
        } else if (isWrite) {
            if (map.isReadOnly()) {
                refuse(); // a write made offline stays here too: the relay would not take it
                return;
            }
            if (writtenOffline) {
                // Made before the sync, which has sent it.
            } else if (command == QLatin1String("set")) {
                if (!map.set(key, newValue)) {
                    // errorOccurred has said why (TooLarge: the only refusal of a defined value).
                    finish(ExitTooLarge);
                    return;
                }
            } else if (!map.remove(key)) {
                std::fprintf(stderr, "distmap del: key '%s' not found in %s\n", qPrintable(key), qPrintable(mapUri));
                finish(ExitNotFound);
                return;
            }
            map.flush();
            timeout.start(timeoutMs);
            if (ack == Ack::None) {
                awaitingRelay = true; // syncStatusChanged says when the relay has it
                return;
            }
            writeSent = true;
            if (map.peers().isEmpty()) {
                std::fprintf(stderr, "distmap %s: not stored: no other peer holds %s, so nothing can confirm the change%s\n",
                             spec->name, qPrintable(mapUri),
                             store ? "; it is kept in the local store only" : ", and it vanishes with this process");
                finish(ExitUnconfirmed);
            }
        }
    });
    if (store && isWrite) {
        // With a store the write is made (and kept) at once, relay or not;
        // the two-way sync sends it. A del of a key only the network knows
        // waits for the sync like without a store.
        writtenOffline = command == QLatin1String("set") ? map.set(key, newValue) : map.remove(key);
        if (!writtenOffline && map.error() == DistributedMap::TooLarge)
            return ExitTooLarge;
    }
    connection.open();
    QCoreApplication::exec();
    return qMax(exitCode, ExitOk);
}
