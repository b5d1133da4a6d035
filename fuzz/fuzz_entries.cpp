// A run of entries (docs/PROTOCOL.md 5.2): the payload of deltas, repairs,
// sync chunks and store records. A run that decodes encodes back to the
// very same bytes (a key that came back different would make two peers hold
// different keys for one write), and every decoded field is within limits.
#include "fuzzcheck.h"
#include "mapstate.h"
#include "wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *bytes = reinterpret_cast<const char *>(data);
    QVector<Wire::DecodedEntry> entries;
    entries.append({QStringLiteral("sentinel"), Entry()});
    const Wire::DecodeError error = Wire::decodeEntries(bytes, qsizetype(size), &entries);
    if (error != Wire::DecodeError::NoError) {
        // Nothing is handed out from a bad run.
        FUZZ_CHECK(entries.size() == 1 && entries.first().key == QLatin1String("sentinel"));
        return 0;
    }
    FUZZ_CHECK(size > 0 || entries.isEmpty());
    QByteArray encoded;
    MapState state;
    for (const Wire::DecodedEntry &d : std::as_const(entries)) {
        FUZZ_CHECK(d.entry.tombstone == d.entry.value.isEmpty());
        FUZZ_CHECK(quint32(d.entry.value.size()) <= Wire::MaxValueBytes);
        FUZZ_CHECK(d.key.toUtf8().size() <= qsizetype(Wire::MaxKeyBytes));
        FUZZ_CHECK(Wire::encodedEntrySize(d.key, d.entry) >= Wire::EntryFixedSize + d.key.toUtf8().size());
        Wire::appendEntry(encoded, d.key, d.entry);
        state.apply(d.key, d.entry);
    }
    FUZZ_CHECK(encoded == QByteArray::fromRawData(bytes, qsizetype(size)));

    // Applying the run twice changes nothing (the merge is idempotent), and
    // the digest folds: one bucket is the XOR of the 16-bucket digest.
    const QVector<quint64> before = state.digest(16);
    for (const Wire::DecodedEntry &d : std::as_const(entries))
        FUZZ_CHECK(state.apply(d.key, d.entry).outcome != MapState::Outcome::Applied);
    FUZZ_CHECK(state.digest(16) == before);
    quint64 folded = 0;
    for (quint64 h : before)
        folded ^= h;
    FUZZ_CHECK(state.digest(1).first() == folded);
    return 0;
}
