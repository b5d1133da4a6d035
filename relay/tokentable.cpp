#include "tokentable.h"

#include <QFile>
#include <QList>

namespace {

bool isTokenChar(char c)
{
    return c > 0x20 && c < 0x7f;
}

} // namespace

bool TokenTable::parse(const QByteArray &text, QString *error)
{
    QHash<QByteArray, QVector<Grant>> grants;
    const QList<QByteArray> lines = text.split('\n');
    for (int i = 0; i < lines.size(); ++i) {
        const QByteArray line = lines[i].trimmed();
        if (line.isEmpty() || line.startsWith('#'))
            continue;
        const QList<QByteArray> fields = line.simplified().split(' ');
        auto fail = [&](const QString &why) {
            if (error)
                *error = QStringLiteral("line %1: %2").arg(i + 1).arg(why);
            return false;
        };
        if (fields.size() != 3)
            return fail(QStringLiteral("expected 'TOKEN rw|ro PATTERN', got %1 field(s)").arg(fields.size()));
        const QByteArray &token = fields[0];
        if (token.size() < 16 || token.size() > 256)
            return fail(QStringLiteral("a token must be 16 to 256 characters long"));
        for (char c : token) {
            if (!isTokenChar(c))
                return fail(QStringLiteral("a token must be printable ASCII without spaces"));
        }
        Grant grant;
        if (fields[1] == "rw")
            grant.access = ReadWrite;
        else if (fields[1] == "ro")
            grant.access = ReadOnly;
        else
            return fail(QStringLiteral("access must be 'rw' or 'ro', not '%1'").arg(QString::fromUtf8(fields[1].left(16))));
        grant.pattern = QString::fromUtf8(fields[2]);
        grants[token].append(grant);
    }
    m_grants = std::move(grants);
    return true;
}

bool TokenTable::load(const QString &path, QString *error)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        if (error)
            *error = QStringLiteral("cannot read %1: %2").arg(path, file.errorString());
        return false;
    }
    QString why;
    if (!parse(file.readAll(), &why)) {
        if (error)
            *error = QStringLiteral("%1: %2").arg(path, why);
        return false;
    }
    return true;
}

TokenTable::Access TokenTable::access(const QByteArray &token, const QString &uri) const
{
    const auto it = m_grants.constFind(token);
    if (it == m_grants.constEnd())
        return NoAccess;
    Access best = NoAccess;
    for (const Grant &grant : *it) {
        if (grant.access > best && globMatch(grant.pattern, uri))
            best = grant.access;
    }
    return best;
}

bool TokenTable::globMatch(QStringView pattern, QStringView text)
{
    // Greedy matching with one backtrack point: linear in practice and
    // never exponential, whatever a tokens file holds.
    qsizetype p = 0, t = 0, star = -1, mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == u'*') {
            star = p++;
            mark = t;
        } else if (p < pattern.size() && (pattern[p] == u'?' || pattern[p] == text[t])) {
            ++p;
            ++t;
        } else if (star >= 0) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == u'*')
        ++p;
    return p == pattern.size();
}
