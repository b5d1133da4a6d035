#include "commandconfig.h"
#include "commands.h"
#include "logoutput.h"
#include "signalwatcher.h"

#include "redisbus.h"
#include "relay.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QFile>
#include <QLoggingCategory>
#include <QSslCertificate>
#include <QSslKey>
#include <QSslSocket>

#include <cstdio>
#include <optional>

Q_LOGGING_CATEGORY(lcRelayEvents, "distmap.relay.events", QtWarningMsg)
Q_LOGGING_CATEGORY(lcBusEvents, "distmap.bus", QtInfoMsg)

namespace {

// Every option of `distmap relay`; numeric helps end with their default,
// taken from Relay::Options.
struct RelayCli
{
    const Relay::Options defaults;
    static QCommandLineOption numeric(const char *name, const char *help, const char *valueName, qint64 value)
    {
        return QCommandLineOption(QString::fromLatin1(name), QString::fromLatin1(help).arg(value), QString::fromLatin1(valueName),
                                  QString::number(value));
    }
    const QCommandLineOption host{QStringLiteral("host"), QStringLiteral("Address to listen on (default 127.0.0.1)."),
                                  QStringLiteral("H"), QStringLiteral("127.0.0.1")};
    const QCommandLineOption port{QStringLiteral("port"), QStringLiteral("Port to listen on; 0 picks a free one (default 7357)."),
                                  QStringLiteral("P"), QStringLiteral("7357")};
    const QCommandLineOption config{QStringLiteral("config"),
                                    QStringLiteral("Read options from FILE, an INI file with a [relay] section whose keys are these "
                                                   "long options; the command line wins. SIGHUP reloads it."),
                                    QStringLiteral("FILE")};
    const QCommandLineOption log{QStringLiteral("log"), QStringLiteral("Log one line per connect, disconnect, map open/close and sync routing.")};
    const QCommandLineOption logFormat{QStringLiteral("log-format"), QStringLiteral("Log lines as 'text' or 'json' (one object per line)."),
                                       QStringLiteral("FORMAT"), QStringLiteral("text")};
    const QCommandLineOption logLevel{QStringLiteral("log-level"),
                                      QStringLiteral("debug, info or warning, for every distmap.* category (default warning; "
                                                     "QT_LOGGING_RULES overrides)."),
                                      QStringLiteral("LEVEL"), QStringLiteral("warning")};
    const QCommandLineOption maxMessage{QStringLiteral("max-message"), QStringLiteral("Largest message accepted, in bytes (default 16777216)."),
                                        QStringLiteral("BYTES"), QStringLiteral("16777216")};
    const QCommandLineOption maxConnections{QStringLiteral("max-connections"),
                                            QStringLiteral("Most connections at once, handshakes included (default 10000)."),
                                            QStringLiteral("N"), QStringLiteral("10000")};
    const QCommandLineOption perAddress{QStringLiteral("max-per-address"), QStringLiteral("Most connections from one address (default 2000)."),
                                        QStringLiteral("N"), QStringLiteral("2000")};
    const QCommandLineOption handshake = numeric("handshake-timeout",
        "Time a connection has for TLS, the upgrade, and then its hello, in ms (default %1).", "MS", defaults.handshakeTimeoutMs);
    const QCommandLineOption rate = numeric("max-rate",
        "Messages per second a connection may send on average; 0 for no limit (default %1).", "N", defaults.messagesPerSecond);
    const QCommandLineOption burst = numeric("burst", "Messages a connection may send at once above --max-rate (default %1).", "N",
                                             defaults.messageBurst);
    const QCommandLineOption rateCutoff = numeric("rate-cutoff",
        "A connection over --max-rate is slowed (not read for a while); cut it off once it has been over for this long, "
        "in ms; 0 never cuts (default %1).", "MS", defaults.rateCutoffMs);
    const QCommandLineOption backlog = numeric("max-backlog",
        "Unsent bytes a peer may have queued before it is cut off (default %1, or twice --max-message if larger).", "BYTES",
        defaults.maxBacklogBytes);
    const QCommandLineOption ping = numeric("ping-interval",
        "Ping every connection this often, in ms; 0 turns the heartbeat off (default %1).", "MS", defaults.pingIntervalMs);
    const QCommandLineOption pingTimeout = numeric("ping-timeout", "Drop a connection silent for this long, in ms (default %1).", "MS",
                                                   defaults.pingTimeoutMs);
    const QCommandLineOption tokens{QStringLiteral("tokens"),
                                    QStringLiteral("Require a token from every peer; FILE has lines 'TOKEN rw|ro PATTERN'. SIGHUP reloads it."),
                                    QStringLiteral("FILE")};
    const QCommandLineOption cert{QStringLiteral("tls-cert"), QStringLiteral("Serve wss://: certificate chain, PEM."), QStringLiteral("FILE")};
    const QCommandLineOption key{QStringLiteral("tls-key"), QStringLiteral("Serve wss://: private key, PEM (RSA or EC)."), QStringLiteral("FILE")};
    const QCommandLineOption origin{QStringLiteral("allow-origin"),
                                    QStringLiteral("Allow browsers from ORIGIN (repeatable, e.g. https://app.example). Without it every origin is allowed."),
                                    QStringLiteral("ORIGIN")};
    const QCommandLineOption redis{QStringLiteral("redis"),
                                   QStringLiteral("Federate with every relay on this Redis: redis://[user:password@]HOST[:PORT][/DB] (docs/SCALING.md)."),
                                   QStringLiteral("URL")};
    const QCommandLineOption relayId{QStringLiteral("relay-id"), QStringLiteral("This relay's id on the Redis bus, 16 hex digits (default: random)."),
                                     QStringLiteral("ID")};
    const QCommandLineOption noHttp{QStringLiteral("no-http"),
                                    QStringLiteral("Serve WebSocket upgrades only: no web inspector at / and no client at /distmap.js.")};
    const QCommandLineOption metrics{QStringLiteral("metrics-listen"),
                                     QStringLiteral("Serve /metrics, /healthz and /readyz on HOST:PORT instead of the relay's own port."),
                                     QStringLiteral("HOST:PORT")};

