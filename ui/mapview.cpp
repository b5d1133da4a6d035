#include "mapview.h"

#include "connection.h"
#include "deltalogmodel.h"
#include "deltalogview.h"
#include "distributedmap.h"
#include "displayformat.h"
#include "distributedmap_p.h"
#include "flashdelegate.h"
#include "historyindex.h"
#include "hybridclock.h"
#include "keyhistorymodel.h"
#include "mapdiffmodel.h"
#include "snapshotmodel.h"
#include "uiformat.h"
#include "localstore.h"
#include "jsontreemodel.h"
#include "keysmodel.h"
#include "networkview.h"
#include "peersmodel.h"
#include "valuedelegate.h"
#include "valueeditor.h"

#include <QDataStream>
#include <QDateTime>
#include <QDateTimeEdit>
#include <QFile>
#include <QFileDialog>
#include <QJsonDocument>
#include <QJsonObject>
#include <QJsonParseError>
#include <QSaveFile>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QPushButton>
#include <QPalette>
#include <QSignalBlocker>
#include <QSlider>
#include <QSplitter>
#include <QTableView>
#include <QTabWidget>
#include <QTreeView>
#include <QVBoxLayout>

#include <limits>

MapView::MapView(DistributedMap *map, QWidget *parent)
    : QWidget(parent)
    , m_map(map)
    , m_keysModel(new KeysModel(m_map, this))
    , m_peersModel(new PeersModel(m_map, this))
    , m_logModel(new DeltaLogModel(this))
{
    setAccessibleName(tr("Map %1").arg(m_map->uri()));
    const Connection *connection = m_map->connection();

    const auto nameOf = [this](quint64 peer) { return m_peersModel->displayName(peer); };
    m_keysModel->setWriterNameResolver(nameOf);
    m_logModel->setPeerNameResolver(nameOf);

    m_network = new NetworkView(this);
    m_network->setObjectName(QStringLiteral("networkView"));
    m_network->setSelf(connection ? connection->peerId() : 0, m_map->presence().value(QStringLiteral("name")).toString());
    if (connection)
        m_network->setRelayLabel(connection->url().toString());

    m_peersView = new QTableView(this);
    m_peersView->setObjectName(QStringLiteral("peersView"));
    m_peersView->setAccessibleName(tr("Peers"));
    m_peersView->setModel(m_peersModel);
    m_peersView->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_peersView->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_peersView->verticalHeader()->hide();
    m_peersView->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_peersView->horizontalHeader()->setStretchLastSection(true);

    m_logView = new DeltaLogView(m_logModel, this);

    m_side = new QSplitter(Qt::Vertical, this);
    m_side->addWidget(m_network);
    m_side->addWidget(m_peersView);
    m_side->setStretchFactor(0, 3);
    m_side->setStretchFactor(1, 2);

    m_top = new QSplitter(Qt::Horizontal, this);
    m_top->addWidget(buildKeysPanel());
    m_top->addWidget(m_side);
    m_top->setStretchFactor(0, 1);
    m_top->setStretchFactor(1, 1);

    m_outer = new QSplitter(Qt::Vertical, this);
    m_outer->addWidget(m_top);
    m_outer->addWidget(m_logView);
    m_outer->setStretchFactor(0, 3);
    m_outer->setStretchFactor(1, 2);

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(m_outer);

    setTabOrder(m_filterEdit, m_keysView);
    setTabOrder(m_keysView, m_newKey);
    setTabOrder(m_newKey, m_newValue);
    setTabOrder(m_newValue, m_addButton);
    setTabOrder(m_addButton, m_deleteButton);
    setTabOrder(m_deleteButton, m_peersView);
    setTabOrder(m_peersView, m_logView->filterEdit());

    connect(m_map, &DistributedMap::deltaObserved, m_logModel, &DeltaLogModel::append);
    connect(m_map, &DistributedMap::deltaObserved, m_network, &NetworkView::observe);
    connect(m_map, &DistributedMap::deltaObserved, this,
            [this](const DistributedMap::DeltaEvent &event) { m_deltasThisSecond += qMax(1, event.count); });
    connect(m_map, &DistributedMap::peerJoined, m_network,
            [this](const DistributedMap::Peer &peer) { m_network->addPeer(peer.id, m_peersModel->nameOf(peer.id)); });
    connect(m_map, &DistributedMap::peerPresenceChanged, m_network,
            [this](const DistributedMap::Peer &peer) { m_network->addPeer(peer.id, m_peersModel->nameOf(peer.id)); });
    connect(m_map, &DistributedMap::peerLeft, m_network, &NetworkView::removePeer);
    connect(m_map, &DistributedMap::ready, this, &MapView::statusChanged);
    connect(m_map, &DistributedMap::syncingChanged, this, &MapView::statusChanged);
    connect(m_map, &DistributedMap::syncStatusChanged, this, &MapView::statusChanged);
    connect(m_map, &DistributedMap::errorOccurred, this, [this](DistributedMap::Error, const QString &text) { message(text); });
    connect(m_keysModel, &KeysModel::batchApplied, this, &MapView::updateKeyCount);
    connect(m_keysModel, &QAbstractItemModel::modelReset, this, &MapView::updateKeyCount);
    connect(m_logView, &DeltaLogView::message, this, &MapView::message);

    m_rateTimer.setInterval(1000);
    connect(&m_rateTimer, &QTimer::timeout, this, [this] {
        const int rate = std::exchange(m_deltasThisSecond, 0);
        if (rate != m_rate || rate) {
            m_rate = rate;
            Q_EMIT statusChanged();
        }
    });
    m_rateTimer.start();
    updateKeyCount();
}

