#include "relaypanel.h"

#include "hostedrelay.h"

#include <QDateTime>
#include <QHeaderView>
#include <QLabel>
#include <QLocale>
#include <QPlainTextEdit>
#include <QTableWidget>
#include <QVBoxLayout>

RelayPanel::RelayPanel(QWidget *parent)
    : QWidget(parent)
    , m_summary(new QLabel(this))
    , m_maps(new QTableWidget(0, 2, this))
    , m_log(new QPlainTextEdit(this))
{
    setAccessibleName(tr("Hosted relay"));
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_summary->setWordWrap(true);
    m_summary->setAccessibleName(tr("Relay statistics"));
    m_maps->setHorizontalHeaderLabels({tr("Map"), tr("Peers")});
    m_maps->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    m_maps->horizontalHeader()->setSectionResizeMode(1, QHeaderView::ResizeToContents);
    m_maps->verticalHeader()->hide();
    m_maps->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_maps->setAccessibleName(tr("Maps on the relay"));
    m_log->setReadOnly(true);
    m_log->setMaximumBlockCount(500);
    m_log->setAccessibleName(tr("Relay log"));
    m_log->setPlaceholderText(tr("Connections, maps and sync routing appear here."));

    auto *layout = new QVBoxLayout(this);
    layout->addWidget(m_summary);
    layout->addWidget(m_maps, 1);
    layout->addWidget(m_log, 2);

    m_timer.setInterval(1000);
    connect(&m_timer, &QTimer::timeout, this, &RelayPanel::refresh);
    refresh();
}

RelayPanel::~RelayPanel() = default;

void RelayPanel::setRelay(HostedRelay *relay)
{
    if (m_relay)
        disconnect(m_relay, nullptr, this, nullptr);
    m_relay = relay;
    m_lastFramesIn = m_lastFramesOut = m_lastBytesIn = 0;
    m_lastPollMs = QDateTime::currentMSecsSinceEpoch();
    if (relay) {
        connect(relay, &HostedRelay::logMessage, this, [this](const QString &line) {
            m_log->appendPlainText(QDateTime::currentDateTime().toString(QStringLiteral("HH:mm:ss  ")) + line);
        });
        m_timer.start();
    } else {
        m_timer.stop();
    }
    refresh();
}

void RelayPanel::refresh()
{
    if (!m_relay) {
        m_summary->setText(tr("This app hosts no relay. Use Network \u2192 Host a relay\u2026 to start one."));
        m_maps->setRowCount(0);
        return;
    }
    const HostedRelay::Stats s = m_relay->stats();
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    const double seconds = qMax<qint64>(1, now - m_lastPollMs) / 1000.0;
    const double inRate = (s.framesIn - m_lastFramesIn) / seconds;
    const double outRate = (s.framesOut - m_lastFramesOut) / seconds;
    const double byteRate = (s.bytesIn - m_lastBytesIn) / seconds;
    m_lastFramesIn = s.framesIn;
    m_lastFramesOut = s.framesOut;
    m_lastBytesIn = s.bytesIn;
    m_lastPollMs = now;
    const QLocale locale;
    m_summary->setText(tr("<b>Hosting %1</b> (port %2)<br>%3 connections, %4 maps<br>"
                          "frames in %5/s, out %6/s, %7/s in<br>total %8 in, %9 out")
                           .arg(m_relay->url().toString())
                           .arg(m_relay->port())
                           .arg(s.connections)
                           .arg(s.maps)
                           .arg(inRate, 0, 'f', 0)
                           .arg(outRate, 0, 'f', 0)
                           .arg(locale.formattedDataSize(qint64(byteRate)))
                           .arg(locale.formattedDataSize(qint64(s.bytesIn)))
                           .arg(locale.formattedDataSize(qint64(s.bytesOut))));
    const auto maps = m_relay->maps();
    m_maps->setRowCount(int(maps.size()));
    for (int i = 0; i < maps.size(); ++i) {
        m_maps->setItem(i, 0, new QTableWidgetItem(maps.at(i).uri));
        m_maps->setItem(i, 1, new QTableWidgetItem(QString::number(maps.at(i).members)));
    }
}