    QList<QCommandLineOption> all() const
    {
        return {host, port, config, log, logFormat, logLevel, maxMessage, maxConnections, perAddress, handshake, rate, burst, rateCutoff,
                backlog, ping, pingTimeout, tokens, cert, key, origin, noHttp, redis, relayId, metrics};
    }
};

// What the command line and the config file ask for, checked.
struct RelaySettings
{
    QHostAddress host;
    quint16 port = 0;
    Relay::Options options;
    QString tokensPath;
    QString certPath;
    QString keyPath;
    QString redisUrl;
    quint64 relayId = 0;
    bool log = false;
    LogOutput::Format logFormat = LogOutput::Format::Text;
    QString logLevel;
    QHostAddress metricsHost;
    int metricsPort = -1; // -1: on the relay's port
};

// Parses `arguments` (the config file's in front) into *s. False with a
// message naming the option, and the config line it came from.
bool readSettings(const RelayCli &cli, const CommandConfig &config, RelaySettings *s, QString *error, bool *help)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Runs a distmap relay: it forwards map traffic between peers and keeps no map data."));
    parser.addHelpOption();
    parser.addOptions(cli.all());
    if (!parser.parse(config.arguments())) {
        *error = parser.errorText() + QStringLiteral("\nTry 'distmap relay --help'.");
        return false;
    }
    if (parser.isSet(QStringLiteral("help"))) {
        *help = true;
        *error = parser.helpText().replace(QLatin1String("[options]"), QLatin1String("relay [options]"));
        return false;
    }
    if (!parser.positionalArguments().isEmpty()) {
        *error = QStringLiteral("unexpected argument '%1'").arg(parser.positionalArguments().first());
        return false;
    }
    const auto bad = [&](const QCommandLineOption &option, const QString &message) {
        *error = message + config.origin(option.names().constLast());
        return false;
    };
    bool ok = false;
    const uint port = parser.value(cli.port).toUInt(&ok);
    if (!ok || port > 65535)
        return bad(cli.port, QStringLiteral("--port must be a number from 0 to 65535, not '%1'").arg(parser.value(cli.port)));
    s->port = quint16(port);
    s->host = QHostAddress(parser.value(cli.host));
    if (s->host.isNull())
        return bad(cli.host, QStringLiteral("--host must be an IP address, not '%1'").arg(parser.value(cli.host)));
    Relay::Options &options = s->options;
    options.maxMessageBytes = parser.value(cli.maxMessage).toLongLong(&ok);
    if (!ok || options.maxMessageBytes < 1024)
        return bad(cli.maxMessage, QStringLiteral("--max-message must be a number of bytes, at least 1024"));
    struct IntOption
    {
        const QCommandLineOption *option;
        int *value;
        int minimum;
    };
    for (const IntOption &o : {IntOption{&cli.maxConnections, &options.maxConnections, 1},
                               IntOption{&cli.perAddress, &options.maxConnectionsPerAddress, 1},
                               IntOption{&cli.handshake, &options.handshakeTimeoutMs, 100},
                               IntOption{&cli.rate, &options.messagesPerSecond, 0},
                               IntOption{&cli.burst, &options.messageBurst, 1},
                               IntOption{&cli.rateCutoff, &options.rateCutoffMs, 0},
                               IntOption{&cli.ping, &options.pingIntervalMs, 0},
                               IntOption{&cli.pingTimeout, &options.pingTimeoutMs, 100}}) {
        *o.value = parser.value(*o.option).toInt(&ok);
        if (!ok || *o.value < o.minimum)
            return bad(*o.option, QStringLiteral("--%1 must be a number, at least %2").arg(o.option->names().constLast()).arg(o.minimum));
    }
    options.maxBacklogBytes = parser.value(cli.backlog).toLongLong(&ok);
    if (!parser.isSet(cli.backlog)) // one message must always fit, with room for the traffic around it
        options.maxBacklogBytes = qMax(options.maxBacklogBytes, 2 * options.maxMessageBytes);
    if (!ok || options.maxBacklogBytes < options.maxMessageBytes)
        return bad(cli.backlog, QStringLiteral("--max-backlog must be a number of bytes, at least --max-message"));
    options.allowedOrigins = parser.values(cli.origin);
    options.serveHttp = !parser.isSet(cli.noHttp);
    if (parser.isSet(cli.cert) != parser.isSet(cli.key))
        return bad(parser.isSet(cli.cert) ? cli.cert : cli.key, QStringLiteral("--tls-cert and --tls-key go together"));
    s->certPath = parser.value(cli.cert);
    s->keyPath = parser.value(cli.key);
    s->tokensPath = parser.value(cli.tokens);
    s->redisUrl = parser.value(cli.redis);
    if (parser.isSet(cli.relayId) && (!Wire::peerFromString(parser.value(cli.relayId), &s->relayId) || s->relayId == 0))
        return bad(cli.relayId, QStringLiteral("--relay-id must be 16 hex digits, not 0"));
    if (parser.isSet(cli.relayId) && s->redisUrl.isEmpty())
        return bad(cli.relayId, QStringLiteral("--relay-id needs --redis"));
    s->log = parser.isSet(cli.log);
    if (!LogOutput::parseFormat(parser.value(cli.logFormat), &s->logFormat))
        return bad(cli.logFormat, QStringLiteral("--log-format must be 'text' or 'json', not '%1'").arg(parser.value(cli.logFormat)));
    s->logLevel = parser.value(cli.logLevel);
    if (!QStringList{QStringLiteral("debug"), QStringLiteral("info"), QStringLiteral("warning")}.contains(s->logLevel))
        return bad(cli.logLevel, QStringLiteral("--log-level must be debug, info or warning, not '%1'").arg(s->logLevel));
    if (parser.isSet(cli.metrics) && !Commands::parseHostPort(parser.value(cli.metrics), &s->metricsHost, &s->metricsPort))
        return bad(cli.metrics, QStringLiteral("--metrics-listen must be HOST:PORT with an IP address, not '%1'").arg(parser.value(cli.metrics)));
    return true;
}

