// Binary codec (docs/PROTOCOL.md section 5), including malformed input.
import test from "node:test";
import assert from "node:assert/strict";
import {
    Entry,
    MessageType,
    U64_MAX,
    decodeEntries,
    decodeMessage,
    encodeEntry,
    encodeMessage,
    peerFromHex,
    peerToHex,
} from "../../resources/web/distmap.js";

const enc = new TextEncoder();
const hex = (u8) => Buffer.from(u8).toString("hex");
const unhex = (s) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const header = (type, flags = 0, map = 0, peer = "0000000000000000") =>
    unhex(type.toString(16).padStart(2, "0") + flags.toString(16).padStart(2, "0") + "0000" + le32(map) + peer);
function le32(n) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b.toString("hex");
}
function le64(n) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b.toString("hex");
}
const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
        out.set(p, o);
        o += p.length;
    }
    return out;
};
const rawEntry = (kind, hlc, writer, keyBytes, valueBytes) =>
    concat(
        unhex("0" + kind + le64(hlc) + le64(writer) + le32(keyBytes.length)),
        keyBytes,
        valueBytes === undefined ? new Uint8Array() : concat(unhex(le32(valueBytes.length)), valueBytes),
    );
const decodeRun = (u8) => decodeEntries(u8, new DataView(u8.buffer, u8.byteOffset, u8.byteLength), 0, u8.length);

test("the entry example of section 5.2, byte for byte", () => {
    const bytes = encodeEntry(new Entry("k", 0x0102n, 0x0an, enc.encode("1")));
    assert.equal(hex(bytes), "01" + "0201000000000000" + "0a00000000000000" + "01000000" + "6b" + "01000000" + "31");
    const [e] = decodeRun(bytes);
    assert.equal(e.key, "k");
    assert.equal(e.hlc, 0x102n);
    assert.equal(e.writer, 0xan);
    assert.equal(hex(e.value), "31");
});

test("the WriteAck example of section 5.8, byte for byte", () => {
    const m = encodeMessage({ type: "WriteAck", map: 3, peer: 0xbn, durable: true, hlcs: [0x0102n, 0x0203n] });
    assert.equal(hex(m.subarray(16)), "01" + "02000000" + "0201000000000000" + "0302000000000000");
    const d = decodeMessage(m);
    assert.ok(d.ok, d.error);
    assert.deepEqual(d.message, { type: "WriteAck", flags: 0, map: 3, peer: 0xbn, durable: true, hlcs: [0x102n, 0x203n] });
});

test("the SyncRequest of section 10 and the header layout of 5.1", () => {
    const m = encodeMessage({ type: "SyncRequest", map: 1, peer: 0n, syncId: 1, since: 0n, digest: [] });
    assert.equal(hex(m), "11" + "00" + "0000" + "01000000" + "0000000000000000" + "01000000" + "0000000000000000" + "00000000");
    const h = encodeMessage({ type: "Delta", flags: 1, map: 0x04030201, peer: 0x0807060504030201n, entries: [{ key: "", hlc: 1n, writer: 2n, value: null }] });
    assert.equal(hex(h.subarray(0, 16)), "10" + "01" + "0000" + "01020304" + "0102030405060708");
});

test("tombstones carry no value length", () => {
    const bytes = encodeEntry(new Entry("k", 1n, 2n, null));
    assert.equal(hex(bytes), "02" + le64(1) + le64(2) + "01000000" + "6b");
    const [e] = decodeRun(bytes);
    assert.equal(e.value, null);
    assert.equal(e.kind, 2);
});

