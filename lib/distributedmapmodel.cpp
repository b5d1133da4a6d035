#include "distributedmapmodel.h"
#include "distributedmap_p.h"

#include "displayformat.h"
#include "entrytable.h"

#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>

#include <algorithm>

namespace {

// Keys handled per batch; the rest waits for the next event-loop pass so a
// sync of a million keys never freezes the window.
constexpr int BatchBudget = 8000;
// Up to this many scattered inserts or removals go out one row at a time;
// beyond it, one contiguous change plus a layout change is cheaper for views.
constexpr int SmallChange = 16;
constexpr int DisplayChars = 200;

char asciiLower(char c)
{
    return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
}

// The first bytes of a value, for display: a long value is never copied whole.
QByteArrayView head(QByteArrayView bytes, qsizetype n)
{
    return bytes.first(qMin(bytes.size(), n));
}

bool containsCaseless(QByteArrayView haystack, const QByteArray &needleLower)
{
    const qsizetype n = needleLower.size();
    if (n == 0)
        return true;
    const char *h = haystack.data();
    const char *e = h + haystack.size() - n;
    for (; h <= e; ++h) {
        qsizetype i = 0;
        while (i < n && asciiLower(h[i]) == needleLower[i])
            ++i;
        if (i == n)
            return true;
    }
    return false;
}

} // namespace

DistributedMapModel::DistributedMapModel(DistributedMap *map, QObject *parent)
    : QAbstractTableModel(parent)
    , m_map(map)
{
    m_batchTimer.setSingleShot(true);
    m_batchTimer.setInterval(50);
    connect(&m_batchTimer, &QTimer::timeout, this, &DistributedMapModel::flush);
    if (map)
        connect(map, &DistributedMap::changed, this, &DistributedMapModel::onChanged);
    rebuild();
}

DistributedMapModel::~DistributedMapModel() = default;

int DistributedMapModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_keys.size());
}

int DistributedMapModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant DistributedMapModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid) || !m_map)
        return {};
    const QString &key = m_keys.at(index.row());
    if (role == KeyRole)
        return key;
    const EntryRef entry = entryOf(key);
    if (!entry)
        return {};
    switch (role) {
    case ValueRole:
        return DisplayFormat::parseJson(entry.value()).toVariant();
    case JsonTextRole:
        return entry.value();
    case HlcRole:
        return entry.hlc();
    case WriterIdRole:
        return entry.writer();
    case WriterNameRole:
        return m_nameOf ? m_nameOf(entry.writer()) : DisplayFormat::shortPeerId(entry.writer());
    case TimeRole:
        return QDateTime::fromMSecsSinceEpoch(DisplayFormat::clockMsSinceEpoch(entry.hlc()), Qt::UTC);
    case LocalRole:
        return entry.writer() == DistributedMapPrivate::get(m_map)->peerId();
    case Qt::DisplayRole:
        switch (index.column()) {
        case KeyColumn:
            return key;
        case ValueColumn:
            return DisplayFormat::elidedUtf8(entry.valueView(), DisplayChars);
        case WriterColumn:
            return m_nameOf ? m_nameOf(entry.writer()) : DisplayFormat::shortPeerId(entry.writer());
        case WhenColumn:
            return DisplayFormat::clockTime(entry.hlc());
        }
        break;
    case Qt::EditRole:
        if (index.column() == ValueColumn)
            return QString::fromUtf8(entry.value());
        if (index.column() == KeyColumn)
            return key;
        break;
    case Qt::ToolTipRole:
        if (index.column() == ValueColumn) {
            const QJsonValue value = DisplayFormat::parseJson(head(entry.valueView(), 64 * 1024).toByteArray());
            if (value.isObject() || value.isArray()) {
                const QJsonDocument doc = value.isObject() ? QJsonDocument(value.toObject()) : QJsonDocument(value.toArray());
                return DisplayFormat::elided(QString::fromUtf8(doc.toJson(QJsonDocument::Indented)), 4000);
            }
            return DisplayFormat::elidedUtf8(entry.valueView(), 4000);
        }
        if (index.column() == WhenColumn)
            return QDateTime::fromMSecsSinceEpoch(DisplayFormat::clockMsSinceEpoch(entry.hlc())).toString(Qt::ISODateWithMs);
        if (index.column() == WriterColumn)
            return DisplayFormat::peerId(entry.writer());
        break;
    case Qt::AccessibleTextRole:
        return data(index, Qt::DisplayRole);
    default:
        break;
    }
    return {};
}

