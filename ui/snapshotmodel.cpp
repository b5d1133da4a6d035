#include "snapshotmodel.h"

#include "displayformat.h"
#include "distributedmapmodel.h"
#include "sortkey.h"
#include "uiformat.h"

#include <QApplication>
#include <QHash>
#include <QPalette>

#include <algorithm>
#include <utility>

namespace {
// The live model's columns, so the table keeps its layout when it switches.
constexpr int KeyColumn = DistributedMapModel::KeyColumn;
constexpr int ValueColumn = DistributedMapModel::ValueColumn;
constexpr int WriterColumn = DistributedMapModel::WriterColumn;
constexpr int WhenColumn = DistributedMapModel::WhenColumn;
constexpr int ColumnCount = DistributedMapModel::ColumnCount;

bool byKey(const HistoryIndex::KeyedEntry &a, const HistoryIndex::KeyedEntry &b)
{
    return a.key < b.key;
}
} // namespace

SnapshotModel::SnapshotModel(const QAbstractItemModel *live, QObject *parent)
    : QAbstractTableModel(parent)
    , m_live(live)
{
}

void SnapshotModel::setSnapshot(QVector<HistoryIndex::KeyedEntry> entries, const QSet<QString> &changedSince)
{
    beginResetModel();
    m_rows = std::move(entries);
    sortRows();
    m_changedSince = changedSince;
    endResetModel();
}

void SnapshotModel::applyUpdates(QVector<RowUpdate> updates)
{
    if (updates.isEmpty())
        return;
    if (m_column != KeyColumn || m_order != Qt::AscendingOrder) {
        applyUpdatesAndSort(std::move(updates));
        return;
    }
    std::sort(updates.begin(), updates.end(), [](const RowUpdate &a, const RowUpdate &b) { return a.key < b.key; });
    // One merge of two sorted lists: the rows and the updates.
    QVector<HistoryIndex::KeyedEntry> rows;
    rows.reserve(m_rows.size() + updates.size());
    bool rowsMoved = false;
    auto row = m_rows.begin();
    for (RowUpdate &u : updates) {
        for (; row != m_rows.end() && row->key < u.key; ++row)
            rows.append(std::move(*row));
        const bool had = row != m_rows.end() && row->key == u.key;
        const bool has = u.entry && !u.entry->tombstone;
        if (has)
            rows.append({u.key, std::move(*u.entry)});
        if (had)
            ++row;
        rowsMoved = rowsMoved || had != has;
        if (u.changedSince)
            m_changedSince.insert(u.key);
        else
            m_changedSince.remove(u.key);
    }
    for (; row != m_rows.end(); ++row)
        rows.append(std::move(*row));
    if (!rowsMoved) {
        m_rows = std::move(rows);
        if (!m_rows.isEmpty())
            Q_EMIT dataChanged(index(0, 0), index(int(m_rows.size()) - 1, ColumnCount - 1));
        return;
    }
    beginResetModel();
    m_rows = std::move(rows);
    endResetModel();
}

void SnapshotModel::applyUpdatesAndSort(QVector<RowUpdate> updates)
{
    // Sorted by another column: each update in place, then the order anew.
    QHash<QString, int> rowOfKey;
    rowOfKey.reserve(m_rows.size());
    for (int i = 0; i < m_rows.size(); ++i)
        rowOfKey.insert(m_rows.at(i).key, i);
    QVector<bool> gone(m_rows.size(), false);
    for (RowUpdate &u : updates) {
        const auto found = rowOfKey.constFind(u.key);
        const bool has = u.entry && !u.entry->tombstone;
        if (found != rowOfKey.cend()) {
            if (has)
                m_rows[*found].entry = std::move(*u.entry);
            else
                gone[*found] = true;
        } else if (has) {
            m_rows.append({u.key, std::move(*u.entry)});
        }
        if (u.changedSince)
            m_changedSince.insert(u.key);
        else
            m_changedSince.remove(u.key);
    }
    beginResetModel();
    int kept = 0;
    for (int i = 0; i < m_rows.size(); ++i) {
        if (i < gone.size() && gone.at(i))
            continue;
        if (kept != i)
            m_rows[kept] = std::move(m_rows[i]);
        ++kept;
    }
    m_rows.resize(kept);
    sortRows();
    endResetModel();
}

