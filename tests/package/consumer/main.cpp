// Uses every installed header, opens nothing: prints what a map built
// against the installed library looks like, and exits.
#include <distmap/connection.h>
#include <distmap/distributedmap.h>
#include <distmap/localstore.h>

#include <QCoreApplication>
#include <QMetaEnum>
#include <QObject>

#include <cstdio>

class Listener : public QObject
{
    Q_OBJECT
public:
    int changes = 0;
    void onChanged(const DistributedMap::Change &change) { changes += change.source == distmap::Source::Local; }
};

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    Connection connection(QUrl(QStringLiteral("ws://127.0.0.1:1")));
    DistributedMap map(&connection, QStringLiteral("/package-test"));
    Listener listener;
    QObject::connect(&map, &DistributedMap::changed, &listener, &Listener::onChanged);
    map.set(QStringLiteral("greeting"), QStringLiteral("hello"));
    const LocalStore::Options options;
    std::printf("map %s: %d key(s), greeting=%s, local changes %d, state %s, ready %d, tombstones kept %lld days, "
                "max message %lld\n",
                qPrintable(map.uri()), map.size(), qPrintable(map.value(QStringLiteral("greeting")).toString()),
                listener.changes, QMetaEnum::fromType<Connection::State>().valueToKey(connection.state()),
                int(map.isReady()), options.tombstoneMaxAgeMs / (24 * 3600 * 1000LL), Wire::DefaultMaxMessageBytes);
    return map.size() == 1 && listener.changes == 1 && map.relayErrorCode() == Wire::ErrorCode::NoError ? 0 : 1;
}

#include "main.moc"
