#pragma once

// The relay's private parts shared by relay.cpp and relayfederation.cpp.
#include "maprouter.h"
#include "relay.h"

#include <QHash>
#include <QJsonObject>

struct Relay::MapNet
{
    quint32 id = 0;
    QString uri;
    MapRouter members; // local members and, with a bus, remote ones
    // Members on other relays (with a bus): who holds them, and what the
    // relay needs to know of them here. Every other member is local.
    struct Remote
    {
        quint64 relay = 0;
        quint64 incarnation = 0;
        QJsonObject presence;
        bool writable = true;
        // Since when its relay has to announce it again (-1: announced).
        // Its Left may have been lost while the bus was broken.
        qint64 unconfirmedSinceMs = -1;
    };
    QHash<quint64, Remote> remote;
    // A relay new to the map does not know the other relays' members until
    // they answer its roster request: sync requests wait until then (the
    // bus decides how long), so no one is told `alone` too early.
    qint64 rosterUntilMs = 0;
    struct HeldRequest
    {
        quint64 requester = 0;
        QByteArray frame;
    };
    QVector<HeldRequest> held;
    int localCount() const { return members.size() - int(remote.size()); }
};
