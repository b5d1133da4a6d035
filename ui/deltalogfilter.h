#pragma once

#include <QSortFilterProxyModel>

// Filters the deltas log by text (key, peer name or peer id), by operation
// and, optionally, to superseded writes only. The log is bounded, so a
// proxy is cheap here (unlike over the keys model).
class DeltaLogFilter : public QSortFilterProxyModel
{
    Q_OBJECT
    Q_DISABLE_COPY(DeltaLogFilter)
public:
    explicit DeltaLogFilter(QObject *parent = nullptr);
    ~DeltaLogFilter() override;

    void setText(const QString &text);
    // -1 (default) shows every operation, else a DeltaEvent::Operation.
    void setOperation(int operation);
    void setSupersededOnly(bool only);

protected:
    bool filterAcceptsRow(int sourceRow, const QModelIndex &sourceParent) const override;

private:
    QString m_text;
    int m_operation = -1;
    bool m_supersededOnly = false;
};
