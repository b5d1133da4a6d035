#pragma once

#include "hostedrelay.h"

#include <QPointer>
#include <QTimer>
#include <QWidget>

class QLabel;
class QPlainTextEdit;
class QTableWidget;

// Shows the relay this app hosts: address, connections, maps with their
// member counts, frame and byte rates, and the relay's log lines. Polls the
// relay's counters once a second; the log is bounded.
class RelayPanel : public QWidget
{
    Q_OBJECT
    Q_DISABLE_COPY(RelayPanel)
public:
    explicit RelayPanel(QWidget *parent = nullptr);
    ~RelayPanel() override;

    void setRelay(HostedRelay *relay);
    HostedRelay *relay() const { return m_relay; }
    void refresh();

private:
    QPointer<HostedRelay> m_relay;
    QLabel *m_summary = nullptr;
    QTableWidget *m_maps = nullptr;
    QPlainTextEdit *m_log = nullptr;
    QTimer m_timer;
    quint64 m_lastFramesIn = 0;
    quint64 m_lastFramesOut = 0;
    quint64 m_lastBytesIn = 0;
    qint64 m_lastPollMs = 0;
};
