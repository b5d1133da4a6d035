// Sets a key in a shared map, waits until the relay has it, prints the map.
//   distmap-console [ws://127.0.0.1:7357] [MAP] [KEY] [VALUE]
#include <distmap/connection.h>
#include <distmap/distributedmap.h>

#include <QCoreApplication>
#include <QJsonDocument>
#include <cstdio>

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    Connection connection(QUrl(args.value(1, QStringLiteral("ws://127.0.0.1:7357"))));
    DistributedMap map(&connection, args.value(2, QStringLiteral("/examples/console")));
    QObject::connect(&map, &DistributedMap::syncStatusChanged, &app, [&](const DistributedMap::SyncStatus &s) {
        if (map.isReady() && s.state == DistributedMap::SyncStatus::Synced && s.pendingWrites == 0) {
            std::printf("%s\n", QJsonDocument(map.toJsonObject()).toJson(QJsonDocument::Compact).constData());
            app.quit(); // the relay has our write
        }
    });
    map.onReady([&] { map.set(args.value(3, QStringLiteral("hello")), args.value(4, QStringLiteral("world"))); });
    connection.open();
    return app.exec();
}
