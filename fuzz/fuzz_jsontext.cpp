// JsonText (lib/core/jsontext.h): how values are read from the wire and
// from `distmap set`. A value that parses encodes to text that parses back
// to the same value, and encoding is stable from then on (every peer must
// store the same bytes for one value).
#include "fuzzcheck.h"
#include "jsontext.h"

#include <cmath>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const QByteArray text(reinterpret_cast<const char *>(data), qsizetype(size));
    QString error;
    const QJsonValue value = JsonText::decode(text, &error);
    if (value.isUndefined()) {
        FUZZ_CHECK(!error.isEmpty());
        return 0;
    }
    const QByteArray encoded = JsonText::encode(value);
    FUZZ_CHECK(!encoded.isEmpty());
    QString again;
    const QJsonValue reread = JsonText::decode(encoded, &again);
    FUZZ_CHECK(!reread.isUndefined());
    FUZZ_CHECK(reread == value);
    FUZZ_CHECK(JsonText::encode(reread) == encoded);
    return 0;
}
