#pragma once

#include "entry.h"

#include <QAbstractTableModel>
#include <QVector>

#include <functional>

// One key's past writes, newest first: when, who, what (or deleted), and
// which one is the key's current write. A thin adapter over what a
// HistoryIndex returns for the key; setWrites() replaces the rows.
class KeyHistoryModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column { WhenColumn, WriterColumn, ValueColumn, NoteColumn, ColumnCount };

    explicit KeyHistoryModel(QObject *parent = nullptr);

    // writes in clock order, oldest first (HistoryIndex::keyHistory());
    // current: the key's current write, to mark it.
    // lost: per write, whether it lost a conflict (empty: none did).
    void setWrites(const QString &key, const QVector<Entry> &writes, const Entry &current, const QVector<bool> &lost = {});
    void clear() { setWrites(QString(), {}, Entry()); }
    // Whether the write shown at row lost a conflict: it arrived after a
    // newer write of its key and never became current here.
    bool lostAt(int row) const { return m_lost.value(m_writes.size() - 1 - row); }
    enum Role { LostRole = Qt::UserRole + 1 };
    QString key() const { return m_key; }
    // The write shown at row (newest first).
    Entry writeAt(int row) const { return m_writes.value(m_writes.size() - 1 - row); }
    const QVector<Entry> &writes() const { return m_writes; }
    void setWriterNameResolver(const std::function<QString(quint64)> &resolver) { m_nameOf = resolver; }

    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    int columnCount(const QModelIndex &parent = QModelIndex()) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    QString m_key;
    QVector<Entry> m_writes; // oldest first
    QVector<bool> m_lost;    // the same order, or empty
    Entry m_current;
    std::function<QString(quint64)> m_nameOf;
};
