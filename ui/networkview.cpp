#include "networkview.h"

#include "mapstate.h"
#include "uiformat.h"

#include <QPainter>
#include <QPainterPath>
#include <QtMath>

namespace {
constexpr int PulseMs = 900;
constexpr int GrowMs = 450;
constexpr int FadeMs = 700;
constexpr int MaxPulses = 400;
// Pulses on one path closer together than this merge into a heavier one.
constexpr int CoalesceMs = 60;
constexpr qreal NodeRadius = 18;
constexpr qreal RelayRadius = 26;

qreal easeOut(qreal t)
{
    t = qBound(0.0, t, 1.0);
    return 1 - (1 - t) * (1 - t);
}
} // namespace

NetworkView::NetworkView(QWidget *parent)
    : QWidget(parent)
{
    m_clock.start();
    m_timer.setInterval(33);
    connect(&m_timer, &QTimer::timeout, this, &NetworkView::tick);
    setAccessibleName(tr("Network picture"));
    setAccessibleDescription(tr("The relay in the middle, the peers of this map around it, deltas as pulses"));
    setFocusPolicy(Qt::NoFocus);
    setAttribute(Qt::WA_OpaquePaintEvent);
}

NetworkView::~NetworkView() = default;

QSize NetworkView::sizeHint() const
{
    return {360, 300};
}

QSize NetworkView::minimumSizeHint() const
{
    return {160, 140};
}

void NetworkView::setSelf(quint64 id, const QString &name)
{
    m_selfId = id;
    for (Node &node : m_nodes) {
        if (node.self) {
            node.id = id;
            node.name = name;
            update();
            return;
        }
    }
    Node node;
    node.id = id;
    node.name = name;
    node.self = true;
    node.bornMs = m_clock.elapsed();
    m_nodes.prepend(node);
    relayout();
}

void NetworkView::setRelayLabel(const QString &label)
{
    m_relayLabel = label;
    update();
}

void NetworkView::addPeer(quint64 id, const QString &name)
{
    for (Node &node : m_nodes) {
        if (node.id == id) {
            node.name = name;
            if (node.leftMs >= 0) {
                node.leftMs = -1;
                node.bornMs = m_clock.elapsed();
                relayout();
            }
            update();
            return;
        }
    }
    Node node;
    node.id = id;
    node.name = name;
    node.bornMs = m_clock.elapsed();
    m_nodes.append(node);
    relayout();
}

void NetworkView::removePeer(quint64 id)
{
    for (Node &node : m_nodes) {
        if (node.id == id && !node.self && node.leftMs < 0) {
            node.leftMs = m_clock.elapsed();
            relayout();
            return;
        }
    }
}

QList<quint64> NetworkView::peerIds() const
{
    QList<quint64> ids;
    for (const Node &node : m_nodes) {
        if (!node.self && node.leftMs < 0)
            ids.append(node.id);
    }
    return ids;
}

bool NetworkView::hasPeer(quint64 id) const
{
    return peerIds().contains(id);
}

QString NetworkView::peerName(quint64 id) const
{
    for (const Node &node : m_nodes) {
        if (node.id == id)
            return node.name;
    }
    return {};
}

void NetworkView::relayout()
{
    // Leaving peers keep their place while they fade; the others share the ring.
    int present = 0;
    for (const Node &node : std::as_const(m_nodes))
        present += node.leftMs < 0 ? 1 : 0;
    int i = 0;
    const qreal step = present > 0 ? 2 * M_PI / present : 0;
    for (Node &node : m_nodes) {
        if (node.leftMs >= 0)
            continue;
        // This peer sits at the bottom, the others follow clockwise.
        node.target = M_PI / 2 + step * i++;
        if (!node.placed) {
            node.angle = node.target;
            node.placed = true;
        }
    }
    ensureAnimating();
}

void NetworkView::observe(const DistributedMap::DeltaEvent &event)
{
    const bool lost = event.outcome == MapState::Outcome::Superseded;
    if (event.direction == DistributedMap::DeltaEvent::Incoming) {
        addPulse(event.peer, m_selfId, lost);
        return;
    }
    if (event.operation == DistributedMap::DeltaEvent::SyncChunk) {
        addPulse(m_selfId, event.peer, false);
        return;
    }
    bool anyone = false;
    for (const Node &node : std::as_const(m_nodes)) {
        if (!node.self && node.leftMs < 0) {
            addPulse(m_selfId, node.id, false);
            anyone = true;
        }
    }
    if (!anyone)
        addPulse(m_selfId, 0, false);
}

