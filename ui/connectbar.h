#pragma once

#include <QToolBar>

class QAction;
class QComboBox;
class QLineEdit;
class QUrl;

// The inspector's connect bar: relay URL and map URI (editable, with recent
// entries), the display name, and the Open action (Ctrl+O, or Return in the
// URL and map fields). Checks that the URL is a ws:// or wss:// one before
// asking to open; what opening means is the window's business.
class ConnectBar : public QToolBar
{
    Q_OBJECT
    Q_DISABLE_COPY(ConnectBar)
public:
    explicit ConnectBar(QWidget *parent = nullptr);
    ~ConnectBar() override;

    // Replace the choices; the first becomes current.
    void setUrls(const QStringList &urls);
    void setMaps(const QStringList &uris);
    // Moves text to the top of its list (adding it when new) and selects it.
    void rememberUrl(const QString &url);
    void rememberMap(const QString &uri);
    QString mapText() const; // the map field, trimmed

    QString displayName() const;
    void setDisplayName(const QString &name);

    QAction *openAction() const { return m_openAction; }
    QComboBox *urlBox() const { return m_urlBox; }
    QComboBox *mapBox() const { return m_mapBox; }
    QLineEdit *nameEdit() const { return m_nameEdit; }

Q_SIGNALS:
    // Open was asked for with a usable relay URL.
    void openRequested(const QUrl &url, const QString &uri);
    // The user finished editing the name field.
    void displayNameEdited(const QString &name);
    void message(const QString &text);

private:
    void requestOpen();

    QComboBox *m_urlBox;
    QComboBox *m_mapBox;
    QLineEdit *m_nameEdit;
    QAction *m_openAction;
};
