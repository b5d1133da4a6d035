#pragma once

#include <QByteArray>
#include <QList>
#include <QPair>

// Writes the Prometheus text exposition format (version 0.0.4), the
// format every scraper reads: per family a HELP and a TYPE line, then its
// samples. Plain: the relay and the keeper fill one from their counters,
// and tests parse what it writes.
//
// Names are the caller's: counters end in _total and carry their unit
// (bytes, seconds) in the name, as Prometheus' naming rules ask. Label
// values are escaped here; label names and metric names are trusted.
class MetricsWriter
{
public:
    using Labels = QList<QPair<QByteArray, QByteArray>>;
    static constexpr const char *ContentType = "text/plain; version=0.0.4; charset=utf-8";

    void counter(const char *name, const char *help, double value) { family(name, "counter", help).sample(name, {}, value); }
    void gauge(const char *name, const char *help, double value) { family(name, "gauge", help).sample(name, {}, value); }

    // A family with labelled samples: family(...).sample(name, labels, v)...
    MetricsWriter &family(const char *name, const char *type, const char *help);
    MetricsWriter &sample(const char *name, const Labels &labels, double value);

    const QByteArray &text() const { return m_text; }

    // Resident memory of this process, from /proc (Linux); 0 elsewhere.
    static double residentBytes();

    static QByteArray escapeLabelValue(const QByteArray &value);
    static QByteArray formatValue(double value);

private:
    QByteArray m_text;
};