std::optional<QSslConfiguration> loadTls(const RelaySettings &s, QString *error)
{
    // Only built with --tls-cert: touching QSslConfiguration loads the TLS
    // backend and OpenSSL, several MB of resident memory a plain relay does
    // not need.
    if (!QSslSocket::supportsSsl()) {
        *error = QStringLiteral("this Qt has no working TLS backend (is OpenSSL 3 installed?)");
        return std::nullopt;
    }
    const QList<QSslCertificate> chain = QSslCertificate::fromPath(s.certPath, QSsl::Pem);
    QFile keyFile(s.keyPath);
    QSslKey key;
    if (keyFile.open(QIODevice::ReadOnly)) {
        const QByteArray pem = keyFile.readAll();
        key = QSslKey(pem, QSsl::Rsa, QSsl::Pem);
        if (key.isNull())
            key = QSslKey(pem, QSsl::Ec, QSsl::Pem);
    }
    if (chain.isEmpty() || key.isNull()) {
        *error = chain.isEmpty() ? QStringLiteral("cannot read the certificate (--tls-cert, PEM)")
                                 : QStringLiteral("cannot read the private key (--tls-key, unencrypted PEM, RSA or EC)");
        return std::nullopt;
    }
    QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
    tls.setLocalCertificateChain(chain);
    tls.setPrivateKey(key);
    tls.setProtocol(QSsl::TlsV1_2OrLater);
    return tls;
}