test("every message type round-trips", () => {
    const entries = [
        { key: "a", hlc: 1n, writer: 7n, value: enc.encode('"x"') },
        { key: "", hlc: U64_MAX, writer: U64_MAX, value: null },
        { key: "ключ 😀", hlc: 0n, writer: 1n, value: enc.encode("[1,2]") },
    ];
    const messages = [
        { type: "Delta", flags: 1, map: 7, peer: 123n, entries },
        { type: "Repair", flags: 0, map: 0xffffffff, peer: U64_MAX, entries },
        { type: "SyncRequest", flags: 0, map: 7, peer: 0n, syncId: 0xffffffff, since: U64_MAX, bucketCount: 4, digest: [1n, 0n, U64_MAX, 0x8000000000000000n] },
        { type: "SyncData", flags: 0, map: 7, peer: 5n, syncId: 9, seq: 0, final: true, bucketCount: 2, digest: [3n, 4n], entries },
        { type: "SyncData", flags: 0, map: 7, peer: 5n, syncId: 9, seq: 3, final: false, bucketCount: 0, digest: [], entries: [] },
        { type: "SyncAck", flags: 0, map: 7, peer: 5n, syncId: 9, seq: 3 },
        { type: "WriteAck", flags: 0, map: 7, peer: 5n, durable: false, hlcs: [] },
    ];
    for (const m of messages) {
        const bytes = encodeMessage(m);
        const d = decodeMessage(bytes);
        assert.ok(d.ok, `${m.type}: ${d.error}`);
        const got = d.message;
        assert.equal(got.type, m.type);
        assert.equal(got.map, m.map);
        assert.equal(got.peer, m.peer);
        assert.equal(got.flags, m.flags);
        if (m.entries) {
            assert.equal(got.entries.length, m.entries.length);
            got.entries.forEach((e, i) => {
                assert.equal(e.key, m.entries[i].key);
                assert.equal(e.hlc, m.entries[i].hlc);
                assert.equal(e.writer, m.entries[i].writer);
                assert.equal(e.value === null ? null : hex(e.value), m.entries[i].value === null ? null : hex(m.entries[i].value));
            });
        }
        for (const f of ["syncId", "seq", "since", "final", "bucketCount", "durable"]) if (f in m) assert.equal(got[f], m[f], `${m.type}.${f}`);
        if (m.digest) assert.deepEqual(got.digest, m.digest);
        if (m.hlcs) assert.deepEqual(got.hlcs, m.hlcs);
        // Re-encoding the decoded form gives the same bytes.
        assert.equal(hex(encodeMessage(got)), hex(bytes));
    }
});

test("keys keep a leading byte order mark and any valid UTF-8", () => {
    for (const key of ["\ufeffx", "\ufeff", "a\u0000b", "\uffff", "日本", "😀", "\u{10ffff}", "x".repeat(65535)]) {
        const [e] = decodeRun(encodeEntry(new Entry(key, 1n, 1n, enc.encode("1"))));
        assert.equal(e.key, key);
    }
});

test("values are stored byte for byte, valid JSON or not", () => {
    for (const v of [unhex("ff"), enc.encode("not json"), enc.encode(" 1 "), unhex("efbbbf31")]) {
        const [e] = decodeRun(encodeEntry(new Entry("k", 1n, 1n, v)));
        assert.equal(hex(e.value), hex(v));
    }
});

test("every truncation of an entry run is rejected", () => {
    const run = concat(
        encodeEntry(new Entry("alpha", 5n, 6n, enc.encode('{"a":1}'))),
        encodeEntry(new Entry("é", 7n, 8n, null)),
        encodeEntry(new Entry("z", 9n, 10n, enc.encode("true"))),
    );
    const boundaries = new Set([0]);
    let o = 0;
    for (const e of decodeRun(run)) boundaries.add((o += encodeEntry(e).length));
    for (let n = 0; n <= run.length; n++) {
        const cut = run.subarray(0, n);
        if (boundaries.has(n)) assert.doesNotThrow(() => decodeRun(cut), `cut at ${n} is a whole run`);
        else assert.throws(() => decodeRun(cut), /truncated/, `cut at ${n}`);
    }
    // The same as a Delta: an empty one is malformed too (one or more entries).
    for (let n = 0; n <= run.length; n++) {
        const d = decodeMessage(concat(header(0x10), run.subarray(0, n)));
        assert.equal(d.ok, boundaries.has(n) && n > 0, `Delta cut at ${n}`);
    }
});

