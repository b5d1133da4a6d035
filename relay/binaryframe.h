#pragma once

#include <QByteArray>

// A WebSocket binary message as one unmasked frame (RFC 6455, 5.2), the
// way a server sends it. The relay writes forwarded frames to the TCP
// socket itself: one encoding for every reader of a delta instead of one
// QWebSocket::sendBinaryMessage per reader (docs/BENCHMARKS.md).
namespace BinaryFrame {

// The header's size for a payload of `size` bytes: 2, 4 or 10.
int headerSize(qint64 size);

// FIN + opcode 2 and the length in the shortest form: what goes before a
// payload of `size` bytes.
QByteArray header(qint64 size);

// The header and the payload, as one array.
QByteArray encode(const QByteArray &payload);

} // namespace BinaryFrame