MapView::~MapView() = default;

QWidget *MapView::buildKeysPanel()
{
    auto *panel = new QWidget(this);
    m_filterEdit = new QLineEdit(panel);
    m_filterEdit->setObjectName(QStringLiteral("keyFilter"));
    m_filterEdit->setPlaceholderText(tr("Filter keys and values\u2026 (Ctrl+F)"));
    m_filterEdit->setClearButtonEnabled(true);
    m_filterEdit->setAccessibleName(tr("Filter keys"));
    m_keyCount = new QLabel(panel);
    m_keyCount->setAccessibleName(tr("Key count"));

    m_keysView = new QTableView(panel);
    m_keysView->setObjectName(QStringLiteral("keysView"));
    m_keysView->setAccessibleName(tr("Keys"));
    m_keysView->setModel(m_keysModel);
    m_keysView->setItemDelegate(new FlashDelegate(m_keysView));
    auto *delegate = new ValueDelegate(m_keysView);
    m_keysView->setItemDelegateForColumn(KeysModel::ValueColumn, delegate);
    connect(delegate, &ValueDelegate::editRejected, this, &MapView::message);
    m_keysView->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_keysView->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_keysView->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed
                                | QAbstractItemView::AnyKeyPressed);
    m_keysView->setWordWrap(false);
    m_keysView->setAlternatingRowColors(true);
    m_keysView->verticalHeader()->hide();
    // Fixed row heights keep a million rows cheap to lay out.
    m_keysView->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
    m_keysView->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 8);
    m_keysView->setSortingEnabled(true);
    m_keysView->sortByColumn(KeysModel::KeyColumn, Qt::AscendingOrder);
    QHeaderView *header = m_keysView->horizontalHeader();
    header->setSectionResizeMode(KeysModel::ValueColumn, QHeaderView::Stretch);
    const auto widthOf = [this](const QString &sample) { return fontMetrics().horizontalAdvance(sample) + 24; };
    m_keysView->setColumnWidth(KeysModel::KeyColumn, widthOf(QStringLiteral("MMMMMMMMMMMMMMMM")));
    m_keysView->setColumnWidth(KeysModel::WriterColumn, widthOf(QStringLiteral("MMMMMMMMMM")));
    m_keysView->setColumnWidth(KeysModel::WhenColumn, widthOf(QStringLiteral("00:00:00.000")));
    // Any column sorts; the selection follows its keys (persistent
    // indexes), and the current key stays in sight.
    connect(header, &QHeaderView::sortIndicatorChanged, this, [this] {
        if (m_keysView->currentIndex().isValid())
            m_keysView->scrollTo(m_keysView->currentIndex());
    });

    m_newKey = new QLineEdit(panel);
    m_newKey->setObjectName(QStringLiteral("newKey"));
    m_newKey->setPlaceholderText(tr("New key (Ctrl+N)"));
    m_newKey->setAccessibleName(tr("New key"));
    m_newValue = new ValueEditor(panel);
    m_newValue->setObjectName(QStringLiteral("newValue"));
    m_newValue->setAutoFillBackground(false);
    m_addButton = new QPushButton(tr("&Add"), panel);
    m_addButton->setAccessibleName(tr("Add key"));
    m_addButton->setToolTip(tr("Set the new key to the value (Return)"));
    m_deleteButton = new QPushButton(tr("&Delete selected"), panel);
    m_deleteButton->setAccessibleName(tr("Delete selected keys"));
    m_deleteButton->setToolTip(tr("Delete the selected keys (Delete)"));

    auto *top = new QHBoxLayout;
    top->addWidget(m_filterEdit, 1);
    top->addWidget(m_keyCount);
    auto *add = new QHBoxLayout;
    add->addWidget(m_newKey, 1);
    add->addWidget(m_newValue, 2, Qt::AlignTop);
    add->addWidget(m_addButton, 0, Qt::AlignTop);
    add->addWidget(m_deleteButton, 0, Qt::AlignTop);
    // Under the table, the current key's value as a tree.
    m_valueModel = new JsonTreeModel(this);
    m_valueTree = new QTreeView(panel);
    m_valueTree->setObjectName(QStringLiteral("valueTree"));
    m_valueTree->setAccessibleName(tr("Value of the current key"));
    m_valueTree->setModel(m_valueModel);
    m_valueTree->setUniformRowHeights(true);
    m_valueTree->setAlternatingRowColors(true);
    m_valueTree->header()->setSectionResizeMode(JsonTreeModel::ValueColumn, QHeaderView::Stretch);
    m_valueTree->header()->setStretchLastSection(false);

    // Beside it, the current key's history, with restore.
    m_historyModel = new KeyHistoryModel(this);
    m_historyModel->setWriterNameResolver([this](quint64 peer) { return m_peersModel->displayName(peer); });
    auto *historyPanel = new QWidget(panel);
    m_historyLabel = new QLabel(historyPanel);
    m_historyLabel->setWordWrap(true);
    m_historyView = new QTableView(historyPanel);
    m_historyView->setObjectName(QStringLiteral("keyHistory"));
    m_historyView->setAccessibleName(tr("History of the current key"));
    m_historyView->setModel(m_historyModel);
    m_historyView->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_historyView->setSelectionMode(QAbstractItemView::SingleSelection);
    m_historyView->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_historyView->verticalHeader()->hide();
    m_historyView->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
    m_historyView->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 8);
    m_historyView->horizontalHeader()->setSectionResizeMode(KeyHistoryModel::ValueColumn, QHeaderView::Stretch);
    m_restoreButton = new QPushButton(tr("&Restore this value"), historyPanel);
    m_restoreButton->setToolTip(tr("Write the selected past value again, as a new write every peer gets"));
    auto *historyLayout = new QVBoxLayout(historyPanel);
    historyLayout->setContentsMargins(0, 0, 0, 0);
    historyLayout->addWidget(m_historyLabel);
    historyLayout->addWidget(m_historyView, 1);
    historyLayout->addWidget(m_restoreButton, 0, Qt::AlignRight);
    connect(m_restoreButton, &QPushButton::clicked, this, &MapView::restoreSelectedWrite);
    connect(m_historyView, &QAbstractItemView::doubleClicked, this, &MapView::restoreSelectedWrite);

    m_valueTabs = new QTabWidget(panel);
    m_valueTabs->addTab(m_valueTree, tr("Value"));
    m_valueTabs->addTab(historyPanel, tr("History"));

    // Diff: the whole map at two moments.
    auto *diffPanel = new QWidget(panel);
    m_diffModel = new MapDiffModel(this);
    m_diffFrom = new QDateTimeEdit(diffPanel);
    m_diffTo = new QDateTimeEdit(diffPanel);
    for (QDateTimeEdit *edit : {m_diffFrom, m_diffTo}) {
        edit->setDisplayFormat(QStringLiteral("yyyy-MM-dd HH:mm:ss"));
        edit->setCalendarPopup(true);
    }
    m_diffFrom->setAccessibleName(tr("Compare from"));
    m_diffTo->setAccessibleName(tr("Compare to"));
    auto *compare = new QPushButton(tr("&Compare"), diffPanel);
    m_diffLabel = new QLabel(diffPanel);
    m_diffLabel->setWordWrap(true);
    auto *diffView = new QTableView(diffPanel);
    diffView->setObjectName(QStringLiteral("mapDiff"));
    diffView->setAccessibleName(tr("Keys changed between the two moments"));
    diffView->setModel(m_diffModel);
    diffView->setEditTriggers(QAbstractItemView::NoEditTriggers);
    diffView->verticalHeader()->hide();
    diffView->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
    diffView->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 8);
    diffView->horizontalHeader()->setSectionResizeMode(MapDiffModel::BeforeColumn, QHeaderView::Stretch);
    diffView->horizontalHeader()->setSectionResizeMode(MapDiffModel::AfterColumn, QHeaderView::Stretch);
    auto *range = new QHBoxLayout;
    range->addWidget(new QLabel(tr("From"), diffPanel));
    range->addWidget(m_diffFrom);
    range->addWidget(new QLabel(tr("to"), diffPanel));
    range->addWidget(m_diffTo);
    range->addWidget(compare);
    range->addStretch(1);
    auto *diffLayout = new QVBoxLayout(diffPanel);
    diffLayout->setContentsMargins(0, 0, 0, 0);
    diffLayout->addLayout(range);
    diffLayout->addWidget(m_diffLabel);
    diffLayout->addWidget(diffView, 1);
    connect(compare, &QPushButton::clicked, this, [this] {
        compareMoments(m_diffFrom->dateTime().toMSecsSinceEpoch(), m_diffTo->dateTime().toMSecsSinceEpoch());
    });
    const QDateTime now = QDateTime::currentDateTime();
    m_diffFrom->setDateTime(now.addSecs(-600));
    m_diffTo->setDateTime(now.addSecs(3600));
    m_diffLabel->setText(tr("Pick two moments and press Compare: every key that changed between them, with its value at each."));
    m_valueTabs->addTab(diffPanel, tr("Diff"));

    // The timeline: drag back to see the map as it was.
    m_snapshotModel = new SnapshotModel(m_keysModel, this);
    m_snapshotModel->setWriterNameResolver([this](quint64 peer) { return m_peersModel->displayName(peer); });
    m_timeline = new QSlider(Qt::Horizontal, panel);
    m_timeline->setObjectName(QStringLiteral("timeline"));
    m_timeline->setAccessibleName(tr("Timeline"));
    m_timeline->setRange(0, 1000);
    m_timeline->setValue(1000);
    m_timeline->setToolTip(tr("Drag back to see the map as it was; the right end is live"));
    m_timeLabel = new QLabel(tr("live"), panel);
    m_liveButton = new QPushButton(tr("Back to &live"), panel);
    m_liveButton->hide();
    m_banner = new QLabel(panel);
    m_banner->setObjectName(QStringLiteral("timelineBanner"));
    m_banner->setWordWrap(true);
    m_banner->setAutoFillBackground(true);
    QPalette bannerPalette = m_banner->palette();
    bannerPalette.setColor(QPalette::Window, UiFormat::warningRowColor(palette()));
    m_banner->setPalette(bannerPalette);
    m_banner->hide();
    m_scrubTimer.setSingleShot(true);
    m_scrubTimer.setInterval(0); // one snapshot per event-loop turn, however fast the drag
    connect(m_timeline, &QSlider::valueChanged, this, [this] { m_scrubTimer.start(); });
    connect(&m_scrubTimer, &QTimer::timeout, this, [this] {
        const int v = m_timeline->value();
        if (v >= m_timeline->maximum()) {
            goLive();
            return;
        }
        const qint64 start = timelineStartMs();
        const qint64 now = QDateTime::currentMSecsSinceEpoch();
        showMoment(start + (now - start) * v / m_timeline->maximum());
    });
    connect(m_liveButton, &QPushButton::clicked, this, &MapView::goLive);
    auto *timelineRow = new QHBoxLayout;
    timelineRow->addWidget(new QLabel(tr("Timeline"), panel));
    timelineRow->addWidget(m_timeline, 1);
    timelineRow->addWidget(m_timeLabel);
    timelineRow->addWidget(m_liveButton);
    auto *keysBox = new QWidget(panel);
    auto *keysLayout = new QVBoxLayout(keysBox);
    keysLayout->setContentsMargins(0, 0, 0, 0);
    keysLayout->addWidget(m_banner);
    keysLayout->addWidget(m_keysView, 1);
    keysLayout->addLayout(timelineRow);

    auto *split = new QSplitter(Qt::Vertical, panel);
    split->addWidget(keysBox);
    split->addWidget(m_valueTabs);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 1);
    connectKeySelection();
    // A remote change of the shown key: re-read it once per model batch
    // (listening to valueSet would parse every value of every burst).
    connect(m_keysModel, &KeysModel::batchApplied, this, [this] {
        if (m_live && !m_shownKey.isEmpty() && m_map->value(m_shownKey) != m_valueModel->value())
            showValueOf(m_shownKey);
        else
            refreshHistory(false);
    });
    // Without a store, history is what this view sees from now on.
    m_seen = std::make_unique<HistoryIndex>();
    m_seenSinceMs = QDateTime::currentMSecsSinceEpoch();
    // Sync chunks are left out: a 1,000,000-key sync would cost a second
    // of index inserts; each key's current write is added when shown.
    connect(m_map, &DistributedMap::changed, this, [this](const DistributedMap::Change &c) {
        if (hasStoreHistory() || c.source == DistributedMap::Source::Sync || c.source == DistributedMap::Source::Store)
            return;
        m_seen->insert(c.key, Entry{c.value, c.hlc, c.writer, c.deleted});
        // Bounded like a store's history (its default cap). Trimmed to 3/4
        // of it, so the walk over every key happens once per quarter of
        // the cap, not on every change.
        constexpr qint64 Cap = LocalStore::DefaultHistoryMaxBytes;
        if (m_seen->bytes() > Cap)
            m_seen->retain(m_seen->windowStartForBytes(Cap / 4 * 3));
    });
    // A delta that lost to a newer write never changes the map; kept as
    // lost, as a store keeps it.
    // (A store keeps it itself: it attached before this view was built, so
    // its handler ran first and the panel reads it.)
    connect(m_map, &DistributedMap::deltaObserved, this, [this](const DistributedMap::DeltaEvent &event) {
        if (event.direction != DistributedMap::DeltaEvent::Incoming || event.outcome != distmap::Outcome::Superseded
            || event.operation == DistributedMap::DeltaEvent::SyncChunk)
            return;
        if (!hasStoreHistory()) {
            const bool deleted = event.operation == DistributedMap::DeltaEvent::Delete;
            m_seen->insert(event.key, Entry{deleted ? QByteArray() : event.value, event.hlc, event.writer, deleted}, true);
        }
        if (event.key == m_shownKey)
            refreshHistory(false);
    });

    auto *layout = new QVBoxLayout(panel);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(top);
    layout->addWidget(split, 1);
    layout->addLayout(add);

    m_filterDelay.setSingleShot(true);
    m_filterDelay.setInterval(150);
    connect(m_filterEdit, &QLineEdit::textChanged, this, [this] { m_filterDelay.start(); });
    connect(&m_filterDelay, &QTimer::timeout, this, [this] { m_keysModel->setFilterText(m_filterEdit->text()); });
    connect(m_addButton, &QPushButton::clicked, this, &MapView::addKey);
    connect(m_newKey, &QLineEdit::returnPressed, this, [this] { m_newValue->setFocus(); });
    connect(m_newValue, &ValueEditor::commitRequested, this, &MapView::addKey);
    connect(m_deleteButton, &QPushButton::clicked, this, &MapView::deleteSelected);
    return panel;
}

