#pragma once

#include "connection.h"
#include "distributedmap.h"
#include "distributedmap_p.h"

#include <QJsonObject>
#include <QUrl>

#include <memory>

// A peer for integration tests: one connection and one map on it.
struct TestPeer
{
    std::unique_ptr<Connection> connection;
    std::unique_ptr<DistributedMap> map;

    TestPeer(const QUrl &url, const QString &uri, const QString &name, bool openNow = true)
        : connection(std::make_unique<Connection>(url))
        , map(std::make_unique<DistributedMap>(connection.get(), uri))
    {
        connection->setReconnectDelays(50, 400);
        map->setPresence({{QStringLiteral("name"), name}});
        if (openNow)
            connection->open();
    }
    ~TestPeer()
    {
        map.reset();
        connection.reset();
    }
    quint64 id() const { return connection->peerId(); }
    DistributedMap *operator->() const { return map.get(); }
    // The map's internal hooks (its state with clocks, its clock, load()).
    DistributedMapPrivate *internals() const { return DistributedMapPrivate::get(map.get()); }
};
