// Flood: unloaded latency of real peers while flooders, in a child process,
// hammer a relay that runs with its default rate limit.

#include "bench.h"

#include "benchutil.h"
#include "control.h"
#include "wire.h"

#include <QByteArray>
#include <QCoreApplication>
#include <QProcess>
#include <QSocketNotifier>
#include <QTimer>
#include <QWebSocket>

#include <csignal>
#include <cstdio>
#include <unistd.h>

namespace {

// A peer that floods the relay with deltas on a map of its own, and comes
// back as soon as the relay cuts it off: sustained abuse. The relay forwards
// its deltas to nobody, so what it costs the others is the relay's time.
class Flooder
{
public:
    Flooder(const QUrl &url, int index)
        : m_url(url), m_uri(QStringLiteral("/bench-flood-%1").arg(index))
    {
        QObject::connect(&m_socket, &QWebSocket::connected, &m_socket, [this] {
            m_socket.sendTextMessage(QString::fromUtf8(Control::encodeHello(Control::Hello())));
        });
        QObject::connect(&m_socket, &QWebSocket::textMessageReceived, &m_socket, [this](const QString &text) {
            Control::Message message;
            if (Control::decodeMessage(text.toUtf8(), &message) != Control::DecodeError::NoError)
                return;
            if (message.type == Control::Type::Welcome) {
                Control::Open open;
                open.map = m_uri;
                m_socket.sendTextMessage(QString::fromUtf8(Control::encodeOpen(open)));
            } else if (message.type == Control::Type::Opened) {
                Control::Opened opened;
                if (Control::decodeOpened(message.object, &opened) == Control::DecodeError::NoError)
                    m_mapId = opened.id;
            } else if (message.type == Control::Type::Error) {
                Control::Error error;
                if (Control::decodeError(message.object, &error) == Control::DecodeError::NoError
                    && error.code == Wire::ErrorCode::RateLimited)
                    ++rateLimited;
            }
        });
        QObject::connect(&m_socket, &QWebSocket::disconnected, &m_socket, [this] {
            m_mapId = 0;
            ++closes;
            if (m_running)
                QTimer::singleShot(0, &m_socket, [this] { m_socket.open(m_url); });
        });
        QObject::connect(&m_tick, &QTimer::timeout, &m_socket, [this] {
            if (!m_mapId)
                return;
            QByteArray frame;
            Wire::appendHeader(frame, {Wire::Type::Delta, 0, m_mapId, 0});
            Wire::appendEntry(frame, QStringLiteral("spam"), Entry{QByteArray("1"), 1, 1, false});
            for (int i = 0; i < 200 && m_socket.isValid(); ++i) {
                m_socket.sendBinaryMessage(frame);
                ++sent;
            }
        });
    }
    void start()
    {
        m_running = true;
        m_socket.open(m_url);
        m_tick.start(0);
    }
    void stop()
    {
        m_running = false;
        m_tick.stop();
        m_socket.abort();
    }

    quint64 sent = 0;
    int closes = 0;
    int rateLimited = 0;

private:
    QUrl m_url;
    QString m_uri;
    QWebSocket m_socket;
    QTimer m_tick;
    quint32 m_mapId = 0;
    bool m_running = false;
};

} // namespace

// --flood-url URL: the flooding side of the flood workload, run as a child
// process; on SIGTERM it prints "sent cut-offs rate-limited-errors".
int runFlooders(const QUrl &url, int count)
{
    std::vector<std::unique_ptr<Flooder>> flooders;
    for (int i = 0; i < count; ++i) {
        flooders.push_back(std::make_unique<Flooder>(url, i));
        flooders.back()->start();
    }
    static int pipeFds[2];
    if (::pipe(pipeFds) != 0)
        return 1;
    std::signal(SIGTERM, [](int) { [[maybe_unused]] auto n = ::write(pipeFds[1], "x", 1); });
    QSocketNotifier notifier(pipeFds[0], QSocketNotifier::Read);
    QObject::connect(&notifier, &QSocketNotifier::activated, &notifier, [] { QCoreApplication::quit(); });
    QCoreApplication::exec();
    quint64 sent = 0;
    int closes = 0, limited = 0;
    for (auto &f : flooders) {
        f->stop();
        sent += f->sent;
        closes += f->closes;
        limited += f->rateLimited;
    }
    std::printf("%llu %d %d\n", static_cast<unsigned long long>(sent), closes, limited);
    return 0;
}

// Unloaded latency of real peers while flooders hammer the relay (which
// runs with its default rate limit here).
bool Bench::flood(int flooders, int messages)
{
    // The flooders run in a process of their own, so they compete with
    // the real peers for the relay, not for this process's event loop.
    QProcess floodProcess;
    floodProcess.start(QCoreApplication::applicationFilePath(),
                       {QStringLiteral("--flood-url"), m_relay.url.toString(), QStringLiteral("--flooders"), QString::number(flooders)});
    if (!floodProcess.waitForStarted(10000))
        return false;
    BenchUtil::spin(1000); // let the flood build up
    QJsonObject r;
    const bool ok = throughputRun(10, messages, 1, false, false, 0, &r);
    floodProcess.terminate(); // our own child, by PID; it prints its counts
    if (!floodProcess.waitForFinished(10000))
        floodProcess.kill();
    const QList<QByteArray> counts = floodProcess.readAllStandardOutput().trimmed().split(' ');
    const quint64 sent = counts.value(0).toULongLong();
    const int closes = counts.value(1).toInt();
    const int limited = counts.value(2).toInt();
    if (!ok)
        return false;
    r.insert(QStringLiteral("floodMessages"), double(sent));
    r.insert(QStringLiteral("floodCutOffs"), closes);
    r.insert(QStringLiteral("floodRateLimitedErrors"), limited);
    rows.append({QStringLiteral("unloaded, during a flood"), {{QStringLiteral("n"), 10}, {QStringLiteral("messages"), messages},
                                                                {QStringLiteral("window"), 1}, {QStringLiteral("flooders"), flooders}}, r});
    say(QStringLiteral("flood: %1 flood messages sent, %2 cut-offs, p99 %3 ms").arg(sent).arg(closes)
            .arg(r.value(QStringLiteral("p99ms")).toDouble()));
    return true;
}
