#include "commands.h"

#include "displayformat.h"
#include "historyfile.h"
#include "instant.h"
#include "localstore.h"

#include <QCommandLineParser>
#include <QDateTime>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>

#include <algorithm>
#include <cstdio>

// history, diff and dump --at: questions about the past, answered from a
// store file alone. No connection and no lock, so they work with the relay
// down and beside the process that holds the store.

namespace {

struct HistorySpec
{
    const char *name;
    const char *arguments; // positional synopsis
    int argumentCount;
    const char *synopsis;  // the whole usage after the command name
    const char *description;
};

const HistorySpec Specs[] = {
    {"history", "KEY", 1, "--store FILE KEY",
     "Prints every write of KEY that the store keeps, oldest first, one JSON object per line: time (UTC), hlc, "
     "writer, value or \"deleted\": true, and \"lost\": true for a write that lost a conflict (it arrived after a "
     "newer write and never took effect). Reads the store file only. Exits with 1 when it holds no write of KEY."},
    {"diff", "", 0, "--from TIME [--to TIME] --store FILE",
     "Prints every key whose value differs between two moments, one JSON object per line: key, change (added, "
     "removed or changed), before and after, and the time and writer of the write that holds it at --to. Reads "
     "the store file only."},
    {"dump", "", 0, "--at TIME --store FILE [--pretty]", "Prints the whole map as one JSON object as it was at --at TIME, from the store's history. Reads "
                    "the store file only."},
};

const char *const TimeHelp = "ISO 8601 (2024-05-01T14:02:17Z; local time without an offset), relative (-30s, -10m, "
                             "-2h, -1d), now, or hlc:N";

// A store file mapped read-only, and its history index when there is one.
struct StoreImage
{
    QFile file;
    QByteArray copy; // when the file system cannot map
    const char *data = nullptr;
    qsizetype size = 0;
    QFile indexFile;
    // Mapped (fromRawData, no copy): reading 4 MB into memory took longer
    // than a key's question.
    QByteArray index;

