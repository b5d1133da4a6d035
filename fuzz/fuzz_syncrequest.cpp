// SyncRequest payloads (docs/PROTOCOL.md 5.5): decode, encode, compare.
#include "fuzzcheck.h"
#include "mapstate.h"
#include "wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *bytes = reinterpret_cast<const char *>(data);
    Wire::SyncRequest request;
    request.syncId = 0xdeadbeef;
    if (Wire::decodeSyncRequest(bytes, qsizetype(size), &request) != Wire::DecodeError::NoError) {
        FUZZ_CHECK(request.syncId == 0xdeadbeef && request.digest.isEmpty());
        return 0;
    }
    FUZZ_CHECK(request.digest.isEmpty() || MapState::isValidBucketCount(int(request.digest.size())));
    FUZZ_CHECK(Wire::encodeSyncRequest(request) == QByteArray::fromRawData(bytes, qsizetype(size)));
    return 0;
}