void MapView::showValueOf(const QString &key)
{
    m_shownKey = key;
    QJsonValue value(QJsonValue::Undefined);
    if (!key.isEmpty() && m_live) {
        value = m_map->value(key);
    } else if (!key.isEmpty()) {
        // The timeline is back: the value as it was then.
        const int row = m_snapshotModel->rowOf(key);
        if (row >= 0)
            value = DisplayFormat::parseJson(m_snapshotModel->entryAt(row).value);
    }
    m_valueModel->setValue(value);
    m_valueTree->expandToDepth(1);
    refreshHistory(true);
}

void MapView::setStore(LocalStore *store)
{
    m_store = store;
    refreshHistory(true);
}

bool MapView::hasStoreHistory() const
{
    return m_store && m_store->history();
}

const HistoryIndex *MapView::historySource() const
{
    return hasStoreHistory() ? m_store->history() : m_seen.get();
}

void MapView::refreshHistory(bool force)
{
    if (m_shownKey.isEmpty()) {
        m_historyModel->clear();
        m_historyLabel->setText(tr("Select a key to see its past writes."));
        m_restoreButton->setEnabled(false);
        return;
    }
    QVector<bool> lost;
    QVector<Entry> writes = historySource()->keyHistory(m_shownKey, &lost);
    const EntryRef current = DistributedMapPrivate::get(m_map)->state().find(m_shownKey);
    if (current && (writes.isEmpty() || current.newerThan(writes.last()))) {
        writes.append(current.toEntry()); // learned by a sync, or older than what is kept
        lost.append(false);
    }
    // A burst elsewhere must not reset the rows (and the selection) of a
    // key that did not change.
    if (!force && m_shownKey == m_historyModel->key() && writes.size() == m_historyModel->writes().size()
        && (writes.isEmpty() || writes.last().sameWrite(m_historyModel->writes().last())))
        return;
    m_historyModel->setWrites(m_shownKey, writes, current ? current.toEntry() : Entry(), lost);
    const bool stored = hasStoreHistory();
    m_historyLabel->setText(stored
        ? tr("%n write(s) of '%1' kept by this map's store.", nullptr, int(writes.size())).arg(m_shownKey)
        : tr("%n write(s) of '%1' seen since %2. This map has no store, so nothing older is known.", nullptr,
             int(writes.size())).arg(m_shownKey, QDateTime::fromMSecsSinceEpoch(m_seenSinceMs).toString(QStringLiteral("HH:mm:ss"))));
    m_restoreButton->setEnabled(!writes.isEmpty());
}

