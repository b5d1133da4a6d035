#include "flashdelegate.h"

#include "keysmodel.h"
#include "uiformat.h"

#include <QPalette>

FlashDelegate::FlashDelegate(QObject *parent)
    : QStyledItemDelegate(parent)
{
}

FlashDelegate::~FlashDelegate() = default;

QColor FlashDelegate::background(const QModelIndex &index, const QPalette &palette)
{
    const qreal intensity = index.data(KeysModel::FlashRole).toReal();
    return intensity > 0 ? UiFormat::flashColor(palette, intensity) : QColor();
}

void FlashDelegate::initStyleOption(QStyleOptionViewItem *option, const QModelIndex &index) const
{
    QStyledItemDelegate::initStyleOption(option, index);
    if (const QColor tint = background(index, option->palette); tint.isValid())
        option->backgroundBrush = tint;
}