void SnapshotModel::sort(int column, Qt::SortOrder order)
{
    if (column < 0 || column >= ColumnCount || (column == m_column && order == m_order))
        return;
    Q_EMIT layoutAboutToBeChanged({}, QAbstractItemModel::VerticalSortHint);
    const QModelIndexList from = persistentIndexList();
    QStringList fromKeys;
    for (const QModelIndex &idx : from)
        fromKeys.append(keyAt(idx.row()));
    m_column = column;
    m_order = order;
    sortRows();
    QModelIndexList to;
    for (int i = 0; i < from.size(); ++i)
        to.append(index(rowOf(fromKeys.at(i)), from.at(i).column()));
    changePersistentIndexList(from, to);
    Q_EMIT layoutChanged({}, QAbstractItemModel::VerticalSortHint);
}

void SnapshotModel::sortRows()
{
    if (m_column == KeyColumn) {
        std::sort(m_rows.begin(), m_rows.end(), byKey);
    } else {
        // Each row's SortKey once; one name per writer.
        QHash<quint64, QByteArray> names;
        QVector<std::pair<SortKey, int>> places;
        places.reserve(m_rows.size());
        for (int i = 0; i < m_rows.size(); ++i) {
            const Entry &e = m_rows.at(i).entry;
            if (m_column == ValueColumn) {
                places.append({SortKey::ofValue(e.value), i});
            } else if (m_column == WhenColumn) {
                places.append({SortKey::ofClock(e.hlc), i});
            } else {
                auto name = names.find(e.writer);
                if (name == names.end())
                    name = names.insert(e.writer, (m_nameOf ? m_nameOf(e.writer) : DisplayFormat::shortPeerId(e.writer)).toUtf8());
                places.append({SortKey::ofName(*name), i});
            }
        }
        std::sort(places.begin(), places.end(), [this](const std::pair<SortKey, int> &a, const std::pair<SortKey, int> &b) {
            const int c = SortKey::compare(a.first, b.first);
            return c != 0 ? c < 0 : m_rows.at(a.second).key < m_rows.at(b.second).key;
        });
        QVector<HistoryIndex::KeyedEntry> sorted;
        sorted.reserve(m_rows.size());
        for (const auto &place : std::as_const(places))
            sorted.append(std::move(m_rows[place.second]));
        m_rows = std::move(sorted);
    }
    // Descending is ascending reversed, ties included, as in the live model.
    if (m_order == Qt::DescendingOrder)
        std::reverse(m_rows.begin(), m_rows.end());
}

int SnapshotModel::rowOf(const QString &key) const
{
    if (m_column == KeyColumn) {
        const auto less = [this](const HistoryIndex::KeyedEntry &a, const HistoryIndex::KeyedEntry &b) {
            return m_order == Qt::AscendingOrder ? a.key < b.key : b.key < a.key;
        };
        const auto it = std::lower_bound(m_rows.cbegin(), m_rows.cend(), HistoryIndex::KeyedEntry{key, Entry()}, less);
        return it != m_rows.cend() && it->key == key ? int(it - m_rows.cbegin()) : -1;
    }
    for (int row = 0; row < m_rows.size(); ++row) {
        if (m_rows.at(row).key == key)
            return row;
    }
    return -1;
}

int SnapshotModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_rows.size());
}

int SnapshotModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant SnapshotModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const HistoryIndex::KeyedEntry &row = m_rows.at(index.row());
    const Entry &e = row.entry;
    if (role == ChangedSinceRole)
        return m_changedSince.contains(row.key);
    if (role == Qt::BackgroundRole)
        return m_changedSince.contains(row.key) ? QVariant(UiFormat::warningRowColor(QApplication::palette())) : QVariant();
    if (role == Qt::ToolTipRole && m_changedSince.contains(row.key))
        return tr("Changed since this moment");
    if (role != Qt::DisplayRole)
        return {};
    switch (index.column()) {
    case KeyColumn:
        return row.key;
    case ValueColumn:
        return DisplayFormat::elidedUtf8(e.value, 100);
    case WriterColumn:
        return m_nameOf ? m_nameOf(e.writer) : DisplayFormat::shortPeerId(e.writer);
    case WhenColumn:
        return DisplayFormat::clockTime(e.hlc);
    }
    return {};
}

QVariant SnapshotModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    return m_live->headerData(section, orientation, role);
}
