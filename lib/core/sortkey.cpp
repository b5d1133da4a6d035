#include "sortkey.h"

#include "jsontext.h"

#include <cstring>
#include <limits>

namespace {

// The JSON types in their sort order; 0 is left to names, clocks and nothing.
enum Rank : quint8 { NullRank = 1, FalseRank, TrueRank, NumberRank, StringRank, ArrayRank, ObjectRank };

bool isSpace(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

QByteArrayView trimmed(QByteArrayView text)
{
    while (!text.isEmpty() && isSpace(text.front()))
        text = text.sliced(1);
    while (!text.isEmpty() && isSpace(text.back()))
        text.chop(1);
    return text;
}

// A double's bits, rearranged so that unsigned order is numeric order:
// negative numbers have every bit flipped, the others the sign bit set.
quint64 orderedBits(double d)
{
    if (d == 0)
        d = 0; // -0 and 0 are one number
    quint64 bits;
    std::memcpy(&bits, &d, sizeof bits);
    constexpr quint64 Sign = quint64(1) << 63;
    return (bits & Sign) ? ~bits : bits | Sign;
}

// A JSON number's value. Out of a double's range, the infinity or zero it
// heads for: an exponent that is not negative (or none, so a long integer
// part) means too big, anything else too small.
double numberOf(QByteArrayView json)
{
    bool ok = false;
    const double d = json.toDouble(&ok);
    if (ok)
        return d;
    const qsizetype e = qMax(json.indexOf('e'), json.indexOf('E'));
    const bool tiny = e >= 0 ? json.sliced(e + 1).startsWith('-') : (json.startsWith("0.") || json.startsWith("-0."));
    if (tiny)
        return 0;
    const double infinity = std::numeric_limits<double>::infinity();
    return json.startsWith('-') ? -infinity : infinity;
}

QByteArray head(QByteArrayView bytes)
{
    return bytes.first(qMin(bytes.size(), SortKey::TextBytes)).toByteArray();
}

// A JSON string's characters as UTF-8 (whose byte order is code point order).
QByteArray stringText(QByteArrayView json)
{
    const QByteArrayView inside = json.size() >= 2 && json.back() == '"' ? json.sliced(1, json.size() - 2) : json.sliced(1);
    if (!inside.contains('\\'))
        return head(inside);
    // Escapes are rare in stored values: decoding them whole is fine.
    return head(JsonText::decode(json.toByteArray()).toString().toUtf8());
}

} // namespace

SortKey SortKey::ofValue(QByteArrayView json)
{
    json = trimmed(json);
    SortKey k;
    if (json.isEmpty())
        return k;
    switch (json.front()) {
    case 'n':
        k.m_rank = NullRank;
        break;
    case 'f':
        k.m_rank = FalseRank;
        break;
    case 't':
        k.m_rank = TrueRank;
        break;
    case '"':
        k.m_rank = StringRank;
        k.setText(stringText(json));
        break;
    case '[':
        k.m_rank = ArrayRank;
        k.setText(head(json));
        break;
    case '{':
        k.m_rank = ObjectRank;
        k.setText(head(json));
        break;
    default:
        if (json.front() == '-' || (json.front() >= '0' && json.front() <= '9')) {
            k.m_rank = NumberRank;
            k.m_number = orderedBits(numberOf(json));
        } else {
            k.m_rank = StringRank;
            k.setText(head(json));
        }
        break;
    }
    return k;
}

SortKey SortKey::ofClock(quint64 hlc)
{
    SortKey k;
    k.m_number = hlc;
    return k;
}

SortKey SortKey::ofName(const QByteArray &utf8)
{
    SortKey k;
    k.setText(utf8);
    return k;
}

void SortKey::setText(QByteArray text)
{
    m_head = 0;
    for (qsizetype i = 0; i < 8; ++i)
        m_head = (m_head << 8) | (i < text.size() ? quint8(text.at(i)) : 0);
    m_text = std::move(text);
}

int SortKey::compareText(const SortKey &a, const SortKey &b)
{
    // One writer's rows share one name: no need to read it.
    if (a.m_text.constData() == b.m_text.constData() && a.m_text.size() == b.m_text.size())
        return 0;
    return a.m_text.compare(b.m_text);
}
