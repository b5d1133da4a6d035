// Golden vectors shared with the C++ peer.
//
// A C++ program writes frames.json and merges.json into $DISTMAP_GOLDEN_DIR.
// This test
//   - decodes every frame of frames.json and compares it with its "message"
//     field by field, re-encodes "message" and compares the bytes;
//   - checks that every "malformed" payload is rejected (an error result,
//     no exception);
//   - applies every merge case of merges.json in the given, the reversed
//     and shuffled orders (the seed is printed; DISTMAP_SEED replays) and
//     compares the resulting entries and digests;
//   - writes js-frames.json (frames this encoder produced, same format as
//     frames.json without "malformed"), which a C++ test then checks.
//
// Format (every unsigned 64-bit number a decimal string, bytes lowercase hex):
//   frames.json: {"version":1,"frames":[{"name","hex","message":{...}}],
//                 "malformed":[{"name","hex","type"}]}
//   merges.json: {"version":1,"cases":[{"name","ops":[...],"state":[...],
//                 "digests":{"1":[...],"16":[...]}}]}
import test from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
    Entry,
    MapState,
    MessageType,
    U64_MAX,
    compareUtf8,
    computeDigest,
    decodeMessage,
    decodePayload,
    encodeMessage,
    WireError,
} from "../../resources/web/distmap.js";
import { rng } from "./seeded.mjs";

const dir = process.env.DISTMAP_GOLDEN_DIR;
const skip = dir ? false : "DISTMAP_GOLDEN_DIR is not set: the golden vectors come from the C++ golden program, which writes frames.json and merges.json there";

const dec = new TextDecoder("utf-8", { ignoreBOM: true });
const toHex = (u8) => Buffer.from(u8).toString("hex");
const fromHex = (s) => {
    assert.match(s, /^([0-9a-f]{2})*$/, "hex must be lowercase pairs");
    return new Uint8Array(Buffer.from(s, "hex"));
};

// --- the neutral JSON form --------------------------------------------------

function entryToJson(e) {
    const o = { kind: e.value === null ? "delete" : "set", hlc: e.hlc.toString(), writer: e.writer.toString(), key: e.key };
    if (e.value !== null) o.value = valueText(e.value);
    return o;
}

// Values are strings (valid UTF-8) or bytes (not valid UTF-8): see Entry.
const valueText = (v) => (typeof v === "string" ? v : dec.decode(v));

function entryFromJson(o) {
    assert.ok(o.kind === "set" || o.kind === "delete", `entry kind ${o.kind}`);
    return new Entry(o.key, BigInt(o.hlc), BigInt(o.writer), o.kind === "delete" ? null : o.value);
}

/** A decoded message (decodeMessage's form) in the neutral JSON form. */
export function messageToJson(m) {
    const o = { type: m.type, flags: m.flags, map: m.map, peer: m.peer.toString() };
    switch (m.type) {
        case "Delta":
        case "Repair":
            o.entries = m.entries.map(entryToJson);
            break;
        case "SyncRequest":
            Object.assign(o, { syncId: m.syncId, since: m.since.toString(), bucketCount: m.bucketCount, digest: m.digest.map(String) });
            break;
        case "SyncData":
            Object.assign(o, {
                syncId: m.syncId,
                seq: m.seq,
                final: m.final,
                bucketCount: m.bucketCount,
                digest: m.digest.map(String),
                entries: m.entries.map(entryToJson),
            });
            break;
        case "SyncAck":
            Object.assign(o, { syncId: m.syncId, seq: m.seq });
            break;
        case "WriteAck":
            Object.assign(o, { durable: m.durable, hlcs: m.hlcs.map(String) });
            break;
    }
    return o;
}

/** The neutral JSON form as encodeMessage() takes it. */
export function messageFromJson(o) {
    const m = { type: o.type, flags: o.flags ?? 0, map: o.map, peer: BigInt(o.peer) };
    if (o.entries) m.entries = o.entries.map(entryFromJson);
    for (const f of ["syncId", "seq", "final", "durable", "bucketCount"]) if (f in o) m[f] = o[f];
    if ("since" in o) m.since = BigInt(o.since);
    if (o.digest) m.digest = o.digest.map(BigInt);
    if (o.hlcs) m.hlcs = o.hlcs.map(BigInt);
    return m;
}

// --- the C++ vectors ----------------------------------------------------------

function readJson(name) {
    const path = join(dir, name);
    assert.ok(existsSync(path), `${path} is missing: run the C++ golden program first`);
    const doc = JSON.parse(readFileSync(path, "utf8"));
    assert.equal(doc.version, 1, `${name}: version`);
    return doc;
}

