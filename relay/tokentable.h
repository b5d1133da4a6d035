#pragma once

#include <QByteArray>
#include <QHash>
#include <QString>
#include <QStringView>
#include <QVector>

// The relay's access list, read from a tokens file (`distmap relay --tokens`).
// One grant per line:
//
//     # comment
//     TOKEN  rw|ro  PATTERN
//
// TOKEN is 16 to 256 printable ASCII characters without spaces; PATTERN is
// a glob over map URIs where `*` matches any run of characters (slashes
// included) and `?` one character. A token may have several lines; on a
// URI it gets the strongest access any of its matching lines grants.
// Plain value type, no I/O besides load(); the relay swaps in a new table on
// SIGHUP.
class TokenTable
{
public:
    enum Access { NoAccess = 0, ReadOnly, ReadWrite };

    // Parses the text of a tokens file. On error returns false, leaves the
    // table unchanged and says which line is wrong (never the token itself).
    bool parse(const QByteArray &text, QString *error);
    bool load(const QString &path, QString *error);

    bool isEmpty() const { return m_grants.isEmpty(); }
    int tokenCount() const { return int(m_grants.size()); }
    bool contains(const QByteArray &token) const { return m_grants.contains(token); }
    Access access(const QByteArray &token, const QString &uri) const;

    static bool globMatch(QStringView pattern, QStringView text);

private:
    struct Grant
    {
        QString pattern;
        Access access = NoAccess;
    };
    QHash<QByteArray, QVector<Grant>> m_grants;
};
