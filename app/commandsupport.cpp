#include "commands.h"

#include "displayformat.h"

#include <QRegularExpression>

#include <cstdio>

void Commands::printJsonLine(const QJsonObject &object)
{
    std::fputs(DisplayFormat::jsonText(object).constData(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
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
