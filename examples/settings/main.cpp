// A shared settings panel: a QFormLayout bound to a map. Two windows, each
// with its own connection, stay in sync through the relay; run it twice, or
// on two machines, and they all do.
//   distmap-settings [ws://127.0.0.1:7357] [--screenshot FILE]
#include <distmap/connection.h>
#include <distmap/distributedmap.h>

#include <QApplication>
#include <QCheckBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QSpinBox>
#include <QTimer>

// One window: each field writes its key when edited and follows the map.
class SettingsPanel : public QWidget
{
public:
    SettingsPanel(const QUrl &relay, const QString &title)
        : m_connection(relay)
        , m_map(&m_connection, QStringLiteral("/examples/settings"))
    {
        auto *form = new QFormLayout(this);
        form->addRow(new QLabel(QStringLiteral("<b>%1</b>").arg(title)));
        form->addRow(QStringLiteral("Display name"), &m_name);
        form->addRow(QStringLiteral("Font size"), &m_fontSize);
        form->addRow(QStringLiteral("Dark mode"), &m_dark);
        form->addRow(QStringLiteral("Status"), &m_status);
        m_fontSize.setRange(6, 48);
        connect(&m_name, &QLineEdit::textEdited, this, [this](const QString &text) { m_map.set(QStringLiteral("name"), text); });
        connect(&m_fontSize, &QSpinBox::valueChanged, this, [this](int size) {
            if (!m_updating)
                m_map.set(QStringLiteral("fontSize"), size);
        });
        connect(&m_dark, &QCheckBox::toggled, this, [this](bool on) {
            if (!m_updating)
                m_map.set(QStringLiteral("dark"), on);
        });
        connect(&m_map, &DistributedMap::changed, this, &SettingsPanel::showValues);
        connect(&m_map, &DistributedMap::syncStatusChanged, this, [this](const DistributedMap::SyncStatus &s) {
            static const char *names[] = {"offline", "syncing", "synced"};
            m_status.setText(QStringLiteral("%1, %2 pending").arg(QLatin1String(names[s.state])).arg(s.pendingWrites));
        });
        showValues();
        m_connection.open();
    }
    DistributedMap &map() { return m_map; }

private:
    void showValues()
    {
        m_updating = true; // showing a value is not editing it
        // Compared first: setText() would move the cursor of someone typing.
        if (const QString name = m_map.value<QString>(QStringLiteral("name")); m_name.text() != name)
            m_name.setText(name);
        m_fontSize.setValue(m_map.value<int>(QStringLiteral("fontSize"), 12));
        m_dark.setChecked(m_map.value<bool>(QStringLiteral("dark")));
        m_updating = false;
    }

    Connection m_connection;
    DistributedMap m_map;
    QLineEdit m_name;
    QSpinBox m_fontSize;
    QCheckBox m_dark;
    QLabel m_status;
    bool m_updating = false;
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
    const QUrl relay(args.value(0, QStringLiteral("ws://127.0.0.1:7357")));
    QWidget window;
    window.setWindowTitle(QStringLiteral("Shared settings"));
    auto *layout = new QHBoxLayout(&window);
    auto *left = new SettingsPanel(relay, QStringLiteral("Window A"));
    auto *right = new SettingsPanel(relay, QStringLiteral("Window B"));
    layout->addWidget(left);
    layout->addWidget(right);
    window.show();

    if (!screenshot.isEmpty()) {
        // For the docs and CI: A edits, B shows it; then a picture.
        left->map().onReady([&] {
            left->map().set(QStringLiteral("name"), QStringLiteral("Ada"));
            left->map().set(QStringLiteral("fontSize"), 15);
            left->map().set(QStringLiteral("dark"), true);
        });
        auto *poll = new QTimer(&window);
        QObject::connect(poll, &QTimer::timeout, &app, [&] {
            if (right->map().value<QString>(QStringLiteral("name")) == QLatin1String("Ada")
                && right->map().value<int>(QStringLiteral("fontSize")) == 15
                && left->map().syncStatus().pendingWrites == 0
                && right->map().syncStatus().state == DistributedMap::SyncStatus::Synced)
                app.exit(window.grab().save(screenshot) ? 0 : 1);
        });
        poll->start(20);
    }
    return app.exec();
}