test("malformed entries are rejected and nothing is handed out", () => {
    const good = encodeEntry(new Entry("k", 1n, 1n, enc.encode("1")));
    const cases = {
        "kind 0": rawEntry(0, 1, 1, enc.encode("k"), enc.encode("1")),
        "kind 3": rawEntry(3, 1, 1, enc.encode("k"), enc.encode("1")),
        "key of 65536 bytes": rawEntry(1, 1, 1, new Uint8Array(65536).fill(0x61), enc.encode("1")),
        "empty value": rawEntry(1, 1, 1, enc.encode("k"), new Uint8Array()),
        "lone continuation byte": rawEntry(1, 1, 1, unhex("80"), enc.encode("1")),
        "overlong encoding": rawEntry(1, 1, 1, unhex("c0af"), enc.encode("1")),
        "encoded surrogate": rawEntry(1, 1, 1, unhex("eda080"), enc.encode("1")),
        "beyond U+10FFFF": rawEntry(1, 1, 1, unhex("f4908080"), enc.encode("1")),
        "truncated sequence": rawEntry(1, 1, 1, unhex("e282"), enc.encode("1")),
        "0xff byte": rawEntry(1, 1, 1, unhex("ff"), enc.encode("1")),
        "tombstone with trailing byte": concat(rawEntry(2, 1, 1, enc.encode("k")), unhex("00")),
    };
    for (const [name, bad] of Object.entries(cases)) {
        // The bad entry after a good one: the whole run is refused.
        assert.throws(() => decodeRun(concat(good, bad)), undefined, name);
        const d = decodeMessage(concat(header(0x10), good, bad));
        assert.equal(d.ok, false, name);
        assert.equal(typeof d.error, "string");
    }
    // A value length over 64 MiB is refused before looking for the bytes.
    const huge = concat(unhex("01" + le64(1) + le64(1) + le32(1)), enc.encode("k"), unhex(le32(64 * 1024 * 1024 + 1)));
    assert.throws(() => decodeRun(huge), /too long/);
    // 64 MiB itself is allowed by the entry format (only truncated here).
    const max = concat(unhex("01" + le64(1) + le64(1) + le32(1)), enc.encode("k"), unhex(le32(64 * 1024 * 1024)));
    assert.throws(() => decodeRun(max), /truncated value/);
});

test("malformed headers and payloads of every type are rejected without throwing", () => {
    const cases = {
        "empty message": new Uint8Array(),
        "15-byte header": new Uint8Array(15).fill(0x10),
        "reserved byte 2": unhex("1000010000000000" + "0000000000000000"),
        "reserved byte 3": unhex("1000000100000000" + "0000000000000000"),
        "unknown type 0x12": concat(header(0x12), encodeEntry(new Entry("k", 1n, 1n, null))),
        "unknown type 0x00": header(0x00),
        "empty Delta": header(0x10),
        "empty Repair": header(0x16),
        "SyncRequest short": concat(header(0x11), unhex(le32(1) + le64(0))),
        "SyncRequest bucket count 3": concat(header(0x11), unhex(le32(1) + le64(0) + le32(3)), new Uint8Array(24)),
        "SyncRequest bucket count 131072": concat(header(0x11), unhex(le32(1) + le64(0) + le32(131072))),
        "SyncRequest truncated digest": concat(header(0x11), unhex(le32(1) + le64(0) + le32(2)), new Uint8Array(15)),
        "SyncRequest trailing byte": concat(header(0x11), unhex(le32(1) + le64(0) + le32(0) + "00")),
        "SyncData short": concat(header(0x13), unhex(le32(1) + le32(0) + "01")),
        "SyncData final 2": concat(header(0x13), unhex(le32(1) + le32(0) + "02" + le32(0))),
        "SyncData bucket count 5": concat(header(0x13), unhex(le32(1) + le32(0) + "01" + le32(5)), new Uint8Array(40)),
        "SyncData truncated digest": concat(header(0x13), unhex(le32(1) + le32(0) + "01" + le32(4)), new Uint8Array(31)),
        "SyncData bad entry": concat(header(0x13), unhex(le32(1) + le32(0) + "01" + le32(0) + "05")),
        "SyncAck short": concat(header(0x14), unhex(le32(1) + "000000")),
        "SyncAck long": concat(header(0x14), unhex(le32(1) + le32(0) + "00")),
        "WriteAck short": concat(header(0x15), unhex("01000000")),
        "WriteAck flag bit 1": concat(header(0x15), unhex("02" + le32(0))),
        "WriteAck flag bit 7": concat(header(0x15), unhex("80" + le32(0))),
        "WriteAck count too big": concat(header(0x15), unhex("01" + le32(2) + le64(1))),
        "WriteAck trailing bytes": concat(header(0x15), unhex("01" + le32(1) + le64(1) + "00")),
        "WriteAck count 2^32-1": concat(header(0x15), unhex("01" + "ffffffff")),
    };
    for (const [name, bytes] of Object.entries(cases)) {
        let d;
        assert.doesNotThrow(() => (d = decodeMessage(bytes)), name);
        assert.equal(d.ok, false, `${name} was accepted`);
        assert.ok(d.error.length > 0);
    }
});

