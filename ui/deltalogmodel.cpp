#include "deltalogmodel.h"

#include "displayformat.h"
#include "mapstate.h"
#include "uiformat.h"

#include <QDateTime>
#include <QIODevice>
#include <QJsonDocument>

namespace {

// Values can be large; the log keeps a prefix so its memory stays bounded.
constexpr int StoredValueBytes = 4096;

QString operationName(DistributedMap::DeltaEvent::Operation op)
{
    switch (op) {
    case DistributedMap::DeltaEvent::Set:
        return QStringLiteral("set");
    case DistributedMap::DeltaEvent::Delete:
        return QStringLiteral("delete");
    case DistributedMap::DeltaEvent::SyncChunk:
        return QStringLiteral("sync chunk");
    }
    return {};
}

QString outcomeName(MapState::Outcome outcome)
{
    switch (outcome) {
    case MapState::Outcome::Applied:
        return QStringLiteral("applied");
    case MapState::Outcome::Superseded:
        return QStringLiteral("superseded");
    case MapState::Outcome::Duplicate:
        return QStringLiteral("duplicate");
    }
    return {};
}

} // namespace

DeltaLogModel::DeltaLogModel(QObject *parent)
    : QAbstractTableModel(parent)
{
    m_batchTimer.setSingleShot(true);
    m_batchTimer.setInterval(100);
    connect(&m_batchTimer, &QTimer::timeout, this, &DeltaLogModel::flush);
}

DeltaLogModel::~DeltaLogModel() = default;

int DeltaLogModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : m_count;
}

int DeltaLogModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

const DeltaLogModel::Record &DeltaLogModel::record(int row) const
{
    return m_ring.at((m_head + row) % m_ring.size());
}

QVariant DeltaLogModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const Record &r = record(index.row());
    const DistributedMap::DeltaEvent &e = r.event;
    const bool incoming = e.direction == DistributedMap::DeltaEvent::Incoming;
    switch (role) {
    case OutcomeRole:
        return int(e.outcome);
    case OperationRole:
        return int(e.operation);
    case DirectionRole:
        return int(e.direction);
    case PeerIdRole:
        return e.peer;
    case KeyRole:
        return e.key;
    case DetailsRole:
        return QString::fromUtf8(QJsonDocument(toJson(index.row())).toJson(QJsonDocument::Indented));
    case Qt::ToolTipRole:
        if (e.outcome == MapState::Outcome::Superseded)
            return tr("A newer write to this key was already here: this one lost");
        if (index.column() == PeerColumn)
            return DisplayFormat::peerId(e.peer);
        return {};
    case Qt::DisplayRole:
    case Qt::AccessibleTextRole:
        switch (index.column()) {
        case TimeColumn:
            return UiFormat::timeOfDay(r.timeMs);
        case DirectionColumn:
            return incoming ? tr("\u2193 in") : tr("\u2191 out");
        case PeerColumn:
            return m_nameOf ? m_nameOf(e.peer) : UiFormat::shortPeerId(e.peer);
        case OperationColumn:
            return operationName(e.operation);
        case KeyColumn:
            if (e.operation == DistributedMap::DeltaEvent::SyncChunk)
                return tr("(%n entries)", nullptr, e.count);
            return e.key;
        case ValueColumn:
            return UiFormat::elided(QString::fromUtf8(e.value.left(400)), 120);
        case ClockColumn:
            return UiFormat::clockStamp(e.hlc);
        case OutcomeColumn:
            if (e.operation == DistributedMap::DeltaEvent::SyncChunk || !incoming)
                return QString();
            return outcomeName(e.outcome);
        }
        return {};
    default:
        return {};
    }
}

QVariant DeltaLogModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    static const char *const names[] = {QT_TR_NOOP("Time"), QT_TR_NOOP("Dir"),   QT_TR_NOOP("Peer"),
                                        QT_TR_NOOP("Operation"), QT_TR_NOOP("Key"), QT_TR_NOOP("Value"),
                                        QT_TR_NOOP("Clock"), QT_TR_NOOP("Outcome")};
    return section >= 0 && section < ColumnCount ? tr(names[section]) : QVariant();
}

void DeltaLogModel::append(const DistributedMap::DeltaEvent &event)
{
    Record r;
    r.timeMs = QDateTime::currentMSecsSinceEpoch();
    r.event = event;
    if (r.event.value.size() > StoredValueBytes)
        r.event.value.truncate(StoredValueBytes);
    if (m_pending.size() >= m_capacity) {
        // Older pending deltas would be trimmed right after insertion anyway.
        m_pending.removeFirst();
        ++m_dropped;
    }
    m_pending.append(std::move(r));
    if (!m_paused && !m_batchTimer.isActive())
        m_batchTimer.start();
}

