#pragma once

#include <QByteArray>
#include <QJsonValue>
#include <QString>

// Values travel and rest as compact JSON text (UTF-8). These helpers convert
// any JSON value, scalars included, which QJsonDocument alone cannot.
namespace JsonText {

// Compact JSON for any defined value; an empty array for Undefined.
QByteArray encode(const QJsonValue &value);

// Parses exactly one JSON value. On failure returns Undefined and, when
// error is given, a message naming the problem and its offset.
QJsonValue decode(const QByteArray &text, QString *error = nullptr);

} // namespace JsonText
