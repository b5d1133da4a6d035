#include "mainwindow.h"

#include "connectbar.h"
#include "connection.h"
#include "deltalogmodel.h"
#include "deltalogview.h"
#include "displayformat.h"
#include "distributedmap.h"
#include "hostedrelay.h"
#include "inspectorsession.h"
#include "mapview.h"
#include "relaypanel.h"
#include "uiformat.h"

#include <QAction>
#include <QCloseEvent>
#include <QComboBox>
#include <QDockWidget>
#include <QInputDialog>
#include <QLabel>
#include <QMenuBar>
#include <QStatusBar>
#include <QTabWidget>
#include <QUrl>

MainWindow::MainWindow(const Options &options, QWidget *parent)
    : QMainWindow(parent)
    , m_settings(options.useSettings)
{
    setWindowTitle(tr("distmap inspector"));
    setObjectName(QStringLiteral("inspectorWindow"));
    InspectorSession::Options session;
    session.url = QUrl(options.url);
    session.maps = options.maps.isEmpty() ? m_settings.openMaps() : options.maps;
    session.name = options.name.isEmpty() ? m_settings.name() : options.name;
    if (session.name.isEmpty())
        session.name = qEnvironmentVariable("USER", QStringLiteral("inspector"));
    session.hostWhenMissing = options.hostWhenMissing;
    session.useStore = options.useStore;

    m_tabs = new QTabWidget(this);
    m_tabs->setObjectName(QStringLiteral("mapTabs"));
    m_tabs->setAccessibleName(tr("Open maps"));
    m_tabs->setTabsClosable(true);
    m_tabs->setDocumentMode(true);
    setCentralWidget(m_tabs);
    connect(m_tabs, &QTabWidget::tabCloseRequested, this, &MainWindow::closeMap);
    connect(m_tabs, &QTabWidget::currentChanged, this, &MainWindow::updateStatus);

    m_relayPanel = new RelayPanel(this);
    m_relayDock = new QDockWidget(tr("Hosted relay"), this);
    m_relayDock->setObjectName(QStringLiteral("relayDock"));
    m_relayDock->setWidget(m_relayPanel);
    addDockWidget(Qt::RightDockWidgetArea, m_relayDock);
    m_relayDock->hide();

    m_connectBar = new ConnectBar(this);
    m_connectBar->setUrls(QStringList{options.url} + m_settings.recentUrls());
    m_connectBar->setMaps(session.maps + m_settings.recentMaps() + QStringList{QStringLiteral("/distributed-map")});
    m_connectBar->setDisplayName(session.name);
    addToolBar(m_connectBar);
    connect(m_connectBar, &ConnectBar::openRequested, this, &MainWindow::openFromBar);
    connect(m_connectBar, &ConnectBar::displayNameEdited, this, &MainWindow::setDisplayName);
    connect(m_connectBar, &ConnectBar::message, this, &MainWindow::showMessage);

    buildActions();
    buildStatusBar();

    restoreGeometry(m_settings.windowGeometry());
    restoreState(m_settings.windowState());
    if (session.maps.isEmpty())
        session.maps.append(m_connectBar->mapBox()->currentText());

    m_session = new InspectorSession(session, this);
    connect(m_session, &InspectorSession::probingChanged, this, &MainWindow::updateStatus);
    connect(m_session, &InspectorSession::connectionChanged, this, &MainWindow::showConnection);
    connect(m_session, &InspectorSession::mapOpened, this, &MainWindow::addMapView);
    connect(m_session, &InspectorSession::mapAboutToClose, this, &MainWindow::removeMapView);
    connect(m_session, &InspectorSession::relayHosted, this, &MainWindow::showHostedRelay);
    connect(m_session, &InspectorSession::displayNameChanged, this, &MainWindow::showDisplayName);
    connect(m_session, &InspectorSession::message, this, &MainWindow::showMessage);
    m_session->start();
    updateStatus();
}

