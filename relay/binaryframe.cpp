#include "binaryframe.h"

namespace BinaryFrame {

int headerSize(qint64 size)
{
    return size < 126 ? 2 : size <= 0xffff ? 4 : 10;
}

QByteArray header(qint64 size)
{
    QByteArray h(headerSize(size), Qt::Uninitialized);
    char *p = h.data();
    p[0] = char(0x82);
    if (h.size() == 2) {
        p[1] = char(size);
    } else if (h.size() == 4) {
        p[1] = char(126);
        p[2] = char(size >> 8);
        p[3] = char(size & 0xff);
    } else {
        p[1] = char(127);
        for (int i = 0; i < 8; ++i)
            p[2 + i] = char((quint64(size) >> (56 - 8 * i)) & 0xff);
    }
    return h;
}

QByteArray encode(const QByteArray &payload)
{
    QByteArray frame = header(payload.size());
    frame.append(payload);
    return frame;
}

} // namespace BinaryFrame
