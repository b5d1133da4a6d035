#pragma once

#include "distmap_global.h"
#include "maptypes.h"

#include <QHash>
#include <QObject>
#include <QSslConfiguration>
#include <QTimer>
#include <QUrl>

#include <memory>

class QWebSocket;
class MapChannel;
class MapChannelReceiver;
namespace Control {
struct Error;
}

/// One WebSocket connection to a relay, carrying any number of maps.
/// Reconnects by itself with exponential backoff (jittered) until close();
/// after every (re)connect each attached map reopens and resyncs.
/// Lives in one thread; every call and signal is in that thread.
class DISTMAP_EXPORT Connection : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY(Connection)
    Q_PROPERTY(QUrl url READ url CONSTANT)
    Q_PROPERTY(State state READ state NOTIFY stateChanged)
public:
    /// Where the connection stands; stateChanged() reports every change.
    enum State {
        Closed,       //!< not connected and not trying (initial, or after close())
        Connecting,   //!< first attempt in progress
        Connected,    //!< handshake done; maps are open or opening
        Reconnecting, //!< lost the relay (or never reached it); retrying
    };
    Q_ENUM(State)

    /// What errorOccurred() reports.
    enum Error {
        NoError = 0,   //!< no error yet
        SocketError,   //!< the relay could not be reached or the link dropped
        ProtocolError, //!< the relay sent something we cannot read
        RelayError,    //!< the relay reported an error (code in the message)
    };
    Q_ENUM(Error)

    /// A closed connection to the relay at url; nothing happens until open().
    explicit Connection(const QUrl &url, QObject *parent = nullptr);
    /// Aborts the socket; attached maps are told the connection is gone.
    ~Connection() override;

    QUrl url() const { return m_url; } //!< the relay tried now
    /// Relays of one federated network (docs/SCALING.md): after a lost or
    /// failed connection the next is tried, in turn. Call before open();
    /// the first becomes url().
    void setUrls(const QList<QUrl> &urls);
    /// The relays this connection tries in turn: those given to setUrls(),
    /// or just url() when there is one.
    QList<QUrl> urls() const { return m_urls.isEmpty() && !m_url.isEmpty() ? QList<QUrl>{m_url} : m_urls; }
    /// Where the connection stands now.
    State state() const { return m_state; }
    /// This peer's id: random at construction, claimed at every handshake and
    /// confirmed by the relay (which refuses an id already connected).
    quint64 peerId() const { return m_peerId; }
    /// Claim this id instead (a store's saved id); 0 is ignored. Call before open().
    void setPeerId(quint64 id)
    {
        if (id)
            m_peerId = id;
    }

    /// Reconnect backoff bounds, milliseconds (defaults 200 and 5000).
    void setReconnectDelays(int minimumMs, int maximumMs);
    /// How long one attempt may take, from opening the socket to the
    /// relay's welcome, before it is dropped and the next one is made
    /// (default 10000 ms; 0 waits as long as TCP does). A relay that
    /// accepts and never answers, or a connect whose packets are lost,
    /// would otherwise hold the connection for minutes.
    void setHandshakeTimeout(int ms) { m_handshakeTimeoutMs = qMax(0, ms); }
    /// Extra HTTP headers for the handshake (e.g. an access token).
    void setHandshakeHeader(const QByteArray &name, const QByteArray &value);
    /// Sends `Authorization: Bearer TOKEN` at every handshake (docs/PROTOCOL.md 3).
    void setToken(const QByteArray &token) { setHandshakeHeader("Authorization", "Bearer " + token); }
    /// TLS settings for wss:// URLs, e.g. a private CA in its CA certificates.
    /// The default verifies the relay against the system CAs; certificate
    /// errors are never ignored: they end the attempt and are reported.
    void setSslConfiguration(const QSslConfiguration &configuration) { m_ssl = configuration; }

    /// The relay's wall clock minus ours, in milliseconds, learned at the
    /// handshake (0 before the first).
    qint64 relayClockOffset() const { return m_clockOffsetMs; }
    /// The largest message the relay accepts, as its welcome said (the
    /// protocol's default until a relay says otherwise).
    qint64 maxMessageBytes() const { return m_maxMessageBytes; }

    /// Starts connecting (state Connecting); no-op unless Closed.
    void open();
    /// Closes the socket and stops reconnecting (state Closed); open() again
    /// to reconnect.
    void close();

    /// Asks the relay to answer once it has processed everything this
    /// connection sent before; pongReceived(seq) follows. Returns the ping's
    /// seq, or 0 when not connected (nothing is sent).
    quint32 ping();

    /// The last error reported through errorOccurred (NoError if none yet).
    Error error() const { return m_error; }
    /// The message of the last error reported through errorOccurred.
    QString errorString() const { return m_errorString; }
    /// For RelayError: the relay's error code (docs/PROTOCOL.md section 6).
    Wire::ErrorCode relayErrorCode() const { return m_relayError; }

    /// A channel for one map (DistributedMap opens one; tests may too). The
    /// receiver hears channelUp() after every later handshake; when the
    /// connection is up already (isUp()), the caller opens the map itself.
    /// Destroying the channel detaches the receiver. Internal (lib/mapchannel.h).
    std::unique_ptr<MapChannel> openChannel(const QString &uri, MapChannelReceiver *receiver);

    quint64 bytesSent() const { return m_bytesSent; }         //!< bytes of the messages sent, text and binary (no WebSocket framing)
    quint64 framesSent() const { return m_framesSent; }       //!< binary messages sent
    quint64 bytesReceived() const { return m_bytesReceived; } //!< bytes of the messages received, text and binary

