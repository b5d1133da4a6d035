// The two acks: SyncAck payloads (docs/PROTOCOL.md 5.7), exactly 8 bytes,
// and WriteAck payloads (5.8); both round trip.
#include "fuzzcheck.h"
#include "wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *bytes = reinterpret_cast<const char *>(data);
    Wire::SyncAck ack{1, 2};
    const Wire::DecodeError error = Wire::decodeSyncAck(bytes, qsizetype(size), &ack);
    if (size < 8) {
        FUZZ_CHECK(error == Wire::DecodeError::Truncated);
    } else if (size > 8) {
        FUZZ_CHECK(error == Wire::DecodeError::TrailingBytes);
    } else {
        FUZZ_CHECK(error == Wire::DecodeError::NoError);
        FUZZ_CHECK(Wire::encodeSyncAck(ack) == QByteArray::fromRawData(bytes, 8));
    }
    if (error != Wire::DecodeError::NoError)
        FUZZ_CHECK(ack.syncId == 1 && ack.seq == 2);

    Wire::WriteAck writeAck;
    writeAck.hlcs = {7};
    if (Wire::decodeWriteAck(bytes, qsizetype(size), &writeAck) == Wire::DecodeError::NoError) {
        FUZZ_CHECK(qsizetype(size) == 5 + 8 * writeAck.hlcs.size());
        FUZZ_CHECK(Wire::encodeWriteAck(writeAck) == QByteArray::fromRawData(bytes, qsizetype(size)));
    } else {
        FUZZ_CHECK(!writeAck.durable && writeAck.hlcs == QVector<quint64>{7});
    }
    return 0;
}
