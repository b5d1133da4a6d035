#include "logoutput.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QLoggingCategory>

#include <cstdio>

namespace {

LogOutput::Format g_format = LogOutput::Format::Text;

const char *levelName(QtMsgType type)
{
    switch (type) {
    case QtDebugMsg:
        return "debug";
    case QtInfoMsg:
        return "info";
    case QtWarningMsg:
        return "warning";
    case QtCriticalMsg:
        return "critical";
    case QtFatalMsg:
        return "fatal";
    }
    return "info";
}

void handler(QtMsgType type, const QMessageLogContext &context, const QString &message)
{
    const QByteArray line = LogOutput::formatLine(g_format, type, context.category, message, QDateTime::currentDateTimeUtc());
    FILE *out = type == QtDebugMsg || type == QtInfoMsg ? stdout : stderr;
    std::fwrite(line.constData(), 1, size_t(line.size()), out);
    std::fflush(out);
    if (type == QtFatalMsg)
        std::abort();
}

} // namespace

bool LogOutput::parseFormat(const QString &text, Format *format)
{
    if (text == QLatin1String("text"))
        *format = Format::Text;
    else if (text == QLatin1String("json"))
        *format = Format::Json;
    else
        return false;
    return true;
}

bool LogOutput::install(Format format, const QString &level, const QString &extraRules, QString *error)
{
    QString rules;
    if (level == QLatin1String("debug"))
        rules = QStringLiteral("distmap.*.debug=true\ndistmap.*.info=true\n");
    else if (level == QLatin1String("info"))
        rules = QStringLiteral("distmap.*.info=true\n");
    else if (level != QLatin1String("warning")) {
        *error = QStringLiteral("--log-level must be debug, info or warning, not '%1'").arg(level);
        return false;
    }
    g_format = format;
    QLoggingCategory::setFilterRules(rules + extraRules);
    qInstallMessageHandler(handler);
    return true;
}

QByteArray LogOutput::formatLine(Format format, QtMsgType type, const char *category, const QString &message, const QDateTime &time)
{
    const QString stamp = time.toUTC().toString(Qt::ISODateWithMs);
    const QString cat = QString::fromLatin1(category && *category ? category : "default");
    if (format == Format::Json) {
        const QJsonObject object{{QStringLiteral("time"), stamp},
                                 {QStringLiteral("level"), QString::fromLatin1(levelName(type))},
                                 {QStringLiteral("category"), cat},
                                 {QStringLiteral("message"), message}};
        return QJsonDocument(object).toJson(QJsonDocument::Compact) + '\n';
    }
    // Text: one line per message, whatever it contains.
    QString flat = message;
    flat.replace(QLatin1Char('\n'), QLatin1String("\\n"));
    const char *level = type == QtInfoMsg ? "" : levelName(type);
    return QStringLiteral("%1 %2%3%4: %5\n").arg(stamp, QString::fromLatin1(level), *level ? QStringLiteral(" ") : QString(), cat, flat).toUtf8();
}
