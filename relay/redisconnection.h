#pragma once

#include "redisreply.h"

#include <QObject>
#include <QUrl>

#include <memory>

class QTcpSocket;
struct redisReader;

// One connection to Redis, on the relay's event loop: a QTcpSocket the relay
// owns, with hiredis used only to format commands and parse replies
// (Debian 12's hiredis 0.14 async API aborts on sharded pub/sub pushes and
// has no timeouts). It authenticates and selects the database itself, then
// says opened(). It never reconnects on its own: RedisBus decides when.
class RedisConnection : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY(RedisConnection)
public:
    struct Address
    {
        QString host;
        quint16 port = 6379;
        QByteArray user;     // empty: AUTH with the password only
        QByteArray password; // empty: no AUTH
        int db = 0;
        QByteArray clientName; // CLIENT SETNAME, so CLIENT LIST tells connections apart; empty: none
    };
    // redis://[user:password@]host[:port][/db]; false and *error when not.
    static bool parseUrl(const QString &url, Address *address, QString *error);

    // Past this many unsent bytes send() refuses: the caller cuts what
    // produces the traffic rather than let the queue grow.
    static constexpr qint64 MaxPendingBytes = 64 * 1024 * 1024;
    // A connect or handshake that takes longer fails.
    static constexpr int ConnectTimeoutMs = 5000;

    explicit RedisConnection(QObject *parent = nullptr);
    ~RedisConnection() override;

    void open(const Address &address);
    void close();
    bool isOpen() const { return m_state == State::Open; }

    // Queues one command (arguments are binary-safe). false when the
    // connection is not open or its queue is full.
    bool send(const QList<QByteArray> &arguments);
    qint64 pendingBytes() const;
    // At exit: tries briefly to write what is queued (a bye to the others).
    void flushForShutdown();

Q_SIGNALS:
    void opened();
    // The connection is gone (refused, dropped, a protocol error, a failed
    // AUTH); reason is for the log and never contains the password.
    void closed(const QString &reason);
    void replyReceived(const RedisReply &reply);

private:
    enum class State { Closed, Connecting, Handshake, Open };
    void onConnected();
    void onReadyRead();
    void fail(const QString &reason);
    void write(const QList<QByteArray> &arguments);

    QTcpSocket *m_socket = nullptr;
    redisReader *m_reader = nullptr;
    State m_state = State::Closed;
    Address m_address;
    int m_handshakeReplies = 0; // AUTH / SELECT answers still to come
    class QTimer *m_deadline = nullptr;
};
