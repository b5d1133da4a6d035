#include "inspectorsession.h"

#include "connection.h"
#include "distributedmap.h"
#include "hostedrelay.h"
#include "localstore.h"

#include <QJsonObject>
#include <QPointer>
#include <QTcpSocket>
#include <QTimer>

namespace {
// A local relay that exists answers a TCP connect at once; waiting longer
// would only delay the newcomer's first map.
constexpr int ProbeTimeoutMs = 800;

bool isLoopback(const QUrl &url)
{
    const QString host = url.host();
    return host == QLatin1String("127.0.0.1") || host == QLatin1String("localhost") || host == QLatin1String("::1");
}

QJsonObject presenceFor(const QString &name)
{
    return {{QStringLiteral("name"), name}};
}
} // namespace

InspectorSession::InspectorSession(const Options &options, QObject *parent)
    : QObject(parent)
    , m_options(options)
{
}

InspectorSession::~InspectorSession()
{
    qDeleteAll(m_opening);
    // Maps say goodbye over the connection, so they go first.
    for (const OpenMap &open : std::as_const(m_maps))
        delete open.map;
    m_maps.clear();
    delete m_connection;
}

void InspectorSession::start()
{
    const QUrl url = m_options.url;
    if (m_options.hostWhenMissing && isLoopback(url) && url.port() > 0)
        probeThenConnect(url);
    else
        connectTo(url);
}

void InspectorSession::probeThenConnect(const QUrl &url)
{
    m_probe = new QTcpSocket(this);
    auto *timeout = new QTimer(m_probe);
    timeout->setSingleShot(true);
    const auto finish = [this, url](bool answered) {
        if (!m_probe)
            return;
        m_probe->abort();
        m_probe->deleteLater();
        m_probe = nullptr;
        Q_EMIT probingChanged(false);
        // Two apps started together may both find the port free; the one
        // that loses the race to listen simply joins the other's relay.
        if (!answered && hostRelay(quint16(url.port())))
            Q_EMIT message(tr("No relay answered at %1: hosting one in this app").arg(url.toString()));
        connectTo(url);
    };
    connect(m_probe, &QTcpSocket::connected, this, [finish] { finish(true); });
    connect(m_probe, &QTcpSocket::errorOccurred, this, [finish] { finish(false); });
    connect(timeout, &QTimer::timeout, this, [finish] { finish(false); });
    timeout->start(ProbeTimeoutMs);
    Q_EMIT probingChanged(true);
    m_probe->connectToHost(url.host(), quint16(url.port()));
}

void InspectorSession::connectTo(const QUrl &url)
{
    if (m_connection && m_connection->url() == url)
        return;
    QStringList uris = mapUris();
    if (uris.isEmpty())
        uris = m_options.maps;
    closeAllMaps();
    delete m_connection;

    m_connection = new Connection(url, this);
    connect(m_connection, &Connection::errorOccurred, this,
            [this](Connection::Error, const QString &text) { Q_EMIT message(text); });
    m_connection->open();
    Q_EMIT connectionChanged(m_connection);
    for (const QString &uri : std::as_const(uris))
        openMap(uri);
}

void InspectorSession::reconnect()
{
    if (!m_connection)
        return;
    m_connection->close();
    m_connection->open();
}

DistributedMap *InspectorSession::openMap(const QString &uri)
{
    if (uri.isEmpty() || m_opening.contains(uri))
        return nullptr;
    if (DistributedMap *existing = map(uri))
        return existing;
    if (!m_options.useStore || !m_connection) {
        finishOpening(uri, nullptr, false);
        return m_maps.constLast().map;
    }
    // The relay keeps nothing: this file is what keeps the map alive when
    // every peer has closed it. It is read in a worker thread (a store of a
    // million keys took seconds, with the window frozen), and the map is
    // made once it is, so that it joins the network with what it kept.
    const QString path = LocalStore::defaultPathFor(m_connection->url(), uri);
    auto *store = new LocalStore(path, uri, this);
    m_opening.insert(uri, store);
    connect(store, &LocalStore::openFinished, this, [this, uri, store](bool ok) {
        if (m_opening.value(uri) == store) {
            m_opening.remove(uri);
            finishOpening(uri, store, ok);
        }
    });
    store->openInBackground();
    return nullptr;
}

