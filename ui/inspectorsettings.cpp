#include "inspectorsettings.h"

#include <QSettings>

InspectorSettings::InspectorSettings(bool enabled)
    : m_enabled(enabled)
{
}

QVariant InspectorSettings::value(const QString &key) const
{
    return m_enabled ? QSettings().value(key) : QVariant();
}

void InspectorSettings::setValue(const QString &key, const QVariant &value)
{
    if (m_enabled)
        QSettings().setValue(key, value);
}

void InspectorSettings::remember(const QString &key, const QString &value)
{
    if (!m_enabled || value.isEmpty())
        return;
    QSettings settings;
    QStringList recent = settings.value(key).toStringList();
    recent.removeAll(value);
    recent.prepend(value);
    settings.setValue(key, recent.mid(0, RecentItems));
}

QString InspectorSettings::name() const
{
    return value(QStringLiteral("name")).toString();
}

void InspectorSettings::setName(const QString &name)
{
    setValue(QStringLiteral("name"), name);
}

QStringList InspectorSettings::openMaps() const
{
    return value(QStringLiteral("openMaps")).toStringList();
}

void InspectorSettings::setOpenMaps(const QStringList &uris)
{
    setValue(QStringLiteral("openMaps"), uris);
}

QStringList InspectorSettings::recentUrls() const
{
    return value(QStringLiteral("recentUrls")).toStringList();
}

QStringList InspectorSettings::recentMaps() const
{
    return value(QStringLiteral("recentMaps")).toStringList();
}

void InspectorSettings::rememberUrl(const QString &url)
{
    remember(QStringLiteral("recentUrls"), url);
}

void InspectorSettings::rememberMap(const QString &uri)
{
    remember(QStringLiteral("recentMaps"), uri);
}

QByteArray InspectorSettings::windowGeometry() const
{
    return value(QStringLiteral("geometry")).toByteArray();
}

void InspectorSettings::setWindowGeometry(const QByteArray &geometry)
{
    setValue(QStringLiteral("geometry"), geometry);
}

QByteArray InspectorSettings::windowState() const
{
    return value(QStringLiteral("windowState")).toByteArray();
}

void InspectorSettings::setWindowState(const QByteArray &state)
{
    setValue(QStringLiteral("windowState"), state);
}

QByteArray InspectorSettings::mapViewState() const
{
    return value(QStringLiteral("mapViewState")).toByteArray();
}

void InspectorSettings::setMapViewState(const QByteArray &state)
{
    setValue(QStringLiteral("mapViewState"), state);
}
