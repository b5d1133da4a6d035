#include "commands.h"
#include "signalwatcher.h"

#include "redisbus.h"
#include "relay.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QDateTime>
#include <QFile>
#include <QSslCertificate>
#include <QSslKey>
#include <QSslSocket>
#include <QTextStream>

#include <cstdio>
#include <optional>

int Commands::relay(const QStringList &arguments)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Runs a distmap relay: it forwards map traffic between peers and keeps no map data."));
    parser.addHelpOption();
    const QCommandLineOption hostOption(QStringLiteral("host"), QStringLiteral("Address to listen on (default 127.0.0.1)."),
                                        QStringLiteral("H"), QStringLiteral("127.0.0.1"));
    const QCommandLineOption portOption(QStringLiteral("port"), QStringLiteral("Port to listen on; 0 picks a free one (default 7357)."),
                                        QStringLiteral("P"), QStringLiteral("7357"));
    const QCommandLineOption logOption(QStringLiteral("log"), QStringLiteral("Print one line per connect, disconnect, map open/close and sync routing."));
    const QCommandLineOption maxMessageOption(QStringLiteral("max-message"), QStringLiteral("Largest message accepted, in bytes (default 16777216)."),
                                              QStringLiteral("BYTES"), QStringLiteral("16777216"));
    const QCommandLineOption maxConnectionsOption(QStringLiteral("max-connections"), QStringLiteral("Most connections at once, handshakes included (default 10000)."),
                                                  QStringLiteral("N"), QStringLiteral("10000"));
    const QCommandLineOption perAddressOption(QStringLiteral("max-per-address"), QStringLiteral("Most connections from one address (default 2000)."),
                                              QStringLiteral("N"), QStringLiteral("2000"));
    const Relay::Options defaults;
    // A numeric option whose help ends with its default, taken from Relay::Options.
    const auto numeric = [](const char *name, const char *help, const char *valueName, qint64 value) {
        return QCommandLineOption(QString::fromLatin1(name), QString::fromLatin1(help).arg(value),
                                  QString::fromLatin1(valueName), QString::number(value));
    };
    const QCommandLineOption handshakeOption = numeric("handshake-timeout",
        "Time a connection has for TLS, the upgrade, and then its hello, in ms (default %1).", "MS", defaults.handshakeTimeoutMs);
    const QCommandLineOption rateOption = numeric("max-rate",
        "Messages per second a connection may send on average; 0 for no limit (default %1).", "N", defaults.messagesPerSecond);
    const QCommandLineOption burstOption = numeric("burst",
        "Messages a connection may send at once above --max-rate (default %1).", "N", defaults.messageBurst);
    const QCommandLineOption backlogOption = numeric("max-backlog",
        "Unsent bytes a peer may have queued before it is cut off (default %1, or twice --max-message if larger).", "BYTES",
        defaults.maxBacklogBytes);
    const QCommandLineOption pingOption = numeric("ping-interval",
        "Ping every connection this often, in ms; 0 turns the heartbeat off (default %1).", "MS", defaults.pingIntervalMs);
    const QCommandLineOption pingTimeoutOption = numeric("ping-timeout",
        "Drop a connection silent for this long, in ms (default %1).", "MS", defaults.pingTimeoutMs);
    const QCommandLineOption tokensOption(QStringLiteral("tokens"),
        QStringLiteral("Require a token from every peer; FILE has lines 'TOKEN rw|ro PATTERN'. SIGHUP reloads it."),
        QStringLiteral("FILE"));
    const QCommandLineOption certOption(QStringLiteral("tls-cert"), QStringLiteral("Serve wss://: certificate chain, PEM."), QStringLiteral("FILE"));
    const QCommandLineOption keyOption(QStringLiteral("tls-key"), QStringLiteral("Serve wss://: private key, PEM (RSA or EC)."), QStringLiteral("FILE"));
    const QCommandLineOption originOption(QStringLiteral("allow-origin"),
        QStringLiteral("Allow browsers from ORIGIN (repeatable, e.g. https://app.example). Without it every origin is allowed."),
        QStringLiteral("ORIGIN"));
    const QCommandLineOption redisOption(QStringLiteral("redis"),
        QStringLiteral("Federate with every relay on this Redis: redis://[user:password@]HOST[:PORT][/DB] (docs/SCALING.md)."),
        QStringLiteral("URL"));
    const QCommandLineOption relayIdOption(QStringLiteral("relay-id"),
        QStringLiteral("This relay's id on the Redis bus, 16 hex digits (default: random)."), QStringLiteral("ID"));
    const QCommandLineOption noHttpOption(QStringLiteral("no-http"),
        QStringLiteral("Serve WebSocket upgrades only: no web inspector at / and no client at /distmap.js."));
    parser.addOptions({hostOption, portOption, logOption, maxMessageOption, maxConnectionsOption, perAddressOption,
                       handshakeOption, rateOption, burstOption, backlogOption, pingOption, pingTimeoutOption,
                       tokensOption, certOption, keyOption, originOption, noHttpOption, redisOption, relayIdOption});
    if (!parser.parse(arguments)) {
        std::fprintf(stderr, "distmap relay: %s\nTry 'distmap relay --help'.\n", qPrintable(parser.errorText()));
        return ExitUsage;
    }
    if (parser.isSet(QStringLiteral("help"))) {
        std::fputs(qPrintable(parser.helpText().replace(QLatin1String("[options]"), QLatin1String("relay [options]"))), stdout);
        return ExitOk;
    }
    if (!parser.positionalArguments().isEmpty()) {
        std::fprintf(stderr, "distmap relay: unexpected argument '%s'\n", qPrintable(parser.positionalArguments().first()));
        return ExitUsage;
    }
    bool ok = false;
    const uint port = parser.value(portOption).toUInt(&ok);
    if (!ok || port > 65535) {
        std::fprintf(stderr, "distmap relay: --port must be a number from 0 to 65535, not '%s'\n", qPrintable(parser.value(portOption)));
        return ExitUsage;
    }
    const QHostAddress host(parser.value(hostOption));
    if (host.isNull()) {
        std::fprintf(stderr, "distmap relay: --host must be an IP address, not '%s'\n", qPrintable(parser.value(hostOption)));
        return ExitUsage;
    }
    Relay::Options options;
    options.maxMessageBytes = parser.value(maxMessageOption).toLongLong(&ok);
    if (!ok || options.maxMessageBytes < 1024) {
        std::fprintf(stderr, "distmap relay: --max-message must be a number of bytes, at least 1024\n");
        return ExitUsage;
    }

    options.maxConnections = parser.value(maxConnectionsOption).toInt(&ok);
    if (!ok || options.maxConnections < 1) {
        std::fprintf(stderr, "distmap relay: --max-connections must be a positive number\n");
        return ExitUsage;
    }
    options.maxConnectionsPerAddress = parser.value(perAddressOption).toInt(&ok);
    if (!ok || options.maxConnectionsPerAddress < 1) {
        std::fprintf(stderr, "distmap relay: --max-per-address must be a positive number\n");
        return ExitUsage;
    }
    struct IntOption
    {
        const QCommandLineOption *option;
        int *value;
        int minimum;
    };
    for (const IntOption &o : {IntOption{&handshakeOption, &options.handshakeTimeoutMs, 100},
                               IntOption{&rateOption, &options.messagesPerSecond, 0},
                               IntOption{&burstOption, &options.messageBurst, 1},
                               IntOption{&pingOption, &options.pingIntervalMs, 0},
                               IntOption{&pingTimeoutOption, &options.pingTimeoutMs, 100}}) {
        *o.value = parser.value(*o.option).toInt(&ok);
        if (!ok || *o.value < o.minimum) {
            std::fprintf(stderr, "distmap relay: --%s must be a number, at least %d\n", qPrintable(o.option->names().constFirst()), o.minimum);
            return ExitUsage;
        }
    }
    options.maxBacklogBytes = parser.value(backlogOption).toLongLong(&ok);
    if (!parser.isSet(backlogOption)) // one message must always fit, with room for the traffic around it
        options.maxBacklogBytes = qMax(options.maxBacklogBytes, 2 * options.maxMessageBytes);
    if (!ok || options.maxBacklogBytes < options.maxMessageBytes) {
        std::fprintf(stderr, "distmap relay: --max-backlog must be a number of bytes, at least --max-message\n");
        return ExitUsage;
    }
    options.allowedOrigins = parser.values(originOption);
    options.serveHttp = !parser.isSet(noHttpOption);

    // Only built with --tls-cert: touching QSslConfiguration loads the TLS
    // backend and OpenSSL, several MB of resident memory a plain relay does
    // not need.
    std::optional<QSslConfiguration> tls;
    if (parser.isSet(certOption) != parser.isSet(keyOption)) {
        std::fprintf(stderr, "distmap relay: --tls-cert and --tls-key go together\n");
        return ExitUsage;
    }
    if (parser.isSet(certOption)) {
        if (!QSslSocket::supportsSsl()) {
            std::fprintf(stderr, "distmap relay: this Qt has no working TLS backend (is OpenSSL 3 installed?)\n");
            return ExitUsage;
        }
        const QList<QSslCertificate> chain = QSslCertificate::fromPath(parser.value(certOption), QSsl::Pem);
        QFile keyFile(parser.value(keyOption));
        QSslKey key;
        if (keyFile.open(QIODevice::ReadOnly)) {
            const QByteArray pem = keyFile.readAll();
            key = QSslKey(pem, QSsl::Rsa, QSsl::Pem);
            if (key.isNull())
                key = QSslKey(pem, QSsl::Ec, QSsl::Pem);
        }
        if (chain.isEmpty() || key.isNull()) {
            std::fprintf(stderr, "distmap relay: cannot read %s\n",
                         chain.isEmpty() ? "the certificate (--tls-cert, PEM)" : "the private key (--tls-key, unencrypted PEM, RSA or EC)");
            return ExitUsage;
        }
        tls = QSslConfiguration::defaultConfiguration();
        tls->setLocalCertificateChain(chain);
        tls->setPrivateKey(key);
        tls->setProtocol(QSsl::TlsV1_2OrLater);
    }
    TokenTable tokens;
    const QString tokensPath = parser.value(tokensOption);
    if (!tokensPath.isEmpty()) {
        QString error;
        if (!tokens.load(tokensPath, &error)) {
            std::fprintf(stderr, "distmap relay: %s\n", qPrintable(error));
            return ExitUsage;
        }
    }

    Relay relay(options);
    if (tls)
        relay.setSslConfiguration(*tls);
    if (!tokensPath.isEmpty())
        relay.setTokens(tokens);
    if (parser.isSet(logOption)) {
        QObject::connect(&relay, &Relay::logMessage, &relay, [](const QString &line) {
            std::printf("%s %s\n", qPrintable(QDateTime::currentDateTime().toString(Qt::ISODateWithMs)), qPrintable(line));
            std::fflush(stdout);
        });
    }
    if (parser.isSet(redisOption)) {
        quint64 relayId = 0;
        if (parser.isSet(relayIdOption) && (!Wire::peerFromString(parser.value(relayIdOption), &relayId) || relayId == 0)) {
            std::fprintf(stderr, "distmap relay: --relay-id must be 16 hex digits, not 0\n");
            return ExitUsage;
        }
        QString error;
        if (!relay.joinBus(parser.value(redisOption), relayId, &error)) {
            std::fprintf(stderr, "distmap relay: --redis: %s\n", qPrintable(error));
            return ExitUsage;
        }
        // Always shown: an operator must see the bus come and go.
        QObject::connect(relay.bus(), &RedisBus::logMessage, &relay, [](const QString &line) {
            std::fprintf(stderr, "%s %s\n", qPrintable(QDateTime::currentDateTime().toString(Qt::ISODateWithMs)), qPrintable(line));
        });
    }
    if (!relay.listen(host, quint16(port))) {
        std::fprintf(stderr, "distmap relay: cannot listen on %s:%u: %s\n", qPrintable(host.toString()), port,
                     qPrintable(relay.errorString()));
        return ExitNetwork;
    }
    std::printf("listening on %s\n", qPrintable(relay.url().toString()));
    std::fflush(stdout);

    SignalWatcher watcher;
    QObject::connect(&watcher, &SignalWatcher::hangup, &relay, [&relay, tokensPath] {
        if (tokensPath.isEmpty())
            return;
        // A file that does not parse changes nothing: better the old
        // grants than an open relay or one that refuses everybody.
        TokenTable reloaded;
        QString error;
        if (!reloaded.load(tokensPath, &error)) {
            std::fprintf(stderr, "distmap relay: not reloading tokens: %s\n", qPrintable(error));
            return;
        }
        relay.setTokens(reloaded);
        std::printf("%s tokens reloaded from %s: %d token(s)\n", qPrintable(QDateTime::currentDateTime().toString(Qt::ISODateWithMs)),
                    qPrintable(tokensPath), reloaded.tokenCount());
        std::fflush(stdout);
    });
    QObject::connect(&watcher, &SignalWatcher::terminationRequested, &relay, [&relay](int) {
        relay.close();
        QCoreApplication::quit();
    });
    return QCoreApplication::exec();
}
