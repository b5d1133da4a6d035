#include "distributedmapmodel.h"
#include "distributedmap_p.h"

#include "displayformat.h"
#include "entrytable.h"
#include "mapstate.h"
#include "sortkey.h"

#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>

#include <algorithm>
#include <vector>

namespace {

// Keys handled per batch; the rest waits for the next event-loop pass so a
// sync of a million keys never freezes the window.
constexpr int BatchBudget = 8000;
// Up to this many scattered inserts or removals go out one row at a time;
// beyond it, one contiguous change plus a layout change is cheaper for views.
constexpr int SmallChange = 16;
// Sorted by another column, a row moves or arrives one at a time only while
// the rows shifted for it stay few: a changed row crosses any distance (to
// the top, sorted by time), and each shift moves a key and its SortKey. A
// 1,000,000-row table takes one row at a time; more share a layout change.
constexpr qint64 SmallShift = 1000000;
constexpr int DisplayChars = 200;
// A map with more keys than this is shown a batch at a time (isFilling()):
// sorting a million keys at once froze the window for most of a second.
constexpr int FillAtOnce = 50000;

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

// Moves the items at indices (ascending) to the end; both parts keep their order.
template<typename T>
void moveToEnd(QVector<T> &items, const QVector<int> &indices)
{
    QVector<T> reordered;
    reordered.reserve(items.size());
    QVector<T> tail;
    tail.reserve(indices.size());
    for (int i = 0, next = 0; i < items.size(); ++i) {
        if (next < indices.size() && indices.at(next) == i) {
            tail.append(std::move(items[i]));
            ++next;
        } else {
            reordered.append(std::move(items[i]));
        }
    }
    for (T &item : tail)
        reordered.append(std::move(item));
    items = std::move(reordered);
}

// The row of nothing, and every row's SortKey while sorted by key: rows
// then compare by key alone.
const SortKey NoSortKey;

} // namespace

struct DistributedMapModel::ColumnSort
{
    QHash<QString, SortKey> placedBy; // each shown key's SortKey as its row was placed
    // The same per row, beside m_keys: a binary search reads these, not
    // the index (a hash lookup per probe made a 8,000-key batch take 200 ms).
    QVector<SortKey> rowKeys;
    // Each writer's name as the sort first took it, so one writer's rows
    // stay together when the resolver renames it.
    QHash<quint64, QByteArray> writerNames;
};

// How far the walk over a large map's table got. Writes made meanwhile
// come as changes, like any other, and a batch reads each key's entry from
// the map itself, so the walk only has to see every key once. (A copy of
// the table would have to touch every entry's reference count, a
// million cache misses in one turn; walking the live table costs nothing
// up front, and starts over if a rehash or a removal moves its slots.)
struct DistributedMapModel::Fill
{
    qsizetype slot = 0;
    quint64 layout = 0;
};

DistributedMapModel::DistributedMapModel(DistributedMap *map, QObject *parent)
    : QAbstractTableModel(parent)
    , m_map(map)
{
    m_batchTimer.setSingleShot(true);
    m_batchTimer.setInterval(50);
    connect(&m_batchTimer, &QTimer::timeout, this, &DistributedMapModel::flush);
    m_fillTimer.setSingleShot(true);
    connect(&m_fillTimer, &QTimer::timeout, this, &DistributedMapModel::fillSome);
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
    if (column < 0 || column >= ColumnCount || (column == m_column && order == m_order))
        return;
    if (column != m_column) {
        reorder(column, order);
        return;
    }
    // Ties go by key in the sort's direction too: the other order is this
    // one reversed, no comparison needed.
    Q_EMIT layoutAboutToBeChanged({}, QAbstractItemModel::VerticalSortHint);
    const QModelIndexList from = persistentIndexList();
    m_order = order;
    std::reverse(m_keys.begin(), m_keys.end());
    if (m_columnSort)
        std::reverse(m_columnSort->rowKeys.begin(), m_columnSort->rowKeys.end());
    const int n = int(m_keys.size());
    QModelIndexList to;
    to.reserve(from.size());
    for (const QModelIndex &idx : from)
        to.append(index(n - 1 - idx.row(), idx.column()));
    changePersistentIndexList(from, to);
    Q_EMIT layoutChanged({}, QAbstractItemModel::VerticalSortHint);
}

