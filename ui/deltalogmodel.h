#pragma once

#include "connection.h" // DistributedMap::connection() needs the complete type
#include "distributedmap.h"

#include <QAbstractTableModel>
#include <QTimer>
#include <QVector>

#include <functional>

class QIODevice;

// The deltas log: a bounded ring of plain records, one per delta seen in or
// out (sync chunks included). Deltas are appended in batches on a short
// timer (begin/endInsertRows at the end) and the oldest rows are trimmed
// with begin/endRemoveRows at the front, so memory stays flat however long
// the session runs. While paused, deltas wait in a buffer bounded by the
// same capacity and appear on resume. GUI thread only.
class DeltaLogModel : public QAbstractTableModel
{
    Q_OBJECT
    Q_DISABLE_COPY(DeltaLogModel)
public:
    enum Column {
        TimeColumn,
        DirectionColumn,
        PeerColumn,
        OperationColumn,
        KeyColumn,
        ValueColumn,
        ClockColumn,
        OutcomeColumn,
        ColumnCount
    };
    Q_ENUM(Column)
    enum Role {
        OutcomeRole = Qt::UserRole, // int, MapState::Outcome
        OperationRole,              // int, DeltaEvent::Operation
        DirectionRole,              // int, DeltaEvent::Direction
        PeerIdRole,                 // quint64
        KeyRole,                    // QString
        DetailsRole,                // QString, the record as indented JSON
    };

    struct Record
    {
        qint64 timeMs = 0;
        DistributedMap::DeltaEvent event;
    };

    explicit DeltaLogModel(QObject *parent = nullptr);
    ~DeltaLogModel() override;

    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    int columnCount(const QModelIndex &parent = QModelIndex()) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    // Most rows kept (default 10000, at least 1); lowering it drops the oldest.
    void setCapacity(int rows);
    int capacity() const { return m_capacity; }
    void setPaused(bool paused);
    bool isPaused() const { return m_paused; }
    // Deltas waiting while paused (or for the next batch).
    int pendingCount() const { return int(m_pending.size()); }
    // Deltas dropped because they did not fit the capacity.
    quint64 droppedCount() const { return m_dropped; }
    void clear();
    // How peers are named in the peer column (default: short peer id).
    void setPeerNameResolver(const std::function<QString(quint64)> &resolver) { m_nameOf = resolver; }

    const Record &record(int row) const;
    QJsonObject toJson(int row) const;
    // One JSON object per line, oldest first; returns the number written.
    int writeJsonLines(QIODevice *device) const;
    // Appends pending deltas now instead of at the next batch.
    void flush();

public Q_SLOTS:
    void append(const DistributedMap::DeltaEvent &event);

private:
    Record &at(int row) { return m_ring[(m_head + row) % m_ring.size()]; }

    QVector<Record> m_ring;
    int m_head = 0; // oldest row's slot
    int m_count = 0;
    int m_capacity = 10000;
    QVector<Record> m_pending;
    bool m_paused = false;
    quint64 m_dropped = 0;
    QTimer m_batchTimer;
    std::function<QString(quint64)> m_nameOf;
};