void MapView::connectKeySelection()
{
    // setModel() gives the view a new selection model: connect to each.
    connect(m_keysView->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this](const QModelIndex &current) {
        if (!current.isValid())
            showValueOf(QString());
        else
            showValueOf(m_live ? m_keysModel->keyAt(current.row()) : m_snapshotModel->keyAt(current.row()));
    });
}

qint64 MapView::timelineStartMs() const
{
    // Without a store, nothing before this view opened is known.
    if (!hasStoreHistory())
        return m_seenSinceMs;
    const quint64 oldest = m_store->history()->oldestHlc();
    return oldest ? HybridClock::physicalPart(oldest) : QDateTime::currentMSecsSinceEpoch();
}

void MapView::showMoment(qint64 ms)
{
    const quint64 t = HybridClock::pack(ms, 0xffff);
    const HistoryIndex *history = historySource();
    const quint64 shown = m_snapshotAt;
    if (!m_live && hasStoreHistory() && history == m_snapshotSource && history->generation() == m_snapshotGeneration
        && history->countBetween(qMin(shown, t), qMax(shown, t)) < history->keyCount()) {
        // Nothing came or went since the last moment shown, and fewer writes
        // lie between the two than a full snapshot reads: move from it by the
        // keys written in between. (Without a store the past also holds keys
        // a sync brought, which the history does not see come.)
        QVector<HistoryIndex::Change> changes = history->changes(qMin(shown, t), qMax(shown, t));
        QVector<SnapshotModel::RowUpdate> updates;
        updates.reserve(changes.size());
        qsizetype changedSince = m_snapshotModel->changedSinceCount();
        for (HistoryIndex::Change &c : changes) {
            // Only keys written in between change their mark.
            changedSince += int(c.latest > t) - int(c.latest > shown);
            updates.append({std::move(c.key), t < shown ? std::move(c.before) : std::move(c.after), c.latest > t});
        }
        m_snapshotModel->applyUpdates(std::move(updates), changedSince);
        m_snapshotAt = t;
        showSnapshot(ms);
        return;
    }
    HistoryIndex::Snapshot snapshot = history->snapshot(t);
    if (!hasStoreHistory()) {
        // What this view saw lacks the keys a sync brought and nothing has
        // changed since: their current write, when it is older than t, was
        // already there.
        for (const EntryRef e : DistributedMapPrivate::get(m_map)->state().entries()) {
            if (!e.tombstone() && e.hlc() <= t) {
                QString key = e.key();
                if (!history->at(key, std::numeric_limits<quint64>::max())) { // seen no write of it
                    snapshot.entries.append({std::move(key), e.toEntry()});
                    snapshot.writtenSince.append(false);
                }
            }
        }
    }
    // The past sorts as the table does (a header click while there sorts it).
    const QHeaderView *header = m_keysView->horizontalHeader();
    m_snapshotModel->sort(header->sortIndicatorSection(), header->sortIndicatorOrder());
    m_snapshotModel->setSnapshot(std::move(snapshot));
    m_snapshotSource = history;
    m_snapshotGeneration = history->generation();
    m_snapshotAt = t;
    showSnapshot(ms);
}

