// Heartbeats: what many relays on one bus cost one relay. The bench plays
// `others` relays (one heartbeat each every 2 s on dm:relays, as RedisBus
// sends them) for a while and reads the relay's CPU time over it.

#include "bench.h"

#include "benchutil.h"
#include "busmessage.h"
#include "redisconnection.h"

bool Bench::heartbeats(int others, int seconds)
{
    if (!m_redisPort)
        return false;
    RedisConnection redis;
    RedisConnection::Address address;
    address.host = QStringLiteral("127.0.0.1");
    address.port = m_redisPort;
    redis.open(address);
    if (!BenchUtil::waitUntil([&] { return redis.isOpen(); }, 10000))
        return false;
    const double cpu0 = relaysCpuSeconds() / double(1 + m_more.size());
    const double redisCpu0 = RelayProcess::cpuSecondsOf(m_redisPid);
    const qint64 t0 = nowNs();
    quint64 seq = 1;
    for (int round = 0; round < seconds / 2; ++round) {
        for (int r = 0; r < others; ++r) {
            BusMessage beat;
            beat.kind = BusMessage::Kind::Heartbeat;
            beat.relay = 0x7000000000000000ULL + quint64(r);
            beat.incarnation = 1;
            beat.seq = seq;
            redis.send({"PUBLISH", BusMessage::relaysChannel(), beat.encode()});
        }
        ++seq;
        BenchUtil::spin(2000);
    }
    const double elapsed = double(nowNs() - t0) / 1e9;
    // Per relay: the relays share the load alike (each hears every beat).
    const double cpu = relaysCpuSeconds() / double(1 + m_more.size()) - cpu0;
    QJsonObject f{{QStringLiteral("relayCpuPercent"), 100.0 * cpu / elapsed},
                  {QStringLiteral("redisCpuPercent"), 100.0 * (RelayProcess::cpuSecondsOf(m_redisPid) - redisCpu0) / elapsed},
                  {QStringLiteral("seconds"), elapsed}};
    rows.append({QStringLiteral("heartbeats"), {{QStringLiteral("relays"), others}}, f});
    say(QStringLiteral("heartbeats of %1 relays: %2 % of a core per relay")
            .arg(others).arg(f.value(QStringLiteral("relayCpuPercent")).toDouble(), 0, 'f', 3));
    return true;
}
