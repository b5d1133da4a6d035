#include "deltalogview.h"

#include "deltalogdelegate.h"
#include "deltalogfilter.h"
#include "deltalogmodel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFile>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QScrollBar>
#include <QSpinBox>
#include <QSplitter>
#include <QTableView>
#include <QToolButton>
#include <QVBoxLayout>

DeltaLogView::DeltaLogView(DeltaLogModel *model, QWidget *parent)
    : QWidget(parent)
    , m_model(model)
    , m_filter(new DeltaLogFilter(this))
    , m_filterEdit(new QLineEdit(this))
    , m_operation(new QComboBox(this))
    , m_superseded(new QCheckBox(tr("&Superseded only"), this))
    , m_pause(new QToolButton(this))
    , m_clear(new QToolButton(this))
    , m_export(new QToolButton(this))
    , m_capacity(new QSpinBox(this))
    , m_counts(new QLabel(this))
    , m_table(new QTableView(this))
    , m_details(new QPlainTextEdit(this))
{
    setAccessibleName(tr("Deltas log"));
    m_filter->setSourceModel(model);

    m_filterEdit->setPlaceholderText(tr("Filter by key or peer\u2026"));
    m_filterEdit->setClearButtonEnabled(true);
    m_filterEdit->setAccessibleName(tr("Filter deltas by key or peer"));
    m_operation->addItem(tr("All operations"), -1);
    m_operation->addItem(tr("set"), int(DistributedMap::DeltaEvent::Set));
    m_operation->addItem(tr("delete"), int(DistributedMap::DeltaEvent::Delete));
    m_operation->addItem(tr("sync chunk"), int(DistributedMap::DeltaEvent::SyncChunk));
    m_operation->setAccessibleName(tr("Filter deltas by operation"));
    m_superseded->setToolTip(tr("Show only writes that lost to a newer concurrent write"));
    m_pause->setText(tr("Pause"));
    m_pause->setCheckable(true);
    m_pause->setToolTip(tr("Pause or resume the log (Ctrl+Shift+P); deltas wait while paused"));
    m_pause->setAccessibleName(tr("Pause log"));
    m_clear->setText(tr("Clear"));
    m_clear->setToolTip(tr("Clear the log (Ctrl+Shift+L)"));
    m_clear->setAccessibleName(tr("Clear log"));
    m_export->setText(tr("Export\u2026"));
    m_export->setToolTip(tr("Export the log as JSON Lines (Ctrl+Shift+E)"));
    m_export->setAccessibleName(tr("Export log"));
    m_capacity->setRange(100, 1000000);
    m_capacity->setSingleStep(1000);
    m_capacity->setValue(model->capacity());
    m_capacity->setPrefix(tr("keep "));
    m_capacity->setSuffix(tr(" rows"));
    m_capacity->setAccessibleName(tr("Rows kept in the log"));
    m_capacity->setKeyboardTracking(false);
    m_counts->setAccessibleName(tr("Log row count"));

    auto *bar = new QHBoxLayout;
    bar->setContentsMargins(0, 0, 0, 0);
    bar->addWidget(m_filterEdit, 2);
    bar->addWidget(m_operation);
    bar->addWidget(m_superseded);
    bar->addWidget(m_pause);
    bar->addWidget(m_clear);
    bar->addWidget(m_export);
    bar->addWidget(m_capacity);
    bar->addWidget(m_counts, 1);

    m_table->setModel(m_filter);
    m_table->setObjectName(QStringLiteral("deltaLogTable"));
    m_table->setItemDelegate(new DeltaLogDelegate(m_table));
    m_table->setAccessibleName(tr("Deltas"));
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setWordWrap(false);
    m_table->verticalHeader()->hide();
    m_table->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
    m_table->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 6);
    m_table->horizontalHeader()->setStretchLastSection(false);
    m_table->horizontalHeader()->setSectionResizeMode(DeltaLogModel::ValueColumn, QHeaderView::Stretch);
    // Widths from sample text, so they hold for any font and DPI.
    const auto widthOf = [this](const QString &sample) { return fontMetrics().horizontalAdvance(sample) + 16; };
    m_table->setColumnWidth(DeltaLogModel::TimeColumn, widthOf(QStringLiteral("00:00:00.000")));
    m_table->setColumnWidth(DeltaLogModel::DirectionColumn, widthOf(QStringLiteral("\u2193 out")));
    m_table->setColumnWidth(DeltaLogModel::PeerColumn, widthOf(QStringLiteral("MMMMMMMMMM")));
    m_table->setColumnWidth(DeltaLogModel::OperationColumn, widthOf(QStringLiteral("sync chunk")));
    m_table->setColumnWidth(DeltaLogModel::KeyColumn, widthOf(QStringLiteral("MMMMMMMMMMMMMM")));
    m_table->setColumnWidth(DeltaLogModel::ClockColumn, widthOf(QStringLiteral("00:00:00.000 #00")));
    m_table->setColumnWidth(DeltaLogModel::OutcomeColumn, widthOf(QStringLiteral("superseded")));

    m_details->setReadOnly(true);
    m_details->setAccessibleName(tr("Delta details"));
    m_details->setPlaceholderText(tr("Select a delta to see it in full."));
    QFont mono(QStringLiteral("monospace"));
    mono.setStyleHint(QFont::Monospace);
    m_details->setFont(mono);

    auto *split = new QSplitter(Qt::Horizontal, this);
    split->setObjectName(QStringLiteral("deltaLogSplitter"));
    split->addWidget(m_table);
    split->addWidget(m_details);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 1);

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(bar);
    layout->addWidget(split, 1);

    setTabOrder(m_filterEdit, m_operation);
    setTabOrder(m_operation, m_superseded);
    setTabOrder(m_superseded, m_pause);
    setTabOrder(m_pause, m_clear);
    setTabOrder(m_clear, m_export);
    setTabOrder(m_export, m_capacity);
    setTabOrder(m_capacity, m_table);
    setTabOrder(m_table, m_details);

    connect(m_filterEdit, &QLineEdit::textChanged, m_filter, &DeltaLogFilter::setText);
    connect(m_operation, &QComboBox::currentIndexChanged, this,
            [this](int) { m_filter->setOperation(m_operation->currentData().toInt()); });
    connect(m_superseded, &QCheckBox::toggled, m_filter, &DeltaLogFilter::setSupersededOnly);
    connect(m_pause, &QToolButton::toggled, this, &DeltaLogView::setPaused);
    connect(m_clear, &QToolButton::clicked, this, &DeltaLogView::clear);
    connect(m_export, &QToolButton::clicked, this, &DeltaLogView::exportLog);
    connect(m_capacity, &QSpinBox::valueChanged, model, &DeltaLogModel::setCapacity);
    connect(m_table->selectionModel(), &QItemSelectionModel::currentRowChanged, this, &DeltaLogView::showDetails);

    // Follow the tail only while the user looks at it.
    QScrollBar *scroll = m_table->verticalScrollBar();
    connect(scroll, &QScrollBar::valueChanged, this, [this, scroll](int value) { m_follow = value >= scroll->maximum() - 2; });
    connect(m_filter, &QAbstractItemModel::rowsInserted, this, [this] {
        if (m_follow)
            m_table->scrollToBottom();
    });
    connect(model, &QAbstractItemModel::rowsInserted, this, &DeltaLogView::updateCounts);
    connect(model, &QAbstractItemModel::rowsRemoved, this, &DeltaLogView::updateCounts);
    connect(model, &QAbstractItemModel::modelReset, this, &DeltaLogView::updateCounts);
    updateCounts();
}