void MapView::showSnapshot(qint64 ms)
{
    if (m_live) {
        m_live = false;
        m_keysView->setModel(m_snapshotModel);
        connectKeySelection();
        m_keysView->setEditTriggers(QAbstractItemView::NoEditTriggers);
    }
    // The shown key stays shown, as it was then.
    const int row = m_snapshotModel->rowOf(m_shownKey);
    if (row >= 0)
        m_keysView->setCurrentIndex(m_snapshotModel->index(row, KeysModel::KeyColumn));
    showValueOf(m_shownKey);
    const QString when = QDateTime::fromMSecsSinceEpoch(ms).toString(QStringLiteral("HH:mm:ss"));
    m_timeLabel->setText(when);
    m_banner->setText(tr("Viewing the map at %1 \u2014 live edits paused. %n key(s) changed since are marked.", nullptr,
                         m_snapshotModel->changedSinceCount()).arg(when));
    m_banner->show();
    m_liveButton->show();
    m_addButton->setEnabled(false);
    m_deleteButton->setEnabled(false);
    m_newKey->setEnabled(false);
    m_newValue->setEnabled(false);
}

void MapView::goLive()
{
    if (!m_live) {
        m_live = true;
        // The header may have been clicked while the past was shown.
        const QHeaderView *header = m_keysView->horizontalHeader();
        m_keysModel->sort(header->sortIndicatorSection(), header->sortIndicatorOrder());
        m_keysView->setModel(m_keysModel);
        connectKeySelection();
        m_keysView->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed
                                    | QAbstractItemView::AnyKeyPressed);
        const QModelIndex shown = m_keysModel->indexOf(m_shownKey);
        if (shown.isValid())
            m_keysView->setCurrentIndex(shown);
        showValueOf(m_shownKey); // live again
    }
    const QSignalBlocker block(m_timeline);
    m_timeline->setValue(m_timeline->maximum());
    m_timeLabel->setText(tr("live"));
    m_banner->hide();
    m_liveButton->hide();
    m_addButton->setEnabled(true);
    m_deleteButton->setEnabled(true);
    m_newKey->setEnabled(true);
    m_newValue->setEnabled(true);
}

