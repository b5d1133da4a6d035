#include "valuedelegate.h"

#include "valueeditor.h"

#include <QAbstractItemView>

ValueDelegate::ValueDelegate(QObject *parent)
    : FlashDelegate(parent)
{
}

ValueDelegate::~ValueDelegate() = default;

QWidget *ValueDelegate::createEditor(QWidget *parent, const QStyleOptionViewItem &option, const QModelIndex &index) const
{
    Q_UNUSED(option);
    Q_UNUSED(index);
    auto *editor = new ValueEditor(parent);
    auto *self = const_cast<ValueDelegate *>(this);
    connect(editor, &ValueEditor::commitRequested, self, [self, editor] {
        Q_EMIT self->commitData(editor);
        Q_EMIT self->closeEditor(editor, QAbstractItemDelegate::NoHint);
    });
    connect(editor, &ValueEditor::cancelRequested, self,
            [self, editor] { Q_EMIT self->closeEditor(editor, QAbstractItemDelegate::RevertModelCache); });
    return editor;
}

void ValueDelegate::setEditorData(QWidget *editor, const QModelIndex &index) const
{
    auto *valueEditor = qobject_cast<ValueEditor *>(editor);
    // Refreshing a value while the user types in it would lose their edit.
    if (!valueEditor || valueEditor->property("loaded").toBool())
        return;
    valueEditor->setJsonText(index.data(Qt::EditRole).toString());
    valueEditor->setProperty("loaded", true);
}

void ValueDelegate::setModelData(QWidget *editor, QAbstractItemModel *model, const QModelIndex &index) const
{
    auto *valueEditor = qobject_cast<ValueEditor *>(editor);
    if (!valueEditor)
        return;
    const QJsonValue value = valueEditor->value();
    if (value.isUndefined()) {
        Q_EMIT editRejected(tr("Not stored: %1").arg(valueEditor->errorString()));
        return;
    }
    model->setData(index, QVariant::fromValue(value), Qt::EditRole);
}

void ValueDelegate::updateEditorGeometry(QWidget *editor, const QStyleOptionViewItem &option, const QModelIndex &index) const
{
    Q_UNUSED(index);
    auto *valueEditor = qobject_cast<ValueEditor *>(editor);
    QRect rect = option.rect;
    if (valueEditor) {
        const int lines = valueEditor->isMultiLine() ? 8 : 1;
        const int height = valueEditor->fontMetrics().lineSpacing() * lines + valueEditor->sizeHint().height()
                           - (valueEditor->isMultiLine() ? valueEditor->fontMetrics().lineSpacing() : 0);
        rect.setHeight(qMax(rect.height(), height));
        rect.setWidth(qMax(rect.width(), 380));
        // Keep the editor inside the viewport when the row sits near the bottom.
        if (const QWidget *viewport = editor->parentWidget()) {
            if (rect.bottom() > viewport->height())
                rect.moveBottom(qMax(rect.height(), viewport->height()));
            if (rect.right() > viewport->width())
                rect.moveRight(qMax(rect.width(), viewport->width()));
        }
    }
    editor->setGeometry(rect);
}
