#pragma once

#include <QByteArray>
#include <QByteArrayView>
#include <QTypeInfo>

// Where a key's row goes when a table of keys is sorted by its value, its
// writer's name or its write's clock. Plain data, one comparison for every
// column (rank, then number, then text), so a model fetches each row's
// SortKey once and sorts those: a comparator that looked entries up would
// read a million scattered records twenty times each. Ties are the
// caller's to break, by key, so that the order is total.
class SortKey
{
public:
    // Strings, arrays and objects compare on this many bytes at most: a
    // sorted table holds a SortKey per row, and a 1 MiB value must not be
    // copied to place it.
    static constexpr qsizetype TextBytes = 64;

    SortKey() = default; // the place of nothing: before every value

    // A JSON value's place: null, false, true, then numbers by value, then
    // strings by code point, then arrays, then objects by their compact JSON
    // text. Text that is not JSON sorts as a string of its bytes.
    static SortKey ofValue(QByteArrayView json);
    // A write's place by its hybrid logical clock.
    static SortKey ofClock(quint64 hlc);
    // A name's place by code point (utf8 is shared, not copied).
    static SortKey ofName(const QByteArray &utf8);

    // <0, 0 or >0 as a sorts before, with or after b. Inline: a sort of a
    // million rows calls it twenty million times, and the text's first
    // bytes, kept beside the number, settle most calls without reading it.
    static int compare(const SortKey &a, const SortKey &b)
    {
        if (&a == &b)
            return 0;
        if (a.m_rank != b.m_rank)
            return a.m_rank < b.m_rank ? -1 : 1;
        if (a.m_number != b.m_number)
            return a.m_number < b.m_number ? -1 : 1;
        if (a.m_head != b.m_head)
            return a.m_head < b.m_head ? -1 : 1;
        return compareText(a, b);
    }
    friend bool operator==(const SortKey &a, const SortKey &b) { return compare(a, b) == 0; }
    friend bool operator!=(const SortKey &a, const SortKey &b) { return compare(a, b) != 0; }
    friend bool operator<(const SortKey &a, const SortKey &b) { return compare(a, b) < 0; }

private:
    static int compareText(const SortKey &a, const SortKey &b);
    void setText(QByteArray text);

    quint64 m_number = 0; // a clock, or a number's bits in an order-keeping form
    quint64 m_head = 0;   // m_text's first 8 bytes, big-endian, zero-padded
    QByteArray m_text;    // a name, or the head of a string's or JSON text's bytes
    quint8 m_rank = 0;    // the JSON type's place (0 for names and clocks)
};
// Plain members: a QVector of them moves rows with memmove, not one by one.
Q_DECLARE_TYPEINFO(SortKey, Q_RELOCATABLE_TYPE);
