#pragma once

#include <QCommandLineParser>
#include <QHostAddress>
#include <QJsonObject>
#include <QStringList>

// Headless commands of the distmap binary. Each takes its arguments
// (argv[0] and the command name first, as QCommandLineParser expects) and
// returns the process exit code; each runs its own QCoreApplication loop.
namespace Commands {

constexpr int ExitOk = 0;
constexpr int ExitNotFound = 1;
constexpr int ExitUsage = 2;
constexpr int ExitNetwork = 3;
constexpr int ExitStore = 4;   // a local store cannot be read or written
constexpr int ExitRefused = 5; // the relay refused the write (a read-only token)
constexpr int ExitTooLarge = 6; // the write is larger than the relay accepts
constexpr int ExitUnconfirmed = 7; // the write went out, but no peer confirmed it as --ack asked
constexpr int ExitOutput = 8;      // standard output could not be written (dump)

QString defaultUrl();  // ws://127.0.0.1:7357
QString defaultMap();  // /distributed-map

// HOST:PORT ([::1]:PORT for IPv6) with an IP address, for --metrics-listen.
bool parseHostPort(const QString &text, QHostAddress *host, int *port);

int relay(const QStringList &arguments);
int peer(const QString &command, const QStringList &arguments); // set get del dump watch
// history, diff and dump --at: read a store file only (historycommand.cpp).
int history(const QString &command, const QStringList &arguments);

// commandsupport.cpp: what the peer and history commands share.
// Prints one compact JSON object and a newline, flushed: a line of the
// line-oriented output of watch, history and diff.
void printJsonLine(const QJsonObject &object);
// Parses arguments for `distmap name`; on a parse error or --help prints
// (usage in place of Qt's usage line) and returns the exit code, else -1.
int parseOrExit(QCommandLineParser &parser, const QStringList &arguments, const char *name, const QString &usage);
int keep(const QStringList &arguments); // headless persistent peer

} // namespace Commands
