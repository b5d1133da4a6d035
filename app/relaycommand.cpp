#include "commands.h"
#include "signalwatcher.h"

#include "relay.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QDateTime>
#include <QTextStream>

#include <cstdio>

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
    parser.addOptions({hostOption, portOption, logOption, maxMessageOption, maxConnectionsOption, perAddressOption});
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

    Relay relay(options);
    if (parser.isSet(logOption)) {
        QObject::connect(&relay, &Relay::logMessage, &relay, [](const QString &line) {
            std::printf("%s %s\n", qPrintable(QDateTime::currentDateTime().toString(Qt::ISODateWithMs)), qPrintable(line));
            std::fflush(stdout);
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
    QObject::connect(&watcher, &SignalWatcher::terminationRequested, &relay, [&relay](int) {
        relay.close();
        QCoreApplication::quit();
    });
    return QCoreApplication::exec();
}