void DeltaLogModel::flush()
{
    m_batchTimer.stop();
    if (m_paused || m_pending.isEmpty())
        return;
    const int incoming = int(m_pending.size());
    const int overflow = m_count + incoming - m_capacity;
    if (overflow > 0) {
        const int trim = qMin(overflow, m_count);
        beginRemoveRows({}, 0, trim - 1);
        for (int i = 0; i < trim; ++i)
            at(i) = Record(); // release keys and values now
        m_head = (m_head + trim) % m_capacity;
        m_count -= trim;
        m_dropped += trim;
        endRemoveRows();
    }
    if (m_ring.size() != m_capacity)
        m_ring.resize(m_capacity);
    beginInsertRows({}, m_count, m_count + incoming - 1);
    for (Record &r : m_pending)
        m_ring[(m_head + m_count++) % m_capacity] = std::move(r);
    m_pending.clear();
    endInsertRows();
}

void DeltaLogModel::setPaused(bool paused)
{
    if (m_paused == paused)
        return;
    m_paused = paused;
    if (!paused)
        flush();
}

void DeltaLogModel::clear()
{
    beginResetModel();
    m_ring = QVector<Record>();
    m_head = 0;
    m_count = 0;
    m_pending.clear();
    endResetModel();
}

void DeltaLogModel::setCapacity(int rows)
{
    rows = qMax(1, rows);
    if (rows == m_capacity)
        return;
    // Re-laying the ring out is rare (a user action): drop the oldest with a
    // row removal, then copy into a ring of the new size.
    if (m_count > rows) {
        const int trim = m_count - rows;
        beginRemoveRows({}, 0, trim - 1);
        m_head = (m_head + trim) % m_ring.size();
        m_count = rows;
        m_dropped += trim;
        endRemoveRows();
    }
    QVector<Record> ring(rows);
    for (int i = 0; i < m_count; ++i)
        ring[i] = std::move(at(i));
    m_ring = std::move(ring);
    m_head = 0;
    m_capacity = rows;
    while (m_pending.size() > rows) {
        m_pending.removeFirst();
        ++m_dropped;
    }
}

QJsonObject DeltaLogModel::toJson(int row) const
{
    const Record &r = record(row);
    const DistributedMap::DeltaEvent &e = r.event;
    QJsonObject o{
        {QStringLiteral("time"), QDateTime::fromMSecsSinceEpoch(r.timeMs).toString(Qt::ISODateWithMs)},
        {QStringLiteral("direction"), e.direction == DistributedMap::DeltaEvent::Incoming ? QStringLiteral("in")
                                                                                            : QStringLiteral("out")},
        {QStringLiteral("peer"), DisplayFormat::peerId(e.peer)},
        {QStringLiteral("operation"), operationName(e.operation)},
    };
    if (m_nameOf)
        o.insert(QStringLiteral("peerName"), m_nameOf(e.peer));
    if (e.operation == DistributedMap::DeltaEvent::SyncChunk) {
        o.insert(QStringLiteral("entries"), e.count);
    } else {
        o.insert(QStringLiteral("key"), e.key);
        if (e.operation == DistributedMap::DeltaEvent::Set)
        {
            // A value cut short for storage is no longer JSON: keep its text.
            const QJsonValue value = DisplayFormat::parseJson(e.value);
            o.insert(QStringLiteral("value"), value.isUndefined() ? QJsonValue(QString::fromUtf8(e.value)) : value);
        }
        o.insert(QStringLiteral("hlc"), QString::number(e.hlc));
        o.insert(QStringLiteral("clock"), UiFormat::clockStamp(e.hlc));
        o.insert(QStringLiteral("writer"), DisplayFormat::peerId(e.writer));
        if (e.direction == DistributedMap::DeltaEvent::Incoming)
            o.insert(QStringLiteral("outcome"), outcomeName(e.outcome));
    }
    return o;
}

int DeltaLogModel::writeJsonLines(QIODevice *device) const
{
    int written = 0;
    for (int row = 0; row < m_count; ++row) {
        QByteArray line = QJsonDocument(toJson(row)).toJson(QJsonDocument::Compact);
        line.append('\n');
        if (device->write(line) != line.size())
            break;
        ++written;
    }
    return written;
}