test("C++ frames decode to their description and re-encode byte for byte", { skip }, () => {
    const doc = readJson("frames.json");
    assert.ok(doc.frames.length > 0, "frames.json has no frames");
    for (const f of doc.frames) {
        const d = decodeMessage(fromHex(f.hex));
        assert.ok(d.ok, `${f.name}: rejected: ${d.error}`);
        const mine = messageToJson(d.message);
        const theirs = f.message;
        // Field by field, so a failure names the field.
        for (const field of new Set([...Object.keys(theirs), ...Object.keys(mine)]))
            assert.deepEqual(mine[field], theirs[field], `${f.name}: field ${field}`);
        assert.equal(toHex(encodeMessage(messageFromJson(theirs))), f.hex, `${f.name}: re-encoded bytes`);
    }
    console.log(`# ${doc.frames.length} C++ frames checked`);
});

test("C++ malformed payloads are rejected with an error, never a throw", { skip }, () => {
    const doc = readJson("frames.json");
    for (const m of doc.malformed ?? []) {
        const type = MessageType[m.type];
        assert.notEqual(type, undefined, `${m.name}: unknown type ${m.type}`);
        const bytes = fromHex(m.hex);
        // "hex" is the payload; a whole message (header of that type) is
        // accepted too, so the vectors work whichever the C++ side writes.
        const wholeFrame = bytes.length >= 16 && bytes[0] === type && bytes[2] === 0 && bytes[3] === 0;
        let result;
        assert.doesNotThrow(() => {
            if (wholeFrame) result = decodeMessage(bytes);
            else {
                try {
                    decodePayload(type, bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, bytes.length);
                    result = { ok: true };
                } catch (e) {
                    if (!(e instanceof WireError)) throw e;
                    result = { ok: false, error: e.message };
                }
            }
        }, m.name);
        assert.equal(result.ok, false, `${m.name} (${wholeFrame ? "whole message" : "payload"}) was accepted`);
        // And never as a whole message with a header in front.
        const framed = new Uint8Array(16 + bytes.length);
        framed[0] = type;
        framed.set(bytes, 16);
        if (!wholeFrame) assert.equal(decodeMessage(framed).ok, false, `${m.name} framed was accepted`);
    }
    console.log(`# ${(doc.malformed ?? []).length} C++ malformed payloads rejected`);
});


function opToEntry(op) {
    return new Entry(op.key, BigInt(op.hlc), BigInt(op.writer), op.delete ? null : op.value);
}

function stateToJson(state) {
    return state.sorted().map((e) => {
        const o = { key: e.key, kind: e.value === null ? "delete" : "set", hlc: e.hlc.toString(), writer: e.writer.toString() };
        if (e.value !== null) o.value = valueText(e.value);
        return o;
    });
}

function stateFromCase(expected) {
    // The expected state in the same shape, keys in UTF-8 byte order.
    return expected.map((s) => {
        const o = { key: s.key, kind: s.kind, hlc: String(s.hlc), writer: String(s.writer) };
        if (s.kind === "set") o.value = s.value;
        return o;
    });
}

