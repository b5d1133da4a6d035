#include "commandconfig.h"
#include "commands.h"
#include "logoutput.h"
#include "signalwatcher.h"

#include "connection.h"
#include "displayformat.h"
#include "distributedmap.h"
#include "instant.h"
#include "localstore.h"
#include "metricswriter.h"
#include "opsserver.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QLoggingCategory>
#include <QRegularExpression>
#include <QTimer>

#include <cstdio>
#include <memory>

Q_LOGGING_CATEGORY(lcKeep, "distmap.keep", QtInfoMsg)

namespace {

void logLine(const QString &line)
{
    qCInfo(lcKeep).noquote() << line;
}

// One kept map. Each has its own connection so that it can claim the peer
// id its store remembers (one connection carries one id). Members are
// destroyed bottom-up: the store flushes before its map goes away.
struct Kept
{
    std::unique_ptr<Connection> connection;
    std::unique_ptr<DistributedMap> map;
    std::unique_ptr<LocalStore> store;
    quint64 storedSinceLog = 0;
    QDateTime lastSync; // when the last sync round ended
};

// GET /metrics of a keeper: per kept map, labelled by its URI (the maps
// are the operator's own list, so the label is bounded).
QByteArray keepMetrics(const std::vector<std::unique_ptr<Kept>> &kept)
{
    MetricsWriter w;
    w.gauge("distmap_keep_maps", "Maps this keeper holds.", double(kept.size()));
    const auto perMap = [&](const char *name, const char *type, const char *help, auto value) {
        w.family(name, type, help);
        for (const auto &k : kept)
            w.sample(name, {{"map", k->map->uri().toUtf8()}}, double(value(*k)));
    };
    perMap("distmap_keep_connected", "gauge", "1 while the map's connection to a relay is up.",
           [](const Kept &k) { return k.connection->state() == Connection::Connected ? 1 : 0; });
    perMap("distmap_keep_keys", "gauge", "Keys in the map (tombstones not counted).", [](const Kept &k) { return k.map->size(); });
    perMap("distmap_keep_store_bytes", "gauge", "Size of the map's store file.", [](const Kept &k) { return k.store->fileBytes(); });
    perMap("distmap_keep_last_sync_timestamp_seconds", "gauge", "Unix time the last sync with the other peers ended (0: none yet).",
           [](const Kept &k) { return k.lastSync.isValid() ? double(k.lastSync.toMSecsSinceEpoch()) / 1000.0 : 0.0; });
    perMap("distmap_keep_writes_stored_total", "counter", "Writes made durable in the store since the keeper started.",
           [](const Kept &k) { return k.store->durableSeq(); });
    w.family("distmap_keep_fsync_seconds", "summary", "Time of each fdatasync of a map's journal.");
    for (const auto &k : kept) {
        const MetricsWriter::Labels labels{{"map", k->map->uri().toUtf8()}};
        w.sample("distmap_keep_fsync_seconds_sum", labels, k->store->syncTimes().totalSeconds);
        w.sample("distmap_keep_fsync_seconds_count", labels, double(k->store->syncTimes().count));
    }
    perMap("distmap_keep_fsync_last_seconds", "gauge", "Time the last fdatasync of a map's journal took.",
           [](const Kept &k) { return k.store->syncTimes().lastSeconds; });
    if (const double rss = MetricsWriter::residentBytes(); rss > 0)
        w.gauge("distmap_keep_resident_memory_bytes", "Resident memory of the keeper process.", rss);
    return w.text();
}

} // namespace

