#pragma once

#include "historyindex.h"

#include <QAbstractTableModel>
#include <QVector>

// The keys that changed between two moments, by key: each one's value at
// the first and at the second (HistoryIndex::changes()). Read-only.
class MapDiffModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column { KeyColumn, BeforeColumn, AfterColumn, ColumnCount };

    explicit MapDiffModel(QObject *parent = nullptr);

    void setChanges(QVector<HistoryIndex::Change> changes);
    const QVector<HistoryIndex::Change> &changes() const { return m_changes; }

    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    int columnCount(const QModelIndex &parent = QModelIndex()) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    QVector<HistoryIndex::Change> m_changes; // sorted by key
};
