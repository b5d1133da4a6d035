#include "deltalogfilter.h"

#include "deltalogmodel.h"
#include "displayformat.h"
#include "mapstate.h"

DeltaLogFilter::DeltaLogFilter(QObject *parent)
    : QSortFilterProxyModel(parent)
{
}

DeltaLogFilter::~DeltaLogFilter() = default;

void DeltaLogFilter::setText(const QString &text)
{
    if (text == m_text)
        return;
    m_text = text;
    invalidateRowsFilter();
}

void DeltaLogFilter::setOperation(int operation)
{
    if (operation == m_operation)
        return;
    m_operation = operation;
    invalidateRowsFilter();
}

void DeltaLogFilter::setSupersededOnly(bool only)
{
    if (only == m_supersededOnly)
        return;
    m_supersededOnly = only;
    invalidateRowsFilter();
}

bool DeltaLogFilter::filterAcceptsRow(int sourceRow, const QModelIndex &sourceParent) const
{
    const QAbstractItemModel *model = sourceModel();
    const QModelIndex idx = model->index(sourceRow, 0, sourceParent);
    if (m_operation >= 0 && idx.data(DeltaLogModel::OperationRole).toInt() != m_operation)
        return false;
    if (m_supersededOnly && idx.data(DeltaLogModel::OutcomeRole).toInt() != int(MapState::Outcome::Superseded))
        return false;
    if (m_text.isEmpty())
        return true;
    if (idx.data(DeltaLogModel::KeyRole).toString().contains(m_text, Qt::CaseInsensitive))
        return true;
    const QModelIndex peer = model->index(sourceRow, DeltaLogModel::PeerColumn, sourceParent);
    if (peer.data().toString().contains(m_text, Qt::CaseInsensitive))
        return true;
    return DisplayFormat::peerId(idx.data(DeltaLogModel::PeerIdRole).toULongLong()).contains(m_text, Qt::CaseInsensitive);
}