MainWindow::~MainWindow()
{
    // Views read their maps until they are gone, so they go first; the
    // session then says goodbye to the relay for each map.
    m_session->disconnect(this);
    if (Connection *c = connection())
        c->disconnect(this);
    while (m_tabs->count() > 0)
        delete m_tabs->widget(0);
    delete m_session;
    m_session = nullptr;
}

void MainWindow::buildActions()
{
    const auto current = [this] { return currentMapView(); };
    QMenu *file = menuBar()->addMenu(tr("&File"));
    file->addAction(m_connectBar->openAction());
    m_closeTabAction = file->addAction(tr("&Close map"), this, [this] { closeMap(m_tabs->currentIndex()); });
    m_closeTabAction->setShortcut(QKeySequence::Close);
    m_exportAction = file->addAction(tr("&Export deltas log\u2026"), this, [current] {
        if (MapView *view = current())
            view->logView()->exportLog();
    });
    m_exportAction->setShortcut(QKeySequence(QStringLiteral("Ctrl+Shift+E")));
    file->addSeparator();
    file->addAction(tr("&Import JSON into map\u2026"), this, [current] {
        if (MapView *view = current())
            view->importMap();
    });
    file->addAction(tr("Export map as &JSON\u2026"), this, [current] {
        if (MapView *view = current())
            view->exportMap();
    });
    file->addSeparator();
    QAction *quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);

    QMenu *edit = menuBar()->addMenu(tr("&Edit"));
    m_addKeyAction = edit->addAction(tr("&Add key"), this, [current] {
        if (MapView *view = current())
            view->focusAddKey();
    });
    m_addKeyAction->setShortcut(QKeySequence::New);
    // No shortcut of its own: the keys table already edits on F2, and a
    // window-wide F2 would take the key from other widgets.
    edit->addAction(tr("&Edit value\tF2"), this, [current] {
        if (MapView *view = current())
            view->editCurrentValue();
    });
    m_deleteAction = edit->addAction(tr("&Delete selected keys"), this, [current] {
        if (MapView *view = current())
            view->deleteSelected();
    });
    m_deleteAction->setShortcut(QKeySequence::Delete);
    edit->addSeparator();
    m_filterAction = edit->addAction(tr("&Filter keys"), this, [current] {
        if (MapView *view = current())
            view->focusFilter();
    });
    m_filterAction->setShortcut(QKeySequence::Find);
    m_filterLogAction = edit->addAction(tr("Filter deltas &log"), this, [current] {
        if (MapView *view = current())
            view->logView()->focusFilter();
    });
    m_filterLogAction->setShortcut(QKeySequence(QStringLiteral("Ctrl+Shift+F")));

    QMenu *view = menuBar()->addMenu(tr("&View"));
    m_pauseAction = view->addAction(tr("&Pause deltas log"));
    m_pauseAction->setCheckable(true);
    m_pauseAction->setShortcut(QKeySequence(QStringLiteral("Ctrl+Shift+P")));
    connect(m_pauseAction, &QAction::toggled, this, [current](bool paused) {
        if (MapView *view = current())
            view->logView()->setPaused(paused);
    });
    m_clearLogAction = view->addAction(tr("&Clear deltas log"), this, [current] {
        if (MapView *view = current())
            view->logView()->clear();
    });
    m_clearLogAction->setShortcut(QKeySequence(QStringLiteral("Ctrl+Shift+L")));
    view->addSeparator();
    view->addAction(m_relayDock->toggleViewAction());

    QMenu *network = menuBar()->addMenu(tr("&Network"));
    m_reconnectAction = network->addAction(tr("&Reconnect"), this, [this] { m_session->reconnect(); });
    m_reconnectAction->setShortcut(QKeySequence(QStringLiteral("Ctrl+R")));
    m_hostAction = network->addAction(tr("&Host a relay\u2026"), this, &MainWindow::askHostRelay);
    m_hostAction->setShortcut(QKeySequence(QStringLiteral("Ctrl+Shift+H")));
}

