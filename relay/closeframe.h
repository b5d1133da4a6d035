#pragma once

#include <QByteArray>
#include <QString>

// A WebSocket close frame (RFC 6455, 5.5.1), for the relay's lingering
// close, which writes it to the TCP socket itself (see LingeringClose).
namespace CloseFrame {

// A control frame holds at most 125 payload bytes, 2 of them the code.
constexpr int MaxReasonBytes = 123;

// text as UTF-8, at most MaxReasonBytes: counted in bytes because the
// frame's length is one byte, and cut at a character boundary because the
// reason must be valid UTF-8 (a peer's WebSocket stack fails the
// connection on either fault).
QByteArray reason(const QString &text);

// The unmasked frame a server sends: FIN + opcode 8, length, code
// (big-endian), reason as above.
QByteArray encode(quint16 code, const QString &reason);

} // namespace CloseFrame