// SIGHUP: the config file and the tokens file again. Limits and tokens
// change at once; what needs a new socket or bus is named, and waits for
// a restart. A file that does not parse changes nothing.
void reload(Relay &relay, const RelayCli &cli, const QStringList &arguments, const RelaySettings &running)
{
    CommandConfig config;
    RelaySettings next;
    QString error;
    bool help = false;
    if (!config.expand(arguments, cli.all(), QStringLiteral("relay"), &error) || !readSettings(cli, config, &next, &error, &help)) {
        qCWarning(lcRelayEvents).noquote() << "not reloading:" << error;
        return;
    }
    const QStringList changed = relay.setLimits(next.options);
    QStringList restart;
    if (next.host != running.host || next.port != running.port)
        restart.append(QStringLiteral("host/port"));
    if (next.options.maxMessageBytes != running.options.maxMessageBytes)
        restart.append(QStringLiteral("max-message"));
    if (next.options.allowedOrigins != running.options.allowedOrigins)
        restart.append(QStringLiteral("allow-origin"));
    if (next.options.serveHttp != running.options.serveHttp)
        restart.append(QStringLiteral("no-http"));
    if (next.certPath != running.certPath || next.keyPath != running.keyPath)
        restart.append(QStringLiteral("tls-cert/tls-key"));
    if (next.redisUrl != running.redisUrl || next.relayId != running.relayId)
        restart.append(QStringLiteral("redis/relay-id"));
    if (next.metricsHost != running.metricsHost || next.metricsPort != running.metricsPort)
        restart.append(QStringLiteral("metrics-listen"));
    if (next.tokensPath != running.tokensPath)
        restart.append(QStringLiteral("tokens (the file's path; its contents reload)"));
    if (!config.path().isEmpty()) {
        qCWarning(lcRelayEvents).noquote() << "reloaded" << config.path() << "- changed:"
                                           << (changed.isEmpty() ? QStringLiteral("nothing") : changed.join(QStringLiteral(", ")));
    }
    if (!restart.isEmpty())
        qCWarning(lcRelayEvents).noquote() << "changed, but only a restart applies it:" << restart.join(QStringLiteral(", "));
    if (running.tokensPath.isEmpty())
        return;
    TokenTable reloaded;
    if (!reloaded.load(running.tokensPath, &error)) {
        // Better the old grants than an open relay or one that refuses everybody.
        qCWarning(lcRelayEvents).noquote() << "not reloading tokens:" << error;
        return;
    }
    relay.setTokens(reloaded);
    qCWarning(lcRelayEvents).noquote() << "tokens reloaded from" << running.tokensPath << ":" << reloaded.tokenCount() << "token(s)";
}

} // namespace

bool Commands::parseHostPort(const QString &text, QHostAddress *host, int *port)
{
    const qsizetype colon = text.lastIndexOf(QLatin1Char(':'));
    if (colon <= 0)
        return false;
    QString address = text.left(colon);
    if (address.startsWith(QLatin1Char('[')) && address.endsWith(QLatin1Char(']')))
        address = address.mid(1, address.size() - 2);
    bool ok = false;
    const uint p = text.mid(colon + 1).toUInt(&ok);
    *host = QHostAddress(address);
    *port = int(p);
    return ok && p <= 65535 && !host->isNull();
}

