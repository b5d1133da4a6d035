#include "mapdiffmodel.h"

#include "displayformat.h"

#include <algorithm>

namespace {

QString stateText(const std::optional<Entry> &write, int maxChars)
{
    if (!write)
        return MapDiffModel::tr("(none)");
    if (write->tombstone)
        return MapDiffModel::tr("(deleted)");
    return DisplayFormat::elidedUtf8(write->value, maxChars);
}

} // namespace

MapDiffModel::MapDiffModel(QObject *parent)
    : QAbstractTableModel(parent)
{
}

void MapDiffModel::setChanges(QVector<HistoryIndex::Change> changes)
{
    std::sort(changes.begin(), changes.end(),
              [](const HistoryIndex::Change &a, const HistoryIndex::Change &b) { return a.key < b.key; });
    beginResetModel();
    m_changes = std::move(changes);
    endResetModel();
}

int MapDiffModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_changes.size());
}

int MapDiffModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant MapDiffModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    if (role != Qt::DisplayRole && role != Qt::ToolTipRole)
        return {};
    const HistoryIndex::Change &c = m_changes.at(index.row());
    const int chars = role == Qt::ToolTipRole ? 4000 : 100;
    switch (index.column()) {
    case KeyColumn:
        return c.key;
    case BeforeColumn:
        return stateText(c.before, chars);
    case AfterColumn:
        return stateText(c.after, chars);
    }
    return {};
}

QVariant MapDiffModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case KeyColumn:
        return tr("Key");
    case BeforeColumn:
        return tr("Before");
    case AfterColumn:
        return tr("After");
    }
    return {};
}
