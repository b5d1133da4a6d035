// SyncAck payloads (docs/PROTOCOL.md 5.7): exactly 8 bytes, round trip.
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
    return 0;
}
