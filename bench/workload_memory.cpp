// Memory: relay RSS per idle connection, and peer heap per key.

#include "bench.h"

#include "benchutil.h"
#include "control.h"

#include <QJsonValue>
#include <QLatin1Char>
#include <QWebSocket>

#include <malloc.h>

bool Bench::idleConnections(int count)
{
    const double before = m_relay.rssMb();
    std::vector<std::unique_ptr<QWebSocket>> sockets;
    int welcomed = 0;
    for (int i = 0; i < count; ++i) {
        auto s = std::make_unique<QWebSocket>();
        QWebSocket *raw = s.get();
        QObject::connect(raw, &QWebSocket::connected, raw, [raw] {
            raw->sendTextMessage(QString::fromUtf8(Control::encodeHello(Control::Hello())));
        });
        QObject::connect(raw, &QWebSocket::textMessageReceived, raw, [&welcomed](const QString &text) {
            Control::Message message;
            if (Control::decodeMessage(text.toUtf8(), &message) == Control::DecodeError::NoError
                && message.type == Control::Type::Welcome)
                ++welcomed;
        });
        raw->open(m_relay.url);
        sockets.push_back(std::move(s));
        if (i % 200 == 199)
            BenchUtil::waitUntil([&] { return welcomed > i - 400; }, 30000);
    }
    if (!BenchUtil::waitUntil([&] { return welcomed == count; }, 120000)) {
        say(QStringLiteral("only %1 of %2 idle connections were welcomed").arg(welcomed).arg(count));
        return false;
    }
    BenchUtil::spin(500);
    const double after = m_relay.rssMb();
    rows.append({QStringLiteral("idle-connections"), {{QStringLiteral("connections"), count}},
                 {{QStringLiteral("relayRssIdleMB"), before},
                  {QStringLiteral("relayRssMB"), after},
                  {QStringLiteral("kbPerConnection"), (after - before) * 1024.0 / count}}});
    for (auto &s : sockets)
        s->abort();
    sockets.clear();
    BenchUtil::spin(500);
    return true;
}

bool Bench::peerMemory(int keys)
{
    // Heap bytes in use, not RSS: freed memory from earlier workloads
    // stays in the process and would hide the map's growth.
    const double before = double(mallinfo2().uordblks);
    qint64 payload = 0;
    {
        Connection connection(m_relay.url); // never opened: memory of the map alone
        DistributedMap map(&connection, QStringLiteral("/bench-memory"));
        const QJsonValue value(QStringLiteral("0123456789abcdef0123456789abcdef"));
        for (int i = 0; i < keys; ++i) {
            const QString key = QStringLiteral("key-%1").arg(i, 7, 10, QLatin1Char('0'));
            map.set(key, value);
            payload += key.toUtf8().size() + 34; // the key and the value's JSON text
        }
        const double after = double(mallinfo2().uordblks);
        const double perKey = (after - before) / keys;
        rows.append({QStringLiteral("peer-memory"), {{QStringLiteral("keys"), keys}},
                     {{QStringLiteral("bytesPerKey"), perKey},
                      {QStringLiteral("payloadBytesPerKey"), double(payload) / keys},
                      {QStringLiteral("overheadBytesPerKey"), perKey - double(payload) / keys}}});
    }
    return true;
}
