#include "closeframe.h"

namespace CloseFrame {

QByteArray reason(const QString &text)
{
    return text.left(120).toUtf8();
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
