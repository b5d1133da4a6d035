#include "mainwindow.h"

#include "connection.h"
#include "deltalogmodel.h"
#include "deltalogview.h"
#include "displayformat.h"
#include "distributedmap.h"
#include "hostedrelay.h"
#include "localstore.h"
#include "mapview.h"
#include "relaypanel.h"
#include "uiformat.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QComboBox>
#include <QDockWidget>
#include <QInputDialog>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QTcpSocket>
#include <QTimer>
#include <QToolBar>

namespace {
constexpr int RecentItems = 10;
// A local relay that exists answers a TCP connect at once; waiting longer
// would only delay the newcomer's first map.
constexpr int ProbeTimeoutMs = 800;

bool isLoopback(const QUrl &url)
{
    const QString host = url.host();
    return host == QLatin1String("127.0.0.1") || host == QLatin1String("localhost") || host == QLatin1String("::1");
}
} // namespace

MainWindow::MainWindow(const Options &options, QWidget *parent)
    : QMainWindow(parent)
    , m_options(options)
{
    setWindowTitle(tr("distmap inspector"));
    setObjectName(QStringLiteral("inspectorWindow"));
    QSettings settings;
    if (m_options.useSettings) {
        if (m_options.name.isEmpty())
            m_options.name = settings.value(QStringLiteral("name")).toString();
        if (m_options.maps.isEmpty())
            m_options.maps = settings.value(QStringLiteral("openMaps")).toStringList();
    }
    if (m_options.name.isEmpty())
        m_options.name = qEnvironmentVariable("USER", QStringLiteral("inspector"));

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

    buildConnectBar();
    buildActions();

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

    if (m_options.useSettings) {
        restoreGeometry(settings.value(QStringLiteral("geometry")).toByteArray());
        restoreState(settings.value(QStringLiteral("windowState")).toByteArray());
    }
    if (m_options.maps.isEmpty())
        m_options.maps.append(m_mapBox->currentText());

    const QUrl url(m_options.url);
    if (m_options.hostWhenMissing && isLoopback(url) && url.port() > 0)
        probeThenConnect(url);
    else
        connectTo(url);
    updateStatus();
}

MainWindow::~MainWindow()
{
    // Maps say goodbye over the connection, so they go first.
    while (m_tabs->count() > 0)
        delete m_tabs->widget(0);
}

void MainWindow::buildConnectBar()
{
    QSettings settings;
    QToolBar *bar = addToolBar(tr("Connection"));
    bar->setObjectName(QStringLiteral("connectBar"));
    bar->setMovable(false);

    m_urlBox = new QComboBox(bar);
    m_urlBox->setObjectName(QStringLiteral("relayUrl"));
    m_urlBox->setEditable(true);
    m_urlBox->setInsertPolicy(QComboBox::NoInsert);
    m_urlBox->setMinimumContentsLength(22);
    m_urlBox->setAccessibleName(tr("Relay URL"));
    m_urlBox->setToolTip(tr("Relay URL, e.g. ws://127.0.0.1:7357"));
    QStringList urls{m_options.url};
    if (m_options.useSettings)
        urls += settings.value(QStringLiteral("recentUrls")).toStringList();
    urls.removeDuplicates();
    m_urlBox->addItems(urls);

    m_mapBox = new QComboBox(bar);
    m_mapBox->setObjectName(QStringLiteral("mapUri"));
    m_mapBox->setEditable(true);
    m_mapBox->setInsertPolicy(QComboBox::NoInsert);
    m_mapBox->setMinimumContentsLength(16);
    m_mapBox->setAccessibleName(tr("Map URI"));
    m_mapBox->setToolTip(tr("Map URI, e.g. /distributed-map"));
    QStringList maps = m_options.maps;
    if (m_options.useSettings)
        maps += settings.value(QStringLiteral("recentMaps")).toStringList();
    maps.append(QStringLiteral("/distributed-map"));
    maps.removeDuplicates();
    m_mapBox->addItems(maps);

    m_nameEdit = new QLineEdit(m_options.name, bar);
    m_nameEdit->setObjectName(QStringLiteral("displayName"));
    m_nameEdit->setAccessibleName(tr("Your display name"));
    m_nameEdit->setToolTip(tr("The name other peers see"));
    m_nameEdit->setMaximumWidth(160);

    auto *urlLabel = new QLabel(tr("&Relay "), bar);
    urlLabel->setBuddy(m_urlBox);
    auto *mapLabel = new QLabel(tr("  &Map "), bar);
    mapLabel->setBuddy(m_mapBox);
    auto *nameLabel = new QLabel(tr("  Na&me "), bar);
    nameLabel->setBuddy(m_nameEdit);
    bar->addWidget(urlLabel);
    bar->addWidget(m_urlBox);
    bar->addWidget(mapLabel);
    bar->addWidget(m_mapBox);
    bar->addWidget(nameLabel);
    bar->addWidget(m_nameEdit);

    m_openAction = new QAction(tr("&Open map"), this);
    m_openAction->setShortcut(QKeySequence::Open);
    m_openAction->setToolTip(tr("Connect to the relay and open the map in a tab (Ctrl+O, or Return in a field)"));
    connect(m_openAction, &QAction::triggered, this, &MainWindow::openFromBar);
    bar->addAction(m_openAction);

    connect(m_urlBox->lineEdit(), &QLineEdit::returnPressed, this, &MainWindow::openFromBar);
    connect(m_mapBox->lineEdit(), &QLineEdit::returnPressed, this, &MainWindow::openFromBar);
    connect(m_nameEdit, &QLineEdit::editingFinished, this, [this] { setDisplayName(m_nameEdit->text()); });
    setTabOrder(m_urlBox, m_mapBox);
    setTabOrder(m_mapBox, m_nameEdit);
}

