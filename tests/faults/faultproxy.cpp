// A TCP proxy that injects faults between peers and a relay, for tests
// with real processes (tst_faults). It listens on 127.0.0.1 and forwards
// each accepted connection to the target; the test steers it with one
// command per line on stdin, each answered "ok COMMAND" once in effect:
//
//   pass          forward normally (the initial mode; ends a blackhole and
//                 sends what it held back, in order)
//   delay MS      hold every chunk MS milliseconds before forwarding it
//   blackhole     stop forwarding in both directions, keep every socket
//                 open and hold the bytes: a partition, as TCP sees one
//   drop          close every connection (FIN on both sides)
//   reset         abort every connection (RST on both sides)
//   refuse on|off close new connections at once while on
//   stats         "stats ACCEPTED OPEN"
//
//   faultproxy LISTEN_PORT TARGET_PORT    (LISTEN_PORT 0: any; prints
//                                          "listening PORT")
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QPointer>
#include <QQueue>
#include <QSocketNotifier>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTimer>

#include <cstdio>
#include <sys/socket.h>
#include <unistd.h>

namespace {

enum class Mode { Pass, Delay, Blackhole };

struct Pipe;

struct Proxy
{
    quint16 targetPort = 0;
    Mode mode = Mode::Pass;
    int delayMs = 0;
    bool refuse = false;
    int accepted = 0;
    QList<Pipe *> pipes;
};

Proxy proxy;

// One direction of a connection: bytes read from `from`, queued with the
// time they may leave, written to `to`.
struct Lane
{
    QPointer<QTcpSocket> from;
    QPointer<QTcpSocket> to;
    QQueue<QPair<qint64, QByteArray>> queue;
};

QElapsedTimer g_clock;

struct Pipe
{
    QTcpSocket *client = nullptr;
    QTcpSocket *upstream = nullptr;
    Lane up;   // client -> relay
    Lane down; // relay -> client
    QTimer timer;
    bool upstreamConnected = false;
    bool closed = false;

    void pump()
    {
        if (closed || proxy.mode == Mode::Blackhole)
            return;
        qint64 next = -1;
        for (Lane *lane : {&up, &down}) {
            if (lane == &up && !upstreamConnected)
                continue;
            while (!lane->queue.isEmpty() && lane->queue.head().first <= g_clock.elapsed()) {
                lane->to->write(lane->queue.dequeue().second);
            }
            if (!lane->queue.isEmpty())
                next = next < 0 ? lane->queue.head().first : qMin(next, lane->queue.head().first);
        }
        if (next >= 0)
            timer.start(int(qMax<qint64>(0, next - g_clock.elapsed())));
    }

    void take(Lane &lane)
    {
        const qint64 due = g_clock.elapsed() + (proxy.mode == Mode::Delay ? proxy.delayMs : 0);
        lane.queue.enqueue({due, lane.from->readAll()});
        pump();
    }

