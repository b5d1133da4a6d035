#pragma once

#include "distmap_global.h"
#include "distributedmap.h"

#include <QAbstractTableModel>
#include <QPointer>
#include <QSet>
#include <QTimer>
#include <QVector>

#include <functional>
#include <memory>

class EntryRef;
class SortKey;

/// A Qt item model over a DistributedMap: one row per live key, kept sorted
/// (by key unless sort() says otherwise), for QTableView, QListView (column
/// 0 with the roles) or QML.
///
/// The model keeps an index of keys only; values, writers and clocks are read
/// from the map when a view asks. Changes from any source are collected by
/// key and applied on a short timer (batchInterval(), 50 ms by default) as
/// precise row inserts, row removals and one dataChanged range per batch. A
/// remote delta never resets the model. A batch that touches many scattered
/// rows (a sync) becomes one block insert (or one tail removal) plus a
/// layout change: views pay O(rows) once, not once per key. Batches are
/// bounded, so a million-key sync never blocks the event loop for long.
///
/// Sorting (by any column, either order) and filtering (a case-insensitive
/// substring of the key or of the value's JSON text) run inside the model:
/// a QSortFilterProxyModel over a million rows keeps a mapping entry per row
/// and re-sorts in seconds (docs/BENCHMARKS.md has the figures). Sorted by
/// value, writer or time, the model also keeps, per shown key, the sort key
/// it placed the row by: a change can move a row, and finding the row again
/// needs where it was put, not what the map holds now. A changed row moves
/// with beginMoveRows(), or, in a large batch, within the batch's layout
/// change; persistent indexes follow their keys either way.
///
/// Editable: setData() on the value column (or ValueRole, JsonTextRole)
/// writes to the map; the row shows the write with the next batch, like
/// every other change.
///
/// Lives in the map's thread; call it from that thread only.
class DISTMAP_EXPORT DistributedMapModel : public QAbstractTableModel
{
    Q_OBJECT
    Q_DISABLE_COPY(DistributedMapModel)
    Q_PROPERTY(QString filterText READ filterText WRITE setFilterText)
public:
    /// The columns: the key, its value (JSON text, elided), the last
    /// writer (setWriterNameResolver()) and the time of its write.
    enum Column { KeyColumn, ValueColumn, WriterColumn, WhenColumn, ColumnCount };
    Q_ENUM(Column)
    /// Every role answers on any column.
    enum Role {
        KeyRole = Qt::UserRole, //!< QString
        ValueRole,              //!< QVariant (QJsonValue::toVariant(): QString, double, bool, QVariantMap, ...)
        JsonTextRole,           //!< QByteArray, the value's compact JSON text as stored
        WriterIdRole,           //!< quint64, the peer that made the key's current write
        WriterNameRole,         //!< QString, that peer as setWriterNameResolver() names it
        TimeRole,               //!< QDateTime (UTC) of the current write, from its clock
        HlcRole,                //!< quint64, the write's hybrid logical clock
        LocalRole,              //!< bool, whether this peer made the current write
        UserRoleEnd,            //!< subclasses start their roles here
    };
    Q_ENUM(Role)

    /// A model over map's live keys; later changes follow in batches. A
    /// map of up to 50,000 keys is shown at once; the keys of a larger one
    /// join the rows over the next event-loop turns, the way a sync's keys
    /// do (isFilling()), so that a view over a million keys never freezes
    /// the window while it opens. setFilterText() fills the same way.
    explicit DistributedMapModel(DistributedMap *map, QObject *parent = nullptr);
    ~DistributedMapModel() override;

    /// The map given at construction (null once it is destroyed).
    DistributedMap *map() const { return m_map; }

    /// The number of keys shown (0 for a valid parent: the model is a flat table).
    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    /// The number of columns, ColumnCount (0 for a valid parent).
    int columnCount(const QModelIndex &parent = QModelIndex()) const override;
    /// The Role values on any column; DisplayRole, EditRole and ToolTipRole
    /// per column (the value column's tooltip shows the JSON indented).
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    /// The columns' titles: Key, Value, Last writer, When.
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
    /// Adds Qt::ItemIsEditable on the value column.
    Qt::ItemFlags flags(const QModelIndex &index) const override;
    /// Writes the row's key. Value column with EditRole: a QJsonValue is
    /// stored as is, a QString must be JSON text (false otherwise). ValueRole:
    /// a QVariant as DistributedMap::set(key, QVariant) takes it.
    /// JsonTextRole: JSON text. False when the map refuses the write.
    bool setData(const QModelIndex &index, const QVariant &value, int role = Qt::EditRole) override;
    /// Orders the rows by column (a Column; others are ignored), ties by
    /// key so the order is total; descending is ascending reversed. Values
    /// sort by JSON type (null, false, true, numbers, strings, arrays,
    /// objects), numbers by value, strings by code point, arrays and
    /// objects by their compact JSON text; strings, arrays and objects
    /// compare on their first 64 bytes. Writers sort by the resolver's name,
    /// by code point, as it was when the sort ran (a writer first seen later
    /// is named then; setWriterNameResolver() sorts again); times by the
    /// write's clock. A layout change, not a reset: persistent indexes keep
    /// their keys. Nothing happens when column and order are the current ones.
    void sort(int column, Qt::SortOrder order = Qt::AscendingOrder) override;
    /// Qt's names plus one per Role, for QML: key, value, jsonText,
    /// writerId, writerName, time, hlc, local.
    QHash<int, QByteArray> roleNames() const override;