test("well-formed edge cases are accepted", () => {
    const ok = {
        "WriteAck with count 0": concat(header(0x15), unhex("00" + le32(0))),
        "SyncData with no entries": concat(header(0x13), unhex(le32(1) + le32(0) + "01" + le32(0))),
        "SyncRequest with 65536 buckets": concat(header(0x11), unhex(le32(1) + le64(0) + le32(65536)), new Uint8Array(8 * 65536)),
        "reserved flag bits are ignored": concat(header(0x10, 0xff), encodeEntry(new Entry("k", 1n, 1n, null))),
        "an empty key": concat(header(0x10), rawEntry(2, 1, 1, new Uint8Array())),
        "writer 0 (not validated on receipt)": concat(header(0x10), rawEntry(2, 1, 0, enc.encode("k"))),
    };
    for (const [name, bytes] of Object.entries(ok)) {
        const d = decodeMessage(bytes);
        assert.ok(d.ok, `${name}: ${d.error}`);
    }
    assert.equal(decodeMessage(ok["reserved flag bits are ignored"]).message.flags, 0xff);
});

test("decodeMessage accepts Buffers, ArrayBuffers and views at an offset", () => {
    const bytes = encodeMessage({ type: "SyncAck", map: 1, peer: 2n, syncId: 3, seq: 4 });
    const padded = new Uint8Array(bytes.length + 3);
    padded.set(bytes, 3);
    for (const input of [bytes, bytes.slice().buffer, Buffer.from(bytes), padded.subarray(3)]) {
        const d = decodeMessage(input);
        assert.ok(d.ok, d.error);
        assert.equal(d.message.seq, 4);
    }
    assert.equal(MessageType.SyncAck, 0x14);
});

test("peer ids are 16 lowercase hex digits in JSON", () => {
    assert.equal(peerToHex(0xabn), "00000000000000ab");
    assert.equal(peerToHex(U64_MAX), "ffffffffffffffff");
    assert.equal(peerFromHex("8f3c2a61d0e94b17"), 0x8f3c2a61d0e94b17n);
    for (const bad of ["0000000000000000", "8F3C2A61D0E94B17", "abc", "8f3c2a61d0e94b170", 171, null, "8f3c2a61d0e94b1g"]) assert.equal(peerFromHex(bad), null, String(bad));
});

test("a value that makes the encoder grow its buffer mid-entry keeps its length right", () => {
    // The shared writer grows while it writes the value's text; the length
    // in front of it must land in the new buffer (this once wrote 0).
    for (const size of [3 << 20, 9 << 20]) {
        const value = JSON.stringify("é".repeat(size / 2));
        const bytes = encodeMessage({ type: "Delta", map: 1, peer: 0n, entries: [{ key: "k".repeat(100), hlc: 1n, writer: 1n, value }, { key: "next", hlc: 2n, writer: 1n, value: "1" }] });
        const d = decodeMessage(bytes);
        assert.ok(d.ok, d.error);
        assert.equal(d.message.entries[0].value, value);
        assert.equal(d.message.entries[1].key, "next");
    }
});

test("writers that share one 32-bit half decode apart", () => {
    const writers = [0x100000002n, 0x200000002n, 0x200000003n, 0x200000003n, 2n, U64_MAX, 0n, 0x100000002n];
    const run = concat(...writers.map((w, i) => encodeEntry(new Entry(`k${i}`, BigInt(i), w, null))));
    assert.deepEqual(decodeRun(run).map((e) => e.writer), writers);
});