void NetworkView::addPulse(quint64 from, quint64 to, bool lost)
{
    const qint64 now = m_clock.elapsed();
    for (auto it = m_pulses.rbegin(); it != m_pulses.rend() && now - it->startMs < CoalesceMs; ++it) {
        if (it->from == from && it->to == to && it->lost == lost) {
            ++it->weight;
            return;
        }
    }
    if (m_pulses.size() >= MaxPulses)
        return;
    m_pulses.append({from, to, now, 1, lost});
    ensureAnimating();
}

void NetworkView::ensureAnimating()
{
    if (!m_timer.isActive())
        m_timer.start();
    update();
}

void NetworkView::tick()
{
    const qint64 now = m_clock.elapsed();
    m_pulses.erase(std::remove_if(m_pulses.begin(), m_pulses.end(),
                                  [now](const Pulse &p) { return now - p.startMs > PulseMs; }),
                   m_pulses.end());
    const auto gone = std::remove_if(m_nodes.begin(), m_nodes.end(),
                                     [now](const Node &n) { return n.leftMs >= 0 && now - n.leftMs > FadeMs; });
    m_nodes.erase(gone, m_nodes.end());
    bool moving = !m_pulses.isEmpty();
    for (Node &node : m_nodes) {
        const qreal delta = std::remainder(node.target - node.angle, 2 * M_PI);
        if (qAbs(delta) > 0.002) {
            node.angle += delta * 0.18;
            moving = true;
        } else {
            node.angle = node.target;
        }
        if (now - node.bornMs < GrowMs || node.leftMs >= 0)
            moving = true;
    }
    if (!moving)
        m_timer.stop();
    update();
}

QPointF NetworkView::nodePos(const Node &node, const QPointF &centre, qreal radius) const
{
    return centre + QPointF(std::cos(node.angle) * radius, std::sin(node.angle) * radius);
}

