// Flood: unloaded latency of real peers while flooders, in a child process,
// hammer a relay that runs with its default rate limit. Steady: a writer
// that sends one delta per message at a fixed rate through the same relay,
// for longer than its rate cutoff.

#include "bench.h"

#include "benchutil.h"
#include "control.h"
#include "wire.h"

#include <QByteArray>
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QProcess>
#include <QSocketNotifier>
#include <QTcpSocket>
#include <QTimer>
#include <QWebSocket>

#include <csignal>
#include <cstdio>
#include <unistd.h>

namespace {

// A hand-made client of one map: hello, open, and the map id and peer id
// the relay gives it; it counts `rate-limited` errors and closes. The flood
// and steady workloads build their frames themselves, one delta per message.
struct RawMapClient
{
    explicit RawMapClient(const QString &mapUri)
        : uri(mapUri)
    {
        QObject::connect(&socket, &QWebSocket::connected, &socket, [this] {
            socket.sendTextMessage(QString::fromUtf8(Control::encodeHello(Control::Hello())));
        });
        QObject::connect(&socket, &QWebSocket::textMessageReceived, &socket, [this](const QString &text) { onText(text); });
        QObject::connect(&socket, &QWebSocket::disconnected, &socket, [this] {
            mapId = 0;
            ++closes;
        });
    }
    void onText(const QString &text)
    {
        Control::Message message;
        if (Control::decodeMessage(text.toUtf8(), &message) != Control::DecodeError::NoError)
            return;
        if (message.type == Control::Type::Welcome) {
            Control::Welcome welcome;
            if (Control::decodeWelcome(message.object, &welcome) == Control::DecodeError::NoError)
                peer = welcome.peer; // a peer's deltas must name it as their writer
            Control::Open open;
            open.map = uri;
            socket.sendTextMessage(QString::fromUtf8(Control::encodeOpen(open)));
        } else if (message.type == Control::Type::Opened) {
            Control::Opened opened;
            if (Control::decodeOpened(message.object, &opened) == Control::DecodeError::NoError)
                mapId = opened.id;
        } else if (message.type == Control::Type::Error) {
            Control::Error error;
            if (Control::decodeError(message.object, &error) == Control::DecodeError::NoError && error.code == Wire::ErrorCode::RateLimited)
                ++rateLimited;
        }
    }

    QWebSocket socket;
    QString uri;
    quint32 mapId = 0;
    quint64 peer = 0;
    int rateLimited = 0;
    int closes = 0;
};

// A peer that floods the relay with deltas on a map of its own, and comes
// back as soon as the relay cuts it off: sustained abuse. The relay forwards
// its deltas to nobody, so what it costs the others is the relay's time.
class Flooder
{
public:
    Flooder(const QUrl &url, int index)
        : m_url(url), m_client(QStringLiteral("/bench-flood-%1").arg(index))
    {
        QWebSocket &socket = m_client.socket;
        QObject::connect(&socket, &QWebSocket::disconnected, &socket, [this] {
            if (m_running)
                QTimer::singleShot(0, &m_client.socket, [this] { m_client.socket.open(m_url); });
        });
        QObject::connect(&m_tick, &QTimer::timeout, &socket, [this] {
            if (!m_client.mapId)
                return;
            QByteArray frame;
            Wire::appendHeader(frame, {Wire::Type::Delta, 0, m_client.mapId, 0});
            Wire::appendEntry(frame, QStringLiteral("spam"), Entry{QByteArray("1"), 1, 1, false});
            for (int i = 0; i < 200 && m_client.socket.isValid(); ++i) {
                m_client.socket.sendBinaryMessage(frame);
                ++sent;
            }
        });
    }
    void start()
    {
        m_running = true;
        m_client.socket.open(m_url);
        m_tick.start(0);
    }
    void stop()
    {
        m_running = false;
        m_tick.stop();
        m_client.socket.abort();
    }
    int closes() const { return m_client.closes; }
    int rateLimited() const { return m_client.rateLimited; }

