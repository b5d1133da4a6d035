#pragma once

// A redis-server of the test's own, on a free loopback port in a temporary
// directory, with nothing saved; stopped by its PID (our child) when the
// object goes.
#include <QProcess>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>

class RedisServer
{
public:
    explicit RedisServer(const QStringList &extra = {})
    {
        QTcpServer probe; // a free port, closed again for redis to take
        probe.listen(QHostAddress::LocalHost, 0);
        m_port = probe.serverPort();
        probe.close();
        m_arguments = QStringList{QStringLiteral("--port"), QString::number(m_port), QStringLiteral("--bind"), QStringLiteral("127.0.0.1"),
                                  QStringLiteral("--save"), QString(), QStringLiteral("--appendonly"), QStringLiteral("no"),
                                  QStringLiteral("--dir"), m_dir.path()} + extra;
        start();
    }
    ~RedisServer() { stop(); }

    bool start()
    {
        m_process.setProgram(QStringLiteral("redis-server"));
        m_process.setArguments(m_arguments);
        m_process.setProcessChannelMode(QProcess::MergedChannels);
        m_process.start();
        if (!m_process.waitForStarted(10000))
            return false;
        // Up when it accepts a connection.
        return QTest::qWaitFor([this] {
            QTcpSocket s;
            s.connectToHost(QHostAddress::LocalHost, m_port);
            return s.waitForConnected(200);
        }, 20000);
    }
    void stop()
    {
        if (m_process.state() == QProcess::NotRunning)
            return;
        m_process.kill(); // our own child
        m_process.waitForFinished(10000);
    }
    void pause() { ::kill(pid_t(m_process.processId()), SIGSTOP); }
    void resume() { ::kill(pid_t(m_process.processId()), SIGCONT); }
    bool isRunning() const { return m_process.state() == QProcess::Running; }
    quint16 port() const { return m_port; }
    QString url() const { return QStringLiteral("redis://127.0.0.1:%1").arg(m_port); }
    QByteArray output() { return m_process.readAll(); }

private:
    QTemporaryDir m_dir;
    QProcess m_process;
    QStringList m_arguments;
    quint16 m_port = 0;
};
