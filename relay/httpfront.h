#pragma once

#include <QAbstractHttpServer>
#include <QHash>
#include <QStringList>

#include <functional>

class QTcpServer;
class QTcpSocket;

// The web side of the relay, on the WebSocket's own port: a socket's first
// request is looked at before anything reads it; a WebSocket upgrade goes
// on to the relay (upgradeRequested), any other request to Qt's HTTP
// server, which answers GET for the files compiled in under :/web (the
// browser client and the web inspector). One request per connection: the
// front only sees a connection's first request, so it closes after it.
class HttpFront : public QAbstractHttpServer
{
    Q_OBJECT
public:
    // The largest request head accepted (request line and headers).
    static constexpr int MaxHeadBytes = 16 * 1024;

    explicit HttpFront(QObject *parent = nullptr);
    ~HttpFront() override;

    // Off: every request goes to the WebSocket server, as before HTTP was
    // served (distmap relay --no-http).
    void setEnabled(bool enabled) { m_enabled = enabled; }
    bool isEnabled() const { return m_enabled; }
    // The same allow-list as WebSocket handshakes (empty allows any).
    void setAllowedOrigins(const QStringList &origins) { m_allowedOrigins = origins; }
    // Off: no files from :/web, only the handlers below (the relay's
    // --metrics-listen port).
    void setServeFiles(bool serve) { m_serveFiles = serve; }
    // Off: a WebSocket upgrade is answered 400 instead of going on.
    void setAcceptUpgrades(bool accept) { m_acceptUpgrades = accept; }

    // A computed answer for GET `path` (/metrics, /healthz, /readyz), asked
    // for each request; it takes precedence over files.
    struct Reply
    {
        int status = 200;
        QByteArray contentType = "text/plain; charset=utf-8";
        QByteArray body;
    };
    void setHandler(const QString &path, std::function<Reply()> handler);
    void removeHandler(const QString &path) { m_handlers.remove(path); }

    void take(QTcpSocket *socket);

    // What to do with a connection whose first bytes are `head` (at most
    // MaxHeadBytes + 4 of them). Plain: the fuzzer calls it directly.
    enum class Verdict { NeedMore, Upgrade, Serve, TooLarge, BadMethod, HasBody };
    static Verdict classify(const QByteArray &head, bool serveHttp);

    quint64 requestsServed() const { return m_served; }
    quint64 requestsRefused() const { return m_refused; }

Q_SIGNALS:
    void upgradeRequested(QTcpSocket *socket);

protected:
    bool handleRequest(const QHttpServerRequest &request, QTcpSocket *socket) override;
    void missingHandler(const QHttpServerRequest &request, QTcpSocket *socket) override;

private:
    void sniff(QTcpSocket *socket);
    void refuse(QTcpSocket *socket, int status, const QByteArray &reason, const QByteArray &extraHeaders = {});

    bool m_enabled = true;
    bool m_serveFiles = true;
    bool m_acceptUpgrades = true;
    QHash<QString, std::function<Reply()>> m_handlers;
    QStringList m_allowedOrigins;
    QTcpServer *m_handoff = nullptr;
    QHash<QString, QString> m_files; // request path -> resource path
    quint64 m_served = 0;
    quint64 m_refused = 0;
};
