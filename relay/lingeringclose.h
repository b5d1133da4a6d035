#pragma once

#include <QString>
#include <QWebSocketProtocol>

class QObject;
class QTcpSocket;
class QWebSocket;

// Closing a connection for cause so that the peer reads why.
namespace LingeringClose {

// Sends a close frame with code and reason (cut as CloseFrame::reason()
// says) after whatever the socket has queued, and aborts the socket if the
// closing handshake has not ended after graceMs: a peer that stopped
// reading never answers it. tcp is the socket under the WebSocket (null if
// unknown). May emit socket's disconnected() before it returns.
void start(QWebSocket *socket, QTcpSocket *tcp, QWebSocketProtocol::CloseCode code, const QString &reason, int graceMs);

// For a close Qt makes by itself (a frame over the size limit: 1009; a
// protocol error): Qt has written its close frame and is about to close
// the descriptor, which with the peer's bytes still arriving resets the
// connection and loses that frame. Call from QWebSocket::aboutToClose:
// the connection is kept (on a duplicate of the descriptor, owned by
// context) until Qt's close frame is out, then half-closed and drained
// like start() does, for at most graceMs.
void outlive(QTcpSocket *tcp, int graceMs, QObject *context);

} // namespace LingeringClose
