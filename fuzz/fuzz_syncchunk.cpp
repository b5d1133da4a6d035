// SyncData chunks (docs/PROTOCOL.md 5.6): a fixed head, an optional digest
// and a run of entries. A chunk that decodes encodes back to the same bytes.
#include "fuzzcheck.h"
#include "mapstate.h"
#include "wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *bytes = reinterpret_cast<const char *>(data);
    Wire::SyncChunk chunk;
    chunk.syncId = 0xdeadbeef;
    if (Wire::decodeSyncChunk(bytes, qsizetype(size), &chunk) != Wire::DecodeError::NoError) {
        FUZZ_CHECK(chunk.syncId == 0xdeadbeef && chunk.entries.isEmpty() && chunk.digest.isEmpty());
        return 0;
    }
    FUZZ_CHECK(chunk.digest.isEmpty() || MapState::isValidBucketCount(int(chunk.digest.size())));
    QByteArray encoded;
    Wire::appendSyncChunkHead(encoded, chunk.syncId, chunk.seq, chunk.final, chunk.digest);
    for (const Wire::DecodedEntry &d : std::as_const(chunk.entries))
        Wire::appendEntry(encoded, d.key, d.entry);
    FUZZ_CHECK(encoded == QByteArray::fromRawData(bytes, qsizetype(size)));
    return 0;
}
