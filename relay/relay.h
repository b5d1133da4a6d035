#pragma once

#include "maprouter.h"
#include "tokentable.h"
#include "wire.h"

#include <QElapsedTimer>
#include <QHash>
#include <QHostAddress>
#include <QJsonObject>
#include <QMap>
#include <QObject>
#include <QSslConfiguration>
#include <QStringList>
#include <QTimer>
#include <QUrl>
#include <QVector>

class Admission;
class RedisBus;
struct BusMessage;
class HttpFront;
class OpsServer;
class QWebSocket;
class QWebSocketServer;
class RelayTcpServer;
struct Client;

// The stateless relay: it knows which connection has which maps open and
// forwards frames between them, reading only the 16-byte envelope of
// binary frames (docs/PROTOCOL.md). It stores no map data; its memory
// depends on connections and maps, never on keys or values.
// Single-threaded: everything runs in the thread that owns the relay.
// The relay wires the parts together: Admission lets connections in,
// Client holds each connection's state, MapRouter each map's members and
// sync routing, LingeringClose ends a connection cut off for cause.
//
// Under abuse it protects itself and the other peers (docs/RELIABILITY.md):
// every limit below is per connection and O(1) per message; a connection
// that breaks one gets an `error` naming the limit and is closed, and the
// others keep being served.
class Relay : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY(Relay)
public:
    struct Options
    {
        qint64 maxMessageBytes = Wire::DefaultMaxMessageBytes; // largest frame/message accepted (else close 1009); announced in welcome
        int maxConnections = 10000;                // sockets at once, handshakes included
        int maxConnectionsPerAddress = 2000;       // the same, per remote address
        int handshakeTimeoutMs = 5000;             // TLS + HTTP upgrade, and again upgrade to hello
        // Token bucket per connection over every message it sends: refilled
        // at messagesPerSecond up to messageBurst. A connection that empties
        // it is slowed, not cut: the relay stops reading it until the bucket
        // holds a tenth of a second's messages again, and TCP pushes back on
        // the sender. Only one still over its rate after rateCutoffMs of
        // being slowed gets `rate-limited` and a close (0: never). 0 turns
        // the limit off. The default lets a writer send 100,000 deltas a
        // second one per message without being slowed.
        int messagesPerSecond = 100000;
        int messageBurst = 200000;
        int rateCutoffMs = 10000;
        // Unsent bytes queued for one peer; past this it is cut off with
        // `backlog` (its backlog is then dropped). Keep it above
        // maxMessageBytes, or one large message cuts a peer off.
        qint64 maxBacklogBytes = 32 * 1024 * 1024;
        // Heartbeat: a WebSocket ping every pingIntervalMs; a connection from
        // which nothing (pong or message) came for pingTimeoutMs is dropped,
        // so its maps hear `left`. 0 turns the heartbeat off.
        int pingIntervalMs = 5000;
        int pingTimeoutMs = 15000;
        // After a close for cause, how long the closing handshake may take
        // before the socket is dropped (a peer that stopped reading never
        // answers it).
        int closeGraceMs = 2000;
        // How long a sync request may wait for a member that is still
        // syncing (and may hold data nobody ready has) before its requester
        // is told it is alone (MapRouter).
        int syncWaitMs = 3000;
        // Browser origins allowed to connect; empty allows every origin.
        // Handshakes without an Origin header (non-browser peers) are allowed.
        QStringList allowedOrigins;
        // HTTP GET on the same port serves the web client and inspector.
        bool serveHttp = true;
    };

    struct Stats
    {
        int connections = 0; // WebSocket connections (after the upgrade)
        int sockets = 0;     // every socket counted against the limits, handshakes included
        int maps = 0;
        quint64 framesIn = 0;
        quint64 framesOut = 0;
        quint64 bytesIn = 0;
        quint64 bytesOut = 0;
        quint64 refused = 0;     // connections refused by a limit, origin or token
        quint64 cutOff = 0;      // connections closed by the relay for cause
        quint64 heartbeatDrops = 0;
        quint64 slowed = 0;      // times a connection over its rate stopped being read
        // For /metrics (docs/OPERATIONS.md): the same counters, in more detail.
        int peers = 0;       // connections past their hello
        int handshakes = 0;  // sockets still in TLS or the HTTP upgrade
        quint64 accepted = 0;
        quint64 refusedLimit = 0;
        quint64 refusedOrigin = 0;
        quint64 refusedToken = 0;
        quint64 handshakeTimeouts = 0;
        quint64 deliveries = 0;   // binary frames sent to peers
        quint64 syncRequests = 0; // sync requests routed (or held, or told `alone`)
        QMap<QString, quint64> cutOffBy;  // reason (an error name, "too-large", ...) -> connections
        QMap<QString, quint64> droppedBy; // reason -> frames not forwarded
        double loopLagSeconds = 0; // the longest event-loop delay seen in the last 10 s
    };

    explicit Relay(QObject *parent = nullptr);
    explicit Relay(const Options &options, QObject *parent = nullptr);
    ~Relay() override;

    bool listen(const QHostAddress &address = QHostAddress::LocalHost, quint16 port = 0);
    void close();
    bool isListening() const;
    QString errorString() const;
    quint16 port() const;
    QUrl url() const; // ws://host:port, or wss:// with TLS

    // Serve wss:// (call before listen). The configuration must hold the
    // certificate chain and key; TLS 1.2 or later is enforced here.
    void setSslConfiguration(const QSslConfiguration &configuration);
    bool isSecure() const;

    // Require a token from every connection (call at start, and again to
    // reload: connections whose token was revoked, or no longer covers a
    // map they hold open, are closed at once with `unauthorized`; downgraded
    // maps become read-only). Without a call, anyone may connect.
    void setTokens(const TokenTable &tokens);

    // Joins the map networks of every relay on the same Redis (docs/SCALING.md).
    // redisUrl: redis://[user:password@]host[:port][/db]; relayId 0 draws
    // one. Call before listen(); false with *error for a bad URL.
    bool joinBus(const QString &redisUrl, quint64 relayId, QString *error);
    RedisBus *bus() const { return m_bus; }
    // How long sync requests of a map new to this relay wait for the other
    // relays' rosters: once subscribed, and at most from the first open.
    static constexpr int RosterWaitMs = 150;
    static constexpr int RosterHoldMaxMs = 3000;
    // After the bus was broken, how long the other relays have to announce
    // their members again before the ones they do not announce leave here.
    static constexpr int RosterConfirmMs = 2000;
    // How often the event loop's lag is sampled, for /metrics.
    static constexpr int LagProbeMs = 250;

    Stats stats() const;
    // The Prometheus text for GET /metrics, and whether a load balancer
    // should send peers here (listening, and on the bus when federated).
    QByteArray metricsText() const;
    bool isReady(QString *why = nullptr) const;
    // Serve /metrics, /healthz and /readyz on their own port instead of
    // the public one (distmap relay --metrics-listen).
    bool listenMetrics(const QHostAddress &address, quint16 port, QString *error);
    quint16 metricsPort() const;
    // Limits that can change at run time (SIGHUP): the rate limit, burst,
    // backlog, heartbeat, connection limits and handshake timeout. Returns
    // the option names that changed.
    QStringList setLimits(const Options &limits);
    const Options &options() const { return m_options; }
    struct MapInfo
    {
        QString uri;
        int members = 0;
    };
    QVector<MapInfo> maps() const;