void MainWindow::buildStatusBar()
{
    m_stateLabel = new QLabel(this);
    m_stateLabel->setAccessibleName(tr("Connection state"));
    m_peerLabel = new QLabel(this);
    m_peerLabel->setAccessibleName(tr("Your peer id"));
    m_peerLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_syncLabel = new QLabel(this);
    m_syncLabel->setAccessibleName(tr("Map sync state"));
    m_rateLabel = new QLabel(this);
    m_rateLabel->setAccessibleName(tr("Delta rate"));
    m_relayLabel = new QLabel(this);
    m_relayLabel->setAccessibleName(tr("Hosted relay"));
    for (QLabel *label : {m_stateLabel, m_peerLabel, m_syncLabel, m_rateLabel, m_relayLabel})
        statusBar()->addPermanentWidget(label);
}

Connection *MainWindow::connection() const
{
    return m_session ? m_session->connection() : nullptr;
}

HostedRelay *MainWindow::relay() const
{
    return m_session ? m_session->hostedRelay() : nullptr;
}

int MainWindow::mapCount() const
{
    return m_tabs->count();
}

MapView *MainWindow::mapView(int index) const
{
    return qobject_cast<MapView *>(m_tabs->widget(index));
}

MapView *MainWindow::mapView(const QString &uri) const
{
    for (int i = 0; i < m_tabs->count(); ++i) {
        if (MapView *view = mapView(i); view && view->uri() == uri)
            return view;
    }
    return nullptr;
}

MapView *MainWindow::currentMapView() const
{
    return qobject_cast<MapView *>(m_tabs->currentWidget());
}

QString MainWindow::displayName() const
{
    return m_session->displayName();
}

void MainWindow::connectTo(const QUrl &url)
{
    m_session->connectTo(url);
}

MapView *MainWindow::openMap(const QString &uri)
{
    const DistributedMap *map = m_session->openMap(uri);
    if (!map)
        return nullptr;
    MapView *view = mapView(uri);
    if (view)
        m_tabs->setCurrentWidget(view);
    return view;
}

void MainWindow::addMapView(DistributedMap *map)
{
    auto *view = new MapView(map, m_tabs);
    view->setStore(m_session->store(map->uri()));
    view->restoreState(m_settings.mapViewState());
    connect(view, &MapView::statusChanged, this, [this, view] {
        if (view == currentMapView())
            updateStatus();
    });
    connect(view, &MapView::message, this, &MainWindow::showMessage);
    const QString uri = map->uri();
    const int index = m_tabs->addTab(view, uri);
    const Connection *c = connection();
    m_tabs->setTabToolTip(index, tr("%1 on %2\n%3").arg(uri, c ? c->url().toString() : QString(), m_session->storeStatus(uri)));
    m_tabs->setCurrentIndex(index);
    m_connectBar->rememberMap(uri);
    m_settings.rememberMap(uri);
}

void MainWindow::removeMapView(DistributedMap *map)
{
    for (int i = 0; i < m_tabs->count(); ++i) {
        MapView *view = mapView(i);
        if (view && view->map() == map) {
            m_tabs->removeTab(i);
            delete view;
            break;
        }
    }
    updateStatus();
}

void MainWindow::closeMap(int index)
{
    MapView *view = mapView(index);
    if (!view)
        return;
    m_settings.setMapViewState(view->saveState());
    m_session->closeMap(view->uri());
}

void MainWindow::showConnection(Connection *connection)
{
    connect(connection, &Connection::stateChanged, this, &MainWindow::updateStatus);
    const QString url = connection->url().toString();
    m_connectBar->rememberUrl(url);
    m_settings.rememberUrl(url);
    updateStatus();
}

void MainWindow::openFromBar(const QUrl &url, const QString &uri)
{
    if (connection() && connection()->url() != url) {
        // A new relay: the open maps move there, plus the requested one.
        m_session->setStartMaps(QStringList{uri});
        m_session->connectTo(url);
    }
    openMap(uri);
}

bool MainWindow::hostRelay(quint16 port)
{
    return m_session->hostRelay(port);
}