void MainWindow::buildActions()
{
    const auto current = [this] { return currentMapView(); };
    QMenu *file = menuBar()->addMenu(tr("&File"));
    file->addAction(m_openAction);
    m_closeTabAction = file->addAction(tr("&Close map"), this, [this] { closeMap(m_tabs->currentIndex()); });
    m_closeTabAction->setShortcut(QKeySequence::Close);
    m_exportAction = file->addAction(tr("&Export deltas log\u2026"), this, [current] {
        if (MapView *view = current())
            view->logView()->exportLog();
    });
    m_exportAction->setShortcut(QKeySequence(QStringLiteral("Ctrl+Shift+E")));
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
    m_reconnectAction = network->addAction(tr("&Reconnect"), this, [this] {
        if (m_connection) {
            m_connection->close();
            m_connection->open();
        }
    });
    m_reconnectAction->setShortcut(QKeySequence(QStringLiteral("Ctrl+R")));
    m_hostAction = network->addAction(tr("&Host a relay\u2026"), this, &MainWindow::askHostRelay);
    m_hostAction->setShortcut(QKeySequence(QStringLiteral("Ctrl+Shift+H")));
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
    return m_options.name;
}

void MainWindow::probeThenConnect(const QUrl &url)
{
    m_stateLabel->setText(tr("looking for a relay\u2026"));
    m_probe = new QTcpSocket(this);
    auto *timeout = new QTimer(m_probe);
    timeout->setSingleShot(true);
    const auto finish = [this, url](bool answered) {
        if (!m_probe)
            return;
        m_probe->abort();
        m_probe->deleteLater();
        m_probe = nullptr;
        // Two apps started together may both find the port free; the one
        // that loses the race to listen simply joins the other's relay.
        if (!answered && hostRelay(quint16(url.port())))
            showMessage(tr("No relay answered at %1: hosting one in this app").arg(url.toString()));
        connectTo(url);
    };
    connect(m_probe, &QTcpSocket::connected, this, [finish] { finish(true); });
    connect(m_probe, &QTcpSocket::errorOccurred, this, [finish] { finish(false); });
    connect(timeout, &QTimer::timeout, this, [finish] { finish(false); });
    timeout->start(ProbeTimeoutMs);
    m_probe->connectToHost(url.host(), quint16(url.port()));
}