void InspectorSession::finishOpening(const QString &uri, LocalStore *store, bool stored)
{
    OpenMap open;
    open.map = new DistributedMap(m_connection, uri, this);
    open.map->setPresence(presenceFor(m_options.name));
    if (!store) {
        open.storeStatus = tr("Not stored on this computer");
    } else if (!stored || !store->attach(open.map)) {
        const QString why = store->errorString();
        delete store;
        Q_EMIT message(tr("Not storing %1: %2").arg(uri, why));
        open.storeStatus = tr("Not stored: %1").arg(why);
    } else {
        // A child of the map, so it goes first.
        store->setParent(open.map);
        connect(store, &LocalStore::errorOccurred, this,
                [this](LocalStore::Error, const QString &text) { Q_EMIT message(tr("Store: %1").arg(text)); });
        const auto &report = store->loadReport();
        if (report.entries > 0)
            Q_EMIT message(tr("Loaded %1 keys of %2 from %3").arg(report.entries).arg(uri, store->path()));
        if (!report.damagedCopy.isEmpty())
            Q_EMIT message(tr("The store of %1 was damaged; a copy is at %2").arg(uri, report.damagedCopy));
        open.store = store;
        open.storeStatus = tr("Stored in %1").arg(store->path());
    }
    m_maps.append(open);
    if (!store) {
        Q_EMIT mapOpened(open.map);
        return;
    }
    // Its view is built in the next turn: a large map's attach and its
    // tab each take tens of milliseconds, and together they would stall
    // the window for their sum.
    QMetaObject::invokeMethod(this, [this, map = QPointer<DistributedMap>(open.map)] {
        if (map)
            Q_EMIT mapOpened(map);
    }, Qt::QueuedConnection);
}

void InspectorSession::closeMap(const QString &uri)
{
    delete m_opening.take(uri);
    const int index = indexOf(uri);
    if (index < 0)
        return;
    DistributedMap *map = m_maps.takeAt(index).map;
    Q_EMIT mapAboutToClose(map);
    delete map;
}

void InspectorSession::closeAllMaps()
{
    // A store still being read belongs to the relay being left.
    qDeleteAll(m_opening);
    m_opening.clear();
    while (!m_maps.isEmpty())
        closeMap(m_maps.constLast().map->uri());
}

int InspectorSession::indexOf(const QString &uri) const
{
    for (int i = 0; i < m_maps.size(); ++i) {
        if (m_maps.at(i).map->uri() == uri)
            return i;
    }
    return -1;
}

DistributedMap *InspectorSession::map(const QString &uri) const
{
    const int index = indexOf(uri);
    return index < 0 ? nullptr : m_maps.at(index).map;
}

QStringList InspectorSession::mapUris() const
{
    QStringList uris;
    uris.reserve(m_maps.size());
    for (const OpenMap &open : m_maps)
        uris.append(open.map->uri());
    uris += m_opening.keys(); // opening: they count as open
    return uris;
}

LocalStore *InspectorSession::store(const QString &uri) const
{
    const int index = indexOf(uri);
    return index < 0 ? nullptr : m_maps.at(index).store;
}

QString InspectorSession::storeStatus(const QString &uri) const
{
    const int index = indexOf(uri);
    return index < 0 ? QString() : m_maps.at(index).storeStatus;
}

bool InspectorSession::hostRelay(quint16 port)
{
    if (m_relay) {
        Q_EMIT message(tr("Already hosting a relay at %1").arg(m_relay->url().toString()));
        return port == 0 || port == m_relay->port();
    }
    auto *relay = new HostedRelay(this);
    if (!relay->listen(port)) {
        Q_EMIT message(tr("Could not host a relay on port %1: %2").arg(port).arg(relay->errorString()));
        delete relay;
        return false;
    }
    m_relay = relay;
    Q_EMIT relayHosted(relay);
    return true;
}

void InspectorSession::setDisplayName(const QString &name)
{
    if (name == m_options.name)
        return;
    m_options.name = name;
    for (const OpenMap &open : std::as_const(m_maps))
        open.map->setPresence(presenceFor(name));
    Q_EMIT displayNameChanged(name);
}