void DistributedMapModel::reorder(int column, Qt::SortOrder order)
{
    Q_EMIT layoutAboutToBeChanged({}, QAbstractItemModel::VerticalSortHint);
    const QModelIndexList from = persistentIndexList();
    const QVector<QString> fromKeys = keysOf(from);
    // From the key order, ties need no key comparison: each row's rank in
    // it settles them.
    const bool byKey = m_column == KeyColumn;
    if (byKey && m_order == Qt::DescendingOrder)
        std::reverse(m_keys.begin(), m_keys.end());
    m_column = column;
    m_order = order;
    sortRows(byKey);
    changePersistentIndexesByKey(from, fromKeys);
    Q_EMIT layoutChanged({}, QAbstractItemModel::VerticalSortHint);
}

QVector<QString> DistributedMapModel::keysOf(const QModelIndexList &indexes) const
{
    QVector<QString> keys;
    keys.reserve(indexes.size());
    for (const QModelIndex &idx : indexes)
        keys.append(m_keys.at(idx.row()));
    return keys;
}

void DistributedMapModel::changePersistentIndexesByKey(const QModelIndexList &from, const QVector<QString> &keys)
{
    QModelIndexList to;
    to.reserve(from.size());
    for (int i = 0; i < from.size(); ++i)
        to.append(index(rowOf(keys.at(i)), from.at(i).column()));
    changePersistentIndexList(from, to);
}

void DistributedMapModel::sortRows(bool keysAscending)
{
    if (m_column == KeyColumn) {
        m_columnSort.reset();
        const bool ascending = m_order == Qt::AscendingOrder;
        std::sort(m_keys.begin(), m_keys.end(),
                  [ascending](const QString &a, const QString &b) { return ascending ? a < b : b < a; });
        return;
    }
    m_columnSort = std::make_unique<ColumnSort>();
    m_columnSort->placedBy.reserve(m_keys.size());
    // Each row's SortKey fetched once, then sorted as plain data.
    struct Row
    {
        SortKey sortKey;
        int keyRank; // the row's place in key order, when keysAscending
        QString key;
    };
    std::vector<Row> rows;
    rows.reserve(m_keys.size());
    for (int i = 0; i < m_keys.size(); ++i) {
        QString &key = m_keys[i];
        SortKey sortKey = sortKeyOf(entryOf(key));
        // Into the index now, while the key's characters are in the cache.
        m_columnSort->placedBy.insert(key, sortKey);
        rows.push_back({std::move(sortKey), i, std::move(key)});
    }
    const bool ascending = m_order == Qt::AscendingOrder;
    if (keysAscending) {
        std::sort(rows.begin(), rows.end(), [ascending](const Row &a, const Row &b) {
            int c = SortKey::compare(a.sortKey, b.sortKey);
            if (c == 0)
                c = a.keyRank - b.keyRank;
            return ascending ? c < 0 : c > 0;
        });
    } else {
        std::sort(rows.begin(), rows.end(),
                  [this](const Row &a, const Row &b) { return before(a.sortKey, a.key, b.sortKey, b.key); });
    }
    m_columnSort->rowKeys.reserve(m_keys.size());
    for (size_t i = 0; i < rows.size(); ++i) {
        m_keys[qsizetype(i)] = std::move(rows[i].key);
        m_columnSort->rowKeys.append(std::move(rows[i].sortKey));
    }
}

bool DistributedMapModel::before(const SortKey &sortKey, const QString &key, const SortKey &otherSortKey,
                                 const QString &otherKey) const
{
    // Sorted by key, both are NoSortKey: compare() returns at once.
    const int c = SortKey::compare(sortKey, otherSortKey);
    if (c != 0)
        return m_order == Qt::AscendingOrder ? c < 0 : c > 0;
    return m_order == Qt::AscendingOrder ? key < otherKey : otherKey < key;
}

