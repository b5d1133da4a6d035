#pragma once

#include <QByteArray>
#include <QtGlobal>

// One key's current write: a value (compact JSON text, UTF-8) or a
// tombstone, stamped with the writer's hybrid logical clock and peer id.
// (hlc, writer) identifies a write; the greater pair wins.
struct Entry
{
    QByteArray value; // compact JSON; empty for a tombstone
    quint64 hlc = 0;
    quint64 writer = 0;
    bool tombstone = false;

    bool newerThan(const Entry &other) const
    {
        return hlc != other.hlc ? hlc > other.hlc : writer > other.writer;
    }
    bool sameWrite(const Entry &other) const
    {
        return hlc == other.hlc && writer == other.writer;
    }
};
