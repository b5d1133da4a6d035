#pragma once

#include "connection.h" // DistributedMap::connection() needs the complete type
#include "distributedmapmodel.h"

#include <QElapsedTimer>
#include <QHash>
#include <QTimer>

// The inspector's keys table: the library's DistributedMapModel, plus rows
// that flash when another peer changes them (FlashRole; FlashDelegate turns
// it into a colour). One model for applications and the inspector alike.
//
// GUI thread only.
class KeysModel : public DistributedMapModel
{
    Q_OBJECT
    Q_DISABLE_COPY(KeysModel)
public:
    enum KeysRole {
        FlashRole = UserRoleEnd, // qreal 0..1, how strongly the row flashes now
    };

    explicit KeysModel(DistributedMap *map, QObject *parent = nullptr);
    ~KeysModel() override;

    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QHash<int, QByteArray> roleNames() const override;

    // How long a row changed by another peer flashes, ms (default 1500).
    bool isFlashing(const QString &key) const;

private:
    void onChanged(const DistributedMap::Change &change);
    void tickFlash();

    QHash<QString, qint64> m_flashUntil; // key -> end of flash on m_clock
    QElapsedTimer m_clock;
    QTimer m_flashTimer;
    int m_flashMs = 1500;
};