const SortKey &DistributedMapModel::sortKeyAt(int row) const
{
    return m_columnSort ? m_columnSort->rowKeys.at(row) : NoSortKey;
}

const SortKey &DistributedMapModel::placedBy(const QString &key) const
{
    if (!m_columnSort)
        return NoSortKey;
    const auto it = m_columnSort->placedBy.constFind(key);
    return it == m_columnSort->placedBy.cend() ? NoSortKey : *it;
}

SortKey DistributedMapModel::sortKeyOf(const EntryRef &entry)
{
    if (!entry || entry.tombstone())
        return SortKey();
    switch (m_column) {
    case ValueColumn:
        return SortKey::ofValue(entry.valueView());
    case WhenColumn:
        return SortKey::ofClock(entry.hlc());
    case WriterColumn: {
        auto it = m_columnSort->writerNames.find(entry.writer());
        if (it == m_columnSort->writerNames.end()) {
            const QString name = m_nameOf ? m_nameOf(entry.writer()) : DisplayFormat::shortPeerId(entry.writer());
            it = m_columnSort->writerNames.insert(entry.writer(), name.toUtf8());
        }
        return SortKey::ofName(*it);
    }
    }
    return SortKey();
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
    if (m_columnSort) {
        m_columnSort->placedBy.clear();
        m_columnSort->rowKeys.clear();
    }
    m_pending.clear();
    m_pendingKeys.clear();
    m_fill.reset();
    m_fillTimer.stop();
    if (m_map && DistributedMapPrivate::get(m_map)->state().size() > FillAtOnce) {
        m_pendingHead = 0;
        m_fill = std::make_unique<Fill>();
        m_fill->layout = DistributedMapPrivate::get(m_map)->state().entries().layoutVersion();
        m_fillTimer.start(0);
        return;
    }
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
    sortRows();
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

int DistributedMapModel::lowerBound(const SortKey &sortKey, const QString &key, int first, int last) const
{
    if (!m_columnSort) {
        // Sorted by key, the common case (a sync, a burst): plain string
        // comparisons, no SortKey per probe.
        const bool ascending = m_order == Qt::AscendingOrder;
        const auto it = std::lower_bound(m_keys.cbegin() + first, m_keys.cbegin() + last, key,
                                         [ascending](const QString &a, const QString &b) { return ascending ? a < b : b < a; });
        return int(it - m_keys.cbegin());
    }
    const auto it = std::lower_bound(m_keys.cbegin() + first, m_keys.cbegin() + last, key,
                                     [&](const QString &shown, const QString &) {
                                         return before(sortKeyAt(int(&shown - m_keys.constData())), shown, sortKey, key);
                                     });
    return int(it - m_keys.cbegin());
}

int DistributedMapModel::rowOf(const QString &key) const
{
    const int pos = lowerBound(placedBy(key), key, 0, int(m_keys.size()));
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
    if (m_column == WriterColumn)
        reorder(m_column, m_order);
    if (!m_keys.isEmpty())
        Q_EMIT dataChanged(index(0, 0), index(int(m_keys.size()) - 1, ColumnCount - 1), {Qt::DisplayRole, WriterNameRole});
}

EntryRef DistributedMapModel::entryOf(const QString &key) const
{
    return m_map ? DistributedMapPrivate::get(m_map)->state().find(key) : EntryRef();
}

void DistributedMapModel::onChanged(const DistributedMap::Change &change)
{
    enqueue(change.key);
    if (!m_batchTimer.isActive())
        m_batchTimer.start();
}

void DistributedMapModel::enqueue(const QString &key)
{
    const qsizetype before = m_pending.size();
    m_pending.insert(key);
    if (m_pending.size() != before)
        m_pendingKeys.append(key);
}

void DistributedMapModel::fillSome()
{
    if (!m_fill || !m_map)
        return;
    const EntryTable &table = DistributedMapPrivate::get(m_map)->state().entries();
    if (table.layoutVersion() != m_fill->layout) {
        // Slots moved: a key not seen yet may now sit behind the walk. Keys
        // seen twice are only shown again.
        m_fill->slot = 0;
        m_fill->layout = table.layoutVersion();
    }
    // One batch's worth per turn: the batch that shows them runs right after.
    for (int taken = 0; m_fill->slot < table.capacity() && taken < BatchBudget; ++m_fill->slot) {
        const EntryRef e = table.slot(m_fill->slot);
        if (!e || e.tombstone())
            continue;
        enqueue(e.key());
        ++taken;
    }
    if (m_fill->slot >= table.capacity())
        m_fill.reset();
    else
        m_fillTimer.start(0);
    flush();
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
    QVector<QPair<QString, SortKey>> moves;   // shown keys whose SortKey changed, with the new one
    QVector<QPair<QString, SortKey>> inserts; // new keys with their SortKey
    int firstUpdated = n, lastUpdated = -1, updated = 0;
    for (const QString &key : std::as_const(batch)) {
        const EntryRef entry = entryOf(key);
        const bool live = entry && !entry.tombstone() && matches(key, entry);
        const int pos = rowOf(key);
        if (pos >= 0 && live) {
            SortKey sortKey = m_columnSort ? sortKeyOf(entry) : SortKey();
            if (m_columnSort && sortKey != placedBy(key)) {
                moves.append({key, std::move(sortKey)});
                continue;
            }
            ++updated;
            firstUpdated = qMin(firstUpdated, pos);
            lastUpdated = qMax(lastUpdated, pos);
        } else if (pos >= 0) {
            removals.append(pos);
        } else if (live) {
            inserts.append({key, m_columnSort ? sortKeyOf(entry) : SortKey()});
        }
    }
    if (!removals.isEmpty()) {
        if (m_columnSort) {
            for (int row : std::as_const(removals))
                m_columnSort->placedBy.remove(m_keys.at(row));
        }
        removeIndices(removals);
    }
    // Rows placed again: a changed SortKey (found by the old one, then
    // replaced) and new keys. A few go one by one, many in one layout change.
    const qsizetype placed = moves.size() + inserts.size();
    if (placed <= SmallChange && (!m_columnSort || placed * m_keys.size() <= SmallShift)) {
        for (auto &move : moves) {
            const int row = rowOf(move.first);
            m_columnSort->placedBy[move.first] = std::move(move.second);
            moveRow(row);
        }
        for (auto &insert : inserts) {
            if (m_columnSort)
                m_columnSort->placedBy.insert(insert.first, std::move(insert.second));
            insertKey(insert.first);
        }
    } else {
        QVector<int> rows;
        rows.reserve(moves.size() + inserts.size());
        for (const auto &move : std::as_const(moves))
            rows.append(rowOf(move.first));
        for (auto &move : moves)
            m_columnSort->placedBy[move.first] = std::move(move.second);
        if (!inserts.isEmpty()) {
            // New rows arrive as one block at the end, then take their places.
            const int end = int(m_keys.size());
            beginInsertRows({}, end, end + int(inserts.size()) - 1);
            for (auto &insert : inserts) {
                rows.append(int(m_keys.size()));
                if (m_columnSort) {
                    m_columnSort->rowKeys.append(insert.second);
                    m_columnSort->placedBy.insert(insert.first, std::move(insert.second));
                }
                m_keys.append(insert.first);
            }
            endInsertRows();
        }
        placeRows(std::move(rows));
    }
    updated += int(moves.size());
    if (updated > 0 && !m_keys.isEmpty()) {
        // Rows moved if anything was moved, inserted or removed; repainting
        // the whole range is still cheap, views only redraw what is visible.
        if (!removals.isEmpty() || !inserts.isEmpty() || !moves.isEmpty()) {
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
            if (m_columnSort)
                m_columnSort->rowKeys.remove(*it);
            endRemoveRows();
        }
        return;
    }
    // Gather the doomed rows at the end (a reorder), then drop the tail in one go.
    Q_EMIT layoutAboutToBeChanged({}, QAbstractItemModel::VerticalSortHint);
    const int n = int(m_keys.size());
    const int kept = n - int(indices.size());
    const QModelIndexList from = persistentIndexList();
    moveToEnd(m_keys, indices);
    if (m_columnSort)
        moveToEnd(m_columnSort->rowKeys, indices);
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
    if (m_columnSort)
        m_columnSort->rowKeys.resize(kept);
    endRemoveRows();
}

void DistributedMapModel::insertKey(const QString &key)
{
    const SortKey &sortKey = placedBy(key);
    const int pos = lowerBound(sortKey, key, 0, int(m_keys.size()));
    beginInsertRows({}, pos, pos);
    m_keys.insert(pos, key);
    if (m_columnSort)
        m_columnSort->rowKeys.insert(pos, sortKey);
    endInsertRows();
}

void DistributedMapModel::moveRow(int row)
{
    // The other rows are in order: the row's new place is among them,
    // before it or after it.
    const QString key = m_keys.at(row);
    const SortKey &sortKey = placedBy(key); // the new one; the row's own is still the old
    int to = lowerBound(sortKey, key, 0, row);
    if (to == row)
        to = lowerBound(sortKey, key, row + 1, int(m_keys.size()));
    if (to == row || to == row + 1) {
        m_columnSort->rowKeys[row] = sortKey; // its place did not change
        return;
    }
    beginMoveRows({}, row, row, {}, to);
    const int dest = to > row ? to - 1 : to;
    m_keys.move(row, dest);
    m_columnSort->rowKeys.move(row, dest);
    m_columnSort->rowKeys[dest] = sortKey;
    endMoveRows();
}

void DistributedMapModel::placeRows(QVector<int> rows)
{
    Q_EMIT layoutAboutToBeChanged({}, QAbstractItemModel::VerticalSortHint);
    const QModelIndexList from = persistentIndexList();
    const QVector<QString> fromKeys = keysOf(from);

    // Take the rows out; the others keep their order, so each taken row's
    // place among them is one binary search.
    std::sort(rows.begin(), rows.end());
    const int n = int(m_keys.size());
    QVector<SortKey> *rowKeys = m_columnSort ? &m_columnSort->rowKeys : nullptr;
    struct Taken
    {
        int pos; // among the rows kept
        QString key;
        SortKey sortKey; // the new one, from the index
    };
    QVector<Taken> taken;
    taken.reserve(rows.size());
    // Rows before the first taken one stay where they are.
    int kept = rows.isEmpty() ? n : rows.first();
    for (int i = kept, next = 0; i < n; ++i) {
        if (next < rows.size() && rows.at(next) == i) {
            taken.append({0, std::move(m_keys[i]), SortKey()});
            ++next;
        } else {
            if (rowKeys)
                (*rowKeys)[kept] = std::move((*rowKeys)[i]);
            m_keys[kept++] = std::move(m_keys[i]);
        }
    }
    for (Taken &row : taken) {
        row.sortKey = placedBy(row.key);
        row.pos = lowerBound(row.sortKey, row.key, 0, kept);
    }
    // Positions first: comparing ints is cheap, comparing keys reads their
    // characters from all over the heap. Keys only break ties.
    std::sort(taken.begin(), taken.end(), [this](const Taken &a, const Taken &b) {
        return a.pos != b.pos ? a.pos < b.pos : before(a.sortKey, a.key, b.sortKey, b.key);
    });
    // A merge by comparisons would read every key's characters, scattered
    // over the heap; shifting blocks by the known positions touches only the
    // index itself, which is what keeps a 1M-row merge in milliseconds.
    int write = n;
    int readEnd = kept;
    for (int i = int(taken.size()) - 1; i >= 0; --i) {
        const int pos = taken.at(i).pos;
        std::move_backward(m_keys.begin() + pos, m_keys.begin() + readEnd, m_keys.begin() + write);
        if (rowKeys)
            std::move_backward(rowKeys->begin() + pos, rowKeys->begin() + readEnd, rowKeys->begin() + write);
        write -= readEnd - pos;
        readEnd = pos;
        --write;
        m_keys[write] = std::move(taken[i].key);
        if (rowKeys)
            (*rowKeys)[write] = std::move(taken[i].sortKey);
    }
    changePersistentIndexesByKey(from, fromKeys);
    Q_EMIT layoutChanged({}, QAbstractItemModel::VerticalSortHint);
}
