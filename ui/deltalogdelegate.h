#pragma once

#include <QColor>
#include <QStyledItemDelegate>

class QPalette;

// Colours the deltas log by outcome: a superseded delta (a write that lost
// to a newer one) is highlighted, a duplicate is muted. The model gives the
// outcome (DeltaLogModel::OutcomeRole); the colours come from the view's
// palette. Works through proxies such as DeltaLogFilter.
class DeltaLogDelegate : public QStyledItemDelegate
{
    Q_OBJECT
    Q_DISABLE_COPY(DeltaLogDelegate)
public:
    explicit DeltaLogDelegate(QObject *parent = nullptr);
    ~DeltaLogDelegate() override;

    // Row background and text colour for index; invalid means the default.
    static QColor background(const QModelIndex &index, const QPalette &palette);
    static QColor foreground(const QModelIndex &index, const QPalette &palette);

protected:
    void initStyleOption(QStyleOptionViewItem *option, const QModelIndex &index) const override;
};
