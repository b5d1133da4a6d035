#include "deltalogdelegate.h"

#include "deltalogmodel.h"
#include "mapstate.h"
#include "uiformat.h"

#include <QPalette>

namespace {
MapState::Outcome outcomeOf(const QModelIndex &index)
{
    return MapState::Outcome(index.data(DeltaLogModel::OutcomeRole).toInt());
}
} // namespace

DeltaLogDelegate::DeltaLogDelegate(QObject *parent)
    : QStyledItemDelegate(parent)
{
}

DeltaLogDelegate::~DeltaLogDelegate() = default;

QColor DeltaLogDelegate::background(const QModelIndex &index, const QPalette &palette)
{
    if (index.isValid() && outcomeOf(index) == MapState::Outcome::Superseded)
        return UiFormat::warningRowColor(palette);
    return {};
}

QColor DeltaLogDelegate::foreground(const QModelIndex &index, const QPalette &palette)
{
    if (index.isValid() && outcomeOf(index) == MapState::Outcome::Duplicate)
        return UiFormat::mutedTextColor(palette);
    return {};
}

void DeltaLogDelegate::initStyleOption(QStyleOptionViewItem *option, const QModelIndex &index) const
{
    QStyledItemDelegate::initStyleOption(option, index);
    if (const QColor color = background(index, option->palette); color.isValid())
        option->backgroundBrush = color;
    if (const QColor color = foreground(index, option->palette); color.isValid())
        option->palette.setColor(QPalette::Text, color);
}
