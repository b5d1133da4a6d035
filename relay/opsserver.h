#pragma once

#include "httpfront.h"

#include <QHostAddress>
#include <QObject>

class QTcpServer;

// An HTTP port for operators only (--metrics-listen): GET handlers such as
// /metrics and /healthz, no files, no WebSocket upgrades. Each connection
// gets one request and RequestTimeoutMs to send it.
class OpsServer : public QObject
{
    Q_OBJECT
public:
    static constexpr int RequestTimeoutMs = 5000;

    explicit OpsServer(QObject *parent = nullptr);

    HttpFront *front() const { return m_front; }
    bool listen(const QHostAddress &address, quint16 port, QString *error);
    quint16 port() const;

private:
    QTcpServer *m_tcp = nullptr;
    HttpFront *m_front = nullptr;
};
