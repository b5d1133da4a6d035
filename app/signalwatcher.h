#pragma once

#include <QObject>

class QSocketNotifier;

// Turns SIGINT/SIGTERM (and SIGHUP) into Qt signals through a self-pipe, so
// shutdown runs in the event loop instead of inside a signal handler.
class SignalWatcher : public QObject
{
    Q_OBJECT
public:
    explicit SignalWatcher(QObject *parent = nullptr);
    ~SignalWatcher() override;

Q_SIGNALS:
    void terminationRequested(int signal); // SIGINT or SIGTERM
    void hangup();                         // SIGHUP

private:
    QSocketNotifier *m_notifier = nullptr;
};