void MainWindow::connectTo(const QUrl &url)
{
    if (m_connection && m_connection->url() == url)
        return;
    QStringList uris;
    for (int i = 0; i < m_tabs->count(); ++i)
        uris.append(mapView(i)->uri());
    if (uris.isEmpty())
        uris = m_options.maps;
    while (m_tabs->count() > 0)
        delete m_tabs->widget(0);
    delete m_connection;

    m_connection = new Connection(url, this);
    connect(m_connection, &Connection::stateChanged, this, &MainWindow::updateStatus);
    connect(m_connection, &Connection::errorOccurred, this,
            [this](Connection::Error, const QString &message) { showMessage(message); });
    m_connection->open();
    remember(QStringLiteral("recentUrls"), url.toString(), m_urlBox);
    for (const QString &uri : std::as_const(uris))
        openMap(uri);
    updateStatus();
}

MapView *MainWindow::openMap(const QString &uri)
{
    if (uri.isEmpty())
        return nullptr;
    if (MapView *existing = mapView(uri)) {
        m_tabs->setCurrentWidget(existing);
        return existing;
    }
    auto *map = new DistributedMap(m_connection, uri);
    map->setPresence({{QStringLiteral("name"), m_options.name}});
    auto *view = new MapView(map, m_tabs);
    // Until a session owns the maps, each dies with its tab.
    map->setParent(view);
    if (m_options.useSettings)
        view->restoreState(QSettings().value(QStringLiteral("mapViewState")).toByteArray());
    connect(view, &MapView::statusChanged, this, [this, view] {
        if (view == currentMapView())
            updateStatus();
    });
    connect(view, &MapView::message, this, &MainWindow::showMessage);
    const QString where = attachStore(view);
    const int index = m_tabs->addTab(view, uri);
    m_tabs->setTabToolTip(index, tr("%1 on %2\n%3").arg(uri, m_connection ? m_connection->url().toString() : QString(), where));
    m_tabs->setCurrentIndex(index);
    remember(QStringLiteral("recentMaps"), uri, m_mapBox);
    return view;
}

QString MainWindow::attachStore(MapView *view)
{
    if (!m_options.useStore || !m_connection)
        return tr("Not stored on this computer");
    // The relay keeps nothing: this file is what keeps the map alive when
    // every peer has closed it. A child of the map, so it goes first.
    const QString path = LocalStore::defaultPathFor(m_connection->url(), view->uri());
    auto *store = new LocalStore(path, view->uri(), view->map());
    if (!store->open() || !store->attach(view->map())) {
        const QString why = store->errorString();
        delete store;
        showMessage(tr("Not storing %1: %2").arg(view->uri(), why));
        return tr("Not stored: %1").arg(why);
    }
    connect(store, &LocalStore::errorOccurred, this, [this](LocalStore::Error, const QString &message) {
        showMessage(tr("Store: %1").arg(message));
    });
    const auto &report = store->loadReport();
    if (report.entries > 0)
        showMessage(tr("Loaded %1 keys of %2 from %3").arg(report.entries).arg(view->uri(), path));
    if (!report.damagedCopy.isEmpty())
        showMessage(tr("The store of %1 was damaged; a copy is at %2").arg(view->uri(), report.damagedCopy));
    return tr("Stored in %1").arg(path);
}

void MainWindow::closeMap(int index)
{
    MapView *view = mapView(index);
    if (!view)
        return;
    if (m_options.useSettings)
        QSettings().setValue(QStringLiteral("mapViewState"), view->saveState());
    m_tabs->removeTab(index);
    delete view;
    updateStatus();
}

void MainWindow::openFromBar()
{
    const QUrl url = QUrl::fromUserInput(m_urlBox->currentText().trimmed());
    if (!url.isValid() || (url.scheme() != QLatin1String("ws") && url.scheme() != QLatin1String("wss"))) {
        showMessage(tr("A relay URL looks like ws://127.0.0.1:7357"));
        m_urlBox->setFocus();
        return;
    }
    const QString uri = m_mapBox->currentText().trimmed();
    if (m_connection && m_connection->url() != url) {
        // A new relay: the open maps move there, plus the requested one.
        m_options.maps = QStringList{uri};
        connectTo(url);
    }
    openMap(uri);
}

