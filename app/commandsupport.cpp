#include "commands.h"

#include "displayformat.h"

#include <QCoreApplication>
#include <QRegularExpression>
#include <QTimer>

#include <cstdio>

void Commands::printJsonLine(const QJsonObject &object)
{
    std::fputs(DisplayFormat::jsonText(object).constData(), stdout);
    std::fputc('\n', stdout);
    // One flush per event-loop turn, not per line: `watch` of a 100,000-key
    // map made a write() per line for its first 100,000 lines. Lines still
    // leave within the turn that printed them (and at exit).
    static bool flushQueued = false;
    if (!QCoreApplication::instance()) {
        std::fflush(stdout);
    } else if (!flushQueued) {
        flushQueued = true;
        QTimer::singleShot(0, QCoreApplication::instance(), [] {
            flushQueued = false;
            std::fflush(stdout);
        });
    }
}

int Commands::parseOrExit(QCommandLineParser &parser, const QStringList &arguments, const char *name, const QString &usage)
{
    if (!parser.parse(arguments)) {
        std::fprintf(stderr, "distmap %s: %s\nUsage: %s\n", name, qPrintable(parser.errorText()), qPrintable(usage));
        return ExitUsage;
    }
    if (parser.isSet(QStringLiteral("help"))) {
        // Qt's usage line names argv[0] and the positional arguments only.
        QString help = parser.helpText();
        help.replace(QRegularExpression(QStringLiteral("^Usage: \\S+ \\[options\\][^\\n]*")), QStringLiteral("Usage: ") + usage);
        std::fputs(qPrintable(help), stdout);
        return ExitOk;
    }
    return -1;
}
