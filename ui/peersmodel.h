#pragma once

#include "connection.h" // DistributedMap::connection() needs the complete type
#include "distributedmap.h"

#include <QAbstractTableModel>
#include <QPointer>
#include <QTimer>
#include <QVector>

// The peers of one map network, this peer first and marked: name (from
// presence), id, connected since, deltas sent and received, and which peer
// served our last sync. Joins and leaves are row inserts and removals.
//
// Counting is from this peer's point of view: a peer's "sent" are the writes
// that reached us from it, its "received" the writes we broadcast (or sync
// chunks we served it) while it was present. Our own row counts all our
// outgoing and all incoming writes. Counter columns repaint at most 4 times
// a second. GUI thread only.
class PeersModel : public QAbstractTableModel
{
    Q_OBJECT
    Q_DISABLE_COPY(PeersModel)
public:
    enum Column { NameColumn, IdColumn, SinceColumn, SentColumn, ReceivedColumn, SyncColumn, ColumnCount };
    Q_ENUM(Column)
    enum Role {
        PeerIdRole = Qt::UserRole, // quint64
        IsSelfRole,                // bool
    };

    explicit PeersModel(DistributedMap *map, QObject *parent = nullptr);
    ~PeersModel() override;

    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    int columnCount(const QModelIndex &parent = QModelIndex()) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    int rowOf(quint64 peer) const;
    quint64 selfId() const;
    // Presence name of a peer, also of one that has left; empty if unknown.
    QString nameOf(quint64 peer) const;
    // "you", a peer's name, or its short id: how writers are shown.
    QString displayName(quint64 peer) const;
    // Re-reads this peer's id and presence name (after setPresence()).
    void refreshSelf();

Q_SIGNALS:
    void peerNamed(quint64 peer, const QString &name);

private:
    struct Row
    {
        quint64 id = 0;
        QString name;
        qint64 sinceMs = 0;
        quint64 sent = 0;
        quint64 received = 0;
    };

    void addPeer(const DistributedMap::Peer &peer);
    void removePeer(quint64 peer);
    void renamePeer(const DistributedMap::Peer &peer);
    void countDelta(const DistributedMap::DeltaEvent &event);
    void refreshCounters();

    QPointer<DistributedMap> m_map;
    QVector<Row> m_rows; // m_rows[0] is this peer
    QHash<quint64, QString> m_names;
    QTimer m_counterTimer;
    quint64 m_syncSource = 0;
};
