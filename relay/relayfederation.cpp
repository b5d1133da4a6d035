// The relay's side of the Redis bus (docs/SCALING.md): local peers' joins,
// leaves, presence, readiness and routed messages go out once per map, and
// what other relays' peers do comes in here. Members on other relays sit in
// the same MapRouter as local ones, so sync requests spread over the whole
// network and `alone` means alone everywhere.
#include "relay.h"
#include "relay_p.h"

#include "busmessage.h"
#include "client.h"
#include "control.h"
#include "redisbus.h"

#include <QJsonDocument>
#include <QRandomGenerator>
#include <QWebSocket>

bool Relay::joinBus(const QString &redisUrl, quint64 relayId, QString *error)
{
    RedisConnection::Address address;
    if (!RedisConnection::parseUrl(redisUrl, &address, error))
        return false;
    while (relayId == 0)
        relayId = QRandomGenerator::system()->generate64();
    m_bus = new RedisBus(address, relayId, RedisBus::Timing(), this);
    connect(m_bus, &RedisBus::messageReceived, this, &Relay::onBusMessage);
    connect(m_bus, &RedisBus::relayLost, this, &Relay::onRelayLost);
    connect(m_bus, &RedisBus::connectedChanged, this, [this](bool connected) {
        for (MapNet *net : std::as_const(m_maps))
            net->members.setRemoteReachable(connected);
    });
    connect(m_bus, &RedisBus::relayReconnected, this, [this](quint64 relay) {
        // It announces its members again once subscribed; a Left it
        // published while away is lost, so the rest must go.
        for (MapNet *net : std::as_const(m_maps))
            expectAnnouncements(net, relay);
    });
    connect(m_bus, &RedisBus::gapDetected, this, [this](const QString &uri) {
        if (MapNet *net = m_mapsByUri.value(uri))
            askToVerify(net);
    });
    connect(m_bus, &RedisBus::channelReady, this, [this](const QString &uri, bool again) {
        MapNet *net = m_mapsByUri.value(uri);
        if (!net)
            return;
        // Ask the others for their members, and tell them ours: after a
        // reconnect they may have dropped ours as dead. Members they no
        // longer announce left while we could not hear it.
        if (again)
            expectAnnouncements(net, 0);
        BusMessage roster;
        roster.kind = BusMessage::Kind::Roster;
        publish(net, roster, nullptr);
        // Answers take one round trip through Redis; requests wait that long.
        if (net->rosterUntilMs > 0)
            net->rosterUntilMs = qMin(net->rosterUntilMs, m_clock.elapsed() + RosterWaitMs);
        announceMembers(net);
        if (again) // what was published while we were away is lost
            askToVerify(net);
    });
    m_bus->start();
    return true;
}

void Relay::publish(MapNet *net, const BusMessage &message, Client *cause)
{
    if (!m_bus)
        return;
    if (m_bus->publish(net->uri, message) == RedisBus::Sent::QueueFull && cause)
        cutOff(cause, Wire::ErrorCode::Backlog, QStringLiteral("the relays' bus is not keeping up"));
    // NotConnected: at most once, like the relay itself; the verify round
    // after the bus is back heals it.
}

void Relay::announceJoined(MapNet *net, Client *client)
{
    if (!m_bus)
        return;
    const bool first = net->localCount() == 1 && net->remote.isEmpty() && client->isMember(net->id);
    m_bus->subscribe(net->uri);
    if (first && m_bus->isConnected()) {
        // New here (or again): learn the other relays' members before
        // answering any sync request. Subscribed already (it was about to
        // be dropped): ask now; else once Redis confirms (channelReady).
        if (m_bus->isSubscribed(net->uri)) {
            BusMessage roster;
            roster.kind = BusMessage::Kind::Roster;
            publish(net, roster, nullptr);
            net->rosterUntilMs = m_clock.elapsed() + RosterWaitMs;
        } else {
            net->rosterUntilMs = m_clock.elapsed() + RosterHoldMaxMs;
        }
    }
    BusMessage joined;
    joined.kind = BusMessage::Kind::Joined;
    joined.peer = client->peer;
    const Client::Membership membership = client->maps.value(net->id);
    joined.flags = (net->members.isReady(client->peer) ? BusMessage::FlagReady : 0)
        | (membership.writable ? BusMessage::FlagWritable : 0);
    joined.body = QJsonDocument(membership.presence).toJson(QJsonDocument::Compact);
    publish(net, joined, nullptr);
}

void Relay::announceMembers(MapNet *net)
{
    for (const MapRouter::Member &m : net->members.members()) {
        if (Client *local = localMember(net, m.peer))
            announceJoined(net, local);
    }
}

