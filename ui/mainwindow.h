#pragma once

#include "inspectorsettings.h"

#include <QMainWindow>

class ConnectBar;
class Connection;
class DistributedMap;
class HostedRelay;
class InspectorSession;
class MapView;
class QAction;
class QDockWidget;
class QLabel;
class QTabWidget;
class QUrl;
class RelayPanel;

// The inspector's main window: the connect bar, one tab per map open in the
// InspectorSession, the status bar (connection state, peer id, ready/syncing,
// delta rate, hosted relay), the menus, and the relay panel when the session
// hosts the relay. The session does the networking and keeps the maps; this
// only shows them and turns user actions into session calls.
class MainWindow : public QMainWindow
{
    Q_OBJECT
    Q_DISABLE_COPY(MainWindow)
public:
    struct Options
    {
        QString url;              // relay to connect to
        QStringList maps;         // maps to open at start (default: the last session's)
        QString name;             // display name (default: remembered, else the user name)
        bool hostWhenMissing = false; // host a relay on url's port when nothing answers there
        bool useSettings = true;  // read and write QSettings (tests turn this off)
        // Keep every open map in a local store (LocalStore::defaultPathFor),
        // so the data outlives the last peer. Tests and --no-store turn it off.
        bool useStore = true;
    };

    explicit MainWindow(const Options &options, QWidget *parent = nullptr);
    ~MainWindow() override;

    InspectorSession *session() const { return m_session; }
    Connection *connection() const;
    HostedRelay *relay() const;
    RelayPanel *relayPanel() const { return m_relayPanel; }
    ConnectBar *connectBar() const { return m_connectBar; }
    int mapCount() const;
    MapView *mapView(int index) const;
    MapView *mapView(const QString &uri) const;
    MapView *currentMapView() const;
    QString displayName() const;

    // Connects to url (reopening the open maps there) unless already on it.
    void connectTo(const QUrl &url);
    // Opens the map in a new tab, or shows its tab when already open.
    MapView *openMap(const QString &uri);
    void closeMap(int index);
    // Hosts a relay in this process; port 0 picks a free one. False on failure.
    bool hostRelay(quint16 port);
    void setDisplayName(const QString &name);

    QAction *deleteAction() const { return m_deleteAction; }
    QAction *addKeyAction() const { return m_addKeyAction; }
    QLabel *connectionStateLabel() const { return m_stateLabel; }
    QLabel *syncStateLabel() const { return m_syncLabel; }

protected:
    void closeEvent(QCloseEvent *event) override;

private:
    void buildActions();
    void buildStatusBar();
    void addMapView(DistributedMap *map);
    void removeMapView(DistributedMap *map);
    void showConnection(Connection *connection);
    void showHostedRelay(HostedRelay *relay);
    void showDisplayName(const QString &name);
    void openFromBar(const QUrl &url, const QString &uri);
    void askHostRelay();
    void updateStatus();
    void showMessage(const QString &text);
    void saveSettings();

    InspectorSettings m_settings;
    InspectorSession *m_session = nullptr;
    ConnectBar *m_connectBar = nullptr;
    QTabWidget *m_tabs = nullptr;
    QDockWidget *m_relayDock = nullptr;
    RelayPanel *m_relayPanel = nullptr;
    QLabel *m_stateLabel = nullptr;
    QLabel *m_peerLabel = nullptr;
    QLabel *m_syncLabel = nullptr;
    QLabel *m_rateLabel = nullptr;
    QLabel *m_relayLabel = nullptr;
    QAction *m_closeTabAction = nullptr;
    QAction *m_addKeyAction = nullptr;
    QAction *m_deleteAction = nullptr;
    QAction *m_filterAction = nullptr;
    QAction *m_filterLogAction = nullptr;
    QAction *m_pauseAction = nullptr;
    QAction *m_clearLogAction = nullptr;
    QAction *m_exportAction = nullptr;
    QAction *m_hostAction = nullptr;
    QAction *m_reconnectAction = nullptr;
};
