#pragma once

#include <QSslConfiguration>
#include <QTcpServer>

#include <optional>

class QTcpSocket;

// Accepts TCP connections for the relay so it can set TCP_NODELAY and count
// sockets before the WebSocket handshake (QWebSocketServer does neither).
// With an SSL configuration it hands out QSslSockets (not yet encrypted:
// the relay starts the TLS handshake after counting the socket).
class RelayTcpServer : public QTcpServer
{
    Q_OBJECT
public:
    using QTcpServer::QTcpServer;

    void setSslConfiguration(const QSslConfiguration &configuration) { m_ssl = configuration; }
    bool isSecure() const { return m_ssl.has_value(); }

Q_SIGNALS:
    void socketAccepted(QTcpSocket *socket);

protected:
    void incomingConnection(qintptr descriptor) override;

private:
    // Empty for plain ws://: a default QSslConfiguration would load the TLS
    // backend and OpenSSL, about 6 MB of resident memory, at start.
    std::optional<QSslConfiguration> m_ssl;
};
