#pragma once

#include "flashdelegate.h"

// Edits the keys view's value column with a ValueEditor: the editor grows
// below the cell to fit multi-line JSON and its validation line, and only a
// valid value (or one explicitly stored as text) reaches the model. Flashes
// like the rest of the row.
class ValueDelegate : public FlashDelegate
{
    Q_OBJECT
    Q_DISABLE_COPY(ValueDelegate)
public:
    explicit ValueDelegate(QObject *parent = nullptr);
    ~ValueDelegate() override;

    QWidget *createEditor(QWidget *parent, const QStyleOptionViewItem &option, const QModelIndex &index) const override;
    void setEditorData(QWidget *editor, const QModelIndex &index) const override;
    void setModelData(QWidget *editor, QAbstractItemModel *model, const QModelIndex &index) const override;
    void updateEditorGeometry(QWidget *editor, const QStyleOptionViewItem &option, const QModelIndex &index) const override;

Q_SIGNALS:
    // An edit was closed with text that is not JSON; nothing was stored.
    void editRejected(const QString &message) const;
};
