#pragma once

#include "connection.h" // DistributedMap::connection() needs the complete type
#include "distributedmap.h"
#include "entry.h"

#include <QAbstractTableModel>
#include <QElapsedTimer>
#include <QHash>
#include <QPointer>
#include <QSet>
#include <QTimer>
#include <QVector>

#include <functional>

// Table adapter over a DistributedMap's live keys: the model holds a pointer
// to the map and an index of keys (sorted, filtered), never the values, which
// it reads from MapState on demand. Changes are collected by key and applied
// on a short timer as row inserts, row removals and one dataChanged range
// per batch; a batch that touches many scattered rows becomes one append (or
// one tail removal) plus a layout change, so a burst costs the views O(rows)
// once instead of once per delta. Rows changed by other peers flash
// (FlashRole; FlashDelegate turns it into a colour).
//
// Sorting is by key only, ascending or descending, kept live; filtering is a
// case-insensitive substring of the key or of the value's JSON text. Both run
// inside the model because a QSortFilterProxyModel over a million rows costs
// seconds per re-sort and a mapping entry per row.
//
// GUI thread only.
class KeysModel : public QAbstractTableModel
{
    Q_OBJECT
    Q_DISABLE_COPY(KeysModel)
public:
    enum Column { KeyColumn, ValueColumn, WriterColumn, WhenColumn, ColumnCount };
    Q_ENUM(Column)
    enum Role {
        KeyRole = Qt::UserRole, // QString
        JsonTextRole,           // QByteArray, compact JSON of the value
        HlcRole,                // quint64
        WriterIdRole,           // quint64
        FlashRole,              // qreal 0..1, how strongly the row flashes now
    };

    explicit KeysModel(DistributedMap *map, QObject *parent = nullptr);
    ~KeysModel() override;

    DistributedMap *map() const { return m_map; }

    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    int columnCount(const QModelIndex &parent = QModelIndex()) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
    Qt::ItemFlags flags(const QModelIndex &index) const override;
    // Value column, EditRole: a QJsonValue is stored as is; a QString must be
    // valid JSON (false otherwise; store plain text by passing QJsonValue).
    bool setData(const QModelIndex &index, const QVariant &value, int role = Qt::EditRole) override;
    // Only the key column sorts; other columns are ignored.
    void sort(int column, Qt::SortOrder order = Qt::AscendingOrder) override;
    QHash<int, QByteArray> roleNames() const override;

    Qt::SortOrder sortOrder() const { return m_order; }
    void setFilterText(const QString &text);
    QString filterText() const { return m_filter; }

    QString keyAt(int row) const;
    int rowOf(const QString &key) const; // -1 when not shown
    QModelIndex indexOf(const QString &key, int column = KeyColumn) const;

    // How writers are named in the writer column (default: short peer id).
    void setWriterNameResolver(const std::function<QString(quint64)> &resolver);
    // Batch interval in ms (default 50).
    void setBatchInterval(int ms) { m_batchTimer.setInterval(ms); }
    // How long a row changed by another peer flashes, ms (default 1500).
    bool isFlashing(const QString &key) const;
    int pendingCount() const { return int(m_pending.size()); }
    // Applies pending changes now (at most one budget's worth per call).
    void flush();

Q_SIGNALS:
    // After each applied batch: rows updated in place, inserted and removed.
    void batchApplied(int updated, int inserted, int removed);

private:
    void onChanged(const DistributedMap::Change &change);
    void rebuild();
    bool lessKey(const QString &a, const QString &b) const
    {
        return m_order == Qt::AscendingOrder ? a < b : b < a;
    }
    int lowerBound(const QString &key, int first, int last) const;
    bool matches(const QString &key, const Entry &entry) const;
    void removeIndices(const QVector<int> &indices);
    void insertKeys(QVector<QPair<int, QString>> keys); // (position among current rows, key)
    void tickFlash();

    QPointer<DistributedMap> m_map;
    QVector<QString> m_keys; // shown keys in display order
    Qt::SortOrder m_order = Qt::AscendingOrder;
    QString m_filter;
    QByteArray m_filterUtf8Lower;
    QSet<QString> m_pending;
    QTimer m_batchTimer;
    std::function<QString(quint64)> m_nameOf;

    QHash<QString, qint64> m_flashUntil; // key -> end of flash on m_clock
    QElapsedTimer m_clock;
    QTimer m_flashTimer;
    int m_flashMs = 1500;
};