void Relay::onBusMessage(const QString &uri, const BusMessage &message)
{
    MapNet *net = m_mapsByUri.value(uri);
    if (!net || net->localCount() == 0)
        return;
    switch (message.kind) {
    case BusMessage::Kind::Joined:
        addRemote(net, message);
        break;
    case BusMessage::Kind::Left:
        if (net->remote.value(message.peer).relay == message.relay)
            removeRemote(net, message.peer);
        break;
    case BusMessage::Kind::Presence: {
        auto it = net->remote.find(message.peer);
        if (it == net->remote.end() || it->relay != message.relay)
            break;
        it->presence = QJsonDocument::fromJson(message.body).object();
        sendToOthers(net, nullptr, Control::encodePresence(Control::Presence{net->id, message.peer, it->presence}));
        break;
    }
    case BusMessage::Kind::Ready:
        if (net->remote.value(message.peer).relay == message.relay)
            carryOut(net, net->members.setReady(message.peer, m_clock.elapsed()));
        break;
    case BusMessage::Kind::Roster:
        announceMembers(net);
        break;
    case BusMessage::Kind::Frame:
        deliverRemoteFrame(net, message);
        break;
    case BusMessage::Kind::Heartbeat:
    case BusMessage::Kind::Bye:
        break; // RedisBus handles them
    }
}

void Relay::addRemote(MapNet *net, const BusMessage &message)
{
    if (m_byPeer.contains(message.peer) && !net->remote.contains(message.peer))
        return; // that id is connected here: ours wins (ids are unique by design)
    MapNet::Remote remote;
    remote.relay = message.relay;
    remote.incarnation = message.incarnation;
    remote.presence = QJsonDocument::fromJson(message.body).object();
    remote.writable = message.flags & BusMessage::FlagWritable;
    const bool known = net->remote.contains(message.peer);
    net->remote.insert(message.peer, remote);
    if (!known) {
        net->members.add(message.peer, true);
        sendToOthers(net, nullptr, Control::encodeJoined({net->id, message.peer, remote.presence}));
    }
    if ((message.flags & BusMessage::FlagReady) && !net->members.isReady(message.peer))
        carryOut(net, net->members.setReady(message.peer, m_clock.elapsed()));
}

void Relay::removeRemote(MapNet *net, quint64 peer)
{
    if (!net->remote.remove(peer))
        return;
    const MapRouter::Decisions decisions = net->members.remove(peer, m_clock.elapsed());
    sendToOthers(net, nullptr, Control::encodeLeft({net->id, peer}));
    carryOut(net, decisions);
}

void Relay::deliverRemoteFrame(MapNet *net, const BusMessage &message)
{
    QByteArray frame = message.body;
    Wire::Header header;
    if (Wire::decodeHeader(frame, &header) != Wire::DecodeError::NoError || Wire::peekPeer(frame) != message.peer)
        return; // the sending relay checked and stamped it; anything else is not ours to pass on
    qToLittleEndian<quint32>(net->id, frame.data() + 4); // this relay's id for the map
    if (message.target == 0) {
        sendFrameToOthers(net, nullptr, frame);
        return;
    }
    Client *target = localMember(net, message.target);
    if (!target || !target->isMember(net->id))
        return; // another relay's peer, or gone
    if (header.type == Wire::Type::SyncData)
        net->members.answered(message.peer, target->peer);
    sendFrame(target, frame);
}

void Relay::onRelayLost(quint64 relay, quint64 incarnation)
{
    const auto nets = m_maps.values();
    for (MapNet *net : nets) {
        QVector<quint64> gone;
        for (auto it = net->remote.cbegin(); it != net->remote.cend(); ++it) {
            if (it->relay == relay && it->incarnation == incarnation)
                gone.append(it.key());
        }
        for (quint64 peer : gone)
            removeRemote(net, peer);
    }
}

// The remote members of net (all, or relay's) must be announced again
// within RosterConfirmMs; a Joined confirms one (addRemote replaces it).
void Relay::expectAnnouncements(MapNet *net, quint64 relay)
{
    const qint64 now = m_clock.elapsed();
    bool any = false;
    for (MapNet::Remote &r : net->remote) {
        if (relay == 0 || r.relay == relay) {
            r.unconfirmedSinceMs = now;
            any = true;
        }
    }
    if (any)
        QTimer::singleShot(RosterConfirmMs, Qt::PreciseTimer, this, [this, uri = net->uri, now] { dropUnannounced(uri, now); });
}

void Relay::dropUnannounced(const QString &uri, qint64 askedAtMs)
{
    MapNet *net = m_mapsByUri.value(uri);
    if (!net)
        return;
    QVector<quint64> gone;
    for (auto it = net->remote.cbegin(); it != net->remote.cend(); ++it) {
        // Later requests have their own timer.
        if (it->unconfirmedSinceMs >= 0 && it->unconfirmedSinceMs <= askedAtMs)
            gone.append(it.key());
    }
    for (quint64 peer : std::as_const(gone)) {
        Q_EMIT logMessage(QStringLiteral("%1: peer %2 of relay %3 was not announced again after the bus came back; it left")
                              .arg(uri, Wire::peerToString(peer))
                              .arg(net->remote.value(peer).relay, 16, 16, QLatin1Char('0')));
        removeRemote(net, peer);
    }
}

void Relay::askToVerify(MapNet *net)
{
    for (const MapRouter::Member &m : net->members.members()) {
        if (!m.remote)
            net->members.preferRemote(m.peer);
    }
    sendToOthers(net, nullptr, Control::encodeVerify({net->id}));
}