int MapView::compareMoments(qint64 fromMs, qint64 toMs)
{
    // The last clock value of each millisecond: "at 14:02:17.000" includes
    // every write stamped in that millisecond.
    const quint64 from = HybridClock::pack(fromMs, 0xffff);
    const quint64 to = HybridClock::pack(toMs, 0xffff);
    m_diffModel->setChanges(historySource()->changes(from, to));
    const int n = m_diffModel->rowCount();
    const QString format = QStringLiteral("yyyy-MM-dd HH:mm:ss");
    QString text = tr("%n key(s) changed between %1 and %2.", nullptr, n)
                       .arg(QDateTime::fromMSecsSinceEpoch(fromMs).toString(format), QDateTime::fromMSecsSinceEpoch(toMs).toString(format));
    if (!hasStoreHistory())
        text += QLatin1Char(' ') + tr("This map has no store: only changes this window saw since %1 count, and "
                                      "\"(none)\" may mean \"not seen\".")
                                       .arg(QDateTime::fromMSecsSinceEpoch(m_seenSinceMs).toString(QStringLiteral("HH:mm:ss")));
    m_diffLabel->setText(text);
    return n;
}

bool MapView::restoreSelectedWrite()
{
    const QModelIndexList rows = m_historyView->selectionModel()->selectedRows();
    if (rows.isEmpty() || m_shownKey.isEmpty()) {
        Q_EMIT message(tr("Select a past write to restore"));
        return false;
    }
    const Entry e = m_historyModel->writeAt(rows.first().row());
    const QString when = DisplayFormat::clockTime(e.hlc);
    const QString key = m_shownKey;
    const bool done = e.tombstone ? m_map->remove(key) : m_map->set(key, DisplayFormat::parseJson(e.value));
    Q_EMIT message(done ? tr("Restored '%1' as it was at %2").arg(key, when)
                        : tr("Could not restore '%1': %2").arg(key, m_map->errorString()));
    return done;
}

