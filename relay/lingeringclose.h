#pragma once

#include <QString>
#include <QWebSocketProtocol>

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

} // namespace LingeringClose
