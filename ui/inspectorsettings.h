#pragma once

#include <QByteArray>
#include <QString>
#include <QStringList>
#include <QVariant>

// What the inspector remembers across runs, in QSettings under the
// application's organisation and name: recent relay URLs and maps, the maps
// open at exit, the display name, and the window and tab layouts. A disabled
// instance (tests, --fresh, --screenshot) reads nothing and writes nothing,
// so a run that must not touch the user's settings cannot do so by mistake.
class InspectorSettings
{
public:
    static constexpr int RecentItems = 10; // most recent URLs (and maps) kept

    explicit InspectorSettings(bool enabled = true);

    bool isEnabled() const { return m_enabled; }

    QString name() const;
    void setName(const QString &name);
    QStringList openMaps() const;
    void setOpenMaps(const QStringList &uris);

    // Most recent first.
    QStringList recentUrls() const;
    QStringList recentMaps() const;
    // Moves value to the front of its list (adding it when new).
    void rememberUrl(const QString &url);
    void rememberMap(const QString &uri);

    QByteArray windowGeometry() const;
    void setWindowGeometry(const QByteArray &geometry);
    QByteArray windowState() const;
    void setWindowState(const QByteArray &state);
    // The splitter layout of a map tab, shared by every tab.
    QByteArray mapViewState() const;
    void setMapViewState(const QByteArray &state);

private:
    QVariant value(const QString &key) const;
    void setValue(const QString &key, const QVariant &value);
    void remember(const QString &key, const QString &value);

    bool m_enabled;
};
