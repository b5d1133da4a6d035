#include "binaryframe.h"

namespace BinaryFrame {

int headerSize(qint64 size)
{
    return size < 126 ? 2 : size <= 0xffff ? 4 : 10;
}

QByteArray encode(const QByteArray &payload)
{
    const qint64 size = payload.size();
    const int header = headerSize(size);
    QByteArray frame(header + payload.size(), Qt::Uninitialized);
    char *p = frame.data();
    p[0] = char(0x82);
    if (header == 2) {
        p[1] = char(size);
    } else if (header == 4) {
        p[1] = char(126);
        p[2] = char(size >> 8);
        p[3] = char(size & 0xff);
    } else {
        p[1] = char(127);
        for (int i = 0; i < 8; ++i)
            p[2 + i] = char((quint64(size) >> (56 - 8 * i)) & 0xff);
    }
    memcpy(p + header, payload.constData(), size_t(size));
    return frame;
}

} // namespace BinaryFrame