QString MapView::uri() const
{
    return m_map->uri();
}

void MapView::refreshSelf()
{
    m_peersModel->refreshSelf();
    m_network->setSelf(m_peersModel->selfId(), m_map->presence().value(QStringLiteral("name")).toString());
}

bool MapView::addKey()
{
    const QString key = m_newKey->text();
    if (key.isEmpty()) {
        Q_EMIT message(tr("Type a key first"));
        m_newKey->setFocus();
        return false;
    }
    const QJsonValue value = m_newValue->value();
    if (value.isUndefined()) {
        Q_EMIT message(tr("Not stored: %1. Tick \"Store as plain text\" to store it as a string.")
                           .arg(m_newValue->errorString()));
        m_newValue->setFocus();
        return false;
    }
    const bool existed = m_map->contains(key);
    m_map->set(key, value);
    Q_EMIT message(existed ? tr("Updated %1").arg(key) : tr("Added %1").arg(key));
    m_newKey->clear();
    m_newValue->setText(QString());
    m_newValue->setStoreAsText(false);
    m_newKey->setFocus();
    return true;
}

int MapView::deleteSelected()
{
    const QModelIndexList rows = m_keysView->selectionModel()->selectedRows(KeysModel::KeyColumn);
    QStringList keys;
    keys.reserve(rows.size());
    for (const QModelIndex &row : rows)
        keys.append(row.data(KeysModel::KeyRole).toString());
    int removed = 0;
    for (const QString &key : std::as_const(keys))
        removed += m_map->remove(key) ? 1 : 0;
    if (removed)
        Q_EMIT message(tr("Deleted %n keys", nullptr, removed));
    else
        Q_EMIT message(tr("Select the keys to delete first"));
    return removed;
}

