// The store loader (lib/core/journal.h): a whole store image, header and
// records, as LocalStore::open reads it from disk. Whatever the bytes, the
// reader accounts for every byte after the header as either a good record
// or damage, and the state it loads survives being written out as a
// snapshot and read back.
#include "fuzzcheck.h"
#include "journal.h"

#include <QStringDecoder>

namespace {

bool sameState(const MapState &a, const MapState &b)
{
    if (a.entryCount() != b.entryCount() || a.size() != b.size())
        return false;
    for (const EntryRef e : a.entries()) {
        const EntryRef other = b.find(e.utf8Key());
        if (!other || other.valueView() != e.valueView() || !other.sameWrite(e) || other.tombstone() != e.tombstone())
            return false;
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *bytes = reinterpret_cast<const char *>(data);
    const Journal::ReadResult r = Journal::read(bytes, qsizetype(size), QString());
    FUZZ_CHECK(r.fileSize == qsizetype(size));
    if (r.error != Journal::Error::NoError) {
        FUZZ_CHECK(!r.message.isEmpty());
        FUZZ_CHECK(r.records == 0 && r.state.entryCount() == 0 && r.damage.isEmpty());
        return 0;
    }
    FUZZ_CHECK(r.headerSize >= Journal::HeaderFixedSize + 4 && r.headerSize <= qsizetype(size));
    FUZZ_CHECK(r.goodEnd >= r.headerSize && r.goodEnd <= qsizetype(size));

    // A map URI that is valid UTF-8 reads back byte for byte (the store is
    // opened by comparing it with the URI the application asks for).
    const QByteArray rawUri(bytes + Journal::HeaderFixedSize, r.headerSize - Journal::HeaderFixedSize - 4);
    QStringDecoder utf8(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless | QStringDecoder::Flag::ConvertInitialBom);
    const QString strictUri = utf8.decode(rawUri);
    if (!utf8.hasError())
        FUZZ_CHECK(r.header.mapUri.toUtf8() == rawUri);

    // Damage ranges are in order, apart, inside the records area, and
    // with the good records they cover it exactly.
    qsizetype cursor = r.headerSize;
    for (const Journal::Damage &d : r.damage) {
        FUZZ_CHECK(d.length > 0 && d.offset >= cursor);
        FUZZ_CHECK(d.reason != Journal::RecordError::NoError);
        cursor = d.offset + d.length;
        FUZZ_CHECK(cursor <= qsizetype(size));
    }
    FUZZ_CHECK(r.damagedBytes() <= qsizetype(size) - r.headerSize);
    FUZZ_CHECK(r.records * qsizetype(Journal::RecordHeaderSize) + r.damagedBytes() <= qsizetype(size) - r.headerSize);
    if (r.damage.isEmpty())
        FUZZ_CHECK(r.goodEnd == qsizetype(size));
    if (r.tornTailOnly())
        FUZZ_CHECK(r.goodEnd + r.damagedBytes() == qsizetype(size));
    for (const EntryRef e : r.state.entries())
        FUZZ_CHECK(e.hlc() <= r.clock);

    // A store names its map; reading with another expected map refuses it.
    const Journal::ReadResult foreign = Journal::read(bytes, qsizetype(size), r.header.mapUri + QLatin1Char('x'));
    FUZZ_CHECK(foreign.error == Journal::Error::ForeignMap);

    // What was loaded, written as a compacted store, reads back the same
    // with no damage (LocalStore compacts this way).
    QByteArray image = Journal::encodeHeader(r.header);
    Journal::appendSnapshot(image, r.state, r.clock);
    const Journal::ReadResult again = Journal::read(image.constData(), image.size(), r.header.mapUri);
    FUZZ_CHECK(again.error == Journal::Error::NoError);
    FUZZ_CHECK(again.damage.isEmpty());
    FUZZ_CHECK(again.clock == r.clock);
    FUZZ_CHECK(again.header.peerId == r.header.peerId);
    FUZZ_CHECK(sameState(again.state, r.state));
    return 0;
}
