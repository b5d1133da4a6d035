#include "jsontext.h"

#include <QJsonArray>
#include <QJsonObject>
#include <QJsonDocument>
#include <QJsonParseError>

namespace JsonText {

QByteArray encode(const QJsonValue &value)
{
    if (value.isUndefined())
        return {};
    if (value.isObject())
        return QJsonDocument(value.toObject()).toJson(QJsonDocument::Compact);
    if (value.isArray())
        return QJsonDocument(value.toArray()).toJson(QJsonDocument::Compact);
    // QJsonDocument only holds containers: wrap the scalar, then unwrap.
    QByteArray wrapped = QJsonDocument(QJsonArray{value}).toJson(QJsonDocument::Compact);
    return wrapped.mid(1, wrapped.size() - 2);
}

QJsonValue decode(const QByteArray &text, QString *error)
{
    const QByteArray trimmed = text.trimmed();
    if (trimmed.isEmpty()) {
        if (error)
            *error = QStringLiteral("empty input is not a JSON value");
        return QJsonValue(QJsonValue::Undefined);
    }
    const char first = trimmed.front();
    if (first == '{' || first == '[') {
        QJsonParseError parseError;
        const QJsonDocument doc = QJsonDocument::fromJson(trimmed, &parseError);
        if (parseError.error != QJsonParseError::NoError) {
            if (error)
                *error = QStringLiteral("%1 at offset %2").arg(parseError.errorString()).arg(parseError.offset);
            return QJsonValue(QJsonValue::Undefined);
        }
        return doc.isObject() ? QJsonValue(doc.object()) : QJsonValue(doc.array());
    }
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson('[' + trimmed + ']', &parseError);
    if (parseError.error != QJsonParseError::NoError || doc.array().size() != 1) {
        if (error) {
            *error = parseError.error != QJsonParseError::NoError
                ? QStringLiteral("%1 at offset %2").arg(parseError.errorString()).arg(qMax(0, parseError.offset - 1))
                : QStringLiteral("more than one JSON value");
        }
        return QJsonValue(QJsonValue::Undefined);
    }
    return doc.array().first();
}

} // namespace JsonText