    /// The column the rows are sorted by (KeyColumn by default; sort()).
    int sortColumn() const { return m_column; }
    /// The order of the rows (ascending by default; sort()).
    Qt::SortOrder sortOrder() const { return m_order; }
    /// Shows only keys whose name or JSON text contains text, ignoring case
    /// (ASCII case for the JSON text). Resets the model: a user action.
    void setFilterText(const QString &text);
    /// The filter set by setFilterText() (empty: every key).
    QString filterText() const { return m_filter; }

    /// The key shown in row (empty when out of range).
    QString keyAt(int row) const;
    int rowOf(const QString &key) const; //!< the row showing key; -1 when not shown
    /// The index of key's row in column (invalid when not shown).
    QModelIndex indexOf(const QString &key, int column = KeyColumn) const;

    /// How writers are named in the writer column and WriterNameRole
    /// (default: the short peer id). Sorted by writer, the rows are sorted
    /// again by the new names.
    void setWriterNameResolver(const std::function<QString(quint64)> &resolver);
    /// Batch interval in ms (default 50; 0: at the next event-loop pass).
    void setBatchInterval(int ms) { m_batchTimer.setInterval(ms); }
    /// Batch interval in ms.
    int batchInterval() const { return m_batchTimer.interval(); }
    /// Changes received and not shown yet (counted by key).
    int pendingCount() const { return int(m_pending.size()); }
    /// Whether the keys of a large map are still joining the rows (see the
    /// constructor); once false, pendingCount() keys remain to be shown.
    bool isFilling() const { return m_fill != nullptr; }
    /// Applies pending changes now (at most one batch budget per call).
    void flush();

Q_SIGNALS:
    /// After each applied batch: rows updated (in place, or moved to a new
    /// place when sorted by another column than the key), inserted and removed.
    void batchApplied(int updated, int inserted, int removed);

private:
    void onChanged(const DistributedMap::Change &change);
    void enqueue(const QString &key);
    void rebuild();
    void fillSome();
    void sortRows(bool keysAscending = false); // keysAscending: m_keys are in ascending key order
    void reorder(int column, Qt::SortOrder order);
    // Persistent indexes follow their keys through a reorder: their keys
    // before it, their rows found again after.
    QVector<QString> keysOf(const QModelIndexList &indexes) const;
    void changePersistentIndexesByKey(const QModelIndexList &from, const QVector<QString> &keys);
    // Whether the row (sortKey, key) goes before the row (otherSortKey, otherKey).
    bool before(const SortKey &sortKey, const QString &key, const SortKey &otherSortKey, const QString &otherKey) const;
    // What a shown key's row was placed by (an empty SortKey when sorted by key).
    const SortKey &placedBy(const QString &key) const;
    const SortKey &sortKeyAt(int row) const; // the same for the key in row
    SortKey sortKeyOf(const EntryRef &entry);
    int lowerBound(const SortKey &sortKey, const QString &key, int first, int last) const;
    bool matches(const QString &key, const EntryRef &entry) const;
    EntryRef entryOf(const QString &key) const;
    void removeIndices(const QVector<int> &indices);
    void insertKey(const QString &key);
    void moveRow(int row);
    void placeRows(QVector<int> rows);

    QPointer<DistributedMap> m_map;
    QVector<QString> m_keys; // shown keys in display order
    int m_column = KeyColumn;
    Qt::SortOrder m_order = Qt::AscendingOrder;
    // What sorting by another column than the key keeps (null otherwise);
    // in the .cpp, as SortKey is not part of the installed headers.
    struct ColumnSort;
    std::unique_ptr<ColumnSort> m_columnSort;
    QString m_filter;
    QByteArray m_filterUtf8Lower;
    // Keys changed since the last batch, oldest first, each once. Taken
    // from the front: erasing a QSet from begin() rescans its emptied
    // buckets every time, quadratic over a 1,000,000-key sync.
    QVector<QString> m_pendingKeys;
    qsizetype m_pendingHead = 0; // m_pendingKeys before this are taken
    QSet<QString> m_pending;     // the same keys, to take each once
    QTimer m_batchTimer;
    struct Fill;
    std::unique_ptr<Fill> m_fill; // the keys still to add to the rows
    QTimer m_fillTimer;
    std::function<QString(quint64)> m_nameOf;
};