    void close(bool reset)
    {
        if (closed)
            return;
        closed = true;
        timer.stop();
        for (QTcpSocket *s : {client, upstream}) {
            s->disconnect();
            if (reset && s->socketDescriptor() >= 0) {
                // SO_LINGER 0: close() sends RST instead of FIN.
                const struct linger l = {1, 0};
                ::setsockopt(int(s->socketDescriptor()), SOL_SOCKET, SO_LINGER, &l, sizeof l);
                s->abort();
            } else {
                s->flush();
                s->disconnectFromHost();
            }
            s->deleteLater();
        }
        proxy.pipes.removeOne(this);
        QTimer::singleShot(0, [this] { delete this; });
    }
};

void say(const QString &line)
{
    std::fputs(qPrintable(line), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

void accept(QTcpSocket *client)
{
    ++proxy.accepted;
    if (proxy.refuse) {
        client->abort();
        client->deleteLater();
        return;
    }
    auto *pipe = new Pipe;
    pipe->client = client;
    pipe->upstream = new QTcpSocket;
    pipe->up = {client, pipe->upstream, {}};
    pipe->down = {pipe->upstream, client, {}};
    pipe->timer.setSingleShot(true);
    proxy.pipes.append(pipe);
    QObject::connect(&pipe->timer, &QTimer::timeout, [pipe] { pipe->pump(); });
    QObject::connect(client, &QTcpSocket::readyRead, [pipe] { pipe->take(pipe->up); });
    QObject::connect(pipe->upstream, &QTcpSocket::readyRead, [pipe] { pipe->take(pipe->down); });
    QObject::connect(pipe->upstream, &QTcpSocket::connected, [pipe] {
        pipe->upstreamConnected = true;
        pipe->pump();
    });
    // Either side going away closes the other, after what is queued for it
    // (unless a blackhole holds it: then it is lost, as in a real partition).
    QObject::connect(client, &QTcpSocket::disconnected, [pipe] { pipe->close(false); });
    QObject::connect(pipe->upstream, &QTcpSocket::disconnected, [pipe] { pipe->pump(); pipe->close(false); });
    QObject::connect(pipe->upstream, &QTcpSocket::errorOccurred, [pipe](QAbstractSocket::SocketError) { pipe->close(false); });
    pipe->upstream->connectToHost(QHostAddress::LocalHost, proxy.targetPort);
}

void command(const QStringList &words)
{
    const QString c = words.value(0);
    if (c == QLatin1String("pass")) {
        proxy.mode = Mode::Pass;
        for (Pipe *p : std::as_const(proxy.pipes))
            p->pump();
    } else if (c == QLatin1String("delay") && words.size() == 2) {
        proxy.mode = Mode::Delay;
        proxy.delayMs = words.at(1).toInt();
    } else if (c == QLatin1String("blackhole")) {
        proxy.mode = Mode::Blackhole;
    } else if (c == QLatin1String("drop") || c == QLatin1String("reset")) {
        const auto pipes = proxy.pipes;
        for (Pipe *p : pipes)
            p->close(c == QLatin1String("reset"));
    } else if (c == QLatin1String("refuse") && words.size() == 2) {
        proxy.refuse = words.at(1) == QLatin1String("on");
    } else if (c == QLatin1String("stats")) {
        say(QStringLiteral("stats %1 %2").arg(proxy.accepted).arg(proxy.pipes.size()));
        return;
    } else {
        say(QStringLiteral("error unknown command: %1").arg(words.join(QLatin1Char(' '))));
        return;
    }
    say(QStringLiteral("ok %1").arg(c));
}

} // namespace

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    g_clock.start();
    if (argc != 3) {
        std::fprintf(stderr, "usage: faultproxy LISTEN_PORT TARGET_PORT\n");
        return 2;
    }
    proxy.targetPort = quint16(QByteArray(argv[2]).toUInt());
    QTcpServer server;
    if (!server.listen(QHostAddress::LocalHost, quint16(QByteArray(argv[1]).toUInt()))) {
        std::fprintf(stderr, "faultproxy: cannot listen: %s\n", qPrintable(server.errorString()));
        return 3;
    }
    QObject::connect(&server, &QTcpServer::newConnection, [&server] {
        while (QTcpSocket *s = server.nextPendingConnection())
            accept(s);
    });
    say(QStringLiteral("listening %1").arg(server.serverPort()));

    QSocketNotifier input(STDIN_FILENO, QSocketNotifier::Read);
    QByteArray buffer;
    QObject::connect(&input, &QSocketNotifier::activated, [&buffer] {
        char chunk[1024];
        const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
        if (n <= 0) {
            QCoreApplication::quit();
            return;
        }
        buffer.append(chunk, n);
        int newline;
        while ((newline = buffer.indexOf('\n')) >= 0) {
            command(QString::fromUtf8(buffer.left(newline)).split(QLatin1Char(' '), Qt::SkipEmptyParts));
            buffer.remove(0, newline + 1);
        }
    });
    return app.exec();
}