    bool open(const QString &path, QString *message)
    {
        file.setFileName(path);
        if (!file.open(QIODevice::ReadOnly)) {
            *message = QStringLiteral("%1: %2").arg(path, file.errorString());
            return false;
        }
        size = qsizetype(file.size());
        if (size > 0)
            data = reinterpret_cast<const char *>(file.map(0, size));
        if (!data) {
            copy = file.readAll();
            data = copy.constData();
            size = copy.size();
        }
        indexFile.setFileName(HistoryFileIndex::pathFor(path));
        if (indexFile.open(QIODevice::ReadOnly) && indexFile.size() > 0) {
            if (const uchar *mapped = indexFile.map(0, indexFile.size()))
                index = QByteArray::fromRawData(reinterpret_cast<const char *>(mapped), qsizetype(indexFile.size()));
            else
                index = indexFile.readAll();
        }
        return true;
    }
};

QJsonValue valueOf(const Entry &entry)
{
    return DisplayFormat::parseJson(entry.value);
}

// When and by whom: the fields every line about a write carries.
void describeWrite(QJsonObject &object, const Entry &entry)
{
    object.insert(QStringLiteral("time"), Instant::isoText(entry.hlc));
    // A string: clock values pass 2^53, where JSON readers lose digits.
    object.insert(QStringLiteral("hlc"), QString::number(entry.hlc));
    object.insert(QStringLiteral("writer"), DisplayFormat::peerId(entry.writer));
}

int printHistory(const HistoryFile &history, const QString &key, const QString &path)
{
    QVector<bool> lost;
    const QVector<Entry> writes = history.keyHistory(key, &lost);
    if (writes.isEmpty()) {
        std::fprintf(stderr, "distmap history: %s holds no write of '%s'\n", qPrintable(path), qPrintable(key));
        return Commands::ExitNotFound;
    }
    for (qsizetype i = 0; i < writes.size(); ++i) {
        const Entry &e = writes[i];
        QJsonObject line;
        describeWrite(line, e);
        if (e.tombstone)
            line.insert(QStringLiteral("deleted"), true);
        else
            line.insert(QStringLiteral("value"), valueOf(e));
        if (lost[i])
            line.insert(QStringLiteral("lost"), true);
        Commands::printJsonLine(line);
    }
    return Commands::ExitOk;
}

int printDump(const HistoryFile &history, quint64 at, QJsonDocument::JsonFormat format)
{
    QVector<HistoryIndex::KeyedEntry> entries = history.asOf(at);
    // QJsonObject keeps its keys sorted: inserting in order is linear.
    std::sort(entries.begin(), entries.end(), [](const auto &a, const auto &b) { return a.key < b.key; });
    QJsonObject map;
    for (const HistoryIndex::KeyedEntry &e : std::as_const(entries))
        map.insert(e.key, valueOf(e.entry));
    std::fputs(QJsonDocument(map).toJson(format).trimmed().constData(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    return Commands::ExitOk;
}

int printDiff(const HistoryFile &history, quint64 from, quint64 to)
{
    QVector<HistoryIndex::Change> changes = history.changes(from, to);
    std::sort(changes.begin(), changes.end(), [](const auto &a, const auto &b) { return a.key < b.key; });
    for (const HistoryIndex::Change &c : std::as_const(changes)) {
        // Written in the interval but shown the same at both ends (set
        // back, or deleted twice): not a difference between the two maps.
        const bool before = c.before && !c.before->tombstone;
        const bool after = c.after && !c.after->tombstone;
        if (!before && !after)
            continue;
        if (before && after && c.before->value == c.after->value)
            continue;
        QJsonObject line{{QStringLiteral("key"), c.key}};
        line.insert(QStringLiteral("change"), !before ? QStringLiteral("added") : !after ? QStringLiteral("removed")
                                                                                        : QStringLiteral("changed"));
        if (before)
            line.insert(QStringLiteral("before"), valueOf(*c.before));
        if (after)
            line.insert(QStringLiteral("after"), valueOf(*c.after));
        describeWrite(line, *c.after);
        Commands::printJsonLine(line);
    }
    return Commands::ExitOk;
}

} // namespace

int Commands::history(const QString &command, const QStringList &arguments)
{
    const HistorySpec *spec = nullptr;
    for (const HistorySpec &s : Specs) {
        if (command == QLatin1String(s.name))
            spec = &s;
    }
    Q_ASSERT(spec);

    QCommandLineParser parser;
    parser.setApplicationDescription(QString::fromUtf8(spec->description));
    parser.addHelpOption();
    const QCommandLineOption storeOption(QStringLiteral("store"), QStringLiteral("The store file to read (required)."),
                                         QStringLiteral("FILE"));
    const QCommandLineOption mapOption(QStringLiteral("map"), QStringLiteral("Refuse the file unless it holds this map (default: any map)."),
                                       QStringLiteral("URI"));
    const QCommandLineOption atOption(QStringLiteral("at"), QStringLiteral("The moment: %1.").arg(QLatin1String(TimeHelp)),
                                      QStringLiteral("TIME"));
    const QCommandLineOption fromOption(QStringLiteral("from"), QStringLiteral("The earlier moment (required): %1.").arg(QLatin1String(TimeHelp)),
                                        QStringLiteral("TIME"));
    const QCommandLineOption toOption(QStringLiteral("to"), QStringLiteral("The later moment (default now)."), QStringLiteral("TIME"),
                                      QStringLiteral("now"));
    const QCommandLineOption prettyOption(QStringLiteral("pretty"), QStringLiteral("Indent the JSON output."));
    parser.addOptions({storeOption, mapOption});
    if (command == QLatin1String("dump"))
        parser.addOptions({atOption, prettyOption});
    if (command == QLatin1String("diff"))
        parser.addOptions({fromOption, toOption});
    for (const QString &name : QString::fromLatin1(spec->arguments).split(QLatin1Char(' '), Qt::SkipEmptyParts))
        parser.addPositionalArgument(name, QString());

    const QString usage = QStringLiteral("distmap %1 %2").arg(command, QString::fromLatin1(spec->synopsis));
    if (const int exitCode = parseOrExit(parser, arguments, spec->name, usage); exitCode >= 0)
        return exitCode;
    auto usageError = [&](const QString &message) {
        std::fprintf(stderr, "distmap %s: %s\nUsage: %s\n", spec->name, qPrintable(message), qPrintable(usage));
        return ExitUsage;
    };
    const QStringList positional = parser.positionalArguments();
    if (positional.size() != spec->argumentCount)
        return usageError(QStringLiteral("expected %1 argument(s), got %2").arg(spec->argumentCount).arg(positional.size()));
    if (!parser.isSet(storeOption))
        return usageError(QStringLiteral("--store FILE is required: the history is read from a store file"));

    // Every time is read before the file: a typo costs nothing.
    const qint64 nowMs = QDateTime::currentMSecsSinceEpoch();
    auto instant = [&](const QCommandLineOption &option, quint64 *out) {
        QString error;
        const std::optional<quint64> t = Instant::parse(parser.value(option), nowMs, &error);
        if (!t) {
            std::fprintf(stderr, "distmap %s: --%s: %s\n", spec->name, qPrintable(option.names().constFirst()), qPrintable(error));
            return false;
        }
        *out = *t;
        return true;
    };
    quint64 at = 0, from = 0, to = 0;
    if (command == QLatin1String("dump") && !instant(atOption, &at))
        return ExitUsage;
    if (command == QLatin1String("diff")) {
        if (!parser.isSet(fromOption))
            return usageError(QStringLiteral("--from TIME is required"));
        if (!instant(fromOption, &from) || !instant(toOption, &to))
            return ExitUsage;
        if (from > to)
            return usageError(QStringLiteral("--from is after --to"));
    }

    const QString path = parser.value(storeOption);
    StoreImage image;
    QString message;
    if (!image.open(path, &message)) {
        std::fprintf(stderr, "distmap %s: %s\n", spec->name, qPrintable(message));
        return ExitStore;
    }
    HistoryFile history;
    if (!history.open(image.data, image.size, image.index, parser.value(mapOption))) {
        std::fprintf(stderr, "distmap %s: %s: %s\n", spec->name, qPrintable(path), qPrintable(history.errorString()));
        return ExitStore;
    }

    // Only slower without it, but worth knowing: the holder rewrites it at
    // its next compaction.
    if (!history.usesIndex() && !history.indexProblem().isEmpty())
        std::fprintf(stderr, "distmap %s: note: %s: %s; reading the whole store\n", spec->name,
                     qPrintable(HistoryFileIndex::pathFor(path)), qPrintable(history.indexProblem()));

    int exitCode = ExitOk;
    if (command == QLatin1String("history"))
        exitCode = printHistory(history, positional.first(), path);
    else if (command == QLatin1String("dump"))
        exitCode = printDump(history, at, parser.isSet(prettyOption) ? QJsonDocument::Indented : QJsonDocument::Compact);
    else
        exitCode = printDiff(history, from, to);
    // Damage is known once the records were read. A torn tail is the
    // append in progress of the process that holds the store, or its last
    // before a crash: nothing to mention.
    if (!history.usesIndex() && history.indexProblem().startsWith(QLatin1String("a record")))
        std::fprintf(stderr, "distmap %s: note: %s\n", spec->name, qPrintable(history.indexProblem()));
    const Journal::ReadResult &read = history.readResult();
    if (!read.damage.isEmpty() && !read.tornTailOnly())
        std::fprintf(stderr, "distmap %s: warning: %s: skipped %lld damaged bytes\n", spec->name, qPrintable(path),
                     qint64(read.damagedBytes()));
    return exitCode;
}
