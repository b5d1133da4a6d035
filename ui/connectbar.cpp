#include "connectbar.h"

#include <QAction>
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QUrl>

namespace {
void moveToTop(QComboBox *box, const QString &text)
{
    if (text.isEmpty())
        return;
    const int existing = box->findText(text);
    if (existing != 0) {
        if (existing > 0)
            box->removeItem(existing);
        box->insertItem(0, text);
    }
    box->setCurrentIndex(0);
}

void replaceItems(QComboBox *box, QStringList items)
{
    items.removeDuplicates();
    box->clear();
    box->addItems(items);
}
} // namespace

ConnectBar::ConnectBar(QWidget *parent)
    : QToolBar(tr("Connection"), parent)
    , m_urlBox(new QComboBox(this))
    , m_mapBox(new QComboBox(this))
    , m_nameEdit(new QLineEdit(this))
    , m_openAction(new QAction(tr("&Open map"), this))
{
    setObjectName(QStringLiteral("connectBar"));
    setMovable(false);

    m_urlBox->setObjectName(QStringLiteral("relayUrl"));
    m_urlBox->setEditable(true);
    m_urlBox->setInsertPolicy(QComboBox::NoInsert);
    m_urlBox->setMinimumContentsLength(22);
    m_urlBox->setAccessibleName(tr("Relay URL"));
    m_urlBox->setToolTip(tr("Relay URL, e.g. ws://127.0.0.1:7357"));

    m_mapBox->setObjectName(QStringLiteral("mapUri"));
    m_mapBox->setEditable(true);
    m_mapBox->setInsertPolicy(QComboBox::NoInsert);
    m_mapBox->setMinimumContentsLength(16);
    m_mapBox->setAccessibleName(tr("Map URI"));
    m_mapBox->setToolTip(tr("Map URI, e.g. /distributed-map"));

    m_nameEdit->setObjectName(QStringLiteral("displayName"));
    m_nameEdit->setAccessibleName(tr("Your display name"));
    m_nameEdit->setToolTip(tr("The name other peers see"));
    m_nameEdit->setMaximumWidth(160);

    auto *urlLabel = new QLabel(tr("&Relay "), this);
    urlLabel->setBuddy(m_urlBox);
    auto *mapLabel = new QLabel(tr("  &Map "), this);
    mapLabel->setBuddy(m_mapBox);
    auto *nameLabel = new QLabel(tr("  Na&me "), this);
    nameLabel->setBuddy(m_nameEdit);
    addWidget(urlLabel);
    addWidget(m_urlBox);
    addWidget(mapLabel);
    addWidget(m_mapBox);
    addWidget(nameLabel);
    addWidget(m_nameEdit);

    m_openAction->setShortcut(QKeySequence::Open);
    m_openAction->setToolTip(tr("Connect to the relay and open the map in a tab (Ctrl+O, or Return in a field)"));
    connect(m_openAction, &QAction::triggered, this, &ConnectBar::requestOpen);
    addAction(m_openAction);

    connect(m_urlBox->lineEdit(), &QLineEdit::returnPressed, this, &ConnectBar::requestOpen);
    connect(m_mapBox->lineEdit(), &QLineEdit::returnPressed, this, &ConnectBar::requestOpen);
    connect(m_nameEdit, &QLineEdit::editingFinished, this, [this] { Q_EMIT displayNameEdited(m_nameEdit->text()); });
    setTabOrder(m_urlBox, m_mapBox);
    setTabOrder(m_mapBox, m_nameEdit);
}

ConnectBar::~ConnectBar() = default;

void ConnectBar::setUrls(const QStringList &urls)
{
    replaceItems(m_urlBox, urls);
}

void ConnectBar::setMaps(const QStringList &uris)
{
    replaceItems(m_mapBox, uris);
}

void ConnectBar::rememberUrl(const QString &url)
{
    moveToTop(m_urlBox, url);
}

void ConnectBar::rememberMap(const QString &uri)
{
    moveToTop(m_mapBox, uri);
}

QString ConnectBar::mapText() const
{
    return m_mapBox->currentText().trimmed();
}

QString ConnectBar::displayName() const
{
    return m_nameEdit->text();
}

void ConnectBar::setDisplayName(const QString &name)
{
    if (m_nameEdit->text() != name)
        m_nameEdit->setText(name);
}

void ConnectBar::requestOpen()
{
    const QUrl url = QUrl::fromUserInput(m_urlBox->currentText().trimmed());
    if (!url.isValid() || (url.scheme() != QLatin1String("ws") && url.scheme() != QLatin1String("wss"))) {
        Q_EMIT message(tr("A relay URL looks like ws://127.0.0.1:7357"));
        m_urlBox->setFocus();
        return;
    }
    Q_EMIT openRequested(url, mapText());
}
