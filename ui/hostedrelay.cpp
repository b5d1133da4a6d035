#include "hostedrelay.h"

#include "relay.h"

HostedRelay::HostedRelay(QObject *parent)
    : QObject(parent)
    , m_relay(new Relay(this))
{
    connect(m_relay, &Relay::logMessage, this, &HostedRelay::logMessage);
}

HostedRelay::~HostedRelay() = default;

bool HostedRelay::listen(quint16 port)
{
    return m_relay->listen(QHostAddress::LocalHost, port);
}

QString HostedRelay::errorString() const
{
    return m_relay->errorString();
}

quint16 HostedRelay::port() const
{
    return m_relay->port();
}

QUrl HostedRelay::url() const
{
    return m_relay->url();
}

HostedRelay::Stats HostedRelay::stats() const
{
    const Relay::Stats s = m_relay->stats();
    Stats stats;
    stats.connections = s.connections;
    stats.maps = s.maps;
    stats.framesIn = s.framesIn;
    stats.framesOut = s.framesOut;
    stats.bytesIn = s.bytesIn;
    stats.bytesOut = s.bytesOut;
    return stats;
}

QVector<HostedRelay::MapInfo> HostedRelay::maps() const
{
    const auto relayMaps = m_relay->maps();
    QVector<MapInfo> maps;
    maps.reserve(relayMaps.size());
    for (const Relay::MapInfo &map : relayMaps)
        maps.append({map.uri, map.members});
    return maps;
}
