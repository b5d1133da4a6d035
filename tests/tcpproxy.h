#pragma once

// A loopback TCP proxy a test can cut: the link between one process and a
// server fails on its own, as a network partition would, while everything
// else keeps its connections. Bytes pass through unchanged. While cut, new
// connections are held (as packets to an unreachable host would be) and
// reach the server once the link is restored, so a client's retry goes
// through as soon as the test says, whatever its backoff has grown to.
#include <QHostAddress>
#include <QTcpServer>
#include <QTcpSocket>

#include <utility>
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
                if (m_cut)
                    m_held.push_back(in);
                else
                    link(in);
            }
        });
    }

    quint16 port() const { return m_server.serverPort(); }

    // Drops every connection through the proxy; new ones wait for restore().
    void cut()
    {
        m_cut = true;
        for (QTcpSocket *in : std::exchange(m_links, {})) {
            in->abort();
            in->deleteLater();
        }
    }
    void restore()
    {
        m_cut = false;
        for (QTcpSocket *in : std::exchange(m_held, {})) {
            if (in->state() == QAbstractSocket::ConnectedState)
                link(in);
            else
                in->deleteLater(); // the client gave up meanwhile
        }
    }

private:
    void link(QTcpSocket *in)
    {
        auto *out = new QTcpSocket(in);
        out->connectToHost(QHostAddress::LocalHost, m_targetPort);
        pipe(in, out);
        pipe(out, in);
        m_links.push_back(in);
    }

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
    std::vector<QTcpSocket *> m_held;
    bool m_cut = false;
};