Q_SIGNALS:
    // One human-readable line per connect, disconnect, map open/close and
    // sync routing; `distmap relay --log` prints these.
    void logMessage(const QString &line);

private:
    struct MapNet;

    void onNewConnection();
    void onHeartbeat();
    void onLagProbe();
    void installHttpEndpoints(HttpFront *front);
    void countDrop(const char *reason) { ++m_stats.droppedBy[QString::fromLatin1(reason)]; }
    bool admit(Client *client); // rate limit; false when the client is being cut off
    void slowDown(Client *client, qint64 nowNs);
    void onSlowedTimeout(Client *client);
    void stopSlowing(Client *client);
    void cutOff(Client *client, Wire::ErrorCode code, const QString &message);
    void finishCutOff(Client *client, Wire::ErrorCode code, const QString &message);
    void onText(Client *client, const QString &text);
    void onBinary(Client *client, const QByteArray &frame);
    void onDisconnected(Client *client);
    void handleHello(Client *client, const QJsonObject &message);
    void handleOpen(Client *client, const QJsonObject &message);
    void handleCloseMap(Client *client, quint32 mapId);
    void handleReady(Client *client, quint32 mapId);
    void handlePresence(Client *client, quint32 mapId, const QJsonObject &presence);
    void routeSyncRequest(Client *client, MapNet *net, const QByteArray &frame);
    void carryOut(MapNet *net, const QVector<MapRouter::Decision> &decisions);
    void onSyncWaitTick();
    void leaveMap(Client *client, MapNet *net);
    void leaveAllMaps(Client *client);
    void sendControl(Client *client, const QByteArray &text);
    void sendFrame(Client *client, const QByteArray &frame);
    void sendEncoded(Client *client, const QByteArray &frame, const QByteArray &encoded);
    void markUnflushed(Client *client);
    void flushWrites();
    // To the map's local members but sender (nullptr: to every one).
    void sendToOthers(const MapNet *net, const Client *sender, const QByteArray &text);
    void sendFrameToOthers(const MapNet *net, const Client *sender, const QByteArray &frame);
    void sendError(Client *client, Wire::ErrorCode code, const QString &message, quint32 mapId = 0, const QString &uri = {});
    MapNet *memberMap(Client *client, quint32 mapId);
    Client *localMember(const MapNet *net, quint64 peer) const;

    // The bus (relayfederation.cpp): what local peers do, told to the
    // other relays, and what the other relays' peers do, applied here.
    void publish(MapNet *net, const BusMessage &message, Client *cause);
    void announceJoined(MapNet *net, Client *client);
    void announceMembers(MapNet *net); // every local member, after a Roster
    void onBusMessage(const QString &uri, const BusMessage &message);
    void onRelayLost(quint64 relay, quint64 incarnation);
    void addRemote(MapNet *net, const BusMessage &message);
    void removeRemote(MapNet *net, quint64 peer);
    void deliverRemoteFrame(MapNet *net, const BusMessage &message);
    void askToVerify(MapNet *net);
    void expectAnnouncements(MapNet *net, quint64 relay);
    void dropUnannounced(const QString &uri, qint64 askedAtMs);

    Options m_options;
    QElapsedTimer m_clock; // monotonic time for the rate limiter and heartbeat
    QTimer m_heartbeat;
    QTimer m_syncWait; // runs while a sync request waits (MapRouter::hasWaiting)
    QTimer m_lagProbe; // event-loop lag: how late this timer fires
    qint64 m_lagDueNs = 0;
    qint64 m_lagWindowStartMs = 0;
    double m_lagWindowMax = 0;
    double m_lagLastWindowMax = 0;
    OpsServer *m_ops = nullptr; // --metrics-listen
    Admission *m_admission = nullptr;
    HttpFront *m_http = nullptr;
    RedisBus *m_bus = nullptr;
    RelayTcpServer *m_tcp = nullptr;
    QWebSocketServer *m_ws = nullptr;
    QHash<QWebSocket *, Client *> m_clients;
    QHash<quint64, Client *> m_byPeer; // every map member's peer is here
    QVector<Client *> m_unflushed;     // written to in this pass (flushWrites)
    QHash<quint32, MapNet *> m_maps;
    QHash<QString, MapNet *> m_mapsByUri;
    qint64 m_lastPingMs = 0;
    quint32 m_nextMapId = 1;
    Stats m_stats;
};
