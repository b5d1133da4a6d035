// Control messages (docs/PROTOCOL.md sections 3, 4 and 6): any text frame,
// through the message decoder and then every per-type decoder. None may
// crash; what one accepts must survive its own encoder unchanged.
#include "control.h"
#include "fuzzcheck.h"

#include <QJsonDocument>

namespace {

QJsonObject reparse(const QByteArray &text)
{
    const QJsonDocument doc = QJsonDocument::fromJson(text);
    FUZZ_CHECK(doc.isObject());
    return doc.object();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const QByteArray text = QByteArray::fromRawData(reinterpret_cast<const char *>(data), qsizetype(size));
    Control::Message message;
    QString why;
    if (Control::decodeMessage(text, &message, &why) != Control::DecodeError::NoError) {
        FUZZ_CHECK(!why.isEmpty());
        return 0;
    }
    FUZZ_CHECK(message.type == Control::typeFromName(message.typeName));
    const QJsonObject &o = message.object;
    const auto ok = Control::DecodeError::NoError;

    Control::Hello hello;
    if (Control::decodeHello(o, &hello) == ok && hello.version >= 0) {
        Control::Hello again;
        FUZZ_CHECK(Control::decodeHello(reparse(Control::encodeHello(hello)), &again) == ok);
        FUZZ_CHECK(again.version == hello.version && again.peer == hello.peer);
    }
    Control::Welcome welcome;
    if (Control::decodeWelcome(o, &welcome) == ok) {
        Control::Welcome again;
        FUZZ_CHECK(Control::decodeWelcome(reparse(Control::encodeWelcome(welcome)), &again) == ok);
        FUZZ_CHECK(again.peer == welcome.peer && again.peer != 0);
    }
    Control::Open open;
    if (Control::decodeOpen(o, &open) == ok) {
        FUZZ_CHECK(!open.map.isEmpty() && open.map.toUtf8().size() <= Control::MaxUriBytes);
        Control::Open again;
        FUZZ_CHECK(Control::decodeOpen(reparse(Control::encodeOpen(open)), &again) == ok);
        FUZZ_CHECK(again.map == open.map && again.presence == open.presence);
    }
    Control::Opened opened;
    if (Control::decodeOpened(o, &opened) == ok) {
        FUZZ_CHECK(opened.id != 0);
        Control::Opened again;
        FUZZ_CHECK(Control::decodeOpened(reparse(Control::encodeOpened(opened)), &again) == ok);
        FUZZ_CHECK(again.id == opened.id && again.map == opened.map && again.writable == opened.writable);
        FUZZ_CHECK(again.peers.size() == opened.peers.size());
    }
    Control::MapRef ref;
    Control::decodeMapRef(o, &ref);
    Control::Presence presence;
    if (Control::decodePresence(o, &presence) == ok) {
        Control::Presence again;
        FUZZ_CHECK(Control::decodePresence(reparse(Control::encodePresence(presence)), &again) == ok);
        FUZZ_CHECK(again.id == presence.id && again.peer == presence.peer && again.presence == presence.presence);
    }
    Control::Joined joined;
    if (Control::decodeJoined(o, &joined) == ok)
        FUZZ_CHECK(joined.peer != 0);
    Control::Left left;
    if (Control::decodeLeft(o, &left) == ok)
        FUZZ_CHECK(left.peer != 0);
    Control::Ping ping;
    Control::decodePing(o, &ping);
    Control::Error error;
    if (Control::decodeError(o, &error) == ok) {
        Control::Error again;
        FUZZ_CHECK(Control::decodeError(reparse(Control::encodeError(error)), &again) == ok);
        FUZZ_CHECK(again.code == error.code && again.message == error.message && again.id == error.id);
    }
    return 0;
}
