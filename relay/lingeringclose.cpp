#include "lingeringclose.h"

#include "closeframe.h"

#include <QTcpSocket>
#include <QTimer>
#include <QWebSocket>

#include <sys/socket.h>

namespace LingeringClose {

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
