#include "keyhistorymodel.h"

#include "displayformat.h"

#include <QColor>
#include <QDateTime>

KeyHistoryModel::KeyHistoryModel(QObject *parent)
    : QAbstractTableModel(parent)
{
}

void KeyHistoryModel::setWrites(const QString &key, const QVector<Entry> &writes, const Entry &current,
                                const QVector<bool> &lost)
{
    beginResetModel();
    m_key = key;
    m_writes = writes;
    m_current = current;
    m_lost = lost;
    endResetModel();
}

int KeyHistoryModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_writes.size());
}

int KeyHistoryModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant KeyHistoryModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const Entry e = writeAt(index.row());
    const bool lost = lostAt(index.row());
    if (role == LostRole)
        return lost;
    if (lost && role == Qt::ToolTipRole && index.column() == NoteColumn)
        return tr("This write arrived after a newer write of the key and never took effect here: it lost a "
                  "last-writer-wins conflict. (A write replaced later cannot be told from one that lost: the "
                  "clocks order writes, they do not say what each writer had seen.)");
    if (lost && role == Qt::ForegroundRole)
        return QColor(Qt::darkRed);
    if (role == Qt::ToolTipRole && index.column() == ValueColumn)
        return e.tombstone ? tr("deleted") : DisplayFormat::elidedUtf8(e.value, 4000);
    if (role == Qt::ToolTipRole && index.column() == WhenColumn)
        return QDateTime::fromMSecsSinceEpoch(DisplayFormat::clockMsSinceEpoch(e.hlc)).toString(Qt::ISODateWithMs);
    if (role != Qt::DisplayRole)
        return {};
    switch (index.column()) {
    case WhenColumn:
        return DisplayFormat::clockTime(e.hlc);
    case WriterColumn:
        return m_nameOf ? m_nameOf(e.writer) : DisplayFormat::shortPeerId(e.writer);
    case ValueColumn:
        return e.tombstone ? tr("(deleted)") : DisplayFormat::elidedUtf8(e.value, 100);
    case NoteColumn:
        return e.sameWrite(m_current) ? tr("current") : lost ? tr("lost a conflict") : QString();
    }
    return {};
}

QVariant KeyHistoryModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case WhenColumn:
        return tr("When");
    case WriterColumn:
        return tr("Writer");
    case ValueColumn:
        return tr("Value");
    case NoteColumn:
        return QString();
    }
    return {};
}
