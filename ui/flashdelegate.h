#pragma once

#include <QColor>
#include <QStyledItemDelegate>

class QPalette;

// Tints a keys-view row that another peer just changed, fading with
// KeysModel::FlashRole. The model only says how strongly a row flashes; the
// colour comes from the view's palette, so light and dark themes both read.
class FlashDelegate : public QStyledItemDelegate
{
    Q_OBJECT
    Q_DISABLE_COPY(FlashDelegate)
public:
    explicit FlashDelegate(QObject *parent = nullptr);
    ~FlashDelegate() override;

    // The row's tint in palette now; invalid when the row does not flash.
    static QColor background(const QModelIndex &index, const QPalette &palette);

protected:
    void initStyleOption(QStyleOptionViewItem *option, const QModelIndex &index) const override;
};
