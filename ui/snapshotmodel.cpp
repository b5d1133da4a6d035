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

// QString's operator<, as HistoryIndex sorts its answers.
bool lessKey(const QString &a, const QString &b, Qt::SortOrder order)
{
    return order == Qt::AscendingOrder ? a < b : b < a;
}

// For lower_bound over rows sorted by key in order.
auto rowBeforeKey(Qt::SortOrder order)
{
    return [order](const auto &row, const QString &key) { return lessKey(row.key, key, order); };
}
} // namespace

SnapshotModel::SnapshotModel(const QAbstractItemModel *live, QObject *parent)
    : QAbstractTableModel(parent)
    , m_live(live)
{
}

void SnapshotModel::setSnapshot(HistoryIndex::Snapshot snapshot)
{
    beginResetModel();
    m_rows.clear();
    m_rows.reserve(snapshot.entries.size());
    for (qsizetype i = 0; i < snapshot.entries.size(); ++i) {
        HistoryIndex::KeyedEntry &e = snapshot.entries[i];
        m_rows.append({std::move(e.key), std::move(e.entry), snapshot.writtenSince.value(i)});
    }
    m_changedSinceCount = snapshot.keysWrittenSince;
    sortRows();
    endResetModel();
}

void SnapshotModel::applyUpdates(QVector<RowUpdate> updates, qsizetype changedSinceCount)
{
    m_changedSinceCount = changedSinceCount;
    if (updates.isEmpty())
        return;
    if (m_column != KeyColumn) {
        applyUpdatesAndSort(std::move(updates));
        return;
    }
    const Qt::SortOrder order = m_order;
    const auto less = [order](const RowUpdate &a, const RowUpdate &b) { return lessKey(a.key, b.key, order); };
    if (!std::is_sorted(updates.cbegin(), updates.cend(), less))
        std::sort(updates.begin(), updates.end(), less);
    if (updateInPlace(updates))
        return;
    // Keys came or went: one merge of two sorted lists, the rows and the
    // updates, into new rows.
    QVector<Row> rows;
    rows.reserve(m_rows.size() + updates.size());
    auto row = m_rows.begin();
    for (RowUpdate &u : updates) {
        for (; row != m_rows.end() && lessKey(row->key, u.key, order); ++row)
            rows.append(std::move(*row));
        if (row != m_rows.end() && row->key == u.key)
            ++row;
        if (u.entry && !u.entry->tombstone)
            rows.append({std::move(u.key), std::move(*u.entry), u.changedSince});
    }
    for (; row != m_rows.end(); ++row)
        rows.append(std::move(*row));
    beginResetModel();
    m_rows = std::move(rows);
    endResetModel();
}

bool SnapshotModel::updateInPlace(QVector<RowUpdate> &updates)
{
    // Sorted by key, with updates in the same order: each found by a binary
    // search from the last one's row. The common step (values changed, no
    // key came or went) touches only the rows it changes.
    const auto rowBefore = rowBeforeKey(m_order);
    QVector<int> rowOfUpdate;
    rowOfUpdate.reserve(updates.size());
    auto from = m_rows.cbegin();
    for (const RowUpdate &u : std::as_const(updates)) {
        from = std::lower_bound(from, m_rows.cend(), u.key, rowBefore);
        const bool had = from != m_rows.cend() && from->key == u.key;
        const bool has = u.entry && !u.entry->tombstone;
        if (had != has)
            return false;
        rowOfUpdate.append(had ? int(from - m_rows.cbegin()) : -1);
    }
    int first = int(m_rows.size()), last = -1;
    for (qsizetype i = 0; i < updates.size(); ++i) {
        const int r = rowOfUpdate.at(i);
        if (r < 0)
            continue;
        m_rows[r].entry = std::move(*updates[i].entry);
        m_rows[r].changedSince = updates.at(i).changedSince;
        first = qMin(first, r);
        last = qMax(last, r);
    }
    if (last >= 0)
        Q_EMIT dataChanged(index(first, 0), index(last, ColumnCount - 1));
    return true;
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
                m_rows[*found] = {std::move(u.key), std::move(*u.entry), u.changedSince};
            else
                gone[*found] = true;
        } else if (has) {
            m_rows.append({std::move(u.key), std::move(*u.entry), u.changedSince});
        }
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
        // A snapshot comes sorted by key (HistoryIndex), unless a key a
        // sync brought joined it.
        const auto byKey = [](const Row &a, const Row &b) { return a.key < b.key; };
        if (!std::is_sorted(m_rows.cbegin(), m_rows.cend(), byKey))
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
        QVector<Row> sorted;
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
        const auto it = std::lower_bound(m_rows.cbegin(), m_rows.cend(), key, rowBeforeKey(m_order));
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
    const Row &row = m_rows.at(index.row());
    const Entry &e = row.entry;
    if (role == ChangedSinceRole)
        return row.changedSince;
    if (role == Qt::BackgroundRole)
        return row.changedSince ? QVariant(UiFormat::warningRowColor(QApplication::palette())) : QVariant();
    if (role == Qt::ToolTipRole && row.changedSince)
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
