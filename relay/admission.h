#pragma once

#include "tokentable.h"

#include <QHash>
#include <QObject>
#include <QSslConfiguration>
#include <QStringList>

class QNetworkRequest;
class QTcpSocket;
class QWebSocket;
class QWebSocketCorsAuthenticator;

// Who gets in, and what a token grants: the connection limits (counted from
// the TCP accept, so sockets still in their handshake count), the deadline
// for the TLS and HTTP handshakes, TLS itself, the origin allow-list, and
// every token decision the relay makes. The relay asks; Admission decides
// and counts refusals. Single-threaded, like the relay.
class Admission : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY(Admission)
public:
    struct Limits
    {
        int maxConnections = 10000;
        int maxConnectionsPerAddress = 2000;
        int handshakeTimeoutMs = 5000; // TLS + HTTP upgrade
        QStringList allowedOrigins;    // empty allows every origin
    };

    // A token decision. reason, when refused, is for the `unauthorized`
    // error; it never contains the token.
    struct Verdict
    {
        bool allowed = true;
        bool writable = true;
        QString reason;
    };
    enum class Moment { Open, Reload };

    explicit Admission(const Limits &limits, QObject *parent = nullptr);
    ~Admission() override;

    // The relay's TLS policy applied to a server configuration: TLS 1.2 or
    // later, and no client certificates (peers are authenticated by token).
    static QSslConfiguration secured(const QSslConfiguration &configuration);

    // Takes a freshly accepted socket: refuses it over a limit, else counts
    // it until it is destroyed, runs the TLS handshake for a QSslSocket, and
    // emits readyForUpgrade() when it may go to the WebSocket handshake.
    void accept(QTcpSocket *socket);
    // The TCP socket under an upgraded WebSocket; it stops being timed.
    QTcpSocket *takeUpgraded(const QWebSocket *socket);
    void checkOrigin(QWebSocketCorsAuthenticator *authenticator);

    int sockets() const { return m_sockets; }
    int handshaking() const { return int(m_handshaking.size()); }
    // Counted since start, for the relay's metrics.
    struct Counts
    {
        quint64 accepted = 0;          // TCP connections taken in
        quint64 refusedLimit = 0;      // over --max-connections or --max-per-address
        quint64 refusedOrigin = 0;     // not in the origin allow-list
        quint64 refusedToken = 0;      // no token, or an unknown one, at the upgrade
        quint64 handshakeTimeouts = 0; // TLS or the upgrade not done in time
        quint64 tlsFailures = 0;
    };
    const Counts &counts() const { return m_counts; }
    quint64 refused() const { return m_counts.refusedLimit + m_counts.refusedOrigin + m_counts.refusedToken; }
    // Limits that can change at run time (a reload); the handshake
    // timeout applies to sockets accepted from now on.
    void setLimits(const Limits &limits) { m_limits = limits; }

    // Tokens. Until setTokens() is called every connection gets in and may
    // write every map.
    void setTokens(const TokenTable &tokens);
    bool requiresTokens() const { return m_tokensRequired; }
    int tokenCount() const { return m_tokens.tokenCount(); }
    // At the upgrade: reads the token the request presents into *token.
    Verdict admit(const QNetworkRequest &request, QByteArray *token);
    // After a reload: may a connection that presented token stay?
    Verdict recheck(const QByteArray &token) const;
    // May token open uri (at open), or keep it open (after a reload), and write it?
    Verdict grant(const QByteArray &token, const QString &uri, Moment moment) const;

Q_SIGNALS:
    void readyForUpgrade(QTcpSocket *socket);
    void logMessage(const QString &line);

private:
    Limits m_limits;
    TokenTable m_tokens;
    bool m_tokensRequired = false;
    QHash<QString, int> m_perAddress;             // sockets per remote address
    QHash<QString, QTcpSocket *> m_handshaking;   // "address:port" -> socket not yet upgraded
    int m_sockets = 0;
    Counts m_counts;
};
