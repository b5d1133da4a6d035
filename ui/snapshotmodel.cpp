#include "snapshotmodel.h"

#include "displayformat.h"
#include "distributedmapmodel.h"
#include "uiformat.h"

#include <QApplication>
#include <QPalette>

#include <algorithm>

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
    std::sort(entries.begin(), entries.end(), byKey);
    beginResetModel();
    m_rows = std::move(entries);
    m_changedSince = changedSince;
    endResetModel();
}

void SnapshotModel::applyUpdates(QVector<RowUpdate> updates)
{
    if (updates.isEmpty())
        return;
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

int SnapshotModel::rowOf(const QString &key) const
{
    const auto it = std::lower_bound(m_rows.cbegin(), m_rows.cend(), HistoryIndex::KeyedEntry{key, Entry()}, byKey);
    return it != m_rows.cend() && it->key == key ? int(it - m_rows.cbegin()) : -1;
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
