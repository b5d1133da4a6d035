#pragma once

#include <QTcpServer>

class QTcpSocket;

// Accepts TCP connections for the relay so it can set TCP_NODELAY and count
// sockets before the WebSocket handshake (QWebSocketServer does neither).
class RelayTcpServer : public QTcpServer
{
    Q_OBJECT
public:
    using QTcpServer::QTcpServer;

Q_SIGNALS:
    void socketAccepted(QTcpSocket *socket);

protected:
    void incomingConnection(qintptr descriptor) override;
};
