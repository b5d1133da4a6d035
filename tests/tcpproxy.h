#pragma once

// A loopback TCP proxy a test can cut: the link between one process and a
// server fails on its own, as a network partition would, while everything
// else keeps its connections. Bytes pass through unchanged.
#include <QHostAddress>
#include <QTcpServer>
#include <QTcpSocket>

#include <vector>

class TcpProxy : public QObject
{
public:
    explicit TcpProxy(quint16 targetPort)
        : m_targetPort(targetPort)
    {
        m_server.listen(QHostAddress::LocalHost, 0);
        connect(&m_server, &QTcpServer::newConnection, this, [this] {
            while (QTcpSocket *in = m_server.nextPendingConnection()) {
                if (m_cut) {
                    in->abort();
                    in->deleteLater();
                    continue;
                }
                auto *out = new QTcpSocket(in);
                out->connectToHost(QHostAddress::LocalHost, m_targetPort);
                pipe(in, out);
                pipe(out, in);
                m_links.push_back(in);
            }
        });
    }

    quint16 port() const { return m_server.serverPort(); }

    // Drops every connection through the proxy and refuses new ones.
    void cut()
    {
        m_cut = true;
        for (QTcpSocket *in : std::exchange(m_links, {})) {
            in->abort();
            in->deleteLater();
        }
    }
    void restore() { m_cut = false; }

private:
    void pipe(QTcpSocket *from, QTcpSocket *to)
    {
        connect(from, &QTcpSocket::readyRead, to, [from, to] {
            // Bytes that come before the far side is up wait in `from`.
            if (to->state() == QAbstractSocket::ConnectedState)
                to->write(from->readAll());
        });
        connect(to, &QTcpSocket::connected, from, [from, to] { to->write(from->readAll()); });
        connect(from, &QTcpSocket::disconnected, to, [to] { to->disconnectFromHost(); });
    }

    QTcpServer m_server;
    quint16 m_targetPort;
    std::vector<QTcpSocket *> m_links;
    bool m_cut = false;
};
