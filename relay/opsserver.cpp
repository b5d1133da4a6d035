#include "opsserver.h"

#include <QTcpServer>
#include <QTcpSocket>
#include <QTimer>

OpsServer::OpsServer(QObject *parent)
    : QObject(parent)
    , m_tcp(new QTcpServer(this))
    , m_front(new HttpFront(this))
{
    m_front->setServeFiles(false);
    m_front->setAcceptUpgrades(false);
    connect(m_tcp, &QTcpServer::newConnection, this, [this] {
        while (QTcpSocket *socket = m_tcp->nextPendingConnection()) {
            connect(socket, &QTcpSocket::disconnected, socket, &QObject::deleteLater);
            // A scraper sends its request at once; a socket that does not
            // is not left open.
            QTimer::singleShot(RequestTimeoutMs, socket, [socket] { socket->abort(); });
            m_front->take(socket);
        }
    });
}

bool OpsServer::listen(const QHostAddress &address, quint16 port, QString *error)
{
    if (m_tcp->listen(address, port))
        return true;
    *error = m_tcp->errorString();
    return false;
}

quint16 OpsServer::port() const { return m_tcp->serverPort(); }
