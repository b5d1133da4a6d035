#include "jsontext.h"

#include <QJsonArray>
#include <QJsonObject>
#include <QJsonDocument>
#include <QJsonParseError>

#include <cctype>
#include <cmath>
#include <cstring>

namespace JsonText {

QByteArray encode(const QJsonValue &value)
{
    if (value.isUndefined())
        return {};
    if (value.isObject())
        return QJsonDocument(value.toObject()).toJson(QJsonDocument::Compact);
    if (value.isArray())
        return QJsonDocument(value.toArray()).toJson(QJsonDocument::Compact);
    // QJsonDocument only holds containers: wrap the scalar, then unwrap.
    QByteArray wrapped = QJsonDocument(QJsonArray{value}).toJson(QJsonDocument::Compact);
    return wrapped.mid(1, wrapped.size() - 2);
}

QJsonValue decode(const QByteArray &text, QString *error)
{
    const QByteArray trimmed = text.trimmed();
    if (trimmed.isEmpty()) {
        if (error)
            *error = QStringLiteral("empty input is not a JSON value");
        return QJsonValue(QJsonValue::Undefined);
    }
    const char first = trimmed.front();
    if (first == '{' || first == '[') {
        QJsonParseError parseError;
        const QJsonDocument doc = QJsonDocument::fromJson(trimmed, &parseError);
        if (parseError.error != QJsonParseError::NoError) {
            if (error)
                *error = QStringLiteral("%1 at offset %2").arg(parseError.errorString()).arg(parseError.offset);
            return QJsonValue(QJsonValue::Undefined);
        }
        return doc.isObject() ? QJsonValue(doc.object()) : QJsonValue(doc.array());
    }
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson('[' + trimmed + ']', &parseError);
    if (parseError.error != QJsonParseError::NoError || doc.array().size() != 1) {
        if (error) {
            *error = parseError.error != QJsonParseError::NoError
                ? QStringLiteral("%1 at offset %2").arg(parseError.errorString()).arg(qMax(0, parseError.offset - 1))
                : QStringLiteral("more than one JSON value");
        }
        return QJsonValue(QJsonValue::Undefined);
    }
    return doc.array().first();
}

namespace {

// A recursive-descent check of RFC 8259's grammar; builds nothing.
class Validator
{
public:
    Validator(const char *begin, const char *end) : m_p(begin), m_end(end) {}
    bool document()
    {
        space();
        if (!value())
            return false;
        space();
        return m_p == m_end;
    }

private:
    static constexpr int MaxDepth = 1024;

    bool at(char c) const { return m_p < m_end && *m_p == c; }
    void space()
    {
        while (m_p < m_end && (*m_p == ' ' || *m_p == '\t' || *m_p == '\n' || *m_p == '\r'))
            ++m_p;
    }
    bool value()
    {
        if (m_p >= m_end)
            return false;
        switch (*m_p) {
        case '{':
            return container('}', true);
        case '[':
            return container(']', false);
        case '"':
            return string();
        case 't':
            return literal("true", 4);
        case 'f':
            return literal("false", 5);
        case 'n':
            return literal("null", 4);
        default:
            return number();
        }
    }
    bool literal(const char *word, qsizetype n)
    {
        if (m_end - m_p < n || std::memcmp(m_p, word, size_t(n)) != 0)
            return false;
        m_p += n;
        return true;
    }
    bool container(char close, bool object)
    {
        if (++m_depth > MaxDepth)
            return false;
        ++m_p;
        space();
        if (at(close)) {
            ++m_p;
            --m_depth;
            return true;
        }
        for (;;) {
            space();
            if (object) {
                if (!string())
                    return false;
                space();
                if (!at(':'))
                    return false;
                ++m_p;
                space();
            }
            if (!value())
                return false;
            space();
            if (at(',')) {
                ++m_p;
                continue;
            }
            if (!at(close))
                return false;
            ++m_p;
            --m_depth;
            return true;
        }
    }
    bool string()
    {
        if (!at('"'))
            return false;
        ++m_p;
        while (m_p < m_end) {
            const auto c = static_cast<unsigned char>(*m_p);
            if (c == '"') {
                ++m_p;
                return true;
            }
            if (c < 0x20)
                return false;
            if (c != '\\') {
                ++m_p;
                continue;
            }
            if (++m_p >= m_end)
                return false;
            const char escaped = *m_p++;
            if (escaped == 'u') {
                if (m_end - m_p < 4)
                    return false;
                for (int i = 0; i < 4; ++i) {
                    if (!std::isxdigit(static_cast<unsigned char>(*m_p++)))
                        return false;
                }
            } else if (std::strchr("\"\\/bfnrt", escaped) == nullptr || escaped == 0) {
                return false;
            }
        }
        return false;
    }
    bool digits()
    {
        const char *start = m_p;
        while (m_p < m_end && *m_p >= '0' && *m_p <= '9')
            ++m_p;
        return m_p > start;
    }
    bool number()
    {
        const char *start = m_p;
        if (at('-'))
            ++m_p;
        if (at('0'))
            ++m_p;
        else if (!(m_p < m_end && *m_p >= '1' && *m_p <= '9') || !digits())
            return false;
        if (at('.')) {
            ++m_p;
            if (!digits())
                return false;
        }
        bool exponent = false;
        if (at('e') || at('E')) {
            exponent = true;
            ++m_p;
            if (at('+') || at('-'))
                ++m_p;
            if (!digits())
                return false;
        }
        if (!exponent && m_p - start < 300)
            return true;
        // Past a double's range Qt's parser refuses it, and so do we.
        bool ok = false;
        const double d = QByteArray::fromRawData(start, m_p - start).toDouble(&ok);
        return ok && std::isfinite(d);
    }

    const char *m_p;
    const char *const m_end;
    int m_depth = 0;
};

} // namespace

bool isValid(QByteArrayView text)
{
    return Validator(text.data(), text.data() + text.size()).document();
}

void appendString(QByteArray &out, QByteArrayView utf8)
{
    static const char hex[] = "0123456789abcdef";
    out.append('"');
    for (const char ch : utf8) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"':
            out.append("\\\"", 2);
            break;
        case '\\':
            out.append("\\\\", 2);
            break;
        case '\b':
            out.append("\\b", 2);
            break;
        case '\f':
            out.append("\\f", 2);
            break;
        case '\n':
            out.append("\\n", 2);
            break;
        case '\r':
            out.append("\\r", 2);
            break;
        case '\t':
            out.append("\\t", 2);
            break;
        default:
            if (c < 0x20) {
                const char escaped[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                out.append(escaped, 6);
            } else {
                out.append(ch); // UTF-8 passes as is, as Qt writes it
            }
        }
    }
    out.append('"');
}

} // namespace JsonText
