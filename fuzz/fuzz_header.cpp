// The 16-byte routed header (docs/PROTOCOL.md 5.1): what the relay reads of
// every binary frame. Decoding a header and encoding it again gives the
// same 16 bytes, and the peek/stamp helpers agree with the decoder.
#include "fuzzcheck.h"
#include "wire.h"

#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const QByteArray frame(reinterpret_cast<const char *>(data), qsizetype(size));
    Wire::Header header;
    const Wire::DecodeError error = Wire::decodeHeader(frame, &header);
    if (size < size_t(Wire::HeaderSize)) {
        FUZZ_CHECK(error == Wire::DecodeError::Truncated);
        return 0;
    }
    if (error != Wire::DecodeError::NoError) {
        FUZZ_CHECK(error == Wire::DecodeError::UnknownType || error == Wire::DecodeError::ReservedNotZero);
        FUZZ_CHECK(!Wire::isKnownType(data[0]) || data[2] != 0 || data[3] != 0);
        return 0;
    }
    FUZZ_CHECK(Wire::isKnownType(quint8(header.type)));
    FUZZ_CHECK(header.mapId == Wire::peekMapId(frame));
    FUZZ_CHECK(header.peer == Wire::peekPeer(frame));

    QByteArray encoded;
    Wire::appendHeader(encoded, header);
    FUZZ_CHECK(encoded.size() == Wire::HeaderSize);
    FUZZ_CHECK(std::memcmp(encoded.constData(), data, Wire::HeaderSize) == 0);

    // The relay stamps the origin in place; the payload must not move.
    QByteArray stamped = frame;
    Wire::setHeaderPeer(stamped, ~header.peer);
    Wire::Header again;
    FUZZ_CHECK(Wire::decodeHeader(stamped, &again) == Wire::DecodeError::NoError);
    FUZZ_CHECK(again.peer == ~header.peer && again.mapId == header.mapId && again.type == header.type);
    FUZZ_CHECK(stamped.mid(Wire::HeaderSize) == frame.mid(Wire::HeaderSize));
    return 0;
}