int Commands::keep(const QStringList &arguments)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Keeps maps alive without a GUI: a peer that holds each map in a file under DIR, loads it at start, "
        "syncs it with the other peers through the relay and stores every change. Stops cleanly on SIGTERM or "
        "SIGINT, flushing the stores."));
    parser.addHelpOption();
    const QCommandLineOption urlOption(QStringLiteral("url"), QStringLiteral("Relay URL (default %1); repeat for relays of one federated network, tried in turn.").arg(defaultUrl()),
                                       QStringLiteral("URL"), defaultUrl());
    const QCommandLineOption mapOption(QStringLiteral("map"), QStringLiteral("Map URI to keep; repeat for more maps (required)."),
                                       QStringLiteral("URI"));
    const QCommandLineOption storeOption(QStringLiteral("store"), QStringLiteral("Directory for the store files, created if missing (required)."),
                                         QStringLiteral("DIR"));
    const QCommandLineOption durabilityOption(QStringLiteral("durability"),
                                              QStringLiteral("'batched' (fdatasync every --batch-ms) or 'every' (every local write; "
                                                             "network writes once per event-loop pass). Default batched."),
                                              QStringLiteral("MODE"), QStringLiteral("batched"));
    const QCommandLineOption batchOption(QStringLiteral("batch-ms"), QStringLiteral("Longest delay before a write is fdatasynced in batched mode (default 100)."),
                                         QStringLiteral("MS"), QStringLiteral("100"));
    const QCommandLineOption gcOption(QStringLiteral("tombstone-days"),
                                      QStringLiteral("Drop tombstones older than this many days; 0 keeps them forever (default 7). "
                                                     "A peer offline for longer may bring deleted keys back."),
                                      QStringLiteral("DAYS"), QStringLiteral("7"));
    const QCommandLineOption historyOption(QStringLiteral("history"),
                                           QStringLiteral("Keep superseded writes this long for `distmap history`, `dump --at` and `diff` "
                                                          "(30m, 12h, 7d, 2w; 0 keeps none; default 7d)."),
                                           QStringLiteral("DURATION"), QStringLiteral("7d"));
    const QCommandLineOption historyCapOption(QStringLiteral("history-max-mb"),
                                              QStringLiteral("Keep at most this many MiB of history per map, the oldest going first; memory holds "
                                                             "about 2.5 times as much (default 64; 0: no cap)."),
                                              QStringLiteral("MB"), QStringLiteral("64"));
    const QCommandLineOption nameOption(QStringLiteral("name"), QStringLiteral("Display name other peers see (default: distmap-keep)."),
                                        QStringLiteral("NAME"), QStringLiteral("distmap-keep"));
    const QCommandLineOption configOption(QStringLiteral("config"),
        QStringLiteral("Read options from FILE, an INI file with a [keep] section whose keys are these long options "
                       "(repeat a key for --url and --map); the command line wins."),
        QStringLiteral("FILE"));
    const QCommandLineOption logFormatOption(QStringLiteral("log-format"), QStringLiteral("Log lines as 'text' or 'json' (one object per line)."),
                                             QStringLiteral("FORMAT"), QStringLiteral("text"));
    const QCommandLineOption logLevelOption(QStringLiteral("log-level"),
        QStringLiteral("debug, info or warning, for every distmap.* category (default warning, plus the keeper's own info lines)."),
        QStringLiteral("LEVEL"), QStringLiteral("warning"));
    const QCommandLineOption metricsOption(QStringLiteral("metrics-listen"),
        QStringLiteral("Serve /metrics and /healthz on HOST:PORT (keys, store bytes, last sync, fsync times per map)."),
        QStringLiteral("HOST:PORT"));
    const QList<QCommandLineOption> allOptions{urlOption, mapOption, storeOption, durabilityOption, batchOption, gcOption, historyOption,
                                               historyCapOption, nameOption,
                                               configOption, logFormatOption, logLevelOption, metricsOption};
    parser.addOptions(allOptions);

    const char *usage = "Usage: distmap keep --map URI [--map URI...] --store DIR [options]";
    CommandConfig config;
    QString configError;
    if (!config.expand(arguments, allOptions, QStringLiteral("keep"), &configError)) {
        std::fprintf(stderr, "distmap keep: %s\n", qPrintable(configError));
        return ExitUsage;
    }
    if (!parser.parse(config.arguments())) {
        std::fprintf(stderr, "distmap keep: %s\n%s\n", qPrintable(parser.errorText()), usage);
        return ExitUsage;
    }
    if (parser.isSet(QStringLiteral("help"))) {
        QString help = parser.helpText();
        help.replace(QRegularExpression(QStringLiteral("^Usage: [^\\n]*")), QString::fromLatin1(usage));
        std::fputs(qPrintable(help), stdout);
        return ExitOk;
    }
    // The option a message is about, to name the config line it came from.
    auto usageError = [usage, &config](const QString &message, const QString &option = QString()) {
        std::fprintf(stderr, "distmap keep: %s%s\n%s\n", qPrintable(message), qPrintable(config.origin(option)), usage);
        return ExitUsage;
    };
    if (!parser.positionalArguments().isEmpty())
        return usageError(QStringLiteral("unexpected argument '%1'").arg(parser.positionalArguments().first()));
    QList<QUrl> urls;
    for (const QString &text : parser.values(urlOption)) {
        const QUrl url(text, QUrl::StrictMode);
        if (!url.isValid() || (url.scheme() != QLatin1String("ws") && url.scheme() != QLatin1String("wss")) || url.host().isEmpty())
            return usageError(QStringLiteral("--url must look like ws://HOST:PORT, not '%1'").arg(text), QStringLiteral("url"));
        urls.append(url);
    }
    const QUrl url = urls.first();
    QStringList maps = parser.values(mapOption);
    if (maps.isEmpty())
        return usageError(QStringLiteral("give at least one --map URI"));
    if (maps.contains(QString()))
        return usageError(QStringLiteral("--map must not be empty"), QStringLiteral("map"));
    maps.removeDuplicates();
    const QString dir = parser.value(storeOption);
    if (dir.isEmpty())
        return usageError(QStringLiteral("--store DIR is required: the keeper exists to store maps"));
    LocalStore::Options options;
    const QString durability = parser.value(durabilityOption);
    if (durability == QLatin1String("every"))
        options.durability = LocalStore::Durability::EveryWrite;
    else if (durability == QLatin1String("batched"))
        options.durability = LocalStore::Durability::Batched;
    else
        return usageError(QStringLiteral("--durability must be 'batched' or 'every', not '%1'").arg(durability), QStringLiteral("durability"));
    bool ok = false;
    options.batchIntervalMs = parser.value(batchOption).toInt(&ok);
    if (!ok || options.batchIntervalMs < 0 || options.batchIntervalMs > 60000)
        return usageError(QStringLiteral("--batch-ms must be a number from 0 to 60000"), QStringLiteral("batch-ms"));
    const double days = parser.value(gcOption).toDouble(&ok);
    if (!ok || days < 0)
        return usageError(QStringLiteral("--tombstone-days must be a number of days, 0 or more"), QStringLiteral("tombstone-days"));
    options.tombstoneMaxAgeMs = qint64(days * 24 * 3600 * 1000);
    QString durationError;
    const std::optional<qint64> history = Instant::parseDuration(parser.value(historyOption), &durationError);
    if (!history)
        return usageError(QStringLiteral("--history: %1").arg(durationError), QStringLiteral("history"));
    options.historyRetentionMs = *history;
    const qint64 historyMb = parser.value(historyCapOption).toLongLong(&ok);
    if (!ok || historyMb < 0 || historyMb > 1024 * 1024)
        return usageError(QStringLiteral("--history-max-mb must be a number of MiB from 0 to 1048576"), QStringLiteral("history-max-mb"));
    options.historyMaxBytes = historyMb * 1024 * 1024;
    LogOutput::Format logFormat;
    if (!LogOutput::parseFormat(parser.value(logFormatOption), &logFormat))
        return usageError(QStringLiteral("--log-format must be 'text' or 'json', not '%1'").arg(parser.value(logFormatOption)),
                          QStringLiteral("log-format"));
    QString error;
    if (!LogOutput::install(logFormat, parser.value(logLevelOption), QString(), &error))
        return usageError(error, QStringLiteral("log-level"));
    QHostAddress metricsHost;
    int metricsPort = -1;
    if (parser.isSet(metricsOption) && !Commands::parseHostPort(parser.value(metricsOption), &metricsHost, &metricsPort))
        return usageError(QStringLiteral("--metrics-listen must be HOST:PORT with an IP address, not '%1'").arg(parser.value(metricsOption)),
                          QStringLiteral("metrics-listen"));

    // Open every store before connecting anything: a bad file stops the
    // keeper at once instead of leaving it half serving.
    std::vector<std::unique_ptr<Kept>> kept;
    for (const QString &uri : std::as_const(maps)) {
        auto k = std::make_unique<Kept>();
        k->connection = std::make_unique<Connection>(url);
        k->connection->setUrls(urls);
        k->map = std::make_unique<DistributedMap>(k->connection.get(), uri);
        k->map->setPresence({{QStringLiteral("name"), parser.value(nameOption)}});
        k->store = std::make_unique<LocalStore>(QDir(dir).filePath(LocalStore::fileNameFor(uri)), uri, options);
        if (!k->store->open()) {
            std::fprintf(stderr, "distmap keep: %s\n", qPrintable(k->store->errorString()));
            return ExitStore;
        }
        const LocalStore::LoadReport &report = k->store->loadReport();
        if (report.created) {
            logLine(QStringLiteral("%1: new store %2").arg(uri, k->store->path()));
        } else {
            logLine(QStringLiteral("%1: loaded %2 entries (%3 tombstones) from %4 in %5 ms")
                        .arg(uri)
                        .arg(report.entries)
                        .arg(report.tombstones)
                        .arg(k->store->path())
                        .arg(report.elapsedMs));
        }
        if (report.tornTail)
            logLine(QStringLiteral("%1: cut off a torn last write (%2 bytes) left by a crash").arg(uri).arg(report.damagedBytes));
        else if (report.damagedBytes > 0)
            logLine(QStringLiteral("%1: skipped %2 damaged bytes; the damaged file was copied to %3")
                        .arg(uri)
                        .arg(report.damagedBytes)
                        .arg(report.damagedCopy));
        k->store->attach(k->map.get());
        kept.push_back(std::move(k));
    }

    for (const auto &k : kept) {
        Kept *p = k.get();
        const QString uri = p->map->uri();
        QObject::connect(p->connection.get(), &Connection::stateChanged, p->map.get(), [p, uri, url](Connection::State state) {
            if (state == Connection::Connected)
                logLine(QStringLiteral("%1: connected to %2 as peer %3").arg(uri, url.toString(), DisplayFormat::peerId(p->connection->peerId())));
            else if (state == Connection::Reconnecting)
                logLine(QStringLiteral("%1: relay %2 unreachable, retrying").arg(uri, url.toString()));
        });
        QObject::connect(p->map.get(), &DistributedMap::syncingChanged, p->map.get(), [p, uri](bool syncing) {
            if (syncing)
                return;
            p->lastSync = QDateTime::currentDateTimeUtc();
            const quint64 source = p->map->lastSyncSource();
            if (source)
                logLine(QStringLiteral("%1: synced with peer %2: %3 keys").arg(uri, DisplayFormat::peerId(source)).arg(p->map->size()));
            else
                logLine(QStringLiteral("%1: no other peer holds it; serving %2 keys from the store").arg(uri).arg(p->map->size()));
        });
        QObject::connect(p->map.get(), &DistributedMap::errorOccurred, p->map.get(), [uri](DistributedMap::Error, const QString &message) {
            qCWarning(lcKeep).noquote() << uri + QStringLiteral(": ") + message;
        });
        QObject::connect(p->store.get(), &LocalStore::errorOccurred, p->map.get(), [](LocalStore::Error, const QString &message) {
            qCWarning(lcKeep).noquote() << message;
        });
        QObject::connect(p->store.get(), &LocalStore::garbageCollected, p->map.get(), [uri](int n) {
            logLine(QStringLiteral("%1: dropped %2 old tombstones").arg(uri).arg(n));
        });
    }

    // A line per second at most about what was stored: enough to see the
    // keeper working without a line per write.
    QTimer summary;
    summary.setInterval(1000);
    QObject::connect(&summary, &QTimer::timeout, &summary, [&kept] {
        for (const auto &k : kept) {
            const quint64 seq = k->store->durableSeq();
            if (seq > k->storedSinceLog) {
                logLine(QStringLiteral("%1: stored %2 writes").arg(k->map->uri()).arg(seq - k->storedSinceLog));
                k->storedSinceLog = seq;
            }
        }
    });
    summary.start();

    // Caught before the metrics port is announced (see relaycommand.cpp).
    SignalWatcher watcher;
    OpsServer ops;
    if (metricsPort >= 0) {
        ops.front()->setHandler(QStringLiteral("/metrics"), [&kept] {
            return HttpFront::Reply{200, MetricsWriter::ContentType, keepMetrics(kept)};
        });
        ops.front()->setHandler(QStringLiteral("/healthz"), [] { return HttpFront::Reply{200, "text/plain; charset=utf-8", "ok\n"}; });
        if (!ops.listen(metricsHost, quint16(metricsPort), &error)) {
            std::fprintf(stderr, "distmap keep: cannot listen for metrics on %s: %s\n", qPrintable(parser.value(metricsOption)),
                         qPrintable(error));
            return ExitNetwork;
        }
        std::printf("metrics on http://%s:%u/metrics\n", qPrintable(metricsHost.toString()), ops.port());
        std::fflush(stdout);
    }

    int exitCode = ExitOk;
    QObject::connect(&watcher, &SignalWatcher::terminationRequested, &watcher, [&kept, &exitCode](int signal) {
        for (const auto &k : kept) {
            if (!k->store->flush())
                exitCode = ExitStore;
            logLine(QStringLiteral("%1: flushed %2 (%3 writes this run)")
                        .arg(k->map->uri(), k->store->path())
                        .arg(k->store->durableSeq()));
        }
        logLine(QStringLiteral("stopped on signal %1").arg(signal));
        QCoreApplication::exit(exitCode);
    });

    for (const auto &k : kept)
        k->connection->open();
    const int code = QCoreApplication::exec();
    // Leave the maps before the event loop is gone; the stores flush again
    // (a no-op) as they are destroyed.
    kept.clear();
    return code;
}