QVariant DistributedMapModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case KeyColumn:
        return tr("Key");
    case ValueColumn:
        return tr("Value");
    case WriterColumn:
        return tr("Last writer");
    case WhenColumn:
        return tr("When");
    }
    return {};
}

Qt::ItemFlags DistributedMapModel::flags(const QModelIndex &index) const
{
    Qt::ItemFlags f = QAbstractTableModel::flags(index);
    if (index.isValid() && index.column() == ValueColumn)
        f |= Qt::ItemIsEditable;
    return f;
}

bool DistributedMapModel::setData(const QModelIndex &index, const QVariant &value, int role)
{
    if (!m_map || !checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return false;
    const QString &key = m_keys.at(index.row());
    // The row refreshes with the next batch, like every other change.
    if (role == ValueRole)
        return m_map->set(key, value);
    QJsonValue json;
    if (role == Qt::EditRole && index.column() == ValueColumn && value.metaType() == QMetaType::fromType<QJsonValue>())
        json = value.toJsonValue();
    else if ((role == Qt::EditRole && index.column() == ValueColumn) || role == JsonTextRole)
        json = DisplayFormat::parseJson(value.metaType() == QMetaType::fromType<QByteArray>() ? value.toByteArray()
                                                                                           : value.toString().toUtf8());
    else
        return false;
    return !json.isUndefined() && m_map->set(key, json);
}

QHash<int, QByteArray> DistributedMapModel::roleNames() const
{
    QHash<int, QByteArray> names = QAbstractTableModel::roleNames();
    names.insert(KeyRole, "key");
    names.insert(ValueRole, "value");
    names.insert(JsonTextRole, "jsonText");
    names.insert(WriterIdRole, "writerId");
    names.insert(WriterNameRole, "writerName");
    names.insert(TimeRole, "time");
    names.insert(HlcRole, "hlc");
    names.insert(LocalRole, "local");
    return names;
}

void DistributedMapModel::sort(int column, Qt::SortOrder order)
{
    if (column != KeyColumn || order == m_order)
        return;
    Q_EMIT layoutAboutToBeChanged({}, QAbstractItemModel::VerticalSortHint);
    const QModelIndexList from = persistentIndexList();
    m_order = order;
    std::reverse(m_keys.begin(), m_keys.end());
    const int n = int(m_keys.size());
    QModelIndexList to;
    to.reserve(from.size());
    for (const QModelIndex &idx : from)
        to.append(index(n - 1 - idx.row(), idx.column()));
    changePersistentIndexList(from, to);
    Q_EMIT layoutChanged({}, QAbstractItemModel::VerticalSortHint);
}

void DistributedMapModel::setFilterText(const QString &text)
{
    if (text == m_filter)
        return;
    m_filter = text;
    m_filterUtf8Lower = text.toLower().toUtf8();
    // A new filter changes which rows exist at all: one reset, on a user action.
    beginResetModel();
    rebuild();
    endResetModel();
}

void DistributedMapModel::rebuild()
{
    m_keys.clear();
    m_pending.clear();
    m_pendingKeys.clear();
    m_pendingHead = 0;
    if (!m_map)
        return;
    const auto &entries = DistributedMapPrivate::get(m_map)->state().entries();
    m_keys.reserve(DistributedMapPrivate::get(m_map)->state().size());
    for (const EntryRef e : entries) {
        if (e.tombstone())
            continue;
        QString key = e.key();
        if (matches(key, e))
            m_keys.append(std::move(key));
    }
    std::sort(m_keys.begin(), m_keys.end(), [this](const QString &a, const QString &b) { return lessKey(a, b); });
}

bool DistributedMapModel::matches(const QString &key, const EntryRef &entry) const
{
    if (m_filter.isEmpty())
        return true;
    return key.contains(m_filter, Qt::CaseInsensitive) || containsCaseless(entry.valueView(), m_filterUtf8Lower);
}

QString DistributedMapModel::keyAt(int row) const
{
    return row >= 0 && row < m_keys.size() ? m_keys.at(row) : QString();
}

int DistributedMapModel::lowerBound(const QString &key, int first, int last) const
{
    const auto it = std::lower_bound(m_keys.cbegin() + first, m_keys.cbegin() + last, key,
                                     [this](const QString &a, const QString &b) { return lessKey(a, b); });
    return int(it - m_keys.cbegin());
}

int DistributedMapModel::rowOf(const QString &key) const
{
    const int pos = lowerBound(key, 0, int(m_keys.size()));
    return pos < m_keys.size() && m_keys.at(pos) == key ? pos : -1;
}

QModelIndex DistributedMapModel::indexOf(const QString &key, int column) const
{
    const int row = rowOf(key);
    return row < 0 ? QModelIndex() : index(row, column);
}

void DistributedMapModel::setWriterNameResolver(const std::function<QString(quint64)> &resolver)
{
    m_nameOf = resolver;
    if (!m_keys.isEmpty())
        Q_EMIT dataChanged(index(0, 0), index(int(m_keys.size()) - 1, ColumnCount - 1), {Qt::DisplayRole, WriterNameRole});
}

EntryRef DistributedMapModel::entryOf(const QString &key) const
{
    return m_map ? DistributedMapPrivate::get(m_map)->state().find(key) : EntryRef();
}

void DistributedMapModel::onChanged(const DistributedMap::Change &change)
{
    const qsizetype before = m_pending.size();
    m_pending.insert(change.key);
    if (m_pending.size() != before)
        m_pendingKeys.append(change.key);
    if (!m_batchTimer.isActive())
        m_batchTimer.start();
}

void DistributedMapModel::flush()
{
    m_batchTimer.stop();
    if (m_pending.isEmpty() || !m_map)
        return;
    QVector<QString> batch;
    batch.reserve(qMin(int(m_pending.size()), BatchBudget));
    while (m_pendingHead < m_pendingKeys.size() && batch.size() < BatchBudget) {
        QString &key = m_pendingKeys[m_pendingHead++];
        m_pending.remove(key);
        batch.append(std::move(key));
    }
    if (m_pendingHead == m_pendingKeys.size()) {
        m_pendingKeys.clear();
        m_pendingHead = 0;
    } else if (m_pendingHead > m_pendingKeys.size() / 2) {
        m_pendingKeys.remove(0, m_pendingHead);
        m_pendingHead = 0;
    }

    const int n = int(m_keys.size());
    QVector<int> removals;
    QVector<QPair<int, QString>> inserts; // (position among the old rows, key)
    int firstUpdated = n, lastUpdated = -1, updated = 0;
    for (const QString &key : std::as_const(batch)) {
        const EntryRef entry = entryOf(key);
        const bool live = entry && !entry.tombstone() && matches(key, entry);
        const int pos = lowerBound(key, 0, n);
        const bool shown = pos < n && m_keys.at(pos) == key;
        if (shown && live) {
            ++updated;
            firstUpdated = qMin(firstUpdated, pos);
            lastUpdated = qMax(lastUpdated, pos);
        } else if (shown) {
            removals.append(pos);
        } else if (live) {
            inserts.append({pos, key});
        }
    }
    if (!inserts.isEmpty() && !removals.isEmpty()) {
        // Removals shift the positions found above: find them again after.
        removeIndices(removals);
        for (auto &insert : inserts)
            insert.first = lowerBound(insert.second, 0, int(m_keys.size()));
    } else if (!removals.isEmpty()) {
        removeIndices(removals);
    }
    if (!inserts.isEmpty())
        insertKeys(inserts);
    if (updated > 0 && !m_keys.isEmpty()) {
        // Rows moved if anything was inserted or removed; repainting the
        // whole range is still cheap, views only redraw what is visible.
        if (!removals.isEmpty() || !inserts.isEmpty()) {
            firstUpdated = 0;
            lastUpdated = int(m_keys.size()) - 1;
        }
        Q_EMIT dataChanged(index(firstUpdated, 0), index(lastUpdated, ColumnCount - 1));
    }
    Q_EMIT batchApplied(updated, int(inserts.size()), int(removals.size()));
    if (!m_pending.isEmpty())
        m_batchTimer.start(0);
}

void DistributedMapModel::removeIndices(const QVector<int> &unsortedIndices)
{
    QVector<int> indices = unsortedIndices;
    std::sort(indices.begin(), indices.end());
    if (indices.size() <= SmallChange) {
        for (auto it = indices.crbegin(); it != indices.crend(); ++it) {
            beginRemoveRows({}, *it, *it);
            m_keys.remove(*it);
            endRemoveRows();
        }
        return;
    }
    // Gather the doomed rows at the end (a reorder), then drop the tail in one go.
    Q_EMIT layoutAboutToBeChanged({}, QAbstractItemModel::VerticalSortHint);
    const int n = int(m_keys.size());
    QVector<QString> reordered;
    reordered.reserve(n);
    QVector<QString> tail;
    tail.reserve(indices.size());
    int next = 0;
    for (int i = 0; i < n; ++i) {
        if (next < indices.size() && indices.at(next) == i) {
            tail.append(std::move(m_keys[i]));
            ++next;
        } else {
            reordered.append(std::move(m_keys[i]));
        }
    }
    const int kept = int(reordered.size());
    const QModelIndexList from = persistentIndexList();
    reordered.append(tail);
    m_keys = std::move(reordered);
    QModelIndexList to;
    to.reserve(from.size());
    for (const QModelIndex &idx : from) {
        const int old = idx.row();
        // Both halves keep their order, so a row's rank among the removed
        // (or kept) rows is where it lands.
        const int removedBefore = int(std::lower_bound(indices.cbegin(), indices.cend(), old) - indices.cbegin());
        const bool removed = removedBefore < indices.size() && indices.at(removedBefore) == old;
        const int row = removed ? kept + removedBefore : old - removedBefore;
        to.append(index(row, idx.column()));
    }
    changePersistentIndexList(from, to);
    Q_EMIT layoutChanged({}, QAbstractItemModel::VerticalSortHint);
    beginRemoveRows({}, kept, n - 1);
    m_keys.resize(kept);
    endRemoveRows();
}

void DistributedMapModel::insertKeys(QVector<QPair<int, QString>> keys)
{
    // Positions first: comparing ints is cheap, comparing keys reads their
    // characters from all over the heap. Keys only break ties.
    std::sort(keys.begin(), keys.end(), [this](const QPair<int, QString> &a, const QPair<int, QString> &b) {
        return a.first != b.first ? a.first < b.first : lessKey(a.second, b.second);
    });
    if (keys.size() <= SmallChange) {
        for (int i = 0; i < keys.size(); ++i) {
            // Each insert shifts the rows after it by one.
            const int pos = keys.at(i).first + i;
            beginInsertRows({}, pos, pos);
            m_keys.insert(pos, keys.at(i).second);
            endInsertRows();
        }
        return;
    }
    const int n = int(m_keys.size());
    const int k = int(keys.size());

    // Append the new rows as one block, then move them into place as a reorder.
    beginInsertRows({}, n, n + k - 1);
    for (const auto &key : std::as_const(keys))
        m_keys.append(key.second);
    endInsertRows();

    Q_EMIT layoutAboutToBeChanged({}, QAbstractItemModel::VerticalSortHint);
    const QModelIndexList from = persistentIndexList();
    QVector<QString> oldKeys;
    oldKeys.reserve(from.size());
    for (const QModelIndex &idx : from)
        oldKeys.append(m_keys.at(idx.row()));
    // A merge by comparisons would read every key's characters, scattered
    // over the heap; shifting blocks by the known positions touches only the
    // index itself, which is what keeps a 1M-row merge in milliseconds.
    int write = n + k;
    int readEnd = n;
    for (int i = k - 1; i >= 0; --i) {
        const int pos = keys.at(i).first;
        std::move_backward(m_keys.begin() + pos, m_keys.begin() + readEnd, m_keys.begin() + write);
        write -= readEnd - pos;
        readEnd = pos;
        m_keys[--write] = std::move(keys[i].second);
    }
    QModelIndexList to;
    to.reserve(from.size());
    for (int i = 0; i < from.size(); ++i)
        to.append(index(lowerBound(oldKeys.at(i), 0, int(m_keys.size())), from.at(i).column()));
    changePersistentIndexList(from, to);
    Q_EMIT layoutChanged({}, QAbstractItemModel::VerticalSortHint);
}
