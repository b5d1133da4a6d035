#pragma once

#include "connection.h"

#include <QMainWindow>
#include <QPointer>
#include <QUrl>

class HostedRelay;
class MapView;
class QAction;
class QComboBox;
class QDockWidget;
class QLabel;
class QLineEdit;
class QTabWidget;
class QTcpSocket;
class RelayPanel;

// The inspector's main window: a connect bar (relay URL, map URI, display
// name), one tab per open map over a single Connection, the status bar
// (connection state, peer id, ready/syncing, delta rate, hosted relay) and
// an optional relay panel when this app hosts the relay. Nothing here waits
// on the network: probing, connecting and syncing all report by signal.
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

    Connection *connection() const { return m_connection; }
    HostedRelay *relay() const { return m_relay; }
    RelayPanel *relayPanel() const { return m_relayPanel; }
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
    // Opens and attaches the map's local store; says where it is (or why not).
    QString attachStore(MapView *view);
    // Hosts a relay in this process; port 0 picks a free one. False on failure.
    bool hostRelay(quint16 port);
    void setDisplayName(const QString &name);

    QAction *deleteAction() const { return m_deleteAction; }
    QAction *addKeyAction() const { return m_addKeyAction; }
    QLabel *connectionStateLabel() const { return m_stateLabel; }

protected:
    void closeEvent(QCloseEvent *event) override;

private:
    void buildActions();
    void buildConnectBar();
    void openFromBar();
    void askHostRelay();
    void probeThenConnect(const QUrl &url);
    void updateStatus();
    void showMessage(const QString &text);
    void remember(const QString &key, const QString &value, QComboBox *box);
    void saveSettings();

    Options m_options;
    QPointer<Connection> m_connection;
    HostedRelay *m_relay = nullptr;
    QTcpSocket *m_probe = nullptr;
    QTabWidget *m_tabs = nullptr;
    QComboBox *m_urlBox = nullptr;
    QComboBox *m_mapBox = nullptr;
    QLineEdit *m_nameEdit = nullptr;
    QDockWidget *m_relayDock = nullptr;
    RelayPanel *m_relayPanel = nullptr;
    QLabel *m_stateLabel = nullptr;
    QLabel *m_peerLabel = nullptr;
    QLabel *m_syncLabel = nullptr;
    QLabel *m_rateLabel = nullptr;
    QLabel *m_relayLabel = nullptr;
    QAction *m_openAction = nullptr;
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
