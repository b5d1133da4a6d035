#include "client.h"

#include "wire.h"

bool Client::isWritable(quint32 mapId) const
{
    const auto it = maps.constFind(mapId);
    return it != maps.constEnd() && it->writable;
}

QString Client::describe() const
{
    return peer ? Wire::peerToString(peer) : address;
}
