#pragma once

#include <QByteArray>
#include <QList>
#include <QString>
#include <QStringList>

class QCommandLineOption;

// The options of `distmap relay` and `distmap keep` read from an INI file
// (--config FILE): a [relay] or [keep] section whose keys are the
// command's long options, `key = value`, `#` or `;` comments. Plain: the
// command turns the entries into arguments placed before its own, so the
// command line wins, and every error names the file and line.
//
// Not QSettings: it reports no line numbers, accepts any key, and keeps
// only the last of repeated keys (--url and --map repeat).
class ConfigFile
{
public:
    struct Entry
    {
        QString key;
        QString value;
        int line = 0;
    };

    // Reads `path`; false with *error ("FILE:LINE: what") when the file
    // cannot be read or a line does not parse. Only `section`'s entries
    // are kept; other known sections (relay, keep) are skipped, so one file
    // can hold both.
    bool load(const QString &path, const QString &section, QString *error);
    bool parse(const QByteArray &text, const QString &section, QString *error);

    const QList<Entry> &entries() const { return m_entries; }
    QString path() const { return m_path; }
    QString where(int line) const { return QStringLiteral("%1:%2").arg(m_path).arg(line); }

    // Arguments for the entries, for the command whose options are
    // `options`: `--key=value`, or `--key` for a switch set to true. A key
    // that is not an option, a bad switch value, or an option the command
    // line already gives (`given`, long names) is an error, resp. skipped.
    // *sources gets, per option name taken from the file, its FILE:LINE.
    bool toArguments(const QList<QCommandLineOption> &options, const QStringList &given, QStringList *arguments,
                     QList<QPair<QString, QString>> *sources, QString *error) const;

    // The long option names present in a command line (after argv[0]).
    static QStringList givenOptions(const QStringList &arguments);

private:
    QString m_path = QStringLiteral("config");
    QList<Entry> m_entries;
};