bool MainWindow::hostRelay(quint16 port)
{
    if (m_relay) {
        showMessage(tr("Already hosting a relay at %1").arg(m_relay->url().toString()));
        return port == 0 || port == m_relay->port();
    }
    auto *relay = new HostedRelay(this);
    if (!relay->listen(port)) {
        showMessage(tr("Could not host a relay on port %1: %2").arg(port).arg(relay->errorString()));
        delete relay;
        return false;
    }
    m_relay = relay;
    m_relayPanel->setRelay(relay);
    m_relayDock->show();
    remember(QStringLiteral("recentUrls"), relay->url().toString(), m_urlBox);
    updateStatus();
    return true;
}

void MainWindow::askHostRelay()
{
    if (m_relay) {
        m_relayDock->show();
        m_relayDock->raise();
        showMessage(tr("Already hosting a relay at %1").arg(m_relay->url().toString()));
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
                            .arg(m_relay->url().toString())
                            .arg(m_relay->port()));
    });
    dialog->open();
}

void MainWindow::setDisplayName(const QString &name)
{
    if (name == m_options.name)
        return;
    m_options.name = name;
    if (m_nameEdit->text() != name)
        m_nameEdit->setText(name);
    for (int i = 0; i < m_tabs->count(); ++i) {
        mapView(i)->map()->setPresence({{QStringLiteral("name"), name}});
        mapView(i)->refreshSelf();
    }
}

void MainWindow::updateStatus()
{
    if (!m_stateLabel)
        return;
    QString state = tr("offline");
    if (m_probe) {
        state = tr("looking for a relay\u2026");
    } else if (m_connection) {
        switch (m_connection->state()) {
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
    m_stateLabel->setText(m_connection ? tr("%1 to %2").arg(state, m_connection->url().toString()) : state);
    m_peerLabel->setText(m_connection ? tr("you: %1").arg(UiFormat::shortPeerId(m_connection->peerId())) : QString());
    m_peerLabel->setToolTip(m_connection ? DisplayFormat::peerId(m_connection->peerId()) : QString());
    if (MapView *view = currentMapView()) {
        const DistributedMap *map = view->map();
        m_syncLabel->setText(map->isSyncing() ? tr("syncing\u2026") : map->isReady() ? tr("ready") : tr("not synced"));
        m_rateLabel->setText(tr("%1 deltas/s").arg(view->deltaRate()));
        if (m_pauseAction && m_pauseAction->isChecked() != view->logModel()->isPaused()) {
            const QSignalBlocker block(m_pauseAction);
            m_pauseAction->setChecked(view->logModel()->isPaused());
        }
    } else {
        m_syncLabel->clear();
        m_rateLabel->clear();
    }
    m_relayLabel->setText(m_relay ? tr("hosting relay on port %1").arg(m_relay->port()) : QString());
    m_relayLabel->setVisible(m_relay != nullptr);
}

void MainWindow::showMessage(const QString &text)
{
    qCInfo(lcUi) << text;
    statusBar()->showMessage(text, 8000);
}

void MainWindow::remember(const QString &key, const QString &value, QComboBox *box)
{
    if (value.isEmpty())
        return;
    const int existing = box->findText(value);
    if (existing != 0) {
        if (existing > 0)
            box->removeItem(existing);
        box->insertItem(0, value);
    }
    box->setCurrentIndex(0);
    if (!m_options.useSettings)
        return;
    QSettings settings;
    QStringList recent = settings.value(key).toStringList();
    recent.removeAll(value);
    recent.prepend(value);
    settings.setValue(key, recent.mid(0, RecentItems));
}

void MainWindow::saveSettings()
{
    if (!m_options.useSettings)
        return;
    QSettings settings;
    settings.setValue(QStringLiteral("geometry"), saveGeometry());
    settings.setValue(QStringLiteral("windowState"), saveState());
    settings.setValue(QStringLiteral("name"), m_options.name);
    QStringList open;
    for (int i = 0; i < m_tabs->count(); ++i)
        open.append(mapView(i)->uri());
    settings.setValue(QStringLiteral("openMaps"), open);
    if (MapView *view = currentMapView())
        settings.setValue(QStringLiteral("mapViewState"), view->saveState());
}

void MainWindow::closeEvent(QCloseEvent *event)
{
    saveSettings();
    QMainWindow::closeEvent(event);
}
