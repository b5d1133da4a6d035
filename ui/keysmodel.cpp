#include "keysmodel.h"

namespace {

constexpr int FlashTickMs = 40;
// A remote burst must not turn the flash table into a second copy of the map.
constexpr int MaxFlashing = 4096;

} // namespace

KeysModel::KeysModel(DistributedMap *map, QObject *parent)
    : DistributedMapModel(map, parent)
{
    m_clock.start();
    m_flashTimer.setInterval(FlashTickMs);
    connect(&m_flashTimer, &QTimer::timeout, this, &KeysModel::tickFlash);
    if (map)
        connect(map, &DistributedMap::changed, this, &KeysModel::onChanged);
}

KeysModel::~KeysModel() = default;

QVariant KeysModel::data(const QModelIndex &index, int role) const
{
    if (role != FlashRole)
        return DistributedMapModel::data(index, role);
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const auto it = m_flashUntil.constFind(keyAt(index.row()));
    if (it == m_flashUntil.cend())
        return 0.0;
    return qBound(0.0, qreal(*it - m_clock.elapsed()) / m_flashMs, 1.0);
}

QHash<int, QByteArray> KeysModel::roleNames() const
{
    QHash<int, QByteArray> names = DistributedMapModel::roleNames();
    names.insert(FlashRole, "flash");
    return names;
}

bool KeysModel::isFlashing(const QString &key) const
{
    const auto it = m_flashUntil.constFind(key);
    return it != m_flashUntil.cend() && *it > m_clock.elapsed();
}

void KeysModel::onChanged(const DistributedMap::Change &change)
{
    // Sync and store loads are bulk catch-up, not someone editing: no flash.
    const bool remoteEdit = change.source == DistributedMap::Source::Delta || change.source == DistributedMap::Source::Repair;
    if (remoteEdit && !change.deleted && m_flashUntil.size() < MaxFlashing) {
        m_flashUntil.insert(change.key, m_clock.elapsed() + m_flashMs);
        if (!m_flashTimer.isActive())
            m_flashTimer.start();
    }
}

void KeysModel::tickFlash()
{
    const qint64 now = m_clock.elapsed();
    for (auto it = m_flashUntil.begin(); it != m_flashUntil.end();) {
        if (*it <= now)
            it = m_flashUntil.erase(it);
        else
            ++it;
    }
    if (m_flashUntil.isEmpty())
        m_flashTimer.stop();
    // One range for all rows: views repaint only the visible part.
    const int rows = rowCount();
    if (rows > 0)
        Q_EMIT dataChanged(index(0, 0), index(rows - 1, ColumnCount - 1), {FlashRole});
}
