#pragma once

#include <QObject>
#include <QString>
#include <QUrl>
#include <QVector>

class Relay;

// A relay run inside the inspector's process, for when none answers at the
// default address. A narrow face over relay/'s Relay: listening on this
// machine, its address, and the counters the relay panel shows. It keeps
// relay.h out of ui/'s headers, so distmap_ui links the relay privately and
// nothing that includes the inspector depends on the relay's internals.
class HostedRelay : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY(HostedRelay)
public:
    struct Stats
    {
        int connections = 0;
        int maps = 0;
        quint64 framesIn = 0;
        quint64 framesOut = 0;
        quint64 bytesIn = 0;
        quint64 bytesOut = 0;
    };
    struct MapInfo
    {
        QString uri;
        int members = 0; // peers that have the map open
    };

    explicit HostedRelay(QObject *parent = nullptr);
    ~HostedRelay() override;

    // Listens on 127.0.0.1 only: a relay a desktop app starts by itself must
    // not open a port to the network. Port 0 picks a free one.
    bool listen(quint16 port);
    QString errorString() const;
    quint16 port() const;
    QUrl url() const;

    Stats stats() const;
    QVector<MapInfo> maps() const;

Q_SIGNALS:
    // One line per connect, disconnect, map open/close and sync routing.
    void logMessage(const QString &line);

private:
    Relay *m_relay;
};
