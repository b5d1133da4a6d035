#pragma once

// What the store tests look at after a store wrote a file: the whole image
// through Journal::read, as the next open would see it.

#include "historyindex.h"
#include "journal.h"

#include <QFile>

inline Journal::ReadResult readStoreFile(const QString &path, const QString &uri, HistoryIndex *history = nullptr)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return {};
    const QByteArray image = file.readAll();
    return Journal::read(image.constData(), image.size(), uri, history);
}