    quint64 sent = 0;

private:
    QUrl m_url;
    RawMapClient m_client;
    QTimer m_tick;
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
        closes += f->closes();
        limited += f->rateLimited();
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

namespace {

// One sample of the relay's /metrics, by name (0 when it is missing).
double metricsSample(const QUrl &relay, const QByteArray &name)
{
    QTcpSocket socket;
    socket.connectToHost(relay.host(), quint16(relay.port()));
    if (!socket.waitForConnected(5000))
        return 0;
    socket.write("GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    QByteArray reply;
    while (socket.waitForReadyRead(5000))
        reply += socket.readAll();
    reply += socket.readAll();
    for (const QByteArray &line : reply.split('\n')) {
        if (line.startsWith(name + ' '))
            return line.mid(name.size() + 1).toDouble();
    }
    return 0;
}

} // namespace

// A writer sending one delta per message at perSecond for `seconds`
// (paced every millisecond) to one reader, through the relay with its
// default limits: it must never be cut off.
bool Bench::steadyWriter(int perSecond, int seconds)
{
    Peer reader(m_relay.url, QStringLiteral("/bench-steady"));
    RawMapClient writer(QStringLiteral("/bench-steady"));
    writer.socket.open(m_relay.url);
    if (!BenchUtil::waitUntil([&] { return writer.mapId != 0 && reader.map->isReady(); }, 10000))
        return false;
    const double slowedBefore = metricsSample(m_relay.url, "distmap_relay_slowed_total");
    const qint64 total = qint64(perSecond) * seconds;
    qint64 sent = 0;
    QElapsedTimer clock;
    clock.start();
    QTimer tick;
    tick.setTimerType(Qt::PreciseTimer);
    QObject::connect(&tick, &QTimer::timeout, &writer.socket, [&] {
        // As many as the clock says are due: a late tick catches up.
        const qint64 due = qMin(total, clock.nsecsElapsed() * perSecond / 1000000000);
        for (; sent < due && writer.socket.isValid(); ++sent) {
            QByteArray frame;
            Wire::appendHeader(frame, {Wire::Type::Delta, 0, writer.mapId, 0});
            Wire::appendEntry(frame, QStringLiteral("k%1").arg(sent % 1000), Entry{QByteArray::number(sent), quint64(sent + 1) << 16, writer.peer, false});
            writer.socket.sendBinaryMessage(frame);
        }
        if (sent >= total)
            tick.stop();
    });
    tick.start(1);
    const QString last = QStringLiteral("k%1").arg((total - 1) % 1000);
    const bool done = BenchUtil::waitUntil([&] {
        return sent >= total && reader.map->value(last).toInteger(-1) == total - 1;
    }, (seconds + 60) * 1000);
    const double elapsed = double(clock.nsecsElapsed()) / 1e9;
    const double slowed = metricsSample(m_relay.url, "distmap_relay_slowed_total") - slowedBefore;
    const int closesWhileWriting = writer.closes;
    const int rateLimited = writer.rateLimited;
    writer.socket.close();
    QJsonObject r;
    r.insert(QStringLiteral("sent"), double(sent));
    r.insert(QStringLiteral("seconds"), elapsed);
    r.insert(QStringLiteral("deliveredPerSecond"), done ? double(total) / elapsed : 0);
    r.insert(QStringLiteral("rateLimitedErrors"), rateLimited);
    r.insert(QStringLiteral("closes"), closesWhileWriting);
    r.insert(QStringLiteral("slowdowns"), slowed);
    rows.append({QStringLiteral("steady writer, one delta per message"),
                 {{QStringLiteral("perSecond"), perSecond}, {QStringLiteral("seconds"), seconds}}, r});
    say(QStringLiteral("steady writer: %1 deltas at %2/s in %3 s, %4 rate-limited, %5 closes, %6 slowdowns%7")
            .arg(sent).arg(perSecond).arg(elapsed, 0, 'f', 2).arg(rateLimited).arg(closesWhileWriting).arg(slowed)
            .arg(done ? QString() : QStringLiteral(" (the reader did not get the last one)")));
    return done && rateLimited == 0 && closesWhileWriting == 0;
}
