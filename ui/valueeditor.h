#pragma once

#include <QJsonValue>
#include <QWidget>

class QCheckBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;

// Editor for one JSON value: a line for scalars, a multi-line editor with
// indented JSON for objects and arrays. It validates as you type and says
// what is wrong inline; "Store as plain text" (Alt+T) stores the text as a
// JSON string instead. Return (Ctrl+Return when multi-line) asks to commit,
// refused while the text is invalid JSON; Escape asks to cancel.
class ValueEditor : public QWidget
{
    Q_OBJECT
    Q_DISABLE_COPY(ValueEditor)
public:
    explicit ValueEditor(QWidget *parent = nullptr);
    ~ValueEditor() override;

    // Shows compact JSON text; objects and arrays switch to multi-line.
    void setJsonText(const QString &jsonText);
    QString text() const;
    void setText(const QString &text); // raw text, single-line
    bool isMultiLine() const;

    void setStoreAsText(bool asText);
    bool storeAsText() const;

    // The value to store: the parsed JSON, or the text as a string when
    // storing as text. Undefined when the text is not valid JSON.
    QJsonValue value() const;
    bool isAcceptable() const { return !value().isUndefined(); }
    QString errorString() const { return m_error; }

    QLineEdit *lineEdit() const { return m_line; }
    QPlainTextEdit *textEdit() const { return m_multi; }

Q_SIGNALS:
    void commitRequested();
    void cancelRequested();
    void validityChanged(bool acceptable);

protected:
    bool eventFilter(QObject *watched, QEvent *event) override;

private:
    void setMultiLine(bool multi);
    void validate();

    QLineEdit *m_line = nullptr;
    QPlainTextEdit *m_multi = nullptr;
    QLabel *m_status = nullptr;
    QCheckBox *m_asText = nullptr;
    QString m_error;
    bool m_acceptable = true;
};
