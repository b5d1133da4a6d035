#pragma once

#include "historyindex.h"

#include <QAbstractTableModel>
#include <QVector>

#include <functional>
#include <optional>

// The map as it was at one moment, for the keys table while the timeline
// is scrubbed back: a row per key that had a value then, the same columns
// as the live keys model, sorted as it sorts (by key unless sort() says
// otherwise), and the keys that changed since marked. Read-only: the past
// is not edited, only restored key by key.
class SnapshotModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Role { ChangedSinceRole = Qt::UserRole + 1 };

    // Headers are live's own, so the table looks the same in the past.
    explicit SnapshotModel(const QAbstractItemModel *live, QObject *parent = nullptr);

    // The rows, sorted here in the current order.
    void setSnapshot(HistoryIndex::Snapshot snapshot);
    // One key at a new moment: its write then (none or a tombstone: no
    // row), and whether it was written after that moment.
    struct RowUpdate
    {
        QString key;
        std::optional<Entry> entry;
        bool changedSince = false;
    };
    // Moves the snapshot to a nearby moment by the keys written between
    // the two: what a step of the timeline costs is what changed in it.
    // changedSinceCount: keys written after the new moment, with a row or
    // not (see HistoryIndex::Snapshot).
    void applyUpdates(QVector<RowUpdate> updates, qsizetype changedSinceCount);
    int changedSinceCount() const { return int(m_changedSinceCount); }
    QString keyAt(int row) const { return row >= 0 && row < m_rows.size() ? m_rows.at(row).key : QString(); }
    // A binary search when sorted by key, a scan otherwise: the past is
    // looked up a key at a time, on a user's action.
    int rowOf(const QString &key) const;
    const Entry &entryAt(int row) const { return m_rows.at(row).entry; }
    void setWriterNameResolver(const std::function<QString(quint64)> &resolver) { m_nameOf = resolver; }

    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    int columnCount(const QModelIndex &parent = QModelIndex()) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
    // By any column, in DistributedMapModel's order (ties by key); the
    // writer column by the resolver's names.
    void sort(int column, Qt::SortOrder order = Qt::AscendingOrder) override;

private:
    struct Row
    {
        QString key;
        Entry entry;
        bool changedSince = false;
    };
    void sortRows();
    bool updateInPlace(QVector<RowUpdate> &updates);
    void applyUpdatesAndSort(QVector<RowUpdate> updates);

    const QAbstractItemModel *const m_live;
    QVector<Row> m_rows; // in the sort order
    int m_column = 0;    // DistributedMapModel::KeyColumn
    Qt::SortOrder m_order = Qt::AscendingOrder;
    qsizetype m_changedSinceCount = 0;
    std::function<QString(quint64)> m_nameOf;
};
