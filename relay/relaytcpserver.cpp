#include "relaytcpserver.h"

#include <QTcpSocket>

void RelayTcpServer::incomingConnection(qintptr descriptor)
{
    auto *socket = new QTcpSocket(this);
    if (!socket->setSocketDescriptor(descriptor)) {
        delete socket;
        return;
    }
    // Deltas are small: without this, Nagle plus delayed ACKs add up to
    // 40 ms to a forward.
    socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
    Q_EMIT socketAccepted(socket);
}
