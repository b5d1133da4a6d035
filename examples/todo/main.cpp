// A shared to-do list: every window on the same relay shows the same list.
//   distmap-todo [ws://127.0.0.1:7357] [--screenshot FILE]
// Each item is a key ("item-<time>") whose value is {"text": ..., "done": ...};
// the list is a QListView on DistributedMapModel, through a thin proxy that
// shows the text and turns "done" into a check box.
#include <distmap/connection.h>
#include <distmap/distributedmap.h>
#include <distmap/distributedmapmodel.h>

#include <QApplication>
#include <QDateTime>
#include <QHBoxLayout>
#include <QIdentityProxyModel>
#include <QLineEdit>
#include <QListView>
#include <QPushButton>
#include <QTimer>
#include <QVBoxLayout>

class TodoProxy : public QIdentityProxyModel
{
public:
    using QIdentityProxyModel::QIdentityProxyModel;
    QVariant data(const QModelIndex &index, int role) const override
    {
        const QVariantMap item = QIdentityProxyModel::data(index, DistributedMapModel::ValueRole).toMap();
        if (role == Qt::DisplayRole)
            return item.value(QStringLiteral("text"));
        if (role == Qt::CheckStateRole)
            return item.value(QStringLiteral("done")).toBool() ? Qt::Checked : Qt::Unchecked;
        return QIdentityProxyModel::data(index, role);
    }
    bool setData(const QModelIndex &index, const QVariant &value, int role) override
    {
        if (role != Qt::CheckStateRole)
            return false;
        QVariantMap item = QIdentityProxyModel::data(index, DistributedMapModel::ValueRole).toMap();
        item.insert(QStringLiteral("done"), value.toInt() == Qt::Checked);
        return QIdentityProxyModel::setData(index, item, DistributedMapModel::ValueRole);
    }
    Qt::ItemFlags flags(const QModelIndex &index) const override
    {
        return QIdentityProxyModel::flags(index) | Qt::ItemIsUserCheckable;
    }
};

int main(int argc, char *argv[])
{
    QApplication app(argc, argv);
    QStringList args = app.arguments().mid(1);
    QString screenshot;
    if (const int i = args.indexOf(QStringLiteral("--screenshot")); i >= 0 && i + 1 < args.size()) {
        screenshot = args.at(i + 1);
        args.remove(i, 2);
    }
    Connection connection(QUrl(args.value(0, QStringLiteral("ws://127.0.0.1:7357"))));
    DistributedMap map(&connection, QStringLiteral("/examples/todo"));
    DistributedMapModel model(&map);
    TodoProxy proxy;
    proxy.setSourceModel(&model);

    QWidget window;
    window.setWindowTitle(QStringLiteral("Shared to-do list"));
    auto *list = new QListView;
    list->setModel(&proxy);
    auto *input = new QLineEdit;
    input->setPlaceholderText(QStringLiteral("Something to do"));
    auto *add = new QPushButton(QStringLiteral("Add"));
    auto *remove = new QPushButton(QStringLiteral("Remove"));
    auto *row = new QHBoxLayout;
    row->addWidget(input);
    row->addWidget(add);
    row->addWidget(remove);
    auto *layout = new QVBoxLayout(&window);
    layout->addWidget(list);
    layout->addLayout(row);
    QObject::connect(add, &QPushButton::clicked, [&] {
        if (input->text().isEmpty())
            return;
        const QString key = QStringLiteral("item-%1").arg(QDateTime::currentMSecsSinceEpoch());
        map.set(key, QVariantMap{{QStringLiteral("text"), input->text()}, {QStringLiteral("done"), false}});
        input->clear();
    });
    QObject::connect(input, &QLineEdit::returnPressed, add, &QPushButton::click);
    QObject::connect(remove, &QPushButton::clicked, [&] {
        const QModelIndex current = list->currentIndex();
        if (current.isValid())
            map.remove(current.data(DistributedMapModel::KeyRole).toString());
    });
    window.resize(360, 300);
    window.show();

    if (!screenshot.isEmpty()) {
        // For the docs and CI: a few items once synced, then a picture.
        map.onReady([&] {
            if (map.size() == 0) {
                const QStringList items{QStringLiteral("Water the plants"), QStringLiteral("Write the release notes"),
                                        QStringLiteral("Call Grace")};
                for (int i = 0; i < items.size(); ++i)
                    map.set(QStringLiteral("item-%1").arg(i), QVariantMap{{QStringLiteral("text"), items.at(i)},
                                                                        {QStringLiteral("done"), i == 1}});
            }
            QTimer::singleShot(0, &app, [&] {
                model.flush();
                app.exit(window.grab().save(screenshot) ? 0 : 1);
            });
        });
    }
    connection.open();
    return app.exec();
}
