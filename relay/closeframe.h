#pragma once

#include <QByteArray>
#include <QString>

// A WebSocket close frame (RFC 6455, 5.5.1), for the relay's lingering
// close, which writes it to the TCP socket itself (see LingeringClose).
namespace CloseFrame {

// text cut to 120 characters, as UTF-8.
QByteArray reason(const QString &text);

// The unmasked frame a server sends: FIN + opcode 8, length, code
// (big-endian), reason as above.
QByteArray encode(quint16 code, const QString &reason);

} // namespace CloseFrame