void NetworkView::paintEvent(QPaintEvent *)
{
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing);
    const QPalette pal = palette();
    p.fillRect(rect(), pal.color(QPalette::Base));

    const QPointF centre = QRectF(rect()).center();
    const qreal radius = qMax(40.0, qMin(width(), height()) / 2.0 - NodeRadius - 22);
    const qint64 now = m_clock.elapsed();
    QHash<quint64, QPointF> positions;
    for (const Node &node : std::as_const(m_nodes))
        positions.insert(node.id, nodePos(node, centre, radius));

    // Links first, under everything.
    QPen linkPen(UiFormat::mutedTextColor(pal), 1.5);
    linkPen.setStyle(Qt::DashLine);
    for (const Node &node : std::as_const(m_nodes)) {
        qreal opacity = easeOut(qreal(now - node.bornMs) / GrowMs);
        if (node.leftMs >= 0)
            opacity *= 1 - qreal(now - node.leftMs) / FadeMs;
        p.setOpacity(qBound(0.0, opacity, 1.0) * 0.8);
        p.setPen(linkPen);
        p.drawLine(centre, positions.value(node.id));
    }
    p.setOpacity(1);

    // Pulses: first half origin -> relay, second half relay -> destination.
    const QColor pulseColor = pal.color(QPalette::Highlight);
    const QColor lostColor(230, 120, 20);
    p.setPen(Qt::NoPen);
    for (const Pulse &pulse : std::as_const(m_pulses)) {
        const qreal t = qreal(now - pulse.startMs) / PulseMs;
        if (t < 0 || t > 1)
            continue;
        const QPointF from = positions.value(pulse.from, centre);
        const QPointF to = pulse.to ? positions.value(pulse.to, centre) : centre;
        const QPointF at = t < 0.5 ? from + (centre - from) * (t * 2) : centre + (to - centre) * ((t - 0.5) * 2);
        const qreal r = 3.5 + qMin(6.0, std::log2(1.0 + pulse.weight) * 1.5);
        p.setBrush(pulse.lost ? lostColor : pulseColor);
        p.setOpacity(t > 0.85 ? (1 - t) / 0.15 : 1.0);
        p.drawEllipse(at, r, r);
    }
    p.setOpacity(1);

    // The relay.
    p.setPen(QPen(pal.color(QPalette::Text), 1.5));
    p.setBrush(pal.color(QPalette::Button));
    p.drawRoundedRect(QRectF(centre - QPointF(RelayRadius, RelayRadius * 0.75), QSizeF(RelayRadius * 2, RelayRadius * 1.5)), 6, 6);
    p.setPen(pal.color(QPalette::ButtonText));
    p.drawText(QRectF(centre - QPointF(RelayRadius, RelayRadius * 0.75), QSizeF(RelayRadius * 2, RelayRadius * 1.5)),
               Qt::AlignCenter, tr("relay"));
    if (!m_relayLabel.isEmpty()) {
        const QFontMetrics metrics(font());
        QRectF box(0, 0, metrics.horizontalAdvance(m_relayLabel) + 6, metrics.height());
        box.moveCenter(QPointF(centre.x(), centre.y() + RelayRadius * 0.75 + 4 + metrics.height() / 2.0));
        // A backing so the links never run through the text.
        p.fillRect(box, pal.color(QPalette::Base));
        p.setPen(UiFormat::mutedTextColor(pal));
        p.drawText(box, Qt::AlignCenter, m_relayLabel);
    }

    // Peers.
    QFont bold = font();
    bold.setBold(true);
    for (const Node &node : std::as_const(m_nodes)) {
        const QFontMetrics fm(node.self ? bold : font());
        qreal scale = easeOut(qreal(now - node.bornMs) / GrowMs);
        qreal opacity = 1;
        if (node.leftMs >= 0)
            opacity = 1 - qBound(0.0, qreal(now - node.leftMs) / FadeMs, 1.0);
        const QPointF pos = positions.value(node.id);
        // Leaving peers shrink as they fade, so a newcomer taking the same
        // spot is not drawn on top of a ghost.
        const qreal r = NodeRadius * (0.3 + 0.7 * scale) * (node.leftMs >= 0 ? opacity : 1.0);
        p.setOpacity(opacity);
        p.setPen(QPen(node.self ? pal.color(QPalette::Highlight) : pal.color(QPalette::Text), node.self ? 3 : 1.5));
        p.setBrush(node.self ? pal.color(QPalette::Highlight).lighter(pal.color(QPalette::Base).lightness() < 128 ? 80 : 160)
                             : pal.color(QPalette::AlternateBase));
        p.drawEllipse(pos, r, r);
        const QString initial = node.name.isEmpty() ? QStringLiteral("?") : node.name.left(1).toUpper();
        p.setPen(pal.color(QPalette::Text));
        p.drawText(QRectF(pos - QPointF(r, r), QSizeF(2 * r, 2 * r)), Qt::AlignCenter, initial);
        if (node.leftMs >= 0)
            continue; // no label: it would overlap whoever takes the place
        QString label = node.name.isEmpty() ? UiFormat::shortPeerId(node.id) : node.name;
        if (node.self)
            label = tr("%1 (you)").arg(label);
        label = fm.elidedText(label, Qt::ElideRight, 140);
        // Labels go outside the ring so they never cross the links.
        const QPointF dir = pos - centre;
        const qreal len = std::hypot(dir.x(), dir.y());
        const QPointF unit = len > 0 ? dir / len : QPointF(0, 1);
        const QPointF anchor = pos + unit * (r + 4);
        const int w = fm.horizontalAdvance(label);
        QRectF box(0, 0, w + 2, fm.height());
        box.moveCenter(anchor + QPointF(unit.x() * (w / 2.0), unit.y() * fm.height() / 2.0));
        box.moveLeft(qBound(2.0, box.left(), width() - box.width() - 2));
        box.moveTop(qBound(2.0, box.top(), height() - box.height() - 2));
        p.setFont(node.self ? bold : font());
        p.drawText(box, Qt::AlignCenter, label);
        p.setFont(font());
    }
    p.setOpacity(1);
}
