#pragma once

#include <QHash>
#include <QObject>
#include <QPointer>
#include <QStringList>
#include <QUrl>
#include <QVector>

class Connection;
class DistributedMap;
class HostedRelay;
class LocalStore;
class QTcpSocket;

// What the inspector does besides showing things: one Connection to a relay,
// the maps open on it (each kept in its local store), the display name other
// peers see, and a relay hosted in this process when none answers at a
// loopback address. Widget-free: the window shows what this holds, and tests
// drive it on a QCoreApplication.
//
// The session owns the maps; views get them from mapOpened() and must drop
// them on mapAboutToClose(). Nothing here waits on the network: probing,
// connecting and syncing all report by signal. One thread.
class InspectorSession : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY(InspectorSession)
public:
    struct Options
    {
        QUrl url;                     // relay to connect to at start()
        QStringList maps;             // maps to open when connecting with none open
        QString name;                 // display name, sent as presence {"name": …}
        bool hostWhenMissing = false; // host a relay on url's port when nothing answers there
        // Keep every open map in a local store (LocalStore::defaultPathFor),
        // so the data outlives the last peer.
        bool useStore = true;
    };

    explicit InspectorSession(const Options &options, QObject *parent = nullptr);
    ~InspectorSession() override; // closes the maps, then the connection

    // Connects to Options::url. With hostWhenMissing and a loopback URL with
    // a port, it first checks whether a relay answers there and hosts one on
    // that port when none does.
    void start();
    // True while start() looks for a relay (there is no connection yet).
    bool isProbing() const { return m_probe != nullptr; }
    Connection *connection() const { return m_connection; }
    HostedRelay *hostedRelay() const { return m_relay; }

    // Moves the open maps (or, with none open, the start maps) to a new
    // connection to url; does nothing when already connected there.
    void connectTo(const QUrl &url);
    // The maps connectTo() opens when none is open (default: Options::maps).
    void setStartMaps(const QStringList &uris) { m_options.maps = uris; }
    QStringList startMaps() const { return m_options.maps; }
    // Closes and reopens the connection, e.g. to retry a relay at once.
    void reconnect();

    // Opens uri on the current connection and attaches its store; returns
    // the map already open under uri, or nullptr for an empty uri. With a
    // store, the store is read in a worker thread first and the map made
    // when it is: this returns nullptr meanwhile, and mapOpened() brings it.
    DistributedMap *openMap(const QString &uri);
    void closeMap(const QString &uri);
    DistributedMap *map(const QString &uri) const;
    QStringList mapUris() const; // in the order they were opened
    // The map's store, or nullptr when it is not stored.
    LocalStore *store(const QString &uri) const;
    // Where the map is stored, or why it is not, in words.
    QString storeStatus(const QString &uri) const;

    // Hosts a relay in this process on 127.0.0.1; port 0 picks a free one.
    // True when it listens (or an earlier one already does on that port).
    bool hostRelay(quint16 port);

    QString displayName() const { return m_options.name; }
    void setDisplayName(const QString &name);

Q_SIGNALS:
    void probingChanged(bool probing);
    // connectTo() replaced the connection; the old one and its maps are gone.
    void connectionChanged(Connection *connection);
    void mapOpened(DistributedMap *map);
    // The map is deleted right after this returns.
    void mapAboutToClose(DistributedMap *map);
    void relayHosted(HostedRelay *relay);
    void displayNameChanged(const QString &name);
    // Something the user should read: errors, what was loaded, hosting.
    void message(const QString &text);

private:
    struct OpenMap
    {
        DistributedMap *map = nullptr;
        LocalStore *store = nullptr; // a child of the map
        QString storeStatus;
    };

    void probeThenConnect(const QUrl &url);
    void finishOpening(const QString &uri, LocalStore *store, bool stored);
    void closeAllMaps();
    int indexOf(const QString &uri) const;

    Options m_options;
    QPointer<Connection> m_connection;
    HostedRelay *m_relay = nullptr;
    QTcpSocket *m_probe = nullptr;
    QVector<OpenMap> m_maps;
    // Maps whose store is being read (openMap()): made when it is.
    QHash<QString, LocalStore *> m_opening;
};
