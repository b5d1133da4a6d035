#pragma once

#include <QDateTime>
#include <QString>
#include <QtGlobal>

// Where the headless commands' log lines go: Qt's message handler for
// every QLoggingCategory (distmap.relay, distmap.bus, distmap.net,
// distmap.sync, distmap.store, distmap.keep), so QT_LOGGING_RULES picks
// what is shown. Info and debug lines go to stdout, warnings and worse to
// stderr; `text` is "TIME CATEGORY: message", `json` one object per line
// ({"time","level","category","message"}) for journald and log shippers.
namespace LogOutput {

enum class Format { Text, Json };

bool parseFormat(const QString &text, Format *format);
// Installs the handler, and filter rules for `level` over every distmap.*
// category: debug, info, or warning (each category's own default: warnings,
// and the info lines an operator always wants); extraRules (e.g. "distmap.relay.info=true")
// come after. QT_LOGGING_RULES, read by Qt after these, still wins.
bool install(Format format, const QString &level, const QString &extraRules, QString *error);

// One line, newline included. Plain, for tests.
QByteArray formatLine(Format format, QtMsgType type, const char *category, const QString &message, const QDateTime &time);

} // namespace LogOutput
