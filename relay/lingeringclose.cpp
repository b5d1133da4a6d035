#include "lingeringclose.h"

#include "closeframe.h"

#include <QTcpSocket>
#include <QTimer>
#include <QWebSocket>

#include <QSocketNotifier>

#include <cerrno>
#include <sys/socket.h>
#include <unistd.h>

namespace {

// Owns a duplicate of a socket's descriptor after Qt has let go of it.
class Orphan : public QObject
{
public:
    Orphan(int fd, int graceMs, QObject *parent)
        : QObject(parent)
        , m_fd(fd)
        , m_notifier(fd, QSocketNotifier::Read, this)
    {
        m_notifier.setEnabled(false);
        connect(&m_notifier, &QSocketNotifier::activated, this, &Orphan::drain);
        QTimer::singleShot(graceMs, this, &QObject::deleteLater);
    }
    ~Orphan() override
    {
        m_notifier.setEnabled(false);
        ::close(m_fd);
    }
    // Qt closed its descriptor: whatever it wrote is in the kernel, ahead
    // of our FIN.
    void halfClose()
    {
        ::shutdown(m_fd, SHUT_WR);
        m_notifier.setEnabled(true);
        drain();
    }

private:
    void drain()
    {
        char scratch[16384];
        // Bounded per wake-up: a flooder must not hold the event loop.
        for (int i = 0; i < 64; ++i) {
            const ssize_t n = ::read(m_fd, scratch, sizeof scratch);
            if (n > 0)
                continue;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            deleteLater(); // the peer closed (0) or the link failed
            m_notifier.setEnabled(false);
            return;
        }
    }

    int m_fd;
    QSocketNotifier m_notifier;
};

} // namespace

namespace LingeringClose {

void outlive(QTcpSocket *tcp, int graceMs, QObject *context)
{
    const qintptr fd = tcp ? tcp->socketDescriptor() : -1;
    if (fd < 0)
        return;
    const int own = ::dup(int(fd));
    if (own < 0)
        return;
    // The descriptor is non-blocking already: dup shares that flag.
    auto *orphan = new Orphan(own, graceMs, context);
    QObject::connect(tcp, &QAbstractSocket::disconnected, orphan, &Orphan::halfClose);
    if (tcp->state() == QAbstractSocket::UnconnectedState)
        orphan->halfClose();
}

void start(QWebSocket *socket, QTcpSocket *tcp, QWebSocketProtocol::CloseCode code, const QString &reason, int graceMs)
{
    QTimer::singleShot(graceMs, socket, [socket] { socket->abort(); });
    if (!tcp || tcp->state() != QAbstractSocket::ConnectedState) {
        socket->close(code, QString::fromUtf8(CloseFrame::reason(reason)));
        return;
    }
    // QWebSocket::close() closes the TCP socket at once. With unread bytes
    // from the peer still in the kernel (a flooder always has some), that
    // sends a reset, and the reset makes the peer's kernel discard the
    // error and close frame before the peer reads them. So: write the close
    // frame ourselves, half-close once it is out, and keep reading (and
    // ignoring) until the peer closes or the grace period ends.
    tcp->write(CloseFrame::encode(quint16(code), reason));
    // From here on, what the peer still sends (a flooder sends without end)
    // is read and dropped without being parsed into messages: parsing it
    // cost the relay its time and starved the other peers.
    QObject::disconnect(tcp, &QIODevice::readyRead, nullptr, nullptr);
    QObject::connect(tcp, &QIODevice::readyRead, socket, [tcp] { tcp->skip(tcp->bytesAvailable()); });
    tcp->skip(tcp->bytesAvailable());
    auto halfClose = [tcp] {
        if (tcp->bytesToWrite() == 0 && tcp->socketDescriptor() >= 0)
            ::shutdown(int(tcp->socketDescriptor()), SHUT_WR);
    };
    QObject::connect(tcp, &QTcpSocket::bytesWritten, socket, halfClose);
    halfClose();
}

} // namespace LingeringClose
