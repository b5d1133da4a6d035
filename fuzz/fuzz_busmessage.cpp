// The relays' bus messages: whatever arrives from Redis decodes to a message
// that encodes back to the same bytes, or is refused with a reason.
#include "busmessage.h"
#include "fuzzcheck.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const QByteArray bytes(reinterpret_cast<const char *>(data), qsizetype(size));
    BusMessage m;
    QString error;
    if (BusMessage::decode(bytes, &m, &error))
        FUZZ_CHECK(m.encode() == bytes);
    else
        FUZZ_CHECK(!error.isEmpty());
    return 0;
}
