#include "valueeditor.h"

#include "displayformat.h"

#include <QCheckBox>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QJsonObject>
#include <QJsonDocument>
#include <QKeyEvent>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QVBoxLayout>

ValueEditor::ValueEditor(QWidget *parent)
    : QWidget(parent)
    , m_line(new QLineEdit(this))
    , m_multi(new QPlainTextEdit(this))
    , m_status(new QLabel(this))
    , m_asText(new QCheckBox(tr("Store as plain &text"), this))
{
    setAutoFillBackground(true);
    m_line->setAccessibleName(tr("Value (JSON)"));
    m_line->setPlaceholderText(tr("JSON: 42, true, \"text\", [1,2], {\"a\":1}"));
    m_multi->setAccessibleName(tr("Value (JSON, multi-line)"));
    m_multi->setTabChangesFocus(true);
    m_multi->setLineWrapMode(QPlainTextEdit::NoWrap);
    m_multi->hide();
    m_status->setAccessibleName(tr("Validation message"));
    m_status->setWordWrap(false);
    m_asText->setToolTip(tr("Store exactly what you typed as a JSON string"));

    auto *bar = new QHBoxLayout;
    bar->setContentsMargins(2, 0, 2, 0);
    bar->addWidget(m_status, 1);
    bar->addWidget(m_asText);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(1);
    layout->addWidget(m_line);
    layout->addWidget(m_multi, 1);
    layout->addLayout(bar);

    m_line->installEventFilter(this);
    m_multi->installEventFilter(this);
    setFocusProxy(m_line);
    connect(m_line, &QLineEdit::textChanged, this, &ValueEditor::validate);
    connect(m_multi, &QPlainTextEdit::textChanged, this, &ValueEditor::validate);
    connect(m_asText, &QCheckBox::toggled, this, &ValueEditor::validate);
    validate();
}

ValueEditor::~ValueEditor() = default;

bool ValueEditor::isMultiLine() const
{
    return !m_multi->isHidden();
}

void ValueEditor::setMultiLine(bool multi)
{
    m_line->setVisible(!multi);
    m_multi->setVisible(multi);
    setFocusProxy(multi ? static_cast<QWidget *>(m_multi) : m_line);
}

void ValueEditor::setJsonText(const QString &jsonText)
{
    const QJsonValue value = DisplayFormat::parseJson(jsonText.toUtf8());
    if (value.isObject() || value.isArray()) {
        const QJsonDocument doc = value.isObject() ? QJsonDocument(value.toObject()) : QJsonDocument(value.toArray());
        setMultiLine(true);
        m_multi->setPlainText(QString::fromUtf8(doc.toJson(QJsonDocument::Indented)).trimmed());
    } else {
        setText(jsonText);
    }
}

void ValueEditor::setText(const QString &text)
{
    setMultiLine(false);
    m_line->setText(text);
}

QString ValueEditor::text() const
{
    return isMultiLine() ? m_multi->toPlainText() : m_line->text();
}

void ValueEditor::setStoreAsText(bool asText)
{
    m_asText->setChecked(asText);
}

bool ValueEditor::storeAsText() const
{
    return m_asText->isChecked();
}

QJsonValue ValueEditor::value() const
{
    if (storeAsText())
        return QJsonValue(text());
    return DisplayFormat::parseJson(text().toUtf8());
}

void ValueEditor::validate()
{
    QString error;
    const bool acceptable = storeAsText() || !DisplayFormat::parseJson(text().toUtf8(), &error).isUndefined();
    m_error = acceptable ? QString() : error;
    if (!acceptable && text().trimmed().isEmpty()) {
        // Nothing typed yet is not a mistake worth shouting about.
        m_status->setText(tr("Type a JSON value"));
        m_status->setStyleSheet(QString());
    } else if (acceptable) {
        m_status->setText(storeAsText() ? tr("Stored as a string") : tr("Valid JSON"));
        m_status->setStyleSheet(QString());
    } else {
        m_status->setText(tr("Invalid JSON: %1").arg(error));
        m_status->setStyleSheet(QStringLiteral("color: #d03030; font-weight: bold"));
    }
    m_status->setToolTip(acceptable ? QString() : tr("%1\nTick \"Store as plain text\" (Alt+T) to store it as a string.").arg(error));
    if (acceptable != m_acceptable) {
        m_acceptable = acceptable;
        Q_EMIT validityChanged(acceptable);
    }
}

bool ValueEditor::eventFilter(QObject *watched, QEvent *event)
{
    if (event->type() != QEvent::KeyPress || (watched != m_line && watched != m_multi))
        return QWidget::eventFilter(watched, event);
    auto *key = static_cast<QKeyEvent *>(event);
    if (key->key() == Qt::Key_Escape) {
        Q_EMIT cancelRequested();
        return true;
    }
    const bool enter = key->key() == Qt::Key_Return || key->key() == Qt::Key_Enter;
    const bool commitChord = watched == m_line || (key->modifiers() & Qt::ControlModifier);
    if (enter && commitChord) {
        validate();
        // Invalid text stays in the editor, with the message already shown.
        if (isAcceptable())
            Q_EMIT commitRequested();
        return true;
    }
    return QWidget::eventFilter(watched, event);
}