int Commands::relay(const QStringList &arguments)
{
    const RelayCli cli;
    CommandConfig config;
    RelaySettings settings;
    QString error;
    bool help = false;
    if (!config.expand(arguments, cli.all(), QStringLiteral("relay"), &error)) {
        std::fprintf(stderr, "distmap relay: %s\n", qPrintable(error));
        return ExitUsage;
    }
    if (!readSettings(cli, config, &settings, &error, &help)) {
        if (help) {
            std::fputs(qPrintable(error), stdout);
            return ExitOk;
        }
        std::fprintf(stderr, "distmap relay: %s\n", qPrintable(error));
        return ExitUsage;
    }
    // Relay events are info lines of their own category, shown by --log;
    // tokens reloads and refusals are warnings, always shown.
    if (!LogOutput::install(settings.logFormat, settings.logLevel,
                            settings.log ? QStringLiteral("distmap.relay.events.info=true\n") : QString(), &error)) {
        std::fprintf(stderr, "distmap relay: %s\n", qPrintable(error));
        return ExitUsage;
    }
    std::optional<QSslConfiguration> tls;
    if (!settings.certPath.isEmpty() && !(tls = loadTls(settings, &error))) {
        std::fprintf(stderr, "distmap relay: %s\n", qPrintable(error));
        return ExitUsage;
    }
    TokenTable tokens;
    if (!settings.tokensPath.isEmpty() && !tokens.load(settings.tokensPath, &error)) {
        std::fprintf(stderr, "distmap relay: %s%s\n", qPrintable(error), qPrintable(config.origin(QStringLiteral("tokens"))));
        return ExitUsage;
    }

    Relay relay(settings.options);
    if (tls)
        relay.setSslConfiguration(*tls);
    if (!settings.tokensPath.isEmpty())
        relay.setTokens(tokens);
    QObject::connect(&relay, &Relay::logMessage, &relay, [](const QString &line) { qCInfo(lcRelayEvents).noquote() << line; });
    if (!settings.redisUrl.isEmpty()) {
        if (!relay.joinBus(settings.redisUrl, settings.relayId, &error)) {
            std::fprintf(stderr, "distmap relay: --redis: %s%s\n", qPrintable(error), qPrintable(config.origin(QStringLiteral("redis"))));
            return ExitUsage;
        }
        // Shown by default (category info on): an operator must see the bus come and go.
        QObject::connect(relay.bus(), &RedisBus::logMessage, &relay, [](const QString &line) { qCInfo(lcBusEvents).noquote() << line; });
    }
    // Signals are caught before the port is announced: a SIGHUP or SIGTERM
    // sent as soon as "listening on" is read must not meet the default action.
    SignalWatcher watcher;
    if (settings.metricsPort >= 0 && !relay.listenMetrics(settings.metricsHost, quint16(settings.metricsPort), &error)) {
        std::fprintf(stderr, "distmap relay: cannot listen for metrics on %s:%d: %s\n", qPrintable(settings.metricsHost.toString()),
                     settings.metricsPort, qPrintable(error));
        return ExitNetwork;
    }
    if (!relay.listen(settings.host, settings.port)) {
        std::fprintf(stderr, "distmap relay: cannot listen on %s:%u: %s\n", qPrintable(settings.host.toString()), settings.port,
                     qPrintable(relay.errorString()));
        return ExitNetwork;
    }
    std::printf("listening on %s\n", qPrintable(relay.url().toString()));
    if (relay.metricsPort())
        std::printf("metrics on http://%s:%u/metrics\n", qPrintable(settings.metricsHost.toString()), relay.metricsPort());
    std::fflush(stdout);

    QObject::connect(&watcher, &SignalWatcher::hangup, &relay, [&relay, &cli, &settings, arguments] {
        reload(relay, cli, arguments, settings);
    });
    QObject::connect(&watcher, &SignalWatcher::terminationRequested, &relay, [&relay](int) {
        relay.close();
        QCoreApplication::quit();
    });
    return QCoreApplication::exec();
}