DeltaLogView::~DeltaLogView() = default;

void DeltaLogView::setPaused(bool paused)
{
    if (m_pause->isChecked() != paused)
        m_pause->setChecked(paused); // re-enters through toggled
    m_model->setPaused(paused);
    m_pause->setText(paused ? tr("Resume") : tr("Pause"));
    m_pause->setAccessibleName(paused ? tr("Resume log") : tr("Pause log"));
    updateCounts();
}

void DeltaLogView::clear()
{
    m_model->clear();
    m_details->clear();
}

void DeltaLogView::focusFilter()
{
    m_filterEdit->setFocus(Qt::ShortcutFocusReason);
    m_filterEdit->selectAll();
}

void DeltaLogView::exportLog()
{
    auto *dialog = new QFileDialog(this, tr("Export deltas log"), QString(), tr("JSON Lines (*.jsonl);;All files (*)"));
    dialog->setAcceptMode(QFileDialog::AcceptSave);
    dialog->setDefaultSuffix(QStringLiteral("jsonl"));
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QFileDialog::fileSelected, this, [this](const QString &path) {
        const int rows = exportTo(path);
        Q_EMIT message(rows < 0 ? tr("Could not write %1").arg(path) : tr("Exported %n deltas to %1", nullptr, rows).arg(path));
    });
    dialog->open();
}

int DeltaLogView::exportTo(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate))
        return -1;
    return m_model->writeJsonLines(&file);
}

void DeltaLogView::updateCounts()
{
    QString text = tr("%n rows", nullptr, m_model->rowCount());
    if (m_model->isPaused())
        text += tr(", %n waiting", nullptr, m_model->pendingCount());
    m_counts->setText(text);
}

void DeltaLogView::showDetails()
{
    const QModelIndex current = m_table->currentIndex();
    if (!current.isValid()) {
        m_details->clear();
        return;
    }
    m_details->setPlainText(current.data(DeltaLogModel::DetailsRole).toString());
}
