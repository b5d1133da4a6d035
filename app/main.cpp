#include "commands.h"

#include "inspector.h"
#include "wire.h"

#include <QCoreApplication>

#include <cstdio>
#include <cstring>

QString Commands::defaultUrl() { return QStringLiteral("ws://127.0.0.1:7357"); }
QString Commands::defaultMap() { return QStringLiteral("/distributed-map"); }

static void printUsage(FILE *out)
{
    std::fputs("Usage: distmap [COMMAND] [options]\n"
               "\n"
               "A replicated key/value map: peers hold the data, a relay forwards changes.\n"
               "\n"
               "Commands:\n"
               "  (none)     open the inspector GUI (hosts a relay when none answers)\n"
               "  relay      run a relay headless\n"
               "  set        set KEY to VALUE (JSON)\n"
               "  get        print KEY's value\n"
               "  del        delete KEY\n"
               "  dump       print the whole map as JSON\n"
               "  watch      print every change as JSON lines\n"
               "  history    print every write of KEY kept in a store\n"
               "  diff       print what changed between two moments, from a store\n"
               "  keep       keep maps alive in files under a directory (headless peer)\n"
               "\n"
               "Run 'distmap COMMAND --help' for a command's options, 'distmap --version' for the version.\n",
               out);
}

int main(int argc, char *argv[])
{
    const QString command = argc > 1 ? QString::fromLocal8Bit(argv[1]) : QString();
    static const QStringList peerCommands{QStringLiteral("set"), QStringLiteral("get"), QStringLiteral("del"),
                                          QStringLiteral("dump"), QStringLiteral("watch")};
    static const QStringList historyCommands{QStringLiteral("history"), QStringLiteral("diff")};
    if (command == QLatin1String("relay") || command == QLatin1String("keep") || peerCommands.contains(command)
        || historyCommands.contains(command)) {
        // The relay runs on Qt's own event dispatcher: glib's wakes itself
        // through an eventfd each time a socket starts or stops waiting to
        // write, two write() calls more per forwarded frame (BENCHMARKS.md).
        // QT_NO_GLIB set to anything, even empty, is the operator's choice.
        if (command == QLatin1String("relay") && !qEnvironmentVariableIsSet("QT_NO_GLIB"))
            qputenv("QT_NO_GLIB", "1");
        // Headless: no display and no platform plugin needed.
        QCoreApplication app(argc, argv);
        QCoreApplication::setApplicationName(QStringLiteral("distmap"));
        QStringList arguments = QCoreApplication::arguments();
        arguments.removeAt(1);
        arguments[0] = QStringLiteral("distmap ") + command;
        if (command == QLatin1String("keep"))
            return Commands::keep(arguments);
        if (historyCommands.contains(command))
            return Commands::history(command, arguments);
        return command == QLatin1String("relay") ? Commands::relay(arguments) : Commands::peer(command, arguments);
    }
    if (command == QLatin1String("--version") || command == QLatin1String("-v")) {
        std::printf("distmap %s (protocol %d)\n", DISTMAP_VERSION, Wire::ProtocolVersion);
        return Commands::ExitOk;
    }
    if (command == QLatin1String("--help") || command == QLatin1String("-h") || command == QLatin1String("help")) {
        printUsage(stdout);
        return Commands::ExitOk;
    }
    if (!command.isEmpty() && !command.startsWith(QLatin1Char('-'))) {
        std::fprintf(stderr, "distmap: unknown command '%s'\n\n", argv[1]);
        printUsage(stderr);
        return Commands::ExitUsage;
    }
    return Inspector::run(argc, argv, Commands::defaultUrl(), Commands::defaultMap());
}
