#include "peersmodel.h"

#include "connection.h"
#include "displayformat.h"
#include "uiformat.h"

#include <QDateTime>
#include <QFont>

namespace {
QString presenceName(const QJsonObject &presence)
{
    return presence.value(QStringLiteral("name")).toString();
}
} // namespace

PeersModel::PeersModel(DistributedMap *map, QObject *parent)
    : QAbstractTableModel(parent)
    , m_map(map)
{
    m_counterTimer.setSingleShot(true);
    m_counterTimer.setInterval(250);
    connect(&m_counterTimer, &QTimer::timeout, this, &PeersModel::refreshCounters);

    Row self;
    self.sinceMs = QDateTime::currentMSecsSinceEpoch();
    m_rows.append(self);
    if (!map)
        return;
    refreshSelf();
    const auto peers = map->peers();
    for (const DistributedMap::Peer &peer : peers)
        addPeer(peer);
    m_syncSource = map->lastSyncSource();
    connect(map, &DistributedMap::peerJoined, this, &PeersModel::addPeer);
    connect(map, &DistributedMap::peerLeft, this, &PeersModel::removePeer);
    connect(map, &DistributedMap::peerPresenceChanged, this, &PeersModel::renamePeer);
    connect(map, &DistributedMap::deltaObserved, this, &PeersModel::countDelta);
    connect(map, &DistributedMap::syncingChanged, this, [this](bool syncing) {
        if (syncing || !m_map)
            return;
        m_syncSource = m_map->lastSyncSource();
        Q_EMIT dataChanged(index(0, SyncColumn), index(rowCount() - 1, SyncColumn));
    });
    if (Connection *connection = map->connection()) {
        connect(connection, &Connection::stateChanged, this, [this](Connection::State state) {
            if (state == Connection::Connected)
                refreshSelf();
        });
    }
}

PeersModel::~PeersModel() = default;

int PeersModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_rows.size());
}

int PeersModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant PeersModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const Row &row = m_rows.at(index.row());
    const bool self = index.row() == 0;
    switch (role) {
    case PeerIdRole:
        return row.id;
    case IsSelfRole:
        return self;
    case Qt::FontRole:
        if (self) {
            QFont font;
            font.setBold(true);
            return font;
        }
        return {};
    case Qt::ToolTipRole:
        if (index.column() == IdColumn)
            return DisplayFormat::peerId(row.id);
        if (index.column() == SyncColumn && row.id == m_syncSource && m_syncSource)
            return tr("This peer answered our last sync request");
        return {};
    case Qt::DisplayRole:
    case Qt::AccessibleTextRole:
        switch (index.column()) {
        case NameColumn: {
            const QString name = row.name.isEmpty() ? tr("(no name)") : row.name;
            return self ? tr("%1 (you)").arg(name) : name;
        }
        case IdColumn:
            return UiFormat::shortPeerId(row.id);
        case SinceColumn:
            return QDateTime::fromMSecsSinceEpoch(row.sinceMs).toString(QStringLiteral("HH:mm:ss"));
        case SentColumn:
            return row.sent;
        case ReceivedColumn:
            return row.received;
        case SyncColumn:
            return (m_syncSource && row.id == m_syncSource) ? tr("served our sync") : QString();
        }
        return {};
    case Qt::TextAlignmentRole:
        if (index.column() == SentColumn || index.column() == ReceivedColumn)
            return QVariant(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    default:
        return {};
    }
}

QVariant PeersModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case NameColumn:
        return tr("Name");
    case IdColumn:
        return tr("Id");
    case SinceColumn:
        return tr("Since");
    case SentColumn:
        return tr("Sent");
    case ReceivedColumn:
        return tr("Received");
    case SyncColumn:
        return tr("Sync");
    }
    return {};
}

int PeersModel::rowOf(quint64 peer) const
{
    for (int i = 0; i < m_rows.size(); ++i) {
        if (m_rows.at(i).id == peer)
            return i;
    }
    return -1;
}

quint64 PeersModel::selfId() const
{
    return m_rows.first().id;
}

QString PeersModel::nameOf(quint64 peer) const
{
    return m_names.value(peer);
}

QString PeersModel::displayName(quint64 peer) const
{
    if (peer == selfId())
        return tr("you");
    const QString name = m_names.value(peer);
    return name.isEmpty() ? UiFormat::shortPeerId(peer) : name;
}

void PeersModel::refreshSelf()
{
    if (!m_map)
        return;
    Row &self = m_rows.first();
    self.id = m_map->connection() ? m_map->connection()->peerId() : 0;
    self.name = presenceName(m_map->presence());
    m_names.insert(self.id, self.name);
    Q_EMIT dataChanged(index(0, 0), index(0, ColumnCount - 1));
}

void PeersModel::addPeer(const DistributedMap::Peer &peer)
{
    const QString name = presenceName(peer.presence);
    m_names.insert(peer.id, name);
    const int existing = rowOf(peer.id);
    if (existing >= 0) {
        m_rows[existing].name = name;
        Q_EMIT dataChanged(index(existing, 0), index(existing, ColumnCount - 1));
    } else {
        Row row;
        row.id = peer.id;
        row.name = name;
        row.sinceMs = peer.joinedMs ? peer.joinedMs : QDateTime::currentMSecsSinceEpoch();
        const int at = int(m_rows.size());
        beginInsertRows({}, at, at);
        m_rows.append(row);
        endInsertRows();
    }
    Q_EMIT peerNamed(peer.id, name);
}

void PeersModel::removePeer(quint64 peer)
{
    const int row = rowOf(peer);
    if (row <= 0)
        return;
    beginRemoveRows({}, row, row);
    m_rows.remove(row);
    endRemoveRows();
}

void PeersModel::renamePeer(const DistributedMap::Peer &peer)
{
    if (peer.id == selfId())
        return refreshSelf();
    addPeer(peer);
}

void PeersModel::countDelta(const DistributedMap::DeltaEvent &event)
{
    const quint64 n = quint64(qMax(1, event.count));
    Row &self = m_rows.first();
    if (event.direction == DistributedMap::DeltaEvent::Incoming) {
        self.received += n;
        const int row = rowOf(event.peer);
        if (row > 0)
            m_rows[row].sent += n;
    } else {
        self.sent += n;
        if (event.operation == DistributedMap::DeltaEvent::SyncChunk) {
            const int row = rowOf(event.peer);
            if (row > 0)
                m_rows[row].received += n;
        } else {
            for (int i = 1; i < m_rows.size(); ++i)
                m_rows[i].received += n;
        }
    }
    if (!m_counterTimer.isActive())
        m_counterTimer.start();
}

void PeersModel::refreshCounters()
{
    Q_EMIT dataChanged(index(0, SentColumn), index(rowCount() - 1, ReceivedColumn), {Qt::DisplayRole});
}
