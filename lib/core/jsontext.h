#pragma once

#include <QByteArray>
#include <QByteArrayView>
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

// Whether text is exactly one JSON value (RFC 8259, whitespace around it
// allowed, nesting up to 1,024 levels as Qt's parser takes), without
// building it: for writing stored values straight into JSON output.
bool isValid(QByteArrayView text);

// Appends utf8 as a JSON string, quoted and escaped.
void appendString(QByteArray &out, QByteArrayView utf8);

} // namespace JsonText
