#pragma once

#include <QCommandLineOption>
#include <QList>
#include <QPair>
#include <QStringList>

// --config FILE for the long-running commands (relay, keep): the file's
// options go in front of the command line's, so the command line wins.
// Remembers which option came from which FILE:LINE, so that an error
// about a value names the line it was on.
class CommandConfig
{
public:
    // `arguments` as the command got them (argv[0] first). False with
    // *error when --config names a file that does not load, or a key that
    // is not one of `options`.
    bool expand(const QStringList &arguments, const QList<QCommandLineOption> &options, const QString &section, QString *error);

    const QStringList &arguments() const { return m_arguments; }
    QString path() const { return m_path; }
    // " (from FILE:LINE)" for an option read from the file, else empty.
    QString origin(const QString &option) const;

private:
    QStringList m_arguments;
    QString m_path;
    QList<QPair<QString, QString>> m_sources;
};
