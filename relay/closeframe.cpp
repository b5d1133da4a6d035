#include "closeframe.h"

namespace CloseFrame {

QByteArray reason(const QString &text)
{
    QByteArray bytes = text.toUtf8();
    if (bytes.size() <= MaxReasonBytes)
        return bytes;
    int end = MaxReasonBytes;
    // Back off continuation bytes (10xxxxxx) to the start of the character
    // that does not fit, and cut before it.
    while (end > 0 && (quint8(bytes[end]) & 0xc0) == 0x80)
        --end;
    bytes.truncate(end);
    return bytes;
}

QByteArray encode(quint16 code, const QString &text)
{
    const QByteArray why = reason(text);
    QByteArray frame;
    frame.reserve(4 + why.size());
    frame.append(char(0x88));
    frame.append(char(2 + why.size()));
    frame.append(char(code >> 8));
    frame.append(char(code & 0xff));
    frame.append(why);
    return frame;
}

} // namespace CloseFrame