void MapView::focusFilter()
{
    m_filterEdit->setFocus(Qt::ShortcutFocusReason);
    m_filterEdit->selectAll();
}

void MapView::focusAddKey()
{
    m_newKey->setFocus(Qt::ShortcutFocusReason);
    m_newKey->selectAll();
}

void MapView::editCurrentValue()
{
    QModelIndex current = m_keysView->currentIndex();
    if (!current.isValid())
        return;
    m_keysView->edit(current.siblingAtColumn(KeysModel::ValueColumn));
}

void MapView::updateKeyCount()
{
    const QLocale locale;
    const int shown = m_keysModel->rowCount();
    const int total = m_map->size();
    m_keyCount->setText(shown == total ? tr("%1 keys").arg(locale.toString(total))
                                       : tr("%1 of %2 keys").arg(locale.toString(shown), locale.toString(total)));
    Q_EMIT statusChanged();
}

int MapView::exportMapTo(const QString &path, QString *error) const
{
    // QSaveFile: a failed export never leaves half a file behind.
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly) || !m_map->writeJson(&file) || !file.commit()) {
        if (error)
            *error = file.errorString();
        return -1;
    }
    return m_map->size();
}

int MapView::importMapFrom(const QString &path, QString *error)
{
    auto fail = [error](const QString &why) {
        if (error)
            *error = why;
        return -1;
    };
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return fail(file.errorString());
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(file.readAll(), &parseError);
    if (parseError.error != QJsonParseError::NoError)
        return fail(tr("not JSON: %1 at offset %2").arg(parseError.errorString()).arg(parseError.offset));
    if (!doc.isObject())
        return fail(tr("not a JSON object of keys and values"));
    const QJsonObject object = doc.object();
    for (auto it = object.constBegin(); it != object.constEnd(); ++it) {
        if (!m_map->set(it.key(), it.value()))
            return fail(tr("key '%1' was refused: %2 (the keys before it were set)").arg(it.key(), m_map->errorString()));
    }
    return int(object.size());
}

void MapView::exportMap()
{
    auto *dialog = new QFileDialog(this, tr("Export map as JSON"), QString(), tr("JSON (*.json);;All files (*)"));
    dialog->setAcceptMode(QFileDialog::AcceptSave);
    dialog->setDefaultSuffix(QStringLiteral("json"));
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QFileDialog::fileSelected, this, [this](const QString &path) {
        QString error;
        const int keys = exportMapTo(path, &error);
        Q_EMIT message(keys < 0 ? tr("Could not write %1: %2").arg(path, error)
                                : tr("Exported %n keys to %1", nullptr, keys).arg(path));
    });
    dialog->open();
}

void MapView::importMap()
{
    auto *dialog = new QFileDialog(this, tr("Import JSON into %1").arg(uri()), QString(), tr("JSON (*.json);;All files (*)"));
    dialog->setFileMode(QFileDialog::ExistingFile);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QFileDialog::fileSelected, this, [this](const QString &path) {
        QString error;
        const int keys = importMapFrom(path, &error);
        Q_EMIT message(keys < 0 ? tr("Could not import %1: %2").arg(path, error)
                                : tr("Imported %n keys from %1", nullptr, keys).arg(path));
    });
    dialog->open();
}

QByteArray MapView::saveState() const
{
    QByteArray state;
    QDataStream out(&state, QIODevice::WriteOnly);
    out << m_outer->saveState() << m_top->saveState() << m_side->saveState();
    return state;
}

void MapView::restoreState(const QByteArray &state)
{
    QDataStream in(state);
    QByteArray outer, top, side;
    in >> outer >> top >> side;
    if (in.status() != QDataStream::Ok)
        return;
    m_outer->restoreState(outer);
    m_top->restoreState(top);
    m_side->restoreState(side);
}