Q_SIGNALS:
    /// Emitted on every change of state().
    void stateChanged(Connection::State state);
    /// Something went wrong; message says what in a sentence. SocketError
    /// follows every failed attempt and lost link. After a RelayError for
    /// UnsupportedVersion or Unauthorized the connection closes itself:
    /// retrying cannot help.
    void errorOccurred(Connection::Error error, const QString &message);
    /// The relay answered ping() number seq.
    void pongReceived(quint32 seq);

private:
    class Channel;
    friend class Channel;
    void sendControl(const QByteArray &text);
    void sendBinary(const QByteArray &frame);
    void routeMapId(Channel *channel, quint32 oldId, quint32 newId);
    void removeChannel(Channel *channel);
    void reportError(Error error, const QString &message);
    void handleRelayError(const Control::Error &error);

    void startSocket();
    // Forgets the socket at once: no signal of it reaches us any more.
    void dropSocket();
    void setState(State state);
    void scheduleReconnect();
    // The link is gone: every channel hears channelDown(). False if it was not up.
    bool takeChannelsDown();
    void onConnected();
    void onDisconnected();
    void onHandshakeTimeout();
    void onText(const QString &text);
    void onBinary(const QByteArray &frame);
    void protocolError(const QString &message);

    QUrl m_url;
    QList<QUrl> m_urls; // empty, or every relay to try, m_url among them
    State m_state = Closed;
    QWebSocket *m_socket = nullptr;
    bool m_welcomed = false;
    quint64 m_peerId = 0;
    qint64 m_clockOffsetMs = 0;
    qint64 m_maxMessageBytes = Wire::DefaultMaxMessageBytes;
    int m_attempt = 0;
    int m_minDelayMs = 200;
    int m_maxDelayMs = 5000;
    QTimer m_reconnectTimer;
    QTimer m_handshakeTimer;
    int m_handshakeTimeoutMs = 10000;
    quint32 m_pingSeq = 0;
    quint64 m_bytesSent = 0;
    quint64 m_framesSent = 0;
    quint64 m_bytesReceived = 0;
    QList<QPair<QByteArray, QByteArray>> m_headers;
    QSslConfiguration m_ssl;
    Error m_error = NoError;
    QString m_errorString;
    Wire::ErrorCode m_relayError = Wire::ErrorCode::NoError;
    QList<Channel *> m_channels;
    QHash<quint32, Channel *> m_channelsById;
};
