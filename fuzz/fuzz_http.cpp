// The relay's HTTP side, driven through a real Relay on 127.0.0.1: each input
// is the first bytes of a fresh TCP connection (the request head, and
// whatever follows). HttpFront::classify() sees them first, directly; then
// they go to the relay over the socket, and Qt's HTTP server or the
// WebSocket handshake parses them. Afterwards the relay must still serve
// GET /distmap.js and must never answer with something that is not HTTP.
#include "fuzzcheck.h"
#include "httpfront.h"
#include "relay.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QTcpSocket>

#include <functional>

namespace {

constexpr int TimeoutMs = 20000; // generous: a shared machine, the fuzzer niced
// How long an input's connection is left open for the relay to answer; an
// incomplete head gets no answer at all, and the relay's own deadline
// (5 s) is too long to wait for on every input.
constexpr int AnswerMs = 30;

Relay *relay = nullptr;

bool waitFor(const std::function<bool()> &condition, int timeoutMs = TimeoutMs)
{
    QElapsedTimer timer;
    timer.start();
    while (!condition()) {
        if (timer.elapsed() > timeoutMs)
            return false;
        QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 5);
        QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete); // no exec() here
    }
    return true;
}

QByteArray converse(const QByteArray &bytes, int answerMs)
{
    QTcpSocket socket;
    socket.connectToHost(QHostAddress::LocalHost, relay->port());
    FUZZ_CHECK(waitFor([&] { return socket.state() == QAbstractSocket::ConnectedState; }));
    socket.write(bytes);
    QByteArray answer;
    QElapsedTimer timer;
    timer.start();
    waitFor([&] {
        answer += socket.readAll();
        return socket.state() == QAbstractSocket::UnconnectedState || timer.elapsed() > answerMs;
    });
    answer += socket.readAll();
    socket.abort();
    return answer;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!relay) {
        static int argc = 1;
        static char name[] = "fuzz_http";
        static char *argv[] = {name, nullptr};
        new QCoreApplication(argc, argv);
        relay = new Relay;
        FUZZ_CHECK(relay->listen(QHostAddress::LocalHost, 0));
    }
    const QByteArray input(reinterpret_cast<const char *>(data), qsizetype(size));
    const HttpFront::Verdict verdict = HttpFront::classify(input.left(HttpFront::MaxHeadBytes + 4), true);
    FUZZ_CHECK(verdict != HttpFront::Verdict::TooLarge || input.size() > HttpFront::MaxHeadBytes);

    const QByteArray answer = converse(input, AnswerMs);
    FUZZ_CHECK(answer.isEmpty() || answer.startsWith("HTTP/1.1 "));
    // Whatever came before, the next client is served.
    const QByteArray probe = converse("GET /distmap.js HTTP/1.1\r\nHost: fuzz\r\n\r\n", TimeoutMs);
    FUZZ_CHECK(probe.startsWith("HTTP/1.1 200 "));
    return 0;
}
