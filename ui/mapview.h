#pragma once

#include <QElapsedTimer>
#include <QPointer>
#include <QTimer>
#include <QWidget>

#include <memory>

class DeltaLogModel;
class DeltaLogView;
class DistributedMap;
class HistoryIndex;
class JsonTreeModel;
class KeyHistoryModel;
class MapDiffModel;
class QSlider;
class SnapshotModel;
class QDateTimeEdit;
class LocalStore;
class KeysModel;
class NetworkView;
class PeersModel;
class QLabel;
class QLineEdit;
class QPushButton;
class QSplitter;
class QTabWidget;
class QTableView;
class QTreeView;
class ValueEditor;

// One open map, one tab: the keys view (filter, add, edit in place, delete),
// the network picture and peers table, and the deltas log. Shows a map it
// is given (InspectorSession owns it, and the view must go before the map);
// owns the models over it.
class MapView : public QWidget
{
    Q_OBJECT
    Q_DISABLE_COPY(MapView)
public:
    explicit MapView(DistributedMap *map, QWidget *parent = nullptr);
    ~MapView() override;

    DistributedMap *map() const { return m_map; }
    QString uri() const;
    KeysModel *keysModel() const { return m_keysModel; }
    PeersModel *peersModel() const { return m_peersModel; }
    DeltaLogModel *logModel() const { return m_logModel; }
    QTableView *keysView() const { return m_keysView; }
    QTableView *peersView() const { return m_peersView; }
    NetworkView *networkView() const { return m_network; }
    DeltaLogView *logView() const { return m_logView; }
    QLineEdit *keyFilterEdit() const { return m_filterEdit; }
    QLineEdit *newKeyEdit() const { return m_newKey; }
    ValueEditor *newValueEditor() const { return m_newValue; }
    // The current key's value as a tree (objects and arrays unfold).
    JsonTreeModel *valueTreeModel() const { return m_valueModel; }
    QTreeView *valueTreeView() const { return m_valueTree; }
    QString shownKey() const { return m_shownKey; }
    // The current key's past writes, newest first: from the map's store
    // when it has one (setStore), else those this view saw since it opened.
    KeyHistoryModel *keyHistoryModel() const { return m_historyModel; }
    QTableView *keyHistoryView() const { return m_historyView; }
    QLabel *keyHistoryLabel() const { return m_historyLabel; }
    void setStore(LocalStore *store);
    // The keys that changed between two moments (ms since the epoch), each
    // with its value at both, into diffModel(); returns how many.
    int compareMoments(qint64 fromMs, qint64 toMs);

    // The timeline under the keys table: the table shows the map as it was
    // at ms (read-only, the keys changed since marked) until goLive().
    void showMoment(qint64 ms);
    void goLive();
    bool isLive() const { return m_live; }
    SnapshotModel *snapshotModel() const { return m_snapshotModel; }
    QSlider *timeline() const { return m_timeline; }
    QLabel *timelineBanner() const { return m_banner; }
    QPushButton *addButton() const { return m_addButton; }
    MapDiffModel *diffModel() const { return m_diffModel; }
    QLabel *diffLabel() const { return m_diffLabel; }
    // Writes the value of the selected history row again (a new write,
    // a delete for a deleted one); false when no row is selected.
    bool restoreSelectedWrite();

    // Re-reads this peer's id and name (after the map's presence changed).
    void refreshSelf();
    // Deltas per second, in and out, over the last full second.
    int deltaRate() const { return m_rate; }

    // Adds (or overwrites) the key typed in the add bar; false when refused.
    bool addKey();
    // Removes the keys of the selected rows; returns how many.
    int deleteSelected();
    void focusFilter();
    void focusAddKey();
    void editCurrentValue();

    // The map as one JSON object in a file (DistributedMap::writeJson);
    // the number of keys written, or -1 (*error says why).
    int exportMapTo(const QString &path, QString *error = nullptr) const;
    // Sets every key of the JSON object in the file, as normal writes; the
    // number of keys set, or -1 (*error says why: a file that is not a JSON
    // object sets nothing; a value the map refuses stops the import there).
    int importMapFrom(const QString &path, QString *error = nullptr);
    // The same behind a file dialog; the result goes to message().
    void exportMap();
    void importMap();

    QByteArray saveState() const;
    void restoreState(const QByteArray &state);

Q_SIGNALS:
    // Ready, syncing, key count or delta rate changed.
    void statusChanged();
    // Something the user should read in the status bar.
    void message(const QString &text);

private:
    QWidget *buildKeysPanel();
    void updateKeyCount();
    void showValueOf(const QString &key);
    void refreshHistory(bool force);
    bool hasStoreHistory() const;
    void showSnapshot(qint64 ms);
    const HistoryIndex *historySource() const;

    DistributedMap *const m_map;
    KeysModel *m_keysModel;
    PeersModel *m_peersModel;
    DeltaLogModel *m_logModel;
    QLineEdit *m_filterEdit = nullptr;
    QLineEdit *m_newKey = nullptr;
    ValueEditor *m_newValue = nullptr;
    QPushButton *m_addButton = nullptr;
    QPushButton *m_deleteButton = nullptr;
    QLabel *m_keyCount = nullptr;
    QTableView *m_keysView = nullptr;
    JsonTreeModel *m_valueModel = nullptr;
    QTreeView *m_valueTree = nullptr;
    QString m_shownKey;
    QTabWidget *m_valueTabs = nullptr;
    KeyHistoryModel *m_historyModel = nullptr;
    QTableView *m_historyView = nullptr;
    QLabel *m_historyLabel = nullptr;
    QPushButton *m_restoreButton = nullptr;
    QPointer<LocalStore> m_store;
    MapDiffModel *m_diffModel = nullptr;
    QLabel *m_diffLabel = nullptr;
    QDateTimeEdit *m_diffFrom = nullptr;
    QDateTimeEdit *m_diffTo = nullptr;
    SnapshotModel *m_snapshotModel = nullptr;
    // What the snapshot model shows: the moment, and the history (and its
    // generation) it was read from.
    const HistoryIndex *m_snapshotSource = nullptr;
    quint64 m_snapshotGeneration = 0;
    quint64 m_snapshotAt = 0;
    QSlider *m_timeline = nullptr;
    QLabel *m_timeLabel = nullptr;
    QLabel *m_banner = nullptr;
    QPushButton *m_liveButton = nullptr;
    QTimer m_scrubTimer;
    bool m_live = true;
    void connectKeySelection();
    qint64 timelineStartMs() const;
    std::unique_ptr<HistoryIndex> m_seen; // without a store: writes seen since the view opened
    qint64 m_seenSinceMs = 0;
    QTableView *m_peersView = nullptr;
    NetworkView *m_network = nullptr;
    DeltaLogView *m_logView = nullptr;
    QSplitter *m_outer = nullptr;
    QSplitter *m_top = nullptr;
    QSplitter *m_side = nullptr;
    QTimer m_filterDelay;
    QTimer m_rateTimer;
    int m_deltasThisSecond = 0;
    int m_rate = 0;
};
