#pragma once

#include "connection.h" // DistributedMap::connection() needs the complete type
#include "distributedmap.h"

#include <QElapsedTimer>
#include <QHash>
#include <QTimer>
#include <QVector>
#include <QWidget>

// The map network as a picture: the relay in the middle, the peers on a
// ring around it (this peer highlighted), and every delta as a pulse that
// travels from its origin to the relay and on to the peers that receive it.
// Joining peers grow in, leaving ones fade out, the ring re-spaces smoothly.
// Animates only while something moves; under heavy traffic pulses are
// coalesced per path so painting cost stays bounded.
class NetworkView : public QWidget
{
    Q_OBJECT
    Q_DISABLE_COPY(NetworkView)
public:
    explicit NetworkView(QWidget *parent = nullptr);
    ~NetworkView() override;

    void setSelf(quint64 id, const QString &name);
    void setRelayLabel(const QString &label);
    void addPeer(quint64 id, const QString &name);
    void removePeer(quint64 id);
    void observe(const DistributedMap::DeltaEvent &event);

    // For tests and the status: peers currently drawn (leaving ones excluded).
    QList<quint64> peerIds() const;
    bool hasPeer(quint64 id) const;
    QString peerName(quint64 id) const;
    int activePulseCount() const { return int(m_pulses.size()); }

    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

protected:
    void paintEvent(QPaintEvent *event) override;

private:
    struct Node
    {
        quint64 id = 0;
        QString name;
        bool self = false;
        qint64 bornMs = 0;
        qint64 leftMs = -1;  // fading out since then
        qreal angle = 0;     // drawn angle, eases towards target
        qreal target = 0;
        bool placed = false; // a new node appears at its place, then eases
    };
    struct Pulse
    {
        quint64 from = 0;
        quint64 to = 0; // 0: ends at the relay
        qint64 startMs = 0;
        int weight = 1; // coalesced deltas
        bool lost = false; // superseded on arrival
    };

    void addPulse(quint64 from, quint64 to, bool lost);
    void relayout();
    void tick();
    void ensureAnimating();
    QPointF nodePos(const Node &node, const QPointF &centre, qreal radius) const;

    QVector<Node> m_nodes;
    QVector<Pulse> m_pulses;
    QString m_relayLabel;
    QElapsedTimer m_clock;
    QTimer m_timer;
    quint64 m_selfId = 0;
};
