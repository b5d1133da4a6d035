#pragma once

#include <QWidget>

class DeltaLogFilter;
class DeltaLogModel;
class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QSpinBox;
class QTableView;
class QToolButton;

// The deltas log panel: a filter bar (text, operation, superseded only),
// pause/resume, clear, export to JSON Lines, the row cap, the log table and
// a details pane for the selected delta. Follows the newest row while the
// table is scrolled to the bottom.
class DeltaLogView : public QWidget
{
    Q_OBJECT
    Q_DISABLE_COPY(DeltaLogView)
public:
    explicit DeltaLogView(DeltaLogModel *model, QWidget *parent = nullptr);
    ~DeltaLogView() override;

    DeltaLogModel *model() const { return m_model; }
    DeltaLogFilter *filter() const { return m_filter; }
    QTableView *table() const { return m_table; }
    QLineEdit *filterEdit() const { return m_filterEdit; }
    QPlainTextEdit *detailsPane() const { return m_details; }

    void setPaused(bool paused);
    void clear();
    // Asks for a file (non-modal) and writes the log there.
    void exportLog();
    // Writes the log (all rows kept, oldest first) to path; returns rows written or -1.
    int exportTo(const QString &path);
    void focusFilter();

Q_SIGNALS:
    void message(const QString &text);

private:
    void updateCounts();
    void showDetails();

    DeltaLogModel *m_model;
    DeltaLogFilter *m_filter;
    QLineEdit *m_filterEdit;
    QComboBox *m_operation;
    QCheckBox *m_superseded;
    QToolButton *m_pause;
    QToolButton *m_clear;
    QToolButton *m_export;
    QSpinBox *m_capacity;
    QLabel *m_counts;
    QTableView *m_table;
    QPlainTextEdit *m_details;
    bool m_follow = true;
};
