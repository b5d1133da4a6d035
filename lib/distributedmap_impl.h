#pragma once

// DistributedMap's typed set() and value(), included at the end of
// distributedmap.h; not to be included alone.

#include <QJsonArray>
#include <QJsonObject>
#include <QStringList>
#include <QVariant>
#include <QVariantList>
#include <QVariantMap>

#include <cmath>
#include <type_traits>

namespace distmap::detail {

// The types with exactly one JSON form. A type outside this list has none
// (a QDateTime could be text in any of several formats, a QByteArray text or
// base64...): the application picks the form, not the library.
template <typename T>
constexpr bool isJsonType = std::is_same_v<T, QString> || std::is_same_v<T, bool> || std::is_same_v<T, int>
    || std::is_same_v<T, qint64> || std::is_same_v<T, double> || std::is_same_v<T, QStringList>
    || std::is_same_v<T, QVariantMap> || std::is_same_v<T, QVariantList> || std::is_same_v<T, QJsonObject>
    || std::is_same_v<T, QJsonArray>;

// Integers past 2^53 do not survive a JavaScript peer (a double).
constexpr qint64 MaxExactInteger = qint64(1) << 53;

inline bool isExactInteger(double d, double lowest, double highest)
{
    return std::isfinite(d) && std::trunc(d) == d && d >= lowest && d <= highest;
}

} // namespace distmap::detail

template <typename T, typename>
bool DistributedMap::set(const QString &key, const T &value)
{
    static_assert(std::is_same_v<T, QStringList> || std::is_same_v<T, QVariantMap> || std::is_same_v<T, QVariantList>
                      || std::is_same_v<T, QVariant>,
                  "DistributedMap::set(key, T): T has no exact JSON form. Use a QJsonValue (or what converts to "
                  "one: QString, bool, int, qint64, double, QJsonObject, QJsonArray), a QStringList, QVariantMap, "
                  "QVariantList or QVariant, and convert anything else yourself (e.g. a QDateTime to an ISO 8601 "
                  "QString).");
    if constexpr (std::is_same_v<T, QVariant>)
        return setVariant(key, value);
    else
        return setVariant(key, QVariant::fromValue(value));
}

template <typename T>
T DistributedMap::value(const QString &key, const T &defaultValue) const
{
    const QJsonValue v = value(key);
    if constexpr (std::is_same_v<T, QJsonValue>) {
        return v.isUndefined() ? defaultValue : v;
    } else {
        static_assert(distmap::detail::isJsonType<T>,
                      "DistributedMap::value<T>(key): T has no exact JSON form (see set(key, T) for the types)");
        using distmap::detail::isExactInteger;
        using distmap::detail::MaxExactInteger;
        if constexpr (std::is_same_v<T, QString>) {
            return v.isString() ? v.toString() : defaultValue;
        } else if constexpr (std::is_same_v<T, bool>) {
            return v.isBool() ? v.toBool() : defaultValue;
        } else if constexpr (std::is_same_v<T, int>) {
            return v.isDouble() && isExactInteger(v.toDouble(), -2147483648.0, 2147483647.0) ? int(v.toDouble())
                                                                                          : defaultValue;
        } else if constexpr (std::is_same_v<T, qint64>) {
            if (!v.isDouble())
                return defaultValue;
            // An integer literal is kept as one (Qt 6): no detour through a double.
            const qint64 i = v.toInteger(MaxExactInteger + 1);
            if (i >= -MaxExactInteger && i <= MaxExactInteger)
                return i;
            return isExactInteger(v.toDouble(), -double(MaxExactInteger), double(MaxExactInteger)) ? qint64(v.toDouble())
                                                                                                 : defaultValue;
        } else if constexpr (std::is_same_v<T, double>) {
            return v.isDouble() ? v.toDouble() : defaultValue;
        } else if constexpr (std::is_same_v<T, QStringList>) {
            if (!v.isArray())
                return defaultValue;
            QStringList list;
            const QJsonArray array = v.toArray();
            list.reserve(array.size());
            for (const QJsonValue &item : array) {
                if (!item.isString())
                    return defaultValue;
                list.append(item.toString());
            }
            return list;
        } else if constexpr (std::is_same_v<T, QVariantMap>) {
            return v.isObject() ? v.toObject().toVariantMap() : defaultValue;
        } else if constexpr (std::is_same_v<T, QVariantList>) {
            return v.isArray() ? v.toArray().toVariantList() : defaultValue;
        } else if constexpr (std::is_same_v<T, QJsonObject>) {
            return v.isObject() ? v.toObject() : defaultValue;
        } else {
            return v.isArray() ? v.toArray() : defaultValue;
        }
    }
}
