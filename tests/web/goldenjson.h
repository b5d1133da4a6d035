// The neutral JSON form of routed messages that the C++ and the JavaScript
// peers exchange as golden vectors (tests/web/README.md has the format).
// Every unsigned 64-bit number is a decimal string, so no side goes through
// a double; bytes are lowercase hex.
#pragma once

#include "wire.h"

#include <QJsonArray>
#include <QJsonObject>

namespace GoldenJson {

QString typeName(Wire::Type type);
// Decodes a whole binary message into its neutral form; empty and *error
// set when the message is malformed.
QJsonObject describe(const QByteArray &frame, QString *error);
// Encodes a neutral form with the C++ codec; empty and *error set when the
// description is incomplete.
QByteArray encode(const QJsonObject &message, QString *error);

QJsonObject entryToJson(const QString &key, const Entry &entry);

} // namespace GoldenJson