test("C++ merge cases give the same state and digests in any order", { skip }, () => {
    const doc = readJson("merges.json");
    const seed = Number(process.env.DISTMAP_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`# merge shuffles: seed ${seed} (DISTMAP_SEED=${seed} replays)`);
    const random = rng(seed);
    assert.ok(doc.cases.length > 0, "merges.json has no cases");
    for (const c of doc.cases) {
        const ops = c.ops.map(opToEntry);
        const orders = [["given", ops], ["reversed", [...ops].reverse()]];
        for (let k = 0; k < 5; k++) {
            const shuffled = [...ops];
            for (let i = shuffled.length - 1; i > 0; i--) {
                const j = Math.floor(random() * (i + 1));
                [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
            }
            orders.push([`shuffle ${k}`, shuffled]);
        }
        const expected = stateFromCase(c.state);
        const sortedExpected = [...expected].sort((a, b) => compareUtf8(a.key, b.key));
        assert.deepEqual(expected.map((e) => e.key), sortedExpected.map((e) => e.key), `${c.name}: state is not in UTF-8 key order`);
        for (const [label, order] of orders) {
            // Only the given order is certain when a case writes one
            // (hlc, writer) twice with other bytes (the first one stays).
            if (label !== "given" && hasConflictingDuplicates(ops)) continue;
            const state = new MapState();
            for (const e of order) state.apply(e);
            assert.deepEqual(stateToJson(state), expected, `${c.name}: state (${label} order, seed ${seed})`);
            for (const [n, words] of Object.entries(c.digests ?? {})) {
                const mine = computeDigest(state.values(), Number(n)).map(String);
                assert.deepEqual(mine, words.map(String), `${c.name}: digest with ${n} buckets (${label} order)`);
            }
        }
    }
    console.log(`# ${doc.cases.length} C++ merge cases checked`);
});

function hasConflictingDuplicates(ops) {
    const seen = new Map();
    for (const e of ops) {
        const id = `${e.key}\u0000${e.hlc}\u0000${e.writer}`;
        const bytes = e.value === null ? "tombstone" : valueText(e.value);
        if (seen.has(id) && seen.get(id) !== bytes) return true;
        seen.set(id, bytes);
    }
    return false;
}

// --- frames for the C++ side ---------------------------------------------------

const MAX32 = 0xffffffff;

function set(key, hlc, writer, json) {
    return { kind: "set", hlc: String(hlc), writer: String(writer), key, value: json };
}
function del(key, hlc, writer) {
    return { kind: "delete", hlc: String(hlc), writer: String(writer), key };
}

/** The frames this encoder writes into js-frames.json: every type and edge. */
export function jsFrames() {
    const W = 0x0a;
    const unicode = [
        set("é", 0x10000, W, '"accent"'),
        set("日本語", 0x10001, W, '{"lang":"ja"}'),
        set("😀", 0x10002, W, '"astral key"'),
        set("\u{10ffff}", 0x10003, W, "1"),
        set("\ufeffbom", 0x10004, W, '"a key starting with U+FEFF"'),
        set("", 0x10005, W, '"the empty key"'),
        set("tab\there", 0x10006, W, '"\\t"'),
        set("nul\u0000inside", 0x10007, W, "0"),
    ];
    const values = [
        set("empty-string", 0x20000, W, '""'),
        set("zero", 0x20001, W, "0"),
        set("null", 0x20002, W, "null"),
        set("false", 0x20003, W, "false"),
        set("one-byte", 0x20004, W, "7"),
        set("nested", 0x20005, W, '{"a":[1,{"b":null}],"c":"😀"}'),
        set("escapes", 0x20006, W, '"line\\nbreak \\"quoted\\" \\u0000 \\ud83d\\ude00"'),
        set("unicode-value", 0x20007, W, '"日本 😀 \u2028"'),
        set("not-json", 0x20008, W, "not json at all"),
        set("spaces", 0x20009, W, " [ 1 , 2 ] "),
        set("float", 0x2000a, W, "1.5e300"),
        set("big-int-text", 0x2000b, W, "18446744073709551616"),
    ];
    // A digest of a real state, so the words are not all small.
    const state = new MapState();
    for (const e of [...unicode, ...values].map((o) => new Entry(o.key, BigInt(o.hlc), BigInt(o.writer), o.value))) state.apply(e);
    state.apply(new Entry("gone", 0x30000n, 0x0bn, null));
    const digest4 = computeDigest(state.values(), 4).map(String);
    const digest1 = computeDigest(state.values(), 1).map(String);
    const digest16 = computeDigest(state.values(), 16).map(String);
    const max = U64_MAX.toString();

    const frames = [
        ["delta: the entry example of section 5.2", { type: "Delta", flags: 0, map: 7, peer: "0", entries: [set("k", 0x0102, 0x0a, "1")] }],
        ["delta: one tombstone", { type: "Delta", flags: 0, map: 1, peer: "0", entries: [del("k", 0x0103, 0x0a)] }],
        ["delta: ackRequested, sets and tombstones", { type: "Delta", flags: 1, map: 7, peer: "0", entries: [set("a", 0x1000, W, "1"), del("b", 0x1001, W), set("c", 0x1002, W, '"c"')] }],
        ["delta: Unicode keys (astral, BOM, empty, NUL)", { type: "Delta", flags: 0, map: 2, peer: "0", entries: unicode }],
        ["delta: value edge cases (empty JSON string, one byte, not JSON)", { type: "Delta", flags: 1, map: 2, peer: "0", entries: values }],
        ["delta: hlc and writer 2^64-1, map 2^32-1", { type: "Delta", flags: 0, map: MAX32, peer: "0", entries: [set("max", max, max, "true"), del("max-tombstone", max, max)] }],
        ["delta: as received, origin in peer", { type: "Delta", flags: 1, map: 3, peer: "11", entries: [set("color", "116225547993088000", "11", '"blue"')] }],
        ["delta: a key of 65535 bytes", { type: "Delta", flags: 0, map: 1, peer: "0", entries: [set("x".repeat(65535), 5, 6, "1")] }],
        ["delta: hlc 0 and writer 1", { type: "Delta", flags: 0, map: 0, peer: "0", entries: [set("zero-clock", 0, 1, "null")] }],
        ["repair: writes of several writers", { type: "Repair", flags: 0, map: 9, peer: "0", entries: [set("a", 300, 1, "1"), del("b", 301, 2), set("c", 302, max, "3"), del("😀", max, 3)] }],
        ["repair: as received, one entry", { type: "Repair", flags: 0, map: 9, peer: "18446744073709551615", entries: [set("k", 1, 2, '""')] }],
        ["syncrequest: full (section 10)", { type: "SyncRequest", flags: 0, map: 1, peer: "0", syncId: 1, since: "0", bucketCount: 0, digest: [] }],
        ["syncrequest: catch-up", { type: "SyncRequest", flags: 0, map: 1, peer: "0", syncId: 2, since: "116225547993088000", bucketCount: 0, digest: [] }],
        ["syncrequest: verify with 4 buckets", { type: "SyncRequest", flags: 0, map: 1, peer: "0", syncId: 3, since: max, bucketCount: 4, digest: digest4 }],
        ["syncrequest: verify with 1 bucket, syncId 2^32-1", { type: "SyncRequest", flags: 0, map: MAX32, peer: "0", syncId: MAX32, since: max, bucketCount: 1, digest: digest1 }],
        ["syncrequest: as received, origin in peer", { type: "SyncRequest", flags: 0, map: 4, peer: "11", syncId: 5, since: "0", bucketCount: 16, digest: digest16 }],
        ["syncdata: seq 0 final with digest and entries", { type: "SyncData", flags: 0, map: 1, peer: "11", syncId: 3, seq: 0, final: true, bucketCount: 4, digest: digest4, entries: [set("a", 1, 2, "1"), del("b", 3, 4)] }],
        ["syncdata: seq 0 not final, digest, no entries", { type: "SyncData", flags: 0, map: 1, peer: "11", syncId: 3, seq: 0, final: false, bucketCount: 16, digest: digest16, entries: [] }],
        ["syncdata: later chunk, no digest", { type: "SyncData", flags: 0, map: 1, peer: "11", syncId: 3, seq: 1, final: false, bucketCount: 0, digest: [], entries: unicode }],
        ["syncdata: empty final chunk", { type: "SyncData", flags: 0, map: 1, peer: "11", syncId: 3, seq: 2, final: true, bucketCount: 0, digest: [], entries: [] }],
        ["syncdata: seq 0 final, full sync, no digest", { type: "SyncData", flags: 0, map: 1, peer: "10", syncId: 1, seq: 0, final: true, bucketCount: 0, digest: [], entries: [set("color", "116225547993088000", "11", '"blue"')] }],
        ["syncdata: maximal ids", { type: "SyncData", flags: 0, map: MAX32, peer: max, syncId: MAX32, seq: MAX32, final: true, bucketCount: 0, digest: [], entries: [del("k", max, max)] }],
        ["syncack: seq 0", { type: "SyncAck", flags: 0, map: 1, peer: "10", syncId: 1, seq: 0 }],
        ["syncack: maximal", { type: "SyncAck", flags: 0, map: MAX32, peer: max, syncId: MAX32, seq: MAX32 }],
        ["writeack: the example of section 5.8", { type: "WriteAck", flags: 0, map: 7, peer: "10", durable: true, hlcs: ["258", "515"] }],
        ["writeack: not durable, count 0", { type: "WriteAck", flags: 0, map: 7, peer: "10", durable: false, hlcs: [] }],
        ["writeack: not durable, many hlcs incl. 2^64-1", { type: "WriteAck", flags: 0, map: 7, peer: "10", durable: false, hlcs: ["1", "0", max, "116225547993088000", "116225547993088001"] }],
        ["writeack: durable, as received", { type: "WriteAck", flags: 0, map: 2, peer: max, durable: true, hlcs: [max] }],
    ];
    return frames.map(([name, message]) => ({ name, hex: toHex(encodeMessage(messageFromJson(message))), message }));
}

test("js-frames.json: this encoder's frames, each decoding back to its description", { skip }, () => {
    const frames = jsFrames();
    for (const f of frames) {
        const d = decodeMessage(fromHex(f.hex));
        assert.ok(d.ok, `${f.name}: ${d.error}`);
        assert.deepEqual(messageToJson(d.message), f.message, f.name);
    }
    const types = new Set(frames.map((f) => f.message.type));
    assert.deepEqual([...types].sort(), ["Delta", "Repair", "SyncAck", "SyncData", "SyncRequest", "WriteAck"]);
    const path = join(dir, "js-frames.json");
    // Non-ASCII characters as \uXXXX escapes: Qt 6.4's JSON parser was seen
    // to drop a raw U+FEFF inside a string (the BOM key), so keep the file ASCII.
    const text = JSON.stringify({ version: 1, frames }, null, 1).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
    writeFileSync(path, text + "\n");
    console.log(`# wrote ${frames.length} frames to ${path}`);
});
