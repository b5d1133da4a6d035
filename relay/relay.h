#pragma once

#include <QHash>
#include <QHostAddress>
#include <QJsonObject>
#include <QObject>
#include <QUrl>
#include <QVector>

#include <memory>

class QTcpSocket;
class QWebSocket;
class QWebSocketServer;
class RelayTcpServer;

// The stateless relay: it knows which connection has which maps open and
// forwards frames between them, reading only the 16-byte envelope of
// binary frames (docs/PROTOCOL.md). It stores no map data; its memory
// depends on connections and maps, never on keys or values.
// Single-threaded: everything runs in the thread that owns the relay.
class Relay : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY(Relay)
public:
    struct Options
    {
        qint64 maxMessageBytes = 16 * 1024 * 1024; // largest frame/message accepted
        int maxConnections = 10000;
        int maxConnectionsPerAddress = 2000;
        int handshakeTimeoutMs = 5000;
    };

    struct Stats
    {
        int connections = 0;
        int maps = 0;
        quint64 framesIn = 0;
        quint64 framesOut = 0;
        quint64 bytesIn = 0;
        quint64 bytesOut = 0;
    };

    explicit Relay(QObject *parent = nullptr);
    explicit Relay(const Options &options, QObject *parent = nullptr);
    ~Relay() override;

    bool listen(const QHostAddress &address = QHostAddress::LocalHost, quint16 port = 0);
    void close();
    bool isListening() const;
    QString errorString() const;
    quint16 port() const;
    QUrl url() const; // ws://host:port

    Stats stats() const;
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
    struct Client;
    struct MapNet;

    void acceptSocket(QTcpSocket *socket);
    void onNewConnection();
    void onText(Client *client, const QString &text);
    void onBinary(Client *client, const QByteArray &frame);
    void onDisconnected(Client *client);
    void handleHello(Client *client, const QJsonObject &message);
    void handleOpen(Client *client, const QJsonObject &message);
    void handleCloseMap(Client *client, quint32 mapId);
    void routeSyncRequest(Client *client, MapNet *net, QByteArray frame);
    void leaveMap(Client *client, MapNet *net);
    void sendControl(Client *client, const QJsonObject &message);
    void sendFrame(Client *client, const QByteArray &frame);
    void sendError(Client *client, int code, const QString &message, quint32 mapId = 0, bool fatal = false);
    MapNet *memberMap(Client *client, quint32 mapId);
    QString describe(const Client *client) const;

    Options m_options;
    RelayTcpServer *m_tcp = nullptr;
    QWebSocketServer *m_ws = nullptr;
    QHash<QWebSocket *, Client *> m_clients;
    QHash<quint64, Client *> m_byPeer;
    QHash<quint32, MapNet *> m_maps;
    QHash<QString, MapNet *> m_mapsByUri;
    QHash<QString, int> m_perAddress; // sockets per remote address, handshakes included
    int m_sockets = 0;
    quint32 m_nextMapId = 1;
    Stats m_stats;
};
