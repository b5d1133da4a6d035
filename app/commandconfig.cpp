#include "commandconfig.h"

#include "configfile.h"

bool CommandConfig::expand(const QStringList &arguments, const QList<QCommandLineOption> &options, const QString &section,
                           QString *error)
{
    m_arguments = arguments;
    m_sources.clear();
    m_path.clear();
    for (qsizetype i = 1; i < arguments.size(); ++i) {
        if (arguments[i] == QLatin1String("--"))
            break;
        if (arguments[i] == QLatin1String("--config") && i + 1 < arguments.size())
            m_path = arguments[i + 1];
        else if (arguments[i].startsWith(QLatin1String("--config=")))
            m_path = arguments[i].mid(9);
    }
    if (m_path.isEmpty())
        return true;
    ConfigFile file;
    if (!file.load(m_path, section, error))
        return false;
    QStringList fromFile;
    if (!file.toArguments(options, ConfigFile::givenOptions(arguments.mid(1)), &fromFile, &m_sources, error))
        return false;
    m_arguments = arguments.mid(0, 1) + fromFile + arguments.mid(1);
    return true;
}

QString CommandConfig::origin(const QString &option) const
{
    for (const auto &source : m_sources) {
        if (source.first == option)
            return QStringLiteral(" (from %1)").arg(source.second);
    }
    return {};
}
