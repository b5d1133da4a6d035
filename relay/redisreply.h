#pragma once

#include <QByteArray>
#include <QVector>

// One RESP reply from Redis, as a plain value (hiredis parses it; this is
// what the relay keeps of it).
struct RedisReply
{
    enum class Type { String, Array, Integer, Nil, Status, Error };
    Type type = Type::Nil;
    QByteArray string; // String, Status, Error
    qint64 integer = 0;
    QVector<RedisReply> elements; // Array

    bool isError() const { return type == Type::Error; }
    // For pub/sub pushes: element i as bytes, empty when there is none.
    QByteArray at(int i) const { return i < elements.size() ? elements.at(i).string : QByteArray(); }
};