void MainWindow::showHostedRelay(HostedRelay *relay)
{
    m_relayPanel->setRelay(relay);
    m_relayDock->show();
    const QString url = relay->url().toString();
    m_connectBar->rememberUrl(url);
    m_settings.rememberUrl(url);
    updateStatus();
}

void MainWindow::askHostRelay()
{
    if (HostedRelay *hosted = relay()) {
        m_relayDock->show();
        m_relayDock->raise();
        showMessage(tr("Already hosting a relay at %1").arg(hosted->url().toString()));
        return;
    }
    auto *dialog = new QInputDialog(this);
    dialog->setWindowTitle(tr("Host a relay"));
    dialog->setLabelText(tr("Port for the relay on 127.0.0.1 (0 picks a free port):"));
    dialog->setInputMode(QInputDialog::IntInput);
    dialog->setIntRange(0, 65535);
    dialog->setIntValue(0);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QInputDialog::intValueSelected, this, [this](int port) {
        if (hostRelay(quint16(port)))
            showMessage(tr("Hosting a relay at %1 (port %2): choose it in the Relay box to join it")
                            .arg(relay()->url().toString())
                            .arg(relay()->port()));
    });
    dialog->open();
}

void MainWindow::setDisplayName(const QString &name)
{
    m_session->setDisplayName(name);
}

void MainWindow::showDisplayName(const QString &name)
{
    m_connectBar->setDisplayName(name);
    for (int i = 0; i < m_tabs->count(); ++i)
        mapView(i)->refreshSelf();
}

void MainWindow::updateStatus()
{
    if (!m_stateLabel || !m_session)
        return;
    const Connection *c = connection();
    QString state = tr("offline");
    if (m_session->isProbing()) {
        state = tr("looking for a relay\u2026");
    } else if (c) {
        switch (c->state()) {
        case Connection::Closed:
            state = tr("offline");
            break;
        case Connection::Connecting:
            state = tr("connecting\u2026");
            break;
        case Connection::Connected:
            state = tr("connected");
            break;
        case Connection::Reconnecting:
            state = tr("reconnecting\u2026");
            break;
        }
    }
    m_stateLabel->setText(c ? tr("%1 to %2").arg(state, c->url().toString()) : state);
    m_peerLabel->setText(c ? tr("you: %1").arg(UiFormat::shortPeerId(c->peerId())) : QString());
    m_peerLabel->setToolTip(c ? DisplayFormat::peerId(c->peerId()) : QString());
    if (MapView *view = currentMapView()) {
        const DistributedMap *map = view->map();
        const DistributedMap::SyncStatus status = map->syncStatus();
        m_syncLabel->setText(UiFormat::syncStatusText(status));
        m_syncLabel->setToolTip(UiFormat::syncStatusToolTip(status));
        m_rateLabel->setText(tr("%1 deltas/s").arg(view->deltaRate()));
        if (m_pauseAction && m_pauseAction->isChecked() != view->logModel()->isPaused()) {
            const QSignalBlocker block(m_pauseAction);
            m_pauseAction->setChecked(view->logModel()->isPaused());
        }
    } else {
        m_syncLabel->clear();
        m_rateLabel->clear();
    }
    const HostedRelay *hosted = relay();
    m_relayLabel->setText(hosted ? tr("hosting relay on port %1").arg(hosted->port()) : QString());
    m_relayLabel->setVisible(hosted != nullptr);
}

void MainWindow::showMessage(const QString &text)
{
    qCInfo(lcUi) << text;
    statusBar()->showMessage(text, 8000);
}

void MainWindow::saveSettings()
{
    if (!m_settings.isEnabled())
        return;
    m_settings.setWindowGeometry(saveGeometry());
    m_settings.setWindowState(saveState());
    m_settings.setName(m_session->displayName());
    QStringList open;
    for (int i = 0; i < m_tabs->count(); ++i)
        open.append(mapView(i)->uri());
    m_settings.setOpenMaps(open);
    if (MapView *view = currentMapView())
        m_settings.setMapViewState(view->saveState());
}

void MainWindow::closeEvent(QCloseEvent *event)
{
    saveSettings();
    QMainWindow::closeEvent(event);
}
