#include "metricswriter.h"

#include <QFile>
#include <QLocale>

#include <cmath>

#include <unistd.h>

MetricsWriter &MetricsWriter::family(const char *name, const char *type, const char *help)
{
    // HELP text escapes only backslash and newline (label values also ").
    QByteArray escaped(help);
    escaped.replace('\\', "\\\\").replace('\n', "\\n");
    m_text += QByteArray("# HELP ") + name + ' ' + escaped + "\n# TYPE " + name + ' ' + type + '\n';
    return *this;
}

MetricsWriter &MetricsWriter::sample(const char *name, const Labels &labels, double value)
{
    m_text += name;
    if (!labels.isEmpty()) {
        m_text += '{';
        for (qsizetype i = 0; i < labels.size(); ++i) {
            if (i > 0)
                m_text += ',';
            m_text += labels[i].first + "=\"" + escapeLabelValue(labels[i].second) + '"';
        }
        m_text += '}';
    }
    m_text += ' ' + formatValue(value) + '\n';
    return *this;
}

QByteArray MetricsWriter::escapeLabelValue(const QByteArray &value)
{
    QByteArray out;
    out.reserve(value.size());
    for (const char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

QByteArray MetricsWriter::formatValue(double value)
{
    if (std::isnan(value))
        return "NaN";
    if (std::isinf(value))
        return value > 0 ? "+Inf" : "-Inf";
    // Counters are integers far below 2^53: print them without an exponent.
    if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0)
        return QByteArray::number(qint64(value));
    return QByteArray::number(value, 'g', QLocale::FloatingPointShortest);
}

double MetricsWriter::residentBytes()
{
    QFile statm(QStringLiteral("/proc/self/statm"));
    if (!statm.open(QIODevice::ReadOnly))
        return 0;
    const QList<QByteArray> fields = statm.readAll().split(' ');
    return fields.size() > 1 ? fields[1].toDouble() * double(sysconf(_SC_PAGESIZE)) : 0;
}
