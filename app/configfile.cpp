#include "configfile.h"

#include <QCommandLineOption>
#include <QFile>

namespace {

const QStringList KnownSections{QStringLiteral("relay"), QStringLiteral("keep")};

// Options that make no sense in a file.
const QStringList NotInFile{QStringLiteral("config"), QStringLiteral("help"), QStringLiteral("version")};

} // namespace

bool ConfigFile::load(const QString &path, const QString &section, QString *error)
{
    m_path = path;
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        *error = QStringLiteral("cannot read %1: %2").arg(path, file.errorString());
        return false;
    }
    // A config file is a few hundred bytes; a huge one is a mistake.
    constexpr qint64 MaxBytes = 1 << 20;
    if (file.size() > MaxBytes) {
        *error = QStringLiteral("%1 is larger than 1 MiB: not a config file").arg(path);
        return false;
    }
    return parse(file.readAll(), section, error);
}

bool ConfigFile::parse(const QByteArray &text, const QString &section, QString *error)
{
    m_entries.clear();
    QString current;
    int lineNumber = 0;
    for (const QByteArray &raw : text.split('\n')) {
        ++lineNumber;
        const QString line = QString::fromUtf8(raw).trimmed();
        if (line.isEmpty() || line.startsWith(QLatin1Char('#')) || line.startsWith(QLatin1Char(';')))
            continue;
        if (line.startsWith(QLatin1Char('['))) {
            if (!line.endsWith(QLatin1Char(']'))) {
                *error = QStringLiteral("%1: a section header must look like [%2]").arg(where(lineNumber), section);
                return false;
            }
            current = line.mid(1, line.size() - 2).trimmed();
            if (!KnownSections.contains(current)) {
                *error = QStringLiteral("%1: unknown section [%2] (expected [%3])").arg(where(lineNumber), current, section);
                return false;
            }
            continue;
        }
        const qsizetype equals = line.indexOf(QLatin1Char('='));
        if (equals <= 0) {
            *error = QStringLiteral("%1: expected 'key = value'").arg(where(lineNumber));
            return false;
        }
        if (current.isEmpty()) {
            *error = QStringLiteral("%1: '%2' is outside a section; put it under [%3]")
                         .arg(where(lineNumber), line.left(equals).trimmed(), section);
            return false;
        }
        if (current != section)
            continue;
        QString value = line.mid(equals + 1).trimmed();
        // Quotes keep leading or trailing spaces, or a leading # or ;.
        if (value.size() >= 2 && value.startsWith(QLatin1Char('"')) && value.endsWith(QLatin1Char('"')))
            value = value.mid(1, value.size() - 2);
        m_entries.append({line.left(equals).trimmed(), value, lineNumber});
    }
    return true;
}

bool ConfigFile::toArguments(const QList<QCommandLineOption> &options, const QStringList &given, QStringList *arguments,
                             QList<QPair<QString, QString>> *sources, QString *error) const
{
    for (const Entry &entry : m_entries) {
        const QCommandLineOption *option = nullptr;
        for (const QCommandLineOption &o : options) {
            if (o.names().constLast() == entry.key && entry.key.size() > 1)
                option = &o;
        }
        if (!option || NotInFile.contains(entry.key)) {
            *error = QStringLiteral("%1: unknown key '%2'").arg(where(entry.line), entry.key);
            return false;
        }
        if (given.contains(entry.key))
            continue; // the command line wins
        sources->append({entry.key, where(entry.line)});
        if (option->valueName().isEmpty()) {
            const QString v = entry.value.toLower();
            if (v == QLatin1String("true") || v == QLatin1String("yes") || v == QLatin1String("on") || v == QLatin1String("1")) {
                arguments->append(QLatin1String("--") + entry.key);
            } else if (!(v == QLatin1String("false") || v == QLatin1String("no") || v == QLatin1String("off") || v == QLatin1String("0"))) {
                *error = QStringLiteral("%1: %2 is a switch: its value must be true or false, not '%3'")
                             .arg(where(entry.line), entry.key, entry.value);
                return false;
            }
            continue;
        }
        arguments->append(QStringLiteral("--%1=%2").arg(entry.key, entry.value));
    }
    return true;
}

QStringList ConfigFile::givenOptions(const QStringList &arguments)
{
    QStringList names;
    for (const QString &argument : arguments) {
        if (argument == QLatin1String("--"))
            break;
        if (argument.startsWith(QLatin1String("--")))
            names.append(argument.mid(2).section(QLatin1Char('='), 0, 0));
    }
    return names;
}
