#include "relaytcpserver.h"

#include <QSslSocket>
#include <QTcpSocket>

void RelayTcpServer::incomingConnection(qintptr descriptor)
{
    QTcpSocket *socket = nullptr;
    if (m_ssl) {
        auto *ssl = new QSslSocket(this);
        ssl->setSslConfiguration(*m_ssl);
        socket = ssl;
    } else {
        socket = new QTcpSocket(this);
    }
    if (!socket->setSocketDescriptor(descriptor)) {
        delete socket;
        return;
    }
    // Deltas are small: without this, Nagle plus delayed ACKs add up to
    // 40 ms to a forward.
    socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
    Q_EMIT socketAccepted(socket);
}
