// distmap.js: the JavaScript peer of distmap, written from docs/PROTOCOL.md
// (protocol version 1) alone. No runtime dependencies: an ES module for
// browsers (native WebSocket, optional IndexedDB persistence) and Node
// (pass the `ws` package's WebSocket class to connect()).
//
//   import { connect, DistributedMap } from "./distmap.js";
//   const connection = connect("ws://127.0.0.1:7357", { name: "tab" });
//   const map = DistributedMap(connection, "/rooms/42");
//   map.on("set", (value, key) => ...);
//   map.ready(() => map.set("color", "blue"));
//
// Layout of this file, bottom-up:
//   1. constants and small helpers (hex peer ids, UTF-8, scheduling)
//   2. the binary codec (section 5): header, entries, every routed message
//   3. FNV-1a-64 and digests (section 9)
//   4. the hybrid logical clock (section 7)
//   5. MapState: last-writer-wins entries with tombstones (section 7)
//   6. Emitter
//   7. IdbStore: optional IndexedDB persistence (small, self-contained)
//   8. Connection: WebSocket, handshake, reconnect, control messages
//   9. DistributedMap: one map's replica: writes, batching, sync as joiner
//      and responder (section 8), write acknowledgements (section 8.1)
//
// 64-bit numbers (peer ids, hlcs, digest words on the public side) are
// BigInt everywhere; they never go through a float.

// ---------------------------------------------------------------------------
// 1. Constants and helpers
// ---------------------------------------------------------------------------

export const PROTOCOL_VERSION = 1;
export const HEADER_SIZE = 16;
export const MessageType = Object.freeze({
    Delta: 0x10,
    SyncRequest: 0x11,
    SyncData: 0x13,
    SyncAck: 0x14,
    WriteAck: 0x15,
    Repair: 0x16,
});
const TYPE_NAMES = new Map(Object.entries(MessageType).map(([name, code]) => [code, name]));
export const FLAG_ACK_REQUESTED = 0x01;
export const KIND_SET = 1;
export const KIND_DELETE = 2;
export const MAX_KEY_BYTES = 65535;
export const MAX_VALUE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_MESSAGE = 16777216;
export const MAX_BUCKETS = 65536;
export const U64_MAX = (1n << 64n) - 1n;
// Entry overhead: kind 1 + hlc 8 + writer 8 + keyLength 4 (+ valueLength 4 for a set).
const ENTRY_FIXED = 21;
// Responder: chunks of about 256 KiB of entries (one entry may cross it), at
// most 4 unacknowledged (conformance rule 11).
const CHUNK_BYTES = 256 * 1024;
const SYNC_WINDOW = 4;
// Entries a sync answer snapshots, or a verify round digests, per turn of
// the event loop.
const SNAPSHOT_SLICE = 20000;
const SYNCDATA_HEAD = 13; // syncId 4 + seq 4 + final 1 + bucketCount 4
const SYNCREQUEST_HEAD = 16; // syncId 4 + since 8 + bucketCount 4

const HEX = /^[0-9a-f]{16}$/;

/** A peer id (BigInt) as the 16 lowercase hex digits the control messages use. */
export function peerToHex(id) {
    return id.toString(16).padStart(16, "0");
}

/** Parses 16 lowercase hex digits (section 2); null when malformed or 0. */
export function peerFromHex(text) {
    if (typeof text !== "string" || !HEX.test(text)) return null;
    const id = BigInt("0x" + text);
    return id === 0n ? null : id;
}

function toPeerId(value) {
    if (typeof value === "bigint") return value > 0n && value <= U64_MAX ? value : null;
    if (typeof value === "string") return peerFromHex(value.toLowerCase());
    return null;
}

function randomU32() {
    const c = globalThis.crypto;
    if (c && typeof c.getRandomValues === "function") return c.getRandomValues(new Uint32Array(1))[0];
    return Math.floor(Math.random() * 4294967296) >>> 0;
}

/** A random non-zero 64-bit peer id. */
export function randomPeerId() {
    for (;;) {
        const id = (BigInt(randomU32()) << 32n) | BigInt(randomU32());
        if (id !== 0n) return id;
    }
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// Values are stored as received; reading one replaces bad sequences (it
// then usually fails to parse and reads as undefined). ignoreBOM: a value
// or key starting with U+FEFF keeps it (the C++ peer once lost it: see
// docs/RELIABILITY.md, "Keys starting with U+FEFF were renamed").
const lenientDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
const textEncoder = new TextEncoder();

// Short ASCII text, the common case, skips the TextDecoder call: its bytes
// go through one of these arrays (one per length, so none is resized) into
// String.fromCharCode.
const SHORT_TEXT = 64;
const scratchByLength = Array.from({ length: SHORT_TEXT + 1 }, (_, n) => new Array(n).fill(0));

/** Decodes a key; null when the bytes are not valid UTF-8 (section 5.2). */
function decodeKey(u8, start, end) {
    const n = end - start;
    if (n <= SHORT_TEXT) {
        const keyScratch = scratchByLength[n];
        for (let i = 0; i < n; i++) {
            const c = u8[start + i];
            if (c >= 0x80) return decodeStrict(u8, start, end);
            keyScratch[i] = c;
        }
        return n === 0 ? "" : String.fromCharCode.apply(null, keyScratch);
    }
    return decodeStrict(u8, start, end);
}

// A value as a string when valid UTF-8, else its bytes (see Entry).
function decodeValue(u8, start, end) {
    const n = end - start;
    if (n <= SHORT_TEXT) {
        const keyScratch = scratchByLength[n];
        let i = 0;
        for (; i < n; i++) {
            const c = u8[start + i];
            if (c >= 0x80) break;
            keyScratch[i] = c;
        }
        if (i === n) return String.fromCharCode.apply(null, keyScratch);
    }
    const s = decodeStrict(u8, start, end);
    return s !== null ? s : u8.slice(start, end);
}

function decodeStrict(u8, start, end) {
    try {
        return strictDecoder.decode(u8.subarray(start, end));
    } catch {
        return null;
    }
}

/** UTF-8 length of a well-formed string. */
export function utf8Length(s) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x80) n += 1;
        else if (c < 0x800) n += 2;
        else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
            n += 4;
            i++;
        } else n += 3;
    }
    return n;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Whether a string has no lone surrogate, so it encodes to UTF-8 and back unchanged. */
export function isWellFormed(s) {
    return !LONE_SURROGATE.test(s);
}

function toU8(data) {
    if (data instanceof Uint8Array) return data;
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    throw new TypeError("expected binary data");
}

/** Compares two writes by (hlc, writer): the merge order of section 7. */
export function compareWrites(a, b) {
    if (a.hlc !== b.hlc) return a.hlc > b.hlc ? 1 : -1;
    if (a.writer !== b.writer) return a.writer > b.writer ? 1 : -1;
    return 0;
}

// Runs f on the next turn of the event loop: setImmediate in Node, a
// MessageChannel in browsers (no 4 ms clamp), setTimeout as a last resort.
const nextTurn = (() => {
    if (typeof setImmediate === "function") return (f) => setImmediate(f);
    if (typeof MessageChannel === "function") {
        const channel = new MessageChannel();
        let queue = [];
        channel.port1.onmessage = () => {
            const run = queue;
            queue = [];
            for (const f of run) f();
        };
        return (f) => {
            queue.push(f);
            if (queue.length === 1) channel.port2.postMessage(0);
        };
    }
    return (f) => setTimeout(f, 0);
})();

/** An error reported through an "error" event. */
export class DistmapError extends Error {
    constructor(code, message, extra) {
        super(message);
        this.name = "DistmapError";
        this.code = code;
        if (extra) Object.assign(this, extra);
    }
}

// ---------------------------------------------------------------------------
// 2. Binary codec (section 5)
// ---------------------------------------------------------------------------

// A 64-bit BigInt as two 32-bit halves and back. The state and the codec
// keep hlcs as halves: BigInt arithmetic allocates.
const high32 = (b) => Number(b >> 32n);
const low32 = (b) => Number(b & 0xffffffffn);
const fromHalves = (hi, lo) => (BigInt(hi) << 32n) | BigInt(lo);

/**
 * One write: a value or a tombstone (value === null).
 *
 * A value is its JSON text exactly as written or received (section 5.2:
 * every peer stores the same bytes). It is kept as a string when the bytes
 * are valid UTF-8, which maps to UTF-16 and back without loss, so the
 * string *is* the bytes; a value that is not valid UTF-8 (which no correct
 * peer writes, but the protocol forwards) is kept as its Uint8Array.
 * Strings are much cheaper than one ArrayBuffer per value.
 */
export class Entry {
    /** hi, lo: the hlc's 32-bit halves when the caller has them (the codec, the state). */
    constructor(key, hlc, writer, value, hi, lo) {
        this.key = key; // string
        this.hlc = hlc; // BigInt
        this.writer = writer; // BigInt
        this.value = value; // string | Uint8Array (JSON text) | null for a tombstone
        // The halves as plain numbers: MapState compares and stores them
        // without BigInt arithmetic, which allocates.
        this._hi = hi === undefined ? high32(hlc) : hi;
        this._lo = lo === undefined ? low32(hlc) : lo;
        // A decoded entry's value bytes in its message, so that MapState
        // copies them instead of encoding the string again.
        this._src = null;
        this._start = 0;
        this._length = 0;
    }
    get kind() {
        return this.value === null ? KIND_DELETE : KIND_SET;
    }
}

/** Thrown by the decoders below for a malformed message; never escapes the socket handler. */
export class WireError extends Error {
    constructor(message) {
        super(message);
        this.name = "WireError";
    }
}

// A growable byte buffer. Messages are built into one shared writer and
// copied out, so building a message allocates only its result.
class ByteWriter {
    constructor(capacity = 64 * 1024) {
        this.buf = new Uint8Array(capacity);
        this.dv = new DataView(this.buf.buffer);
        this.pos = 0;
    }
    reset() {
        this.pos = 0;
        return this;
    }
    reserve(n) {
        const need = this.pos + n;
        if (need <= this.buf.length) return;
        let cap = this.buf.length * 2;
        while (cap < need) cap *= 2;
        const next = new Uint8Array(cap);
        next.set(this.buf.subarray(0, this.pos));
        this.buf = next;
        this.dv = new DataView(next.buffer);
    }
    u8(v) {
        this.reserve(1);
        this.buf[this.pos++] = v;
    }
    u32(v) {
        this.reserve(4);
        this.dv.setUint32(this.pos, v, true);
        this.pos += 4;
    }
    u64(v) {
        this.reserve(8);
        this.dv.setBigUint64(this.pos, v, true);
        this.pos += 8;
    }
    bytes(b) {
        this.reserve(b.length);
        this.buf.set(b, this.pos);
        this.pos += b.length;
    }
    // Writes a well-formed string as UTF-8; returns its byte length.
    utf8(s) {
        const len = s.length;
        this.reserve(len * 3);
        const buf = this.buf;
        const start = this.pos;
        if (len > 64) {
            const r = textEncoder.encodeInto(s, buf.subarray(start));
            this.pos += r.written;
            return r.written;
        }
        let p = start;
        for (let i = 0; i < len; i++) {
            let c = s.charCodeAt(i);
            if (c < 0x80) {
                buf[p++] = c;
            } else if (c < 0x800) {
                buf[p++] = 0xc0 | (c >> 6);
                buf[p++] = 0x80 | (c & 63);
            } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
                const d = s.charCodeAt(++i);
                c = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
                buf[p++] = 0xf0 | (c >> 18);
                buf[p++] = 0x80 | ((c >> 12) & 63);
                buf[p++] = 0x80 | ((c >> 6) & 63);
                buf[p++] = 0x80 | (c & 63);
            } else {
                buf[p++] = 0xe0 | (c >> 12);
                buf[p++] = 0x80 | ((c >> 6) & 63);
                buf[p++] = 0x80 | (c & 63);
            }
        }
        this.pos = p;
        return p - start;
    }
    take() {
        return this.buf.slice(0, this.pos);
    }
}

const sharedWriter = new ByteWriter();

function writeHeader(w, type, flags, mapId, peer) {
    w.reserve(HEADER_SIZE);
    const p = w.pos;
    w.buf[p] = type;
    w.buf[p + 1] = flags;
    w.buf[p + 2] = 0;
    w.buf[p + 3] = 0;
    w.dv.setUint32(p + 4, mapId >>> 0, true);
    w.dv.setBigUint64(p + 8, peer, true);
    w.pos = p + HEADER_SIZE;
}

/** Appends an entry's kind, hlc (as halves), writer and key (section 5.2). */
function writeEntryHead(w, kind, hlcHi, hlcLo, writer, key) {
    w.reserve(ENTRY_FIXED);
    const p = w.pos;
    w.buf[p] = kind;
    w.dv.setUint32(p + 1, hlcLo, true);
    w.dv.setUint32(p + 5, hlcHi, true);
    w.dv.setBigUint64(p + 9, writer, true);
    w.pos = p + ENTRY_FIXED;
    const keyBytes = w.utf8(key); // may grow the buffer: w.dv only after it
    w.dv.setUint32(p + 17, keyBytes, true);
}

/** Appends one entry (section 5.2); returns its encoded size. */
function writeEntry(w, e) {
    const start = w.pos;
    writeEntryHead(w, e.value === null ? KIND_DELETE : KIND_SET, e._hi, e._lo, e.writer, e.key);
    const v = e.value;
    if (typeof v === "string") {
        w.reserve(4);
        const lengthAt = w.pos;
        w.pos += 4;
        const n = w.utf8(v); // may grow the buffer: w.dv only after it
        w.dv.setUint32(lengthAt, n, true);
    } else if (v !== null) {
        w.u32(v.length);
        w.bytes(v);
    }
    return w.pos - start;
}

/** The UTF-8 length of a value (string or bytes). */
export function valueLength(v) {
    return typeof v === "string" ? utf8Length(v) : v.length;
}

/** A value's bytes, as on the wire. */
export function valueBytes(v) {
    return typeof v === "string" ? textEncoder.encode(v) : v;
}

/** The size of an entry on the wire. */
export function entrySize(e) {
    return ENTRY_FIXED + utf8Length(e.key) + (e.value === null ? 0 : 4 + valueLength(e.value));
}

/** The wire bytes of one entry. */
export function encodeEntry(e) {
    const w = sharedWriter.reset();
    writeEntry(w, e);
    return w.take();
}

let lastWriter = 0n;
let lastWriterLo = 0;
let lastWriterHi = 0;

/**
 * Decodes a run of entries (section 5.2) from u8[start, end) into `out`.
 * Validates the whole run: throws WireError on the first malformed entry,
 * so a caller that catches applies nothing.
 */
export function decodeEntries(u8, dv, start, end, out = []) {
    let p = start;
    while (p < end) {
        if (end - p < ENTRY_FIXED) throw new WireError("truncated entry");
        const kind = u8[p];
        if (kind !== KIND_SET && kind !== KIND_DELETE) throw new WireError(`bad entry kind ${kind}`);
        const hlc = dv.getBigUint64(p + 1, true);
        const hlcLo = dv.getUint32(p + 1, true);
        const hlcHi = dv.getUint32(p + 5, true);
        // Runs of entries mostly share a writer: reuse its BigInt (one
        // allocation less per entry, and less memory per stored entry).
        const wLo = dv.getUint32(p + 9, true);
        const wHi = dv.getUint32(p + 13, true);
        if (wLo !== lastWriterLo || wHi !== lastWriterHi) {
            lastWriter = dv.getBigUint64(p + 9, true);
            lastWriterLo = wLo;
            lastWriterHi = wHi;
        }
        const writer = lastWriter;
        const keyLength = dv.getUint32(p + 17, true);
        if (keyLength > MAX_KEY_BYTES) throw new WireError(`key too long (${keyLength} bytes)`);
        p += ENTRY_FIXED;
        if (end - p < keyLength) throw new WireError("truncated key");
        const key = decodeKey(u8, p, p + keyLength);
        if (key === null) throw new WireError("key is not valid UTF-8");
        p += keyLength;
        let value = null;
        let valueStart = 0;
        let valueLength = 0;
        if (kind === KIND_SET) {
            if (end - p < 4) throw new WireError("truncated value length");
            valueLength = dv.getUint32(p, true);
            p += 4;
            if (valueLength === 0) throw new WireError("empty value");
            if (valueLength > MAX_VALUE_BYTES) throw new WireError(`value too long (${valueLength} bytes)`);
            if (end - p < valueLength) throw new WireError("truncated value");
            value = decodeValue(u8, p, p + valueLength);
            valueStart = p;
            p += valueLength;
        }
        const e = new Entry(key, hlc, writer, value, hlcHi, hlcLo);
        if (value !== null) {
            e._src = u8;
            e._start = valueStart;
            e._length = valueLength;
        }
        out.push(e);
    }
    return out;
}

function checkBucketCount(n) {
    if (n !== 0 && (n > MAX_BUCKETS || (n & (n - 1)) !== 0)) throw new WireError(`bad bucket count ${n}`);
}

// Digests travel as 8-byte little-endian words; internally a digest is a
// Uint32Array of 2n words, [lo0, hi0, lo1, hi1, ...].
function readDigest(dv, p, n) {
    const d = new Uint32Array(2 * n);
    for (let i = 0; i < 2 * n; i++) d[i] = dv.getUint32(p + 4 * i, true);
    return d;
}

function writeDigest(w, d) {
    w.reserve(4 * d.length);
    for (let i = 0; i < d.length; i++) w.dv.setUint32(w.pos + 4 * i, d[i], true);
    w.pos += 4 * d.length;
}

/** SyncRequest payload (section 5.5). */
export function decodeSyncRequest(u8, dv, start, end) {
    const len = end - start;
    if (len < SYNCREQUEST_HEAD) throw new WireError("truncated SyncRequest");
    const syncId = dv.getUint32(start, true);
    const since = dv.getBigUint64(start + 4, true);
    const n = dv.getUint32(start + 12, true);
    checkBucketCount(n);
    const want = SYNCREQUEST_HEAD + 8 * n;
    if (len < want) throw new WireError("truncated SyncRequest digest");
    if (len > want) throw new WireError("trailing bytes after SyncRequest");
    return { syncId, since, bucketCount: n, digest: readDigest(dv, start + SYNCREQUEST_HEAD, n) };
}

/** SyncData payload (section 5.6); entries may be empty. */
export function decodeSyncData(u8, dv, start, end) {
    if (end - start < SYNCDATA_HEAD) throw new WireError("truncated SyncData");
    const syncId = dv.getUint32(start, true);
    const seq = dv.getUint32(start + 4, true);
    const finalByte = u8[start + 8];
    if (finalByte > 1) throw new WireError(`bad SyncData final byte ${finalByte}`);
    const n = dv.getUint32(start + 9, true);
    checkBucketCount(n);
    const entriesStart = start + SYNCDATA_HEAD + 8 * n;
    if (entriesStart > end) throw new WireError("truncated SyncData digest");
    const digest = readDigest(dv, start + SYNCDATA_HEAD, n);
    const entries = decodeEntries(u8, dv, entriesStart, end);
    return { syncId, seq, final: finalByte === 1, bucketCount: n, digest, entries };
}

/** SyncAck payload (section 5.7): exactly 8 bytes. */
export function decodeSyncAck(u8, dv, start, end) {
    if (end - start < 8) throw new WireError("truncated SyncAck");
    if (end - start > 8) throw new WireError("trailing bytes after SyncAck");
    return { syncId: dv.getUint32(start, true), seq: dv.getUint32(start + 4, true) };
}

/** WriteAck payload (section 5.8). */
export function decodeWriteAck(u8, dv, start, end) {
    const len = end - start;
    if (len < 5) throw new WireError("truncated WriteAck");
    const flags = u8[start];
    if (flags & ~1) throw new WireError(`bad WriteAck flags 0x${flags.toString(16)}`);
    const count = dv.getUint32(start + 1, true);
    const want = 5 + 8 * count;
    if (len < want) throw new WireError("truncated WriteAck");
    if (len > want) throw new WireError("trailing bytes after WriteAck");
    const hlcs = new Array(count);
    for (let i = 0; i < count; i++) hlcs[i] = dv.getBigUint64(start + 5 + 8 * i, true);
    return { durable: (flags & 1) === 1, hlcs };
}

/** Header of a routed message; throws WireError when it is malformed. */
export function decodeHeader(u8, dv) {
    if (u8.length < HEADER_SIZE) throw new WireError(`message shorter than the ${HEADER_SIZE}-byte header`);
    if (u8[2] !== 0 || u8[3] !== 0) throw new WireError("reserved header bytes are not zero");
    return { type: u8[0], flags: u8[1], map: dv.getUint32(4, true), peer: dv.getBigUint64(8, true) };
}

function digestToBigInts(d) {
    const out = new Array(d.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = fromHalves(d[2 * i + 1], d[2 * i]);
    return out;
}

function digestFromBigInts(words) {
    const d = new Uint32Array(2 * words.length);
    for (let i = 0; i < words.length; i++) {
        const w = BigInt.asUintN(64, BigInt(words[i]));
        d[2 * i] = low32(w);
        d[2 * i + 1] = high32(w);
    }
    return d;
}

/**
 * Decodes a whole routed message (header and payload). Never throws:
 * returns { ok: true, message } or { ok: false, error }. `message` has
 * `type` (name), `flags`, `map`, `peer` (BigInt) and the payload's fields;
 * digests are arrays of BigInt here.
 */
export function decodeMessage(data) {
    try {
        const u8 = toU8(data);
        const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
        const h = decodeHeader(u8, dv);
        const name = TYPE_NAMES.get(h.type);
        if (!name) throw new WireError(`unknown message type 0x${h.type.toString(16)}`);
        const message = { type: name, flags: h.flags, map: h.map, peer: h.peer };
        Object.assign(message, decodePayload(h.type, u8, dv, HEADER_SIZE, u8.length));
        if (message.digest) message.digest = digestToBigInts(message.digest);
        return { ok: true, message };
    } catch (e) {
        return { ok: false, error: e instanceof WireError ? e.message : String(e) };
    }
}

/** Decodes a payload of a known type; throws WireError. */
export function decodePayload(type, u8, dv, start, end) {
    switch (type) {
        case MessageType.Delta:
        case MessageType.Repair: {
            if (end === start) throw new WireError("no entries");
            return { entries: decodeEntries(u8, dv, start, end) };
        }
        case MessageType.SyncRequest:
            return decodeSyncRequest(u8, dv, start, end);
        case MessageType.SyncData:
            return decodeSyncData(u8, dv, start, end);
        case MessageType.SyncAck:
            return decodeSyncAck(u8, dv, start, end);
        case MessageType.WriteAck:
            return decodeWriteAck(u8, dv, start, end);
        default:
            throw new WireError(`unknown message type 0x${type.toString(16)}`);
    }
}

/**
 * Encodes a whole routed message from the form decodeMessage() returns
 * (type by name or code; entries as Entry or {key, hlc, writer, value}
 * with value a string of JSON text or its Uint8Array, or null/absent for a
 * tombstone). For tests and tools: it neither splits nor checks limits.
 */
export function encodeMessage(m) {
    const type = typeof m.type === "string" ? MessageType[m.type] : m.type;
    if (type === undefined) throw new TypeError(`unknown message type ${m.type}`);
    const w = sharedWriter.reset();
    writeHeader(w, type, m.flags ?? 0, m.map ?? 0, BigInt(m.peer ?? 0n));
    const entries = () => {
        for (const e of m.entries ?? []) {
            let value = e.value ?? null;
            if (e.kind === "delete" || e.kind === KIND_DELETE) value = null;
            writeEntry(w, new Entry(e.key, BigInt(e.hlc), BigInt(e.writer), value));
        }
    };
    const digest = () => (m.digest instanceof Uint32Array ? m.digest : digestFromBigInts(m.digest ?? []));
    switch (type) {
        case MessageType.Delta:
        case MessageType.Repair:
            entries();
            break;
        case MessageType.SyncRequest: {
            const d = digest();
            w.u32(m.syncId >>> 0);
            w.u64(BigInt(m.since ?? 0n));
            w.u32(d.length / 2);
            writeDigest(w, d);
            break;
        }
        case MessageType.SyncData: {
            const d = digest();
            w.u32(m.syncId >>> 0);
            w.u32(m.seq >>> 0);
            w.u8(m.final ? 1 : 0);
            w.u32(d.length / 2);
            writeDigest(w, d);
            entries();
            break;
        }
        case MessageType.SyncAck:
            w.u32(m.syncId >>> 0);
            w.u32(m.seq >>> 0);
            break;
        case MessageType.WriteAck:
            w.u8(m.durable ? 1 : 0);
            w.u32(m.hlcs.length);
            for (const h of m.hlcs) w.u64(BigInt(h));
            break;
        default:
            throw new TypeError(`unknown message type ${m.type}`);
    }
    return w.take();
}

// ---------------------------------------------------------------------------
// 3. FNV-1a-64 and digests (section 9)
// ---------------------------------------------------------------------------
//
// 64-bit arithmetic on two 32-bit halves, without BigInt (which allocates):
// the FNV prime is 2^40 + 0x1b3, so x * prime mod 2^64 is
// (x << 40) + x * 0x1b3. The running hash lives in hashHi/hashLo.

const FNV_OFFSET_HI = 0xcbf29ce4; // 14695981039346656037 = 0xcbf29ce484222325
const FNV_OFFSET_LO = 0x84222325;
let hashHi = 0;
let hashLo = 0;

function fnvByte(b) {
    const lo = (hashLo ^ b) >>> 0;
    const t = lo * 0x1b3; // < 2^41: exact
    hashHi = (Math.imul(hashHi, 0x1b3) + (lo << 8) + Math.floor(t / 4294967296)) >>> 0;
    hashLo = t >>> 0;
}

function fnvWord(w) {
    fnvByte(w & 0xff);
    fnvByte((w >>> 8) & 0xff);
    fnvByte((w >>> 16) & 0xff);
    fnvByte(w >>> 24);
}

// Hashes a key's UTF-8 bytes, encoding on the fly.
function hashKeyString(s) {
    hashHi = FNV_OFFSET_HI;
    hashLo = FNV_OFFSET_LO;
    const len = s.length;
    for (let i = 0; i < len; i++) {
        let c = s.charCodeAt(i);
        if (c < 0x80) {
            fnvByte(c);
        } else if (c < 0x800) {
            fnvByte(0xc0 | (c >> 6));
            fnvByte(0x80 | (c & 63));
        } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
            const d = s.charCodeAt(++i);
            c = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
            fnvByte(0xf0 | (c >> 18));
            fnvByte(0x80 | ((c >> 12) & 63));
            fnvByte(0x80 | ((c >> 6) & 63));
            fnvByte(0x80 | (c & 63));
        } else {
            fnvByte(0xe0 | (c >> 12));
            fnvByte(0x80 | ((c >> 6) & 63));
            fnvByte(0x80 | (c & 63));
        }
    }
}

function hashEntryTail(hlcHi, hlcLo, writerHi, writerLo, kind) {
    fnvWord(hlcLo);
    fnvWord(hlcHi);
    fnvWord(writerLo);
    fnvWord(writerHi);
    fnvByte(kind);
}

function hashEntryTailOf(e) {
    hashEntryTail(e._hi, e._lo, high32(e.writer), low32(e.writer), e.value === null ? KIND_DELETE : KIND_SET);
}

/** FNV-1a-64 of bytes (Uint8Array), as a BigInt. */
export function fnv1a64(bytes) {
    hashHi = FNV_OFFSET_HI;
    hashLo = FNV_OFFSET_LO;
    for (let i = 0; i < bytes.length; i++) fnvByte(bytes[i]);
    return fromHalves(hashHi, hashLo);
}

/** keyHash of section 9, as a BigInt. */
export function keyHash(key) {
    hashKeyString(key);
    return fromHalves(hashHi, hashLo);
}

/** entryHash of section 9, as a BigInt. */
export function entryHash(e) {
    hashKeyString(e.key);
    hashEntryTailOf(e);
    return fromHalves(hashHi, hashLo);
}

/** The bucket of a key in an n-bucket digest (n a power of two, ≤ 65536). */
function bucketOf(key, n) {
    hashKeyString(key);
    return hashLo & (n - 1);
}

/**
 * The digest (section 9) of entries (an iterable of Entry) with n buckets,
 * as a Uint32Array of 2n words (lo, hi per bucket).
 */
function digestWords(entries, n) {
    const d = new Uint32Array(2 * n);
    const mask = n - 1;
    for (const e of entries) digestAdd(d, mask, e);
    return d;
}

/** XORs entry e into digest words d (mask: bucket count - 1). */
function digestAdd(d, mask, e) {
    digestXor(d, mask, e.key, e._hi, e._lo, high32(e.writer), low32(e.writer), e.value === null ? KIND_DELETE : KIND_SET);
}

/** XORs the entry hash of these fields into digest words d; returns its bucket. */
function digestXor(d, mask, key, hlcHi, hlcLo, writerHi, writerLo, kind) {
    hashKeyString(key);
    const b = hashLo & mask;
    hashEntryTail(hlcHi, hlcLo, writerHi, writerLo, kind);
    d[2 * b] ^= hashLo;
    d[2 * b + 1] ^= hashHi;
    return b;
}

/**
 * Hashes the entries of snap into digest words d, SNAPSHOT_SLICE entries per
 * turn of the event loop, so that a large map does not freeze a page; the
 * bucket of entry i goes to buckets[i] (if buckets is given). Then done(),
 * unless wanted() has turned false meanwhile (the round or the answer was
 * replaced).
 */
function digestInSlices(snap, d, buckets, wanted, done) {
    const mask = d.length / 2 - 1;
    let i = 0;
    const step = () => {
        if (!wanted()) return;
        for (const end = Math.min(snap.count, i + SNAPSHOT_SLICE); i < end; i++) {
            if (!snap.has(i)) continue;
            const b = snap.hashInto(d, mask, i);
            if (buckets !== null) buckets[i] = b;
        }
        if (i < snap.count) nextTurn(step);
        else done();
    };
    step();
}

/** The buckets where digest words a and b (n buckets) differ, as a Uint8Array of 0/1; null if none. */
function differingBuckets(a, b, n) {
    let differ = null;
    for (let i = 0; i < n; i++) {
        if (a[2 * i] !== b[2 * i] || a[2 * i + 1] !== b[2 * i + 1]) {
            if (differ === null) differ = new Uint8Array(n);
            differ[i] = 1;
        }
    }
    return differ;
}

/** The digest of entries with n buckets, as an array of n BigInts. */
export function computeDigest(entries, n) {
    return digestToBigInts(digestWords(entries, n));
}

/** XOR-folds a digest (array of BigInt) to fewer buckets. */
export function foldDigest(words, n) {
    const out = new Array(n).fill(0n);
    for (let i = 0; i < words.length; i++) out[i & (n - 1)] ^= words[i];
    return out;
}

/** Smallest power of two ≥ count / 16, in [1, 65536], with 8n ≤ limit / 4 (sections 5.1, 8). */
export function bucketCountFor(count, maxMessage = DEFAULT_MAX_MESSAGE) {
    let n = 1;
    while (n < MAX_BUCKETS && n * 16 < count) n *= 2;
    while (n > 1 && 8 * n > maxMessage / 4) n /= 2;
    return n;
}

// ---------------------------------------------------------------------------
// 4. Hybrid logical clock (section 7)
// ---------------------------------------------------------------------------

const FOLLOW_AHEAD_MS = 60000;

export class HybridClock {
    /** now: () => ms since the epoch, the own wall clock (injectable for tests). */
    constructor(now = () => Date.now()) {
        this.now = now;
        this.offset = 0; // ms added to now() to follow the relay's clock
        this.last = 0n; // greatest hlc issued or accepted
        this._ms = -1; // nowMs() and its hlc, cached: BigInt math allocates
        this._physical = 0n;
    }

    nowMs() {
        const t = Math.floor(this.now() + this.offset);
        return t > 0 ? t : 0;
    }

    /** welcome.time: the offset becomes relayTime - own clock at receipt. */
    follow(relayTime) {
        this.offset = relayTime - this.now();
    }

    /**
     * The hlc of a local write; `current` is the key's current hlc (BigInt)
     * or undefined. Returns null if no 64-bit hlc can beat it (the current
     * write carries 2^64-1).
     */
    tick(current) {
        let hlc = this.last + 1n;
        const ms = this.nowMs();
        if (ms !== this._ms) {
            this._ms = ms;
            this._physical = BigInt(ms) << 16n;
        }
        const physical = this._physical;
        if (physical > hlc) hlc = physical;
        if (current !== undefined && current >= hlc) hlc = current + 1n;
        if (hlc > U64_MAX) return null;
        this.last = hlc;
        return hlc;
    }

    /** Entries received with greatest hlc m: follow it, at most 60 s ahead. */
    observe(m) {
        const cap = BigInt(this.nowMs() + FOLLOW_AHEAD_MS) << 16n;
        const v = m < cap ? m : cap;
        if (v > this.last) this.last = v;
    }
}

// ---------------------------------------------------------------------------
// 5. MapState: last-writer-wins entries with tombstones (section 7)
// ---------------------------------------------------------------------------

export const APPLIED = 0;
export const DUPLICATE = 1;
export const SUPERSEDED = 2;

// Keys to slots: an open-addressing table (linear probing) of slot numbers
// plus one (0: an empty place) in an Int32Array, over an array of the key
// strings. In Chromium a full collection with 1,000,000 string keys in V8
// Maps paused 109-130 ms; with the same strings in an array and such a
// table, 22-25 ms (bench/web/gc-layouts.mjs, docs/BROWSER-BENCH.md).
// Growing rehashes from the stored hashes: no string is read again.
const EMPTY = -1; // a lookup's "no slot"
// Seeded, so that which keys collide differs per page: a peer cannot send
// keys chosen to pile up in one run of the table.
const KEY_SEED = (Math.random() * 0x100000000) >>> 0;

function keyHashOf(key) {
    let h = KEY_SEED ^ key.length;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    // The finalizer of MurmurHash3: every input bit reaches the low bits that pick the bucket.
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
}

export class KeyIndex {
    constructor() {
        this._keys = []; // slot -> key, or undefined for a free slot
        this._hashes = new Uint32Array(16); // slot -> keyHashOf(key)
        this._table = new Int32Array(32); // slot + 1, 0 when empty; at most half full
        this._free = []; // free slots below _end
        this._end = 0; // slots in use or free are below it
        this.size = 0;
    }

    /** One more than the greatest slot ever given out. */
    get end() {
        return this._end;
    }

    keyAt(slot) {
        return this._keys[slot];
    }

    /** The slot of key, or -1; h is keyHashOf(key) when the caller has it. */
    slotOf(key, h = keyHashOf(key)) {
        const at = this._placeOf(key, h);
        return at < 0 ? -1 : this._table[at] - 1;
    }

    /** Gives key (not present) a slot and returns it. */
    add(key, h = keyHashOf(key)) {
        if (2 * (this.size + 1) > this._table.length) this._rehash(2 * this._table.length);
        let slot;
        if (this._free.length > 0) {
            slot = this._free.pop();
        } else {
            slot = this._end++;
            if (slot === this._hashes.length) {
                const hashes = new Uint32Array(2 * slot);
                hashes.set(this._hashes);
                this._hashes = hashes;
            }
        }
        this._keys[slot] = key;
        this._hashes[slot] = h;
        const mask = this._table.length - 1;
        let at = h & mask;
        while (this._table[at] !== 0) at = (at + 1) & mask;
        this._table[at] = slot + 1;
        this.size++;
        return slot;
    }

    /** Takes key's slot back; returns it, or -1 if key was not present. */
    remove(key) {
        const at = this._placeOf(key, keyHashOf(key));
        if (at < 0) return -1;
        const table = this._table;
        const mask = table.length - 1;
        const slot = table[at] - 1;
        // Backward shift: move up each later entry of the run whose home
        // is not between the hole and it, so that no lookup stops early.
        let hole = at;
        for (let j = (at + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
            const home = this._hashes[table[j] - 1] & mask;
            const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
            if (stays) continue;
            table[hole] = table[j];
            hole = j;
        }
        table[hole] = 0;
        this._keys[slot] = undefined;
        this._free.push(slot);
        this.size--;
        return slot;
    }

    clear() {
        this._keys = [];
        this._hashes = new Uint32Array(16);
        this._table = new Int32Array(32);
        this._free = [];
        this._end = 0;
        this.size = 0;
    }

    // The place in the table holding key's slot, or -1.
    _placeOf(key, h) {
        const mask = this._table.length - 1;
        for (let at = h & mask; ; at = (at + 1) & mask) {
            const slot = this._table[at] - 1;
            if (slot === EMPTY) return -1;
            if (this._hashes[slot] === h && this._keys[slot] === key) return at;
        }
    }

    _rehash(length) {
        // A new Int32Array is zeros: empty, with no fill pass over it.
        const table = new Int32Array(length);
        const mask = length - 1;
        for (let slot = 0; slot < this._end; slot++) {
            if (this._keys[slot] === undefined) continue;
            let at = this._hashes[slot] & mask;
            while (table[at] !== 0) at = (at + 1) & mask;
            table[at] = slot + 1;
        }
        this._table = table;
    }
}

// Value bytes, appended to pages of 1 MiB. One growing buffer was copied
// whole when it doubled: at 1,000,000 keys the step from 32 to 64 MiB took
// 60 ms in Chromium, in the middle of a join. A page is never written
// below its fill mark again, so a place once written keeps its bytes for as
// long as someone holds the page (StateSnapshot relies on it). An address
// is page * PAGE_BYTES + offset, held in a Uint32Array.
const PAGE_BYTES = 1 << 20;
const MAX_PAGES = 4096;

/** The n bytes at address in pages (a view). */
function pageBytes(pages, address, n) {
    const at = address & (PAGE_BYTES - 1);
    return pages[address >>> 20].subarray(at, at + n);
}

/** The value of n bytes at address (null when n is 0, a tombstone), as decodeValue gives it. */
function readValue(pages, address, n) {
    if (n === 0) return null;
    const at = address & (PAGE_BYTES - 1);
    return decodeValue(pages[address >>> 20], at, at + n);
}

export class ValueBytes {
    constructor() {
        this.pages = [new Uint8Array(1 << 12)];
        this._page = this.pages[0];
        this._fill = 0; // bytes written in _page
        this.used = 0; // bytes written in all pages
    }

    /** Appends n bytes of src from start; returns their address. */
    appendFrom(src, start, n) {
        this._reserve(n);
        const page = this._page;
        const to = this._fill;
        // A short value is copied faster by hand than through a subarray view.
        if (n <= 64) for (let i = 0; i < n; i++) page[to + i] = src[start + i];
        else page.set(src.subarray(start, start + n), to);
        return this._advance(n);
    }

    /** Appends a well-formed string as UTF-8; returns its address (its length is this.lastLength). */
    appendString(s) {
        // UTF-8 takes at most 3 bytes per UTF-16 unit; a long string is counted, not bounded.
        this._reserve(s.length > 65536 ? utf8Length(s) : 3 * s.length);
        const n = textEncoder.encodeInto(s, this._page.subarray(this._fill)).written;
        return this._advance(n);
    }

    _advance(n) {
        const address = (this.pages.length - 1) * PAGE_BYTES + this._fill;
        this._fill += n;
        this.used += n;
        this.lastLength = n;
        return address;
    }

    // Room for n bytes in the current page: the first page doubles up to
    // PAGE_BYTES (small maps stay small); after that a new page, of its
    // own size for a value over PAGE_BYTES.
    _reserve(n) {
        if (this._fill + n <= this._page.length) return;
        if (this.pages.length === 1 && this._fill + n <= PAGE_BYTES) {
            let size = this._page.length;
            while (size < this._fill + n) size *= 2;
            const page = new Uint8Array(size);
            page.set(this._page.subarray(0, this._fill));
            this._page = this.pages[0] = page;
            return;
        }
        if (this.pages.length >= MAX_PAGES) throw new RangeError("the map's values exceed 4 GiB");
        this._page = new Uint8Array(Math.max(PAGE_BYTES, n));
        this.pages.push(this._page);
        this._fill = 0;
    }
}

// The state keeps one object per key, its string. A key maps to a slot (a
// small integer, through KeyIndex); the slot's hlc halves,
// writer and value place live in typed arrays, and the values' bytes (as
// on the wire) in ValueBytes. With an Entry, a BigInt hlc and a value
// string per key, a 1,000,000-key join kept four objects per key alive, and
// V8's collections of them froze a page for 30-135 ms at a time
// (docs/BROWSER-BENCH.md). Entries and value strings are made on reading.
const INITIAL_SLOTS = 16;

export class MapState {
    constructor() {
        this._index = new KeyIndex(); // key -> slot (tombstones included)
        this._hi = new Uint32Array(INITIAL_SLOTS); // slot -> hlc >> 32
        this._lo = new Uint32Array(INITIAL_SLOTS); // slot -> hlc & 0xffffffff
        this._writer = new Uint32Array(INITIAL_SLOTS); // slot -> index in _writers
        this._offset = new Uint32Array(INITIAL_SLOTS); // slot -> value's address in _values
        this._length = new Uint32Array(INITIAL_SLOTS); // slot -> value's length; 0: a tombstone (values are never empty)
        this._values = new ValueBytes(); // appended; replaced values stay until compaction
        this._garbage = 0; // bytes of _values no slot refers to
        this._writers = []; // index -> writer (BigInt); few: one per peer that wrote
        this._writerIndex = new Map(); // writer -> index
        this._lastWriter = -1n;
        this._lastWriterIndex = 0;
        this.live = 0; // keys holding a value
        // The value the last applied write replaced (previousValue).
        this._prevLength = -1; // -1: nothing
        this._prevOffset = 0;
    }

    /** How many keys are held, tombstones included. */
    get count() {
        return this._index.size;
    }

    /** The current write of key as an Entry, or undefined. */
    get(key) {
        const slot = this._index.slotOf(key);
        return slot < 0 ? undefined : this._entryAt(key, slot);
    }

    /** The value of key (string, or Uint8Array if not UTF-8): undefined when absent, null for a tombstone. */
    valueOf(key) {
        const slot = this._index.slotOf(key);
        return slot < 0 ? undefined : this._valueAt(slot);
    }

    /** Whether key holds a value (not absent, not a tombstone). */
    hasValue(key) {
        const slot = this._index.slotOf(key);
        return slot >= 0 && this._length[slot] !== 0;
    }

    /** The hlc of key's current write (BigInt), or undefined. */
    hlcOf(key) {
        const slot = this._index.slotOf(key);
        return slot < 0 ? undefined : fromHalves(this._hi[slot], this._lo[slot]);
    }

    /** Whether key's current write is e's (same hlc and writer). */
    holds(key, e) {
        const slot = this._index.slotOf(key);
        return slot >= 0 && this._hi[slot] === e._hi && this._lo[slot] === e._lo && this._writers[this._writer[slot]] === e.writer;
    }

    /**
     * The value the last applied write replaced: undefined if the key was
     * new, null for a tombstone. Valid until the next change of the state.
     */
    get previousValue() {
        return this._prevLength < 0 ? undefined : readValue(this._values.pages, this._prevOffset, this._prevLength);
    }

    /** Merges one write (section 7): APPLIED, DUPLICATE or SUPERSEDED. */
    apply(e) {
        const hi = e._hi;
        const lo = e._lo;
        const keyHash = keyHashOf(e.key);
        let slot = this._index.slotOf(e.key, keyHash);
        if (slot >= 0) {
            const h = this._hi[slot];
            const l = this._lo[slot];
            if (hi !== h) {
                if (hi < h) return SUPERSEDED;
            } else if (lo !== l) {
                if (lo < l) return SUPERSEDED;
            } else {
                const w = this._writers[this._writer[slot]];
                if (e.writer === w) return DUPLICATE;
                if (e.writer < w) return SUPERSEDED;
            }
            // Compacting first keeps the replaced bytes in place until the
            // next change, for previousValue.
            if (this._garbage > 1 << 20 && 2 * this._garbage > this._values.used) this._compact();
            const n = this._length[slot];
            if (n !== 0) this.live--;
            this._garbage += n;
            this._prevLength = n;
            this._prevOffset = this._offset[slot];
        } else {
            slot = this._index.add(e.key, keyHash);
            if (slot === this._hi.length) this._growSlots();
            this._prevLength = -1;
        }
        this._hi[slot] = hi;
        this._lo[slot] = lo;
        this._writer[slot] = this._indexOfWriter(e.writer);
        if (e.value === null) {
            this._length[slot] = 0;
        } else {
            this._storeValue(slot, e);
            this.live++;
        }
        return APPLIED;
    }

    /** Forgets a key without a tombstone (rejoin, tombstone collection); returns its entry. */
    drop(key) {
        const slot = this._index.slotOf(key);
        if (slot < 0) return undefined;
        const e = this._entryAt(key, slot);
        this._index.remove(key);
        const n = this._length[slot];
        if (n !== 0) this.live--;
        this._garbage += n;
        this._length[slot] = 0;
        this._prevLength = -1;
        return e;
    }

    clear() {
        this._index.clear();
        this._values = new ValueBytes();
        this._garbage = 0;
        this.live = 0;
        this._prevLength = -1;
    }

    /** Drops the tombstones older than hlc limit (BigInt); returns them. */
    dropTombstonesBefore(limit) {
        const hi = high32(limit);
        const lo = low32(limit);
        const old = [];
        this._each((key, slot) => {
            if (this._length[slot] === 0 && this._compareHlc(slot, hi, lo) < 0) old.push(key);
        });
        return old.map((key) => this.drop(key));
    }

    /** A copy of the state as it is now, to walk over later turns (StateSnapshot). */
    snapshot() {
        return new StateSnapshot(this);
    }

    /** The entries whose hlc is above since (BigInt), made only for those. */
    entriesNewerThan(since) {
        const out = [];
        if (since >= U64_MAX) return out;
        const hi = high32(since);
        const lo = low32(since);
        this._each((key, slot) => {
            if (this._compareHlc(slot, hi, lo) > 0) out.push(this._entryAt(key, slot));
        });
        return out;
    }

    /** The entries whose key passes test(key), made only for those. */
    entriesWhereKey(test) {
        const out = [];
        this._each((key, slot) => {
            if (test(key)) out.push(this._entryAt(key, slot));
        });
        return out;
    }

    /** Every entry, tombstones included, as Entry objects made one by one; lasts through writes. */
    *values() {
        // By slot: a key held throughout keeps its slot, so it is seen once
        // even when writes come between two steps (a sync answer's walk).
        const index = this._index;
        for (let slot = 0; slot < index.end; slot++) {
            const key = index.keyAt(slot);
            if (key !== undefined) yield this._entryAt(key, slot);
        }
    }

    /** Calls fn(value, key) for each key holding a value (no Entry made). */
    forEachLive(fn) {
        this._each((key, slot) => {
            if (this._length[slot] !== 0) fn(this._valueAt(slot), key);
        });
    }

    /** Calls fn(key) for each key holding a value (no value decoded). */
    forEachLiveKey(fn) {
        this._each((key, slot) => {
            if (this._length[slot] !== 0) fn(key);
        });
    }

    digest(n) {
        return digestWords(this.values(), n);
    }

    /** Every entry, tombstones included, sorted by the key's UTF-8 bytes. */
    sorted() {
        return [...this.values()].sort((a, b) => compareUtf8(a.key, b.key));
    }

    // Calls fn(key, slot) for every key held, tombstones included.
    _each(fn) {
        const index = this._index;
        for (let slot = 0; slot < index.end; slot++) {
            const key = index.keyAt(slot);
            if (key !== undefined) fn(key, slot);
        }
    }

    // The sign of slot's hlc minus the hlc (hi, lo).
    _compareHlc(slot, hi, lo) {
        const h = this._hi[slot];
        if (h !== hi) return h > hi ? 1 : -1;
        const l = this._lo[slot];
        return l === lo ? 0 : l > lo ? 1 : -1;
    }

    _valueAt(slot) {
        return readValue(this._values.pages, this._offset[slot], this._length[slot]);
    }

    _entryAt(key, slot) {
        const hi = this._hi[slot];
        const lo = this._lo[slot];
        return new Entry(key, fromHalves(hi, lo), this._writers[this._writer[slot]], this._valueAt(slot), hi, lo);
    }

    _storeValue(slot, e) {
        const values = this._values;
        const v = e.value;
        if (e._src !== null) this._offset[slot] = values.appendFrom(e._src, e._start, e._length);
        else if (typeof v === "string") this._offset[slot] = values.appendString(v);
        else this._offset[slot] = values.appendFrom(v, 0, v.length);
        this._length[slot] = values.lastLength;
    }

    // Copies the values still referred to into new pages; the replaced
    // ones are left behind.
    _compact() {
        const old = this._values.pages;
        const values = new ValueBytes();
        for (let slot = 0; slot < this._index.end; slot++) {
            const n = this._length[slot];
            if (n !== 0) this._offset[slot] = values.appendFrom(pageBytes(old, this._offset[slot], n), 0, n);
        }
        this._values = values;
        this._garbage = 0;
        this._prevLength = -1;
    }

    _indexOfWriter(w) {
        if (w === this._lastWriter) return this._lastWriterIndex;
        let i = this._writerIndex.get(w);
        if (i === undefined) {
            i = this._writers.length;
            this._writers.push(w);
            this._writerIndex.set(w, i);
        }
        this._lastWriter = w;
        this._lastWriterIndex = i;
        return i;
    }

    _growSlots() {
        const grow = (a) => {
            const b = new Uint32Array(a.length * 2);
            b.set(a);
            return b;
        };
        this._hi = grow(this._hi);
        this._lo = grow(this._lo);
        this._writer = grow(this._writer);
        this._offset = grow(this._offset);
        this._length = grow(this._length);
    }
}

/**
 * The state at one moment, for a sync answer or a digest taken over many
 * turns while writes go on. Taking it copies the slot arrays (a few
 * milliseconds at 1,000,000 keys) and makes no object per key: the value
 * bytes are shared, since MapState only ever appends to a buffer (a
 * compaction or a growth starts a new one and leaves the old intact).
 * Index i runs over [0, count); a free slot has no key and is skipped.
 */
export class StateSnapshot {
    constructor(state) {
        const end = state._index.end;
        this.count = end;
        this._keys = state._index._keys.slice(0, end);
        this._hi = state._hi.slice(0, end);
        this._lo = state._lo.slice(0, end);
        this._writer = state._writer.slice(0, end);
        this._offset = state._offset.slice(0, end);
        this._length = state._length.slice(0, end);
        this._pages = state._values.pages.slice();
        this._writers = state._writers.slice();
        // The writers' halves, for hashing without BigInt math.
        this._writerHi = this._writers.map(high32);
        this._writerLo = this._writers.map(low32);
    }

    has(i) {
        return this._keys[i] !== undefined;
    }

    /** Whether entry i's hlc is above (sinceHi, sinceLo). */
    isNewer(i, sinceHi, sinceLo) {
        const h = this._hi[i];
        return h > sinceHi || (h === sinceHi && this._lo[i] > sinceLo);
    }

    entryAt(i) {
        const hi = this._hi[i];
        const lo = this._lo[i];
        const value = readValue(this._pages, this._offset[i], this._length[i]);
        return new Entry(this._keys[i], fromHalves(hi, lo), this._writers[this._writer[i]], value, hi, lo);
    }

    /** XORs entry i into digest words d (as digestAdd); returns its bucket. */
    hashInto(d, mask, i) {
        const w = this._writer[i];
        const kind = this._length[i] === 0 ? KIND_DELETE : KIND_SET;
        return digestXor(d, mask, this._keys[i], this._hi[i], this._lo[i], this._writerHi[w], this._writerLo[w], kind);
    }

    /** The wire bytes of entry i (as encodeEntry). */
    encode(i) {
        const w = sharedWriter.reset();
        this.write(w, i);
        return w.take();
    }

    /** Appends entry i to w (section 5.2), its value's bytes as stored; returns its size. */
    write(w, i) {
        const start = w.pos;
        const n = this._length[i];
        writeEntryHead(w, n === 0 ? KIND_DELETE : KIND_SET, this._hi[i], this._lo[i], this._writers[this._writer[i]], this._keys[i]);
        if (n !== 0) {
            w.u32(n);
            w.bytes(pageBytes(this._pages, this._offset[i], n));
        }
        return w.pos - start;
    }
}

/** Orders strings by their UTF-8 bytes (= by code point, unlike UTF-16 order). */
export function compareUtf8(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
        let x = a.charCodeAt(i);
        let y = b.charCodeAt(i);
        if (x === y) continue;
        // Surrogates (astral code points) sort after every BMP character.
        if (x >= 0xd800 && x <= 0xdfff) x += 0x2000;
        else if (x >= 0xe000) x -= 0x800;
        if (y >= 0xd800 && y <= 0xdfff) y += 0x2000;
        else if (y >= 0xe000) y -= 0x800;
        return x - y;
    }
    return a.length - b.length;
}

// ---------------------------------------------------------------------------
// 6. Emitter
// ---------------------------------------------------------------------------

class Emitter {
    constructor() {
        this._listeners = new Map();
    }
    on(event, fn) {
        if (typeof fn !== "function") throw new TypeError("listener must be a function");
        let list = this._listeners.get(event);
        if (!list) this._listeners.set(event, (list = []));
        list.push(fn);
        return this;
    }
    off(event, fn) {
        const list = this._listeners.get(event);
        if (!list) return this;
        const i = fn === undefined ? -1 : list.lastIndexOf(fn);
        if (fn === undefined) this._listeners.delete(event);
        else if (i >= 0) {
            // Copy so an emit in progress keeps its own list.
            const next = list.slice();
            next.splice(i, 1);
            if (next.length) this._listeners.set(event, next);
            else this._listeners.delete(event);
        }
        return this;
    }
    once(event, fn) {
        const wrapper = (...args) => {
            this.off(event, wrapper);
            fn.apply(this, args);
        };
        return this.on(event, wrapper);
    }
    listens(event) {
        const list = this._listeners.get(event);
        return list !== undefined && list.length > 0;
    }
    emit(event, ...args) {
        const list = this._listeners.get(event);
        if (!list) return false;
        for (const fn of list.slice()) {
            try {
                fn.apply(this, args);
            } catch (e) {
                // A throwing listener must not break the protocol code that
                // called it; report it as an uncaught error, later.
                setTimeout(() => {
                    throw e;
                }, 0);
            }
        }
        return true;
    }
}

// ---------------------------------------------------------------------------
// 7. IdbStore: optional persistence in IndexedDB
// ---------------------------------------------------------------------------
//
// One database "distmap" with two object stores:
//   entries: key [storeKey, mapKey] -> Uint8Array, one entry in wire format
//   meta:    "peer <relay url>" -> peer id (16 hex digits)
//            "clock <storeKey>" -> the map clock's `last` (decimal string)
// storeKey is "<relay url without query> <map URI>". A write keeps the
// greater (hlc, writer) of what is stored and what it writes, so two tabs
// of one origin storing the same map never replace a newer write with an
// older one.

const IDB_NAME = "distmap";
let idbPromise = null;

function idbAvailable() {
    return typeof indexedDB !== "undefined" && indexedDB !== null;
}

function idbRequest(req) {
    return new Promise((resolve, reject) => {
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
    });
}

function openIdb() {
    if (!idbPromise) {
        idbPromise = new Promise((resolve, reject) => {
            const req = indexedDB.open(IDB_NAME, 1);
            req.onupgradeneeded = () => {
                const db = req.result;
                if (!db.objectStoreNames.contains("entries")) db.createObjectStore("entries");
                if (!db.objectStoreNames.contains("meta")) db.createObjectStore("meta");
            };
            req.onsuccess = () => resolve(req.result);
            req.onerror = () => reject(req.error);
            req.onblocked = () => reject(new Error("IndexedDB open blocked by another tab"));
        });
        idbPromise.catch(() => (idbPromise = null));
    }
    return idbPromise;
}

function storedOrder(stored, e) {
    const dv = new DataView(stored.buffer, stored.byteOffset, stored.byteLength);
    return compareWrites({ hlc: dv.getBigUint64(1, true), writer: dv.getBigUint64(9, true) }, e);
}

class IdbStore {
    constructor(db, storeKey, peerKey) {
        this.db = db;
        this.storeKey = storeKey;
        this.peerKey = peerKey;
    }

    static async open(storeKey, peerKey) {
        return new IdbStore(await openIdb(), storeKey, peerKey);
    }

    /** { peer: hex|null, clock: BigInt, records: Uint8Array[] } */
    async load() {
        const tx = this.db.transaction(["entries", "meta"], "readonly");
        const meta = tx.objectStore("meta");
        const range = IDBKeyRange.bound([this.storeKey], [this.storeKey, []]);
        const [peer, clock, records] = await Promise.all([
            idbRequest(meta.get("peer " + this.peerKey)),
            idbRequest(meta.get("clock " + this.storeKey)),
            idbRequest(tx.objectStore("entries").getAll(range)),
        ]);
        let last = 0n;
        try {
            if (typeof clock === "string") last = BigInt(clock);
        } catch {
            last = 0n;
        }
        return { peer: typeof peer === "string" ? peer : null, clock: last, records: records ?? [] };
    }

    async savePeer(hex) {
        const tx = this.db.transaction(["meta"], "readwrite");
        tx.objectStore("meta").put(hex, "peer " + this.peerKey);
        await this._done(tx);
    }

    /** Stores `puts` (current entries), removes `drops` (forgotten ones), records the clock. */
    write(puts, drops, clock) {
        const tx = this.db.transaction(["entries", "meta"], "readwrite", { durability: "strict" });
        const store = tx.objectStore("entries");
        for (const e of puts) {
            const k = [this.storeKey, e.key];
            const req = store.get(k);
            req.onsuccess = () => {
                const old = req.result;
                if (!(old instanceof Uint8Array) || storedOrder(old, e) < 0) store.put(encodeEntry(e), k);
            };
        }
        for (const e of drops) {
            const k = [this.storeKey, e.key];
            const req = store.get(k);
            req.onsuccess = () => {
                const old = req.result;
                if (old instanceof Uint8Array && storedOrder(old, e) === 0) store.delete(k);
            };
        }
        tx.objectStore("meta").put(clock.toString(), "clock " + this.storeKey);
        return this._done(tx);
    }

    _done(tx) {
        return new Promise((resolve, reject) => {
            tx.oncomplete = () => resolve();
            tx.onerror = () => reject(tx.error);
            tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
        });
    }
}

// ---------------------------------------------------------------------------
// 8. Connection
// ---------------------------------------------------------------------------

const RELAY_ERRORS = {
    1: "bad-message",
    2: "unknown-type",
    3: "unsupported-version",
    4: "handshake-required",
    5: "unknown-map",
    6: "too-large",
    7: "duplicate-peer",
    8: "unauthorized",
    9: "read-only",
    10: "rate-limited",
    11: "already-open",
    12: "unknown-peer",
    13: "backlog",
    14: "server-full",
};

// A token goes in the subprotocol when it is a valid HTTP token (RFC 7230
// tchar), else in the query (a browser refuses other subprotocol names).
const TCHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * connect(url, options) -> Connection. Options:
 *   name:      display name, sent as presence {name} in every map (default none)
 *   presence:  presence object for every map (overrides name)
 *   token:     access token (section 3), sent as subprotocol distmap.token.TOKEN
 *   WebSocket: the WebSocket class (Node: the `ws` package's); default the global one
 *   peer:      peer id to request (BigInt or 16 hex digits); default random
 *   reconnect: { minDelay: 250, maxDelay: 10000 } ms, exponential with jitter
 *   heartbeat: ms between `ping`s; a connection that hears nothing for twice
 *              that is dropped and reopened (default 15000, 0 turns it off)
 *   handshakeTimeout: ms from opening a socket to the relay's welcome before
 *              the attempt is dropped and the next one made (default 10000,
 *              0 waits as long as the socket does)
 */
export function connect(url, options = {}) {
    return new Connection(url, options);
}

export class Connection extends Emitter {
    constructor(url, options = {}) {
        super();
        const WS = options.WebSocket ?? globalThis.WebSocket;
        if (typeof WS !== "function")
            throw new TypeError("no WebSocket class: in Node pass connect(url, { WebSocket }) from the `ws` package");
        this.url = String(url);
        this._WebSocket = WS;
        this._token = options.token ?? null;
        this.presence = options.presence ?? (options.name !== undefined ? { name: String(options.name) } : undefined);
        this._peerExplicit = options.peer !== undefined;
        this._peer = this._peerExplicit ? toPeerId(options.peer) : randomPeerId();
        if (this._peer === null) throw new TypeError("peer must be a non-zero 64-bit id (BigInt or 16 hex digits)");
        this._reconnect = { minDelay: 250, maxDelay: 10000, ...(options.reconnect ?? {}) };
        this._heartbeatMs = options.heartbeat ?? 15000;
        this._handshakeMs = options.handshakeTimeout ?? 10000;
        this._handshakeTimer = null;
        this.status = "connecting";
        this.maxMessage = DEFAULT_MAX_MESSAGE;
        this.clockOffset = 0; // relay time - own time, ms (section 7)
        this.relayTime = null;
        this._maps = new Map(); // uri -> map
        this._byId = new Map(); // map id -> map
        this._ws = null;
        this._welcomed = false; // on the current socket
        this._everWelcomed = false;
        this._attempt = 0;
        this._retryTimer = null;
        this._heartbeatTimer = null;
        this._lastHeard = 0;
        this._holds = new Set();
        this._pingSeq = 0;
        this._pings = new Map();
        this._fatal = false;
        this._epoch = 0; // counts sockets, so late callbacks of an old one are ignored
        this._openSocket();
    }

    /** This connection's peer id (BigInt), the writer id of its writes. */
    get peer() {
        return this._peer;
    }
    get peerHex() {
        return peerToHex(this._peer);
    }
    get connected() {
        return this._welcomed;
    }

    /** Closes the connection for good: no reconnect. Maps stay readable. */
    close() {
        if (this.status === "closed") return;
        for (const map of [...this._maps.values()]) map._connectionClosing();
        this._clearTimers();
        const ws = this._ws;
        this._ws = null;
        this._epoch++;
        if (ws) {
            this._detach(ws);
            try {
                ws.close(1000);
            } catch {
                /* already closed */
            }
        }
        const was = this._welcomed;
        this._welcomed = false;
        if (was) for (const map of this._maps.values()) map._onDisconnected();
        for (const { reject } of this._pings.values()) reject(new DistmapError("Closed", "connection closed"));
        this._pings.clear();
        this._setStatus("closed");
    }

    /** Sends a `ping` (section 4.1); resolves with the round trip in ms. */
    ping() {
        return new Promise((resolve, reject) => {
            if (!this._welcomed) return reject(new DistmapError("NotConnected", "not connected"));
            const seq = ++this._pingSeq;
            const sent = Date.now();
            this._pings.set(seq, { resolve: () => resolve(Date.now() - sent), reject });
            this._sendControl({ type: "ping", seq });
        });
    }

    // --- internals used by DistributedMap ---------------------------------

    _register(map) {
        this._maps.set(map.uri, map);
        if (this._welcomed) map._open();
    }

    _unregister(map) {
        if (this._maps.get(map.uri) === map) this._maps.delete(map.uri);
        if (map._id !== null && this._byId.get(map._id) === map) this._byId.delete(map._id);
    }

    _unbindId(map, id) {
        if (this._byId.get(id) === map) this._byId.delete(id);
    }

    _bindId(map, id) {
        for (const [other, m] of this._byId) if (m === map) this._byId.delete(other);
        this._byId.set(id, map);
    }

    // A persisted map delays the first hello until it has read the peer id
    // it stored (at most 3 s), so the tab writes under the same id.
    _hold(promise) {
        const p = Promise.race([promise.catch(() => {}), new Promise((r) => setTimeout(r, 3000))]);
        this._holds.add(p);
        p.then(() => {
            this._holds.delete(p);
            if (this._holds.size === 0 && this._ws && this._ws.readyState === 1 && !this._helloSent) this._sendHello();
        });
    }

    // Adopts a stored peer id if nothing has claimed one yet.
    _adoptPeer(id) {
        if (this._peerExplicit || this._everWelcomed || this._helloSent || this._peerAdopted) return false;
        this._peer = id;
        this._peerAdopted = true;
        return true;
    }

    _sendControl(obj) {
        return this._sendRaw(JSON.stringify(obj));
    }

    _sendBinary(bytes) {
        if (bytes.length > this.maxMessage) {
            // Never reached by design (every builder splits below the
            // limit); sending would only get the connection closed (1009).
            this.emit("error", new DistmapError("TooLarge", `refusing to send ${bytes.length} bytes (limit ${this.maxMessage})`));
            return false;
        }
        return this._sendRaw(bytes);
    }

    _sendRaw(data) {
        const ws = this._ws;
        if (!ws || ws.readyState !== 1) return false;
        try {
            ws.send(data);
            return true;
        } catch (e) {
            this._error("Socket", `send failed: ${e && e.message ? e.message : e}`);
            return false;
        }
    }

    // --- socket -----------------------------------------------------------

    _socketUrlAndProtocols() {
        let url = this.url;
        let protocols;
        if (this._token !== null && this._token !== undefined && this._token !== "") {
            const token = String(this._token);
            if (TCHARS.test(token)) protocols = ["distmap", "distmap.token." + token];
            else url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
        }
        return { url, protocols };
    }

    _openSocket() {
        this._retryTimer = null;
        if (this.status === "closed") return;
        const epoch = ++this._epoch;
        this._helloSent = false;
        this._welcomed = false;
        const { url, protocols } = this._socketUrlAndProtocols();
        let ws;
        try {
            ws = protocols ? new this._WebSocket(url, protocols) : new this._WebSocket(url);
        } catch (e) {
            this._error("Socket", `cannot open ${this.url}: ${e && e.message ? e.message : e}`);
            this._scheduleReconnect();
            return;
        }
        this._ws = ws;
        this._armHandshakeTimer();
        // `ws` hands out Buffers by default (no copy); browsers need arraybuffer.
        if (ws.binaryType !== "nodebuffer") ws.binaryType = "arraybuffer";
        ws.onopen = () => {
            if (epoch !== this._epoch) return;
            if (this._holds.size === 0) this._sendHello();
        };
        ws.onmessage = (ev) => {
            if (epoch !== this._epoch) return;
            this._lastHeard = Date.now();
            try {
                if (typeof ev.data === "string") this._onControl(ev.data);
                else this._onBinary(toU8(ev.data));
            } catch (e) {
                // Bad input never escapes the socket handler.
                this._error("Internal", `error handling a message: ${e && e.stack ? e.stack : e}`);
            }
        };
        ws.onerror = (ev) => {
            if (epoch !== this._epoch) return;
            this._lastSocketError = ev && ev.message ? ev.message : "WebSocket error";
        };
        ws.onclose = (ev) => {
            if (epoch !== this._epoch) return;
            this._onSocketClosed(ev ? ev.code : 1006, ev ? ev.reason : "");
        };
    }

    _detach(ws) {
        ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
        if (typeof ws.on === "function") ws.on("error", () => {}); // ws: no unhandled error after detaching
    }

    // A relay that accepts and never answers, or lost packets, would
    // otherwise hold an attempt for as long as TCP waits. Armed when the
    // socket opens and again at hello: an open socket whose hello we hold
    // (a store still loading) is not the relay being late.
    _armHandshakeTimer() {
        if (this._handshakeTimer) clearTimeout(this._handshakeTimer);
        this._handshakeTimer = null;
        if (!(this._handshakeMs > 0)) return;
        const epoch = this._epoch;
        const ws = this._ws;
        this._handshakeTimer = setTimeout(() => {
            this._handshakeTimer = null;
            if (epoch !== this._epoch || this._welcomed) return;
            if (!this._helloSent && ws.readyState === 1) return;
            this._lastSocketError = `no welcome within ${this._handshakeMs} ms; trying again`;
            this._onSocketClosed(4000, "handshake timeout");
            try {
                ws.close();
            } catch {
                /* not open yet: dropped with the socket */
            }
        }, this._handshakeMs);
    }

    _sendHello() {
        this._helloSent = true;
        this._armHandshakeTimer();
        this._sendControl({ type: "hello", version: PROTOCOL_VERSION, peer: peerToHex(this._peer), time: Date.now() });
    }

    _onSocketClosed(code, reason) {
        const ws = this._ws;
        this._ws = null;
        if (this._handshakeTimer) clearTimeout(this._handshakeTimer);
        this._handshakeTimer = null;
        if (ws) this._detach(ws);
        this._stopHeartbeat();
        const was = this._welcomed;
        this._welcomed = false;
        if (was) for (const map of this._maps.values()) map._onDisconnected();
        for (const { reject } of this._pings.values()) reject(new DistmapError("Disconnected", "connection lost"));
        this._pings.clear();
        if (this.status === "closed") return;
        if (!was && code !== 1000 && !this._fatal) {
            const why = this._lastSocketError ? `: ${this._lastSocketError}` : "";
            this._error("Socket", `connection to ${this.url} closed (${code}${reason ? " " + reason : ""})${why}`, { closeCode: code });
        } else if (code === 1009) {
            this._error("TooLarge", "the relay closed the connection: a message was over its limit (1009)", { closeCode: code });
        }
        this._lastSocketError = undefined;
        if (this._fatal) {
            this._setStatus("closed");
            return;
        }
        this._scheduleReconnect();
    }

    _scheduleReconnect() {
        if (this.status === "closed") return;
        this._setStatus("reconnecting");
        const { minDelay, maxDelay } = this._reconnect;
        const base = Math.min(maxDelay, minDelay * 2 ** Math.min(this._attempt, 20));
        this._attempt++;
        const delay = Math.round(base * (0.5 + Math.random() * 0.5));
        this._retryTimer = setTimeout(() => this._openSocket(), delay);
    }

    _setStatus(status) {
        if (this.status === status) return;
        this.status = status;
        this.emit("status", status);
    }

    _error(code, message, extra) {
        this.emit("error", new DistmapError(code, message, extra));
    }

    _clearTimers() {
        if (this._retryTimer) clearTimeout(this._retryTimer);
        this._retryTimer = null;
        if (this._handshakeTimer) clearTimeout(this._handshakeTimer);
        this._handshakeTimer = null;
        this._stopHeartbeat();
    }

    _startHeartbeat() {
        this._stopHeartbeat();
        if (!this._heartbeatMs) return;
        this._lastHeard = Date.now();
        this._heartbeatTimer = setInterval(() => {
            if (!this._welcomed) return;
            if (Date.now() - this._lastHeard > 2 * this._heartbeatMs) {
                // Nothing heard, not even a pong: presumed gone (a half-open link).
                const ws = this._ws;
                this._onSocketClosed(4000, "heartbeat timeout");
                try {
                    ws && ws.close(4000, "heartbeat timeout");
                } catch {
                    /* ignore */
                }
                return;
            }
            this._sendControl({ type: "ping", seq: ++this._pingSeq });
        }, this._heartbeatMs);
    }

    _stopHeartbeat() {
        if (this._heartbeatTimer) clearInterval(this._heartbeatTimer);
        this._heartbeatTimer = null;
    }

    // --- control messages (section 4) --------------------------------------

    _onControl(text) {
        let msg;
        try {
            msg = JSON.parse(text);
        } catch {
            this._error("BadMessage", "a control message is not JSON");
            return;
        }
        if (msg === null || typeof msg !== "object" || Array.isArray(msg) || typeof msg.type !== "string") {
            this._error("BadMessage", "a control message is not an object with a string type");
            return;
        }
        if (!this._welcomed) {
            if (msg.type === "welcome") this._onWelcome(msg);
            else if (msg.type === "error") this._onRelayError(msg);
            // Anything else before welcome is ignored.
            return;
        }
        const map = Number.isInteger(msg.id) ? this._byId.get(msg.id) : undefined;
        switch (msg.type) {
            case "opened": {
                const m = typeof msg.map === "string" ? this._maps.get(msg.map) : undefined;
                if (m && Number.isInteger(msg.id) && msg.id >= 0 && msg.id <= 0xffffffff) m._onOpened(msg);
                break;
            }
            case "joined":
                if (map) map._onJoined(msg);
                break;
            case "left":
                if (map) map._onLeft(msg);
                break;
            case "presence":
                if (map) map._onPresence(msg);
                break;
            case "alone":
                if (map) map._onAlone(msg);
                break;
            case "verify":
                // The relay may have lost messages of this map (section 4.2).
                if (map) map._onRelayVerify();
                break;
            case "pong": {
                const p = this._pings.get(msg.seq);
                if (p) {
                    this._pings.delete(msg.seq);
                    p.resolve();
                }
                break;
            }
            case "error":
                this._onRelayError(msg);
                break;
            default:
                // New control types may appear within version 1 (section 12):
                // ignored, not an error.
                break;
        }
    }

    _onWelcome(msg) {
        if (msg.version !== undefined && msg.version !== PROTOCOL_VERSION) {
            this._error("UnsupportedVersion", `relay speaks version ${msg.version}`);
        }
        const peer = peerFromHex(msg.peer);
        if (peer !== null) this._peer = peer;
        // time: an integer within a signed 64-bit range, else unknown (section 3).
        const t = msg.time;
        if (typeof t === "number" && Number.isInteger(t) && Math.abs(t) < 2 ** 63) {
            this.clockOffset = t - Date.now();
            this.relayTime = t;
        }
        const max = msg.maxMessage;
        this.maxMessage = typeof max === "number" && Number.isInteger(max) && max > 0 ? max : DEFAULT_MAX_MESSAGE;
        if (this._handshakeTimer) clearTimeout(this._handshakeTimer);
        this._handshakeTimer = null;
        this._welcomed = true;
        this._everWelcomed = true;
        this._attempt = 0;
        this._setStatus("connected");
        this._startHeartbeat();
        for (const map of this._maps.values()) map._onWelcome();
        for (const map of this._maps.values()) map._open();
    }

    _onRelayError(msg) {
        const code = Number.isInteger(msg.code) ? msg.code : 0;
        const name = typeof msg.name === "string" ? msg.name : RELAY_ERRORS[code] ?? "unknown";
        const text = typeof msg.message === "string" ? msg.message : name;
        const extra = { relayCode: code, relayName: name };
        // Route to the map it concerns: by id, or by URI for a refused open.
        let map = Number.isInteger(msg.id) ? this._byId.get(msg.id) : undefined;
        if (!map && typeof msg.map === "string") map = this._maps.get(msg.map);
        if (map && code !== 7 && code !== 3 && code !== 4) {
            map._onRelayError(code, name, text, extra);
            return;
        }
        switch (code) {
            case 3: // unsupported-version: retrying cannot help
                this._fatal = true;
                this._error("UnsupportedVersion", text, extra);
                break;
            case 7: // duplicate-peer: another tab or process has our id
                this._error("DuplicatePeer", text, extra);
                if (!this._peerExplicit) {
                    this._peer = randomPeerId();
                    this._attempt = 0;
                }
                break;
            case 8:
                this._error("Unauthorized", text, extra);
                break;
            default:
                this._error("Relay", `${name}: ${text}`, extra);
        }
    }

    _onBinary(u8) {
        if (!this._welcomed) return;
        if (u8.length < HEADER_SIZE) {
            this._error("BadMessage", "a routed message is shorter than its header");
            return;
        }
        const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
        const mapId = dv.getUint32(4, true);
        const map = this._byId.get(mapId);
        if (!map) return; // a map we just closed
        map._onRouted(u8, dv);
    }
}

// ---------------------------------------------------------------------------
// 9. DistributedMap
// ---------------------------------------------------------------------------

const DAY_MS = 24 * 3600 * 1000;

// What the joiner asks for (section 8 step 2).
const MODE_FULL = "full";
const MODE_CATCHUP = "catch-up";
const MODE_REJOIN = "rejoin";
const MODE_VERIFY = "verify";

/**
 * DistributedMap(connection, uri, options) -> the replica of map `uri`
 * (works with or without `new`; a second call for the same URI on the same
 * connection returns the first map). Options:
 *   presence: this map's presence object (default the connection's)
 *   persist: true stores the map in IndexedDB (browsers); in Node an
 *            "error" event (code PersistenceUnavailable) says it cannot
 *   writeAcknowledgements: ask peers to confirm our writes (section 8.1)
 *   antiEntropyInterval: ms between verify rounds while ready (30000; 0: off)
 *   syncTimeout: ms without a chunk before a sync is asked again (2000)
 *   firstChunkGrace: ms more before the first chunk (3000)
 *   tombstoneRetention: ms (7 days; 0: forever). A peer that heard nothing
 *                for longer rejoins (section 8 step 2); with persist,
 *                older tombstones are collected
 *   persistBatchMs: how long writes gather before one IndexedDB
 *                transaction (100)
 *
 * Events: ready(map) once, after the first sync; synced(map, {reason})
 * after every sync that completes: reason "first" (the first one, right
 * after ready), "reconnect" (the sync after every later `opened`: a
 * reconnect, or a reopen), "verify" (an anti-entropy round, one asked by
 * verify() or by the relay's `verify`); opened({access, id, peers, map})
 * each time the relay answers `opened` (access "rw" or "ro", also
 * map.access), before the sync starts; stored(map) each time an IndexedDB
 * write has committed (persist: true; see flush()); set(value, key, map, info) and delete(oldValue, key, map, info) for
 * another peer's writes (a write that loses emits nothing; the `state`
 * argument is the map itself); change(change) for every change, ours
 * too; peerJoined(peer), peerLeft(peer), presence(peer); error(DistmapError);
 * writeAcknowledged(key, peers, durable), writeSuperseded(key); loaded(map)
 * when a persisted map has read its store. `info` is { writer, hlc, origin }:
 * writer and origin as 16 hex digits, hlc a BigInt. A map without "error"
 * listeners passes its errors to the connection's.
 */
export function DistributedMap(connection, uri, options) {
    if (!(connection instanceof Connection)) throw new TypeError("DistributedMap needs a Connection from connect()");
    if (typeof uri !== "string" || uri.length === 0 || utf8Length(uri) > 1024 || !isWellFormed(uri))
        throw new TypeError("a map URI is a non-empty string of at most 1024 UTF-8 bytes");
    const existing = connection._maps.get(uri);
    if (existing && !existing._closed) return existing;
    return new DistributedMapImpl(connection, uri, options ?? {});
}

class DistributedMapImpl extends Emitter {
    constructor(connection, uri, options) {
        super();
        this.connection = connection;
        this.uri = uri;
        this._options = options;
        this._presence = options.presence;
        this._acks = !!options.writeAcknowledgements;
        this._antiEntropyMs = options.antiEntropyInterval ?? 30000;
        this._syncTimeoutMs = options.syncTimeout ?? 2000;
        // Added before the first chunk: the relay may hold a request 3 s
        // while a member finishes its own sync (section 8 steps 3 and 8).
        this._firstChunkGraceMs = options.firstChunkGrace ?? 3000;
        this._retentionMs = options.tombstoneRetention ?? 7 * DAY_MS;
        this._persistBatchMs = options.persistBatchMs ?? 100;

        this._state = new MapState();
        this._clock = new HybridClock(() => Date.now() + connection.clockOffset);

        this._id = null; // map id while open on the current connection
        this._access = null; // "rw" | "ro"
        this._opening = false;
        this._closed = false;
        this._isReady = false; // first sync done (or alone)
        this._syncReason = "first"; // why the sync in progress runs: first | reconnect | verify
        this._verifyPending = false; // a verify asked while a round ran
        this._peers = new Map(); // hex -> {peer, name, presence}
        this._heard = 0n; // H: greatest hlc received over the network

        // Joiner.
        this._sync = null; // the round in progress
        this._syncCounter = randomU32() >>> 8; // syncIds: new for every attempt
        this._candidates = new Map(); // key -> entry noted for the push back
        this._rejoin = null; // { heard, known: Set } while a rejoin is unfinished
        this._syncTimer = null;
        this._antiEntropyTimer = null;

        // Responder sessions, one per requester (hex).
        this._sessions = new Map();

        // Writes of this event-loop turn, sent as one Delta.
        this._batch = new Map();
        this._flushScheduled = false;

        // Write acknowledgements, as writer: key -> {entry, peers: Set(hex)}.
        this._unconfirmed = new Map();
        this._unconfirmedByHlc = new Map();

        // Persistence.
        this._store = null;
        this._storeFailed = false;
        this._dirty = new Map(); // key -> true: changed since the last store write
        this._dropped = new Map(); // key -> entry forgotten without a tombstone
        this._storeSeq = 0; // counts changes
        this._durableSeq = 0; // changes covered by a finished store write
        this._storeTimer = null;
        this._storeWriting = false;
        this._pendingAcks = []; // durable acks waiting for the store
        this._flushWaiters = []; // flush() promises: { seq, resolve, reject }
        this._loading = false;
        this._writtenWhileLoading = null;
        this._gcTimer = null;

        if (options.persist) this._startPersistence();
        else connection._register(this);
    }

    // --- reading -------------------------------------------------------------

    get size() {
        return this._state.live;
    }
    get isReady() {
        return this._isReady;
    }
    /** "rw", "ro", or null before the relay said (the last `opened`'s; kept while offline). */
    get access() {
        return this._access;
    }
    /** Whether a sync round (first, after a reconnect, or verify) is running. */
    get syncing() {
        return this._sync !== null;
    }
    /** The other peers of the map network: [{ peer, name, presence }]. */
    get peers() {
        return [...this._peers.values()];
    }
    /** How many of our writes wait for a confirmation (section 8.1). */
    get unconfirmedWrites() {
        return this._unconfirmed.size;
    }
    get writeAcknowledgements() {
        return this._acks;
    }

    get(key) {
        const v = this._state.valueOf(key);
        return v === undefined || v === null ? undefined : parseValue(v);
    }
    has(key) {
        return this._state.hasValue(key);
    }
    keys() {
        const out = [];
        this._state.forEachLiveKey((key) => out.push(key));
        return out;
    }
    values() {
        const out = [];
        this._state.forEachLive((v) => out.push(parseValue(v)));
        return out;
    }
    entries() {
        const out = [];
        this._state.forEachLive((v, key) => out.push([key, parseValue(v)]));
        return out;
    }
    forEach(fn) {
        this._state.forEachLive((v, key) => fn(parseValue(v), key, this));
    }
    [Symbol.iterator]() {
        return this.entries()[Symbol.iterator]();
    }
    toObject() {
        return Object.fromEntries(this.entries());
    }
    /** The JSON text of a key's value exactly as stored (undefined when absent). */
    getText(key) {
        const v = this._state.valueOf(key);
        if (v === undefined || v === null) return undefined;
        return typeof v === "string" ? v : lenientDecoder.decode(v);
    }
    /** The current write of a key, tombstones included: an Entry {key, hlc, writer, value: JSON text (string or bytes) | null}. */
    getEntry(key) {
        return this._state.get(key);
    }

    /** Calls fn(map) once the first sync is done: at once if it is. */
    ready(fn) {
        if (this._isReady) fn.call(this, this);
        else this.once("ready", fn);
        return this;
    }
    /** A promise of the first sync. */
    whenReady() {
        return new Promise((resolve) => this.ready(resolve));
    }

    // --- writing -------------------------------------------------------------

    /**
     * Sets key to a JSON value. Applies at once, also before ready and
     * offline; reaches the network when it can. Returns false (and emits an
     * "error") when the write cannot be made: too large for the relay
     * (TooLarge), a read-only map (ReadOnly).
     */
    set(key, value) {
        const keyBytes = checkKey(key);
        const text = JSON.stringify(value); // well-formed: lone surrogates come out escaped
        if (typeof text !== "string") throw new TypeError("value is not a JSON value");
        return this._write(key, keyBytes, text);
    }

    /** Sets key to a value given as JSON text (stored byte for byte). */
    setText(key, json) {
        const keyBytes = checkKey(key);
        if (typeof json !== "string" || json.length === 0) throw new TypeError("JSON text must be a non-empty string");
        if (!isWellFormed(json)) throw new TypeError("JSON text has a lone surrogate");
        return this._write(key, keyBytes, json);
    }

    /** Deletes key (a tombstone). Returns whether the key held a value. */
    delete(key) {
        const keyBytes = checkKey(key);
        if (!this._state.hasValue(key)) return false;
        return this._write(key, keyBytes, null);
    }

    _write(key, keyBytes, value) {
        if (this._closed) throw new Error("the map is closed");
        if (keyBytes > MAX_KEY_BYTES) {
            this._error("TooLarge", `key of ${keyBytes} bytes is over ${MAX_KEY_BYTES}`);
            return false;
        }
        // A string's UTF-8 is at most 3 bytes per UTF-16 unit: count only
        // when that bound does not fit.
        if (value !== null && HEADER_SIZE + ENTRY_FIXED + 4 + keyBytes + 3 * value.length > Math.min(this.connection.maxMessage, MAX_VALUE_BYTES)) {
            const bytes = valueLength(value);
            const size = HEADER_SIZE + ENTRY_FIXED + keyBytes + 4 + bytes;
            if (bytes > MAX_VALUE_BYTES || size > this.connection.maxMessage) {
                this._error("TooLarge", `a write of ${size} bytes does not fit the relay's limit of ${this.connection.maxMessage}`);
                return false;
            }
        }
        if (this._access === "ro") {
            this._error("ReadOnly", `the relay grants ${this.uri} read-only`);
            return false;
        }
        const hlc = this._clock.tick(this._state.hlcOf(key));
        if (hlc === null) {
            this._error("ClockOverflow", `${key}: the current write carries the greatest hlc; no write can beat it`);
            return false;
        }
        const e = new Entry(key, hlc, this.connection.peer, value);
        this._state.apply(e);
        const previousValue = this.listens("change") ? this._state.previousValue : undefined;
        if (this._loading) this._writtenWhileLoading.add(key);
        this._markDirty(key);
        if (this._acks) this._track(e);
        if (this._id !== null && this.connection._welcomed) {
            this._batch.set(key, e);
            if (!this._flushScheduled) {
                this._flushScheduled = true;
                nextTurn(() => this._flush());
            }
        }
        if (this.listens("change")) this._emitChange(e, previousValue, true, this.connection.peer);
        return true;
    }

    /**
     * Sends the writes queued in this event-loop turn now (as one Delta)
     * instead of at the end of the turn, and returns a promise that
     * resolves once every change made so far is committed to IndexedDB
     * (persist: true): at once when the map stores nothing (no persist, or
     * no IndexedDB). It rejects (DistmapError, code Persistence) when the
     * store cannot be opened or a write to it fails.
     */
    flush() {
        if (!this._closed) this._flush();
        if (this._storeFailed && this._store === null && !this._loading)
            return Promise.reject(new DistmapError("Persistence", "the IndexedDB store could not be opened", { map: this.uri }));
        if (this._store === null && !this._loading) return Promise.resolve();
        return new Promise((resolve, reject) => {
            this._flushWaiters.push({ seq: null, resolve, reject });
            this._settleFlushes();
        });
    }

    // Gives flush() waiters their target (the change count when the store
    // is open) and resolves those the store has covered.
    _settleFlushes() {
        if (this._flushWaiters.length === 0 || this._store === null) return;
        let waiting = false;
        const keep = [];
        for (const w of this._flushWaiters) {
            if (w.seq === null) w.seq = this._storeSeq;
            if (w.seq <= this._durableSeq) w.resolve();
            else {
                keep.push(w);
                waiting = true;
            }
        }
        this._flushWaiters = keep;
        if (waiting) this._scheduleStore(0);
    }

    _rejectFlushes(err) {
        for (const w of this._flushWaiters.splice(0)) w.reject(err);
    }

    /**
     * Starts a verify round (section 8 step 9: digests compared with a
     * peer, differences repaired both ways) now. While another round runs,
     * it starts when that one ends. Returns false (and does nothing) when
     * the map is not ready or not open on a connection.
     */
    verify() {
        if (this._closed || !this._isReady || this._id === null || !this.connection._welcomed) return false;
        if (this._sync !== null) {
            // A catch-up round is followed by a verify round anyway.
            if (this._sync.mode !== MODE_CATCHUP) this._verifyPending = true;
            return true;
        }
        this._syncReason = "verify";
        this._startSync(true);
        return true;
    }

    // The relay's `verify` (section 4.2): a peer not ready yet ignores it,
    // its sync is about to compare anyway.
    _onRelayVerify() {
        this.verify();
    }

    setWriteAcknowledgements(on) {
        this._acks = !!on;
        if (!on) {
            this._unconfirmed.clear();
            this._unconfirmedByHlc.clear();
        }
    }

    /** Replaces this peer's presence in the map (section 4.1). */
    setPresence(presence) {
        this._presence = presence;
        if (this._id !== null) this.connection._sendControl({ type: "presence", id: this._id, presence: presence ?? {} });
    }

    /** Leaves the map network; the map stays readable. */
    close() {
        if (this._closed) return;
        this._flush();
        if (this._id !== null && this.connection._welcomed) this.connection._sendControl({ type: "close", id: this._id });
        this._onDisconnected();
        this._closed = true;
        this.connection._unregister(this);
        this._stopTimers();
        if (this._store && this._dirty.size + this._dropped.size > 0) this._writeStore();
    }

    // --- connection events -----------------------------------------------------

    _onWelcome() {
        // The relay's clock may have moved: nothing to do, the clock reads
        // connection.clockOffset on every tick.
    }

    _open() {
        if (this._closed || this._opening || this._id !== null || this._loading) return;
        this._opening = true;
        const presence = this._presence ?? this.connection.presence;
        const msg = { type: "open", map: this.uri };
        if (presence !== undefined) msg.presence = presence;
        this.connection._sendControl(msg);
    }

    _onOpened(msg) {
        if (!this._opening) return;
        this._opening = false;
        this._id = msg.id;
        this._access = msg.access === "ro" ? "ro" : "rw";
        this.connection._bindId(this, msg.id);
        const list = Array.isArray(msg.peers) ? msg.peers : [];
        for (const p of list) this._addPeer(p && p.peer, p && p.presence, true);
        this._syncReason = this._isReady ? "reconnect" : "first";
        this._verifyPending = false; // the sync that starts now compares anyway
        this.emit("opened", { access: this._access, id: this._id, peers: this.peers, map: this });
        if (this._id === null || this._sync !== null) return; // a listener closed the map, or started a verify round
        this._startSync(false);
    }

    _onDisconnected() {
        this._opening = false;
        if (this._id !== null) this.connection._unbindId(this, this._id);
        this._id = null;
        this._batch.clear();
        this._sessions.clear();
        this._pendingAcks = [];
        this._endRoundTimers();
        this._sync = null; // candidates and an unfinished rejoin carry over
        this._verifyPending = false;
        if (this._antiEntropyTimer) clearTimeout(this._antiEntropyTimer);
        this._antiEntropyTimer = null;
        for (const p of [...this._peers.values()]) {
            this._peers.delete(p.peer);
            this.emit("peerLeft", p);
        }
    }

    _connectionClosing() {
        this._flush();
        if (this._gcTimer) clearInterval(this._gcTimer);
        this._gcTimer = null;
        if (this._store && this._dirty.size + this._dropped.size > 0) {
            if (this._storeTimer) clearTimeout(this._storeTimer);
            this._writeStore();
        }
    }

    _onJoined(msg) {
        this._addPeer(msg.peer, msg.presence, true);
        // Section 8.1: unconfirmed writes go again whenever a peer joins.
        this._resendUnconfirmed();
    }

    _onLeft(msg) {
        const hex = typeof msg.peer === "string" ? msg.peer : null;
        if (hex === null) return;
        this._sessions.delete(hex);
        const p = this._peers.get(hex);
        if (p) {
            this._peers.delete(hex);
            this.emit("peerLeft", p);
        }
        // Our responder left after its first chunk: ask again (step 8).
        if (this._sync && this._sync.responder === hex) this._restartSync();
    }

    _onPresence(msg) {
        const p = this._peers.get(msg.peer);
        if (!p) return;
        p.presence = msg.presence;
        p.name = msg.presence && typeof msg.presence.name === "string" ? msg.presence.name : undefined;
        this.emit("presence", p);
    }

    _addPeer(hex, presence, announce) {
        if (peerFromHex(hex) === null || this._peers.has(hex)) return;
        const p = { peer: hex, name: presence && typeof presence.name === "string" ? presence.name : undefined, presence };
        this._peers.set(hex, p);
        if (announce) this.emit("peerJoined", p);
    }

    _onRelayError(code, name, text, extra) {
        if (code === 8 || code === 11 || code === 1 || code === 6) {
            // An open refused (unauthorized, already-open, bad-message,
            // too-large presence): it stays refused until the next connect.
            if (this._opening) this._opening = false;
        }
        // unknown-peer: a target that just left, a normal race (section 6).
        if (code === 12) return;
        const codes = { 8: "Unauthorized", 9: "ReadOnly" };
        this._error(codes[code] ?? "Relay", `${name}: ${text}`, extra);
    }

    _onAlone(msg) {
        // No other member can serve: our state is the map's (step 3).
        if (Number.isInteger(msg.readOnlyPeers) && msg.readOnlyPeers > 0) {
            this._error(
                "ReadOnlyHoldersOnly",
                `${msg.readOnlyPeers} read-only peer(s) hold ${this.uri}, but none that may write it could serve it`,
                { readOnlyPeers: msg.readOnlyPeers },
            );
        }
        if (!this._sync) {
            // A verify round of ours was already finished; nothing to end.
            return;
        }
        this._candidates.clear();
        this._rejoin = null;
        this._completeSync();
    }

    // --- routed messages ---------------------------------------------------------

    _onRouted(u8, dv) {
        let h;
        let payload;
        try {
            h = decodeHeader(u8, dv);
            if (!TYPE_NAMES.has(h.type)) return; // new routed types may appear (section 12)
            payload = decodePayload(h.type, u8, dv, HEADER_SIZE, u8.length);
        } catch (e) {
            if (!(e instanceof WireError)) throw e;
            const type = TYPE_NAMES.get(u8[0]) ?? `0x${u8[0].toString(16)}`;
            this._error("BadMessage", `dropped a malformed ${type} from ${peerToHex(dv.getBigUint64(8, true))}: ${e.message}`);
            return;
        }
        const origin = h.peer;
        switch (h.type) {
            case MessageType.Delta:
                this._onDelta(origin, h.flags, payload.entries);
                break;
            case MessageType.Repair:
                this._applyRemote(payload.entries, origin);
                break;
            case MessageType.SyncRequest:
                this._onSyncRequest(origin, payload);
                break;
            case MessageType.SyncData:
                this._onSyncData(origin, payload);
                break;
            case MessageType.SyncAck:
                this._onSyncAck(origin, payload);
                break;
            case MessageType.WriteAck:
                this._onWriteAck(origin, payload);
                break;
        }
    }

    _onDelta(origin, flags, entries) {
        // Every entry of a delta is the sender's own write (section 5.3).
        for (let i = 0; i < entries.length; i++) {
            if (entries[i].writer !== origin) {
                this._error(
                    "BadMessage",
                    `dropped a Delta from ${peerToHex(origin)} carrying a write of ${peerToHex(entries[i].writer)} (forged writer)`,
                );
                return;
            }
        }
        this._applyRemote(entries, origin);
        if (flags & FLAG_ACK_REQUESTED) this._acknowledge(origin, entries);
    }

    // Merges entries from the network (delta, repair, sync chunk).
    _applyRemote(entries, origin) {
        const state = this._state;
        const me = this.connection.peer;
        const wantSet = this.listens("set");
        const wantDelete = this.listens("delete");
        const wantChange = this.listens("change");
        const tracking = this._unconfirmed.size > 0;
        const persisting = this._store !== null;
        let max = 0n;
        for (let i = 0; i < entries.length; i++) {
            const e = entries[i];
            if (e.hlc > max) max = e.hlc;
            if (state.apply(e) !== APPLIED) continue;
            // Decoded only when asked for, and before a listener can change the state.
            const previousValue = wantChange || (wantDelete && e.value === null) ? state.previousValue : undefined;
            if (persisting) this._markDirty(e.key);
            if (tracking && e.writer !== me) this._supersede(e.key);
            if (e.value !== null) {
                if (wantSet) this.emit("set", parseValue(e.value), e.key, this, info(e, origin));
            } else if (previousValue !== undefined && previousValue !== null) {
                this.emit("delete", parseValue(previousValue), e.key, this, info(e, origin));
            }
            if (wantChange) this._emitChange(e, previousValue, false, origin);
        }
        this._clock.observe(max);
        if (max > this._heard) this._heard = max;
    }

    _emitChange(e, previousValue, local, origin) {
        this.emit("change", {
            key: e.key,
            deleted: e.value === null,
            value: e.value === null ? undefined : parseValue(e.value),
            oldValue: previousValue === undefined || previousValue === null ? undefined : parseValue(previousValue),
            local,
            writer: peerToHex(e.writer),
            origin: peerToHex(origin),
            hlc: e.hlc,
        });
    }

    // --- sending ---------------------------------------------------------------------

    _canSend() {
        return this._id !== null && this.connection._welcomed && this._access === "rw";
    }

    _flush() {
        this._flushScheduled = false;
        if (this._batch.size === 0) return;
        const entries = [...this._batch.values()];
        this._batch.clear();
        if (!this._canSend()) return; // the next sync pushes them
        this._sendEntries(MessageType.Delta, this._acks ? FLAG_ACK_REQUESTED : 0, entries);
    }

    // Sends entries in as many messages of `type` as the relay's limit needs
    // (section 5.2). An entry that fits no message is left out and reported.
    _sendEntries(type, flags, entries) {
        const limit = this.connection.maxMessage;
        const w = sharedWriter.reset();
        let count = 0;
        writeHeader(w, type, flags, this._id, 0n);
        for (let i = 0; i < entries.length; i++) {
            const e = entries[i];
            const before = w.pos;
            writeEntry(w, e);
            if (w.pos <= limit) {
                count++;
                continue;
            }
            w.pos = before;
            if (count > 0) {
                this.connection._sendBinary(w.take());
                w.reset();
                writeHeader(w, type, flags, this._id, 0n);
                count = 0;
                i--; // again, in a message of its own
            } else {
                this._tooLargeToSend(e);
            }
        }
        if (count > 0) this.connection._sendBinary(w.take());
    }

    _tooLargeToSend(e) {
        this._error("EntryTooLarge", `${JSON.stringify(e.key)}: a write of ${entrySize(e)} bytes fits no message under the relay's limit; it stays local`, {
            key: e.key,
        });
    }

    _sendRouted(bytes) {
        return this.connection._sendBinary(bytes);
    }

    // --- write acknowledgements (section 8.1) --------------------------------------

    // Receiver: one WriteAck listing every entry's hlc, in order.
    _acknowledge(origin, entries) {
        const hlcs = entries.map((e) => e.hlc);
        if (this._store !== null && !this._storeFailed) {
            // Durable once a store write that covers them has finished.
            if (this._pendingAcks.length >= 65536) this._pendingAcks.shift();
            this._pendingAcks.push({ origin, hlcs, seq: this._storeSeq });
            this._scheduleStore(0);
            return;
        }
        this._sendWriteAck(origin, false, hlcs);
    }

    _sendWriteAck(origin, durable, hlcs) {
        if (this._id === null) return;
        const w = sharedWriter.reset();
        writeHeader(w, MessageType.WriteAck, 0, this._id, origin);
        w.u8(durable ? 1 : 0);
        w.u32(hlcs.length);
        for (const h of hlcs) w.u64(h);
        this._sendRouted(w.take());
    }

    // Writer side.
    _track(e) {
        const old = this._unconfirmed.get(e.key);
        if (old) this._unconfirmedByHlc.delete(old.entry.hlc);
        this._unconfirmed.set(e.key, { entry: e, peers: new Set() });
        this._unconfirmedByHlc.set(e.hlc, e.key);
    }

    _supersede(key) {
        const u = this._unconfirmed.get(key);
        if (!u) return;
        this._unconfirmed.delete(key);
        this._unconfirmedByHlc.delete(u.entry.hlc);
        this.emit("writeSuperseded", key);
    }

    _onWriteAck(origin, ack) {
        const hex = peerToHex(origin);
        for (const hlc of ack.hlcs) {
            const key = this._unconfirmedByHlc.get(hlc);
            if (key === undefined) continue;
            const u = this._unconfirmed.get(key);
            u.peers.add(hex);
            if (ack.durable) {
                this._unconfirmed.delete(key);
                this._unconfirmedByHlc.delete(hlc);
            }
            this.emit("writeAcknowledged", key, u.peers.size, ack.durable);
        }
    }

    _resendUnconfirmed() {
        if (this._unconfirmed.size === 0) return;
        const me = this.connection.peer;
        const out = [];
        for (const [key, u] of [...this._unconfirmed]) {
            // Dropped as superseded if no longer the key's current write
            // (a rejoin forgot it), or written under another id.
            if (!this._state.holds(key, u.entry) || u.entry.writer !== me) {
                this._unconfirmed.delete(key);
                this._unconfirmedByHlc.delete(u.entry.hlc);
                this.emit("writeSuperseded", key);
                continue;
            }
            out.push(u.entry);
        }
        if (out.length && this._canSend()) this._sendEntries(MessageType.Delta, FLAG_ACK_REQUESTED, out);
    }

    // --- sync as joiner (section 8) ----------------------------------------------------

    // verify: an anti-entropy round (or the round after a catch-up).
    _startSync(verify) {
        if (this._id === null || !this.connection._welcomed) return;
        this._flush(); // R's snapshot must not be behind our own writes
        this._endRoundTimers();
        if (this._antiEntropyTimer) clearTimeout(this._antiEntropyTimer);
        this._antiEntropyTimer = null;
        const state = this._state;
        let mode;
        let since = 0n;
        let bucketCount = 0;
        if (verify) {
            mode = MODE_VERIFY;
            since = U64_MAX;
            bucketCount = bucketCountFor(state.count, this.connection.maxMessage);
        } else if (this._rejoin !== null) {
            mode = MODE_REJOIN; // an unfinished rejoin goes on as a rejoin
        } else if (state.count === 0 && this._candidates.size === 0) {
            mode = MODE_FULL;
        } else if (this._isStale()) {
            mode = MODE_REJOIN;
            this._rejoin = { heard: this._heard, known: new Set() };
            this._candidates = new Map();
            for (const e of state.values()) this._candidates.set(e.key, e);
        } else {
            mode = MODE_CATCHUP;
            since = this._heard;
            // Push candidates: everything we hold newer than what we heard
            // (offline edits, writes the network may have lost). Those left
            // from an interrupted round stay.
            for (const e of state.entriesNewerThan(since)) this._candidates.set(e.key, e);
        }
        const syncId = (this._syncCounter = (this._syncCounter + 1) >>> 0);
        const sync = { syncId, mode, since, bucketCount, digest: null, responder: null, nextSeq: 0 };
        this._sync = sync;
        if (!verify) {
            this._sendSyncRequest(sync);
            return;
        }
        // The digest is taken SNAPSHOT_SLICE entries per turn, as a sync
        // answer's is, so that a verify round over a large map does not
        // freeze the page. The request goes when it is done, unless the
        // round was replaced or the connection lost meanwhile (_sync then
        // differs). A write made meanwhile may or may not be in it; at worst
        // its bucket is compared again.
        const digest = new Uint32Array(2 * bucketCount);
        digestInSlices(state.snapshot(), digest, null, () => this._sync === sync, () => {
            sync.digest = digest;
            this._sendSyncRequest(sync);
        });
    }

    _sendSyncRequest(sync) {
        const w = sharedWriter.reset();
        writeHeader(w, MessageType.SyncRequest, 0, this._id, 0n);
        w.u32(sync.syncId);
        w.u64(sync.since);
        w.u32(sync.bucketCount);
        if (sync.digest) writeDigest(w, sync.digest);
        this._sendRouted(w.take());
        this._armSyncTimer(this._syncTimeoutMs + this._firstChunkGraceMs);
    }

    _isStale() {
        const t = this._retentionMs;
        if (!t || this._heard === 0n) return false;
        return this._clock.nowMs() - Number(this._heard >> 16n) > t;
    }

    _armSyncTimer(ms) {
        if (this._syncTimer) clearTimeout(this._syncTimer);
        this._syncTimer = setTimeout(() => {
            this._syncTimer = null;
            if (this._sync) this._restartSync();
        }, ms);
    }

    _endRoundTimers() {
        if (this._syncTimer) clearTimeout(this._syncTimer);
        this._syncTimer = null;
    }

    // A new attempt with a new syncId (step 8): a verify round stays one; a
    // rejoin goes on as a rejoin; otherwise the mode is chosen again.
    _restartSync() {
        const verify = this._sync !== null && this._sync.mode === MODE_VERIFY;
        this._sync = null;
        this._startSync(verify);
    }

    _onSyncData(origin, chunk) {
        const s = this._sync;
        if (s === null || chunk.syncId !== s.syncId) return; // not our current round
        const hex = peerToHex(origin);
        if (s.responder === null) {
            if (chunk.seq !== 0) {
                // Chunk 0 was lost (section 8 step 5): start again now,
                // rather than when the first-chunk timer runs out.
                this._restartSync();
                return;
            }
            s.responder = hex; // whichever member the relay routed it to
        } else if (s.responder !== hex) {
            return; // another responder
        }
        if (chunk.seq !== s.nextSeq) {
            // A chunk went missing: this round cannot be trusted to be whole.
            this._restartSync();
            return;
        }
        s.nextSeq++;
        if (chunk.seq === 0 && s.mode === MODE_VERIFY && chunk.bucketCount === s.bucketCount && s.bucketCount > 0) {
            this._noteDifferingBuckets(s.digest, chunk.digest, s.bucketCount);
        }
        // Each entry R sends that is equal or newer strikes its key from the
        // candidates; an older one marks the key as known to the network.
        const candidates = this._candidates;
        if (candidates.size > 0) {
            const known = this._rejoin !== null && s.mode === MODE_REJOIN ? this._rejoin.known : null;
            for (const e of chunk.entries) {
                if (!candidates.has(e.key)) continue;
                const cur = this._state.get(e.key);
                if (cur === undefined || compareWrites(e, cur) >= 0) candidates.delete(e.key);
                else if (known) known.add(e.key);
            }
        }
        this._applyRemote(chunk.entries, origin);
        const w = sharedWriter.reset();
        writeHeader(w, MessageType.SyncAck, 0, this._id, origin);
        w.u32(chunk.syncId);
        w.u32(chunk.seq);
        this._sendRouted(w.take());
        if (chunk.final) this._finishRound();
        else this._armSyncTimer(this._syncTimeoutMs);
    }

    _noteDifferingBuckets(mine, theirs, n) {
        const differ = differingBuckets(mine, theirs, n);
        if (differ === null) return;
        for (const e of this._state.entriesWhereKey((key) => differ[bucketOf(key, n)] === 1)) this._candidates.set(e.key, e);
    }

    // After the final chunk of a round: push back, then verify or finish.
    _finishRound() {
        const s = this._sync;
        this._endRoundTimers();
        const push = [];
        if (s.mode === MODE_REJOIN) {
            const { heard, known } = this._rejoin;
            for (const [key, noted] of this._candidates) {
                if (this._state.holds(key, noted) && noted.hlc <= heard && !known.has(key)) this._forget(key);
                else {
                    const cur = this._state.get(key);
                    if (cur !== undefined) push.push(cur);
                }
            }
            this._rejoin = null;
        } else {
            for (const key of this._candidates.keys()) {
                const cur = this._state.get(key);
                if (cur !== undefined) push.push(cur);
            }
        }
        this._candidates.clear();
        if (push.length && this._canSend()) this._sendEntries(MessageType.Repair, 0, push);
        if (s.mode === MODE_CATCHUP) {
            this._sync = null;
            this._startSync(true);
            return;
        }
        this._completeSync();
    }

    // Rejoin: forget a key the network no longer has, without a tombstone.
    _forget(key) {
        const old = this._state.drop(key);
        if (old === undefined) return;
        if (this._store !== null) {
            this._dirty.delete(key);
            this._dropped.set(key, old);
            this._storeSeq++;
            this._scheduleStore();
        }
        if (old.value !== null) {
            if (this.listens("delete")) this.emit("delete", parseValue(old.value), key, this, { writer: null, hlc: null, origin: null });
            if (this.listens("change"))
                this.emit("change", { key, deleted: true, value: undefined, oldValue: parseValue(old.value), local: false, forgotten: true });
        }
    }

    _completeSync() {
        this._sync = null;
        this._endRoundTimers();
        this.connection._sendControl({ type: "ready", id: this._id });
        this._resendUnconfirmed();
        if (!this._isReady) {
            this._isReady = true;
            this.emit("ready", this);
        }
        const reason = this._syncReason;
        this._syncReason = "verify"; // until the next `opened`, rounds are verify rounds
        this.emit("synced", this, { reason });
        if (this._id === null || this._sync !== null) return; // a listener closed the map or started a round
        if (this._verifyPending) {
            // A verify asked (by the relay or verify()) while this round ran.
            this._verifyPending = false;
            this._startSync(true);
            return;
        }
        if (this._antiEntropyMs > 0) {
            if (this._antiEntropyTimer) clearTimeout(this._antiEntropyTimer);
            this._antiEntropyTimer = setTimeout(() => {
                this._antiEntropyTimer = null;
                if (this._sync === null && this._id !== null) {
                    this._syncReason = "verify";
                    this._startSync(true);
                }
            }, this._antiEntropyMs);
        }
    }

    // --- sync as responder (section 8 steps 4 and 7) ----------------------------------

    _onSyncRequest(origin, req) {
        const hex = peerToHex(origin);
        // A sync answer writes into the requester; a read-only member is
        // never asked, and the relay would refuse its SyncData.
        if (this._access !== "rw") return;
        // The answer is of a snapshot (taken at once, no object per key); a
        // write made meanwhile goes out as a delta anyway. Its digest, when
        // one is asked for, is taken SNAPSHOT_SLICE entries per turn of the
        // event loop, so that a tab holding a large map does not freeze
        // while it answers, and is of exactly the entries in the snapshot.
        const n = req.bucketCount;
        const snap = this._state.snapshot();
        const session = {
            peer: origin, syncId: req.syncId, snap, index: 0,
            sinceHi: high32(req.since), sinceLo: low32(req.since),
            buckets: n > 0 ? new Int32Array(snap.count) : null, differ: null, digest: n > 0 ? new Uint32Array(2 * n) : null,
            seq: 0, acked: -1, finalSeq: -1, preparing: true,
        };
        this._sessions.set(hex, session); // replaces the requester's previous one
        const ready = () => {
            if (session.digest !== null) session.differ = differingBuckets(session.digest, req.digest, n);
            session.preparing = false;
            this._pump(session);
        };
        if (session.digest === null) ready();
        else digestInSlices(snap, session.digest, session.buckets, () => this._sessions.get(hex) === session, ready);
    }

    _onSyncAck(origin, ack) {
        const hex = peerToHex(origin);
        const s = this._sessions.get(hex);
        if (!s || s.syncId !== ack.syncId || ack.seq >= s.seq) return;
        if (ack.seq > s.acked) s.acked = ack.seq;
        if (s.finalSeq >= 0 && s.acked >= s.finalSeq) {
            this._sessions.delete(hex);
            return;
        }
        this._pump(s);
    }

    // Sends chunks while fewer than 4 are unacknowledged.
    _pump(s) {
        while (!s.preparing && s.finalSeq < 0 && s.seq - (s.acked + 1) < SYNC_WINDOW) {
            if (this._id === null || !this.connection._welcomed) return;
            this._sendRouted(this._buildChunk(s));
        }
    }

    _buildChunk(s) {
        const limit = this.connection.maxMessage;
        const w = sharedWriter.reset();
        writeHeader(w, MessageType.SyncData, 0, this._id, s.peer);
        const headStart = w.pos;
        w.u32(s.syncId);
        w.u32(s.seq);
        w.u8(0); // final, set below
        if (s.seq === 0 && s.digest !== null) {
            w.u32(s.digest.length / 2);
            writeDigest(w, s.digest);
        } else {
            w.u32(0);
        }
        const entriesStart = w.pos;
        const { snap, buckets, differ, sinceHi, sinceLo } = s;
        let i = s.index;
        for (; i < snap.count; i++) {
            if (w.pos - entriesStart >= CHUNK_BYTES) break;
            if (!snap.has(i)) continue;
            if (!(snap.isNewer(i, sinceHi, sinceLo) || (differ !== null && differ[buckets[i]] === 1))) continue;
            const before = w.pos;
            const size = snap.write(w, i);
            if (w.pos <= limit) continue;
            w.pos = before;
            if (HEADER_SIZE + SYNCDATA_HEAD + size > limit) {
                // Fits no chunk, even alone without a digest: left out (section 5.2).
                this._tooLargeToSend(snap.entryAt(i));
                continue;
            }
            break; // it goes in the next chunk
        }
        s.index = i;
        if (i >= snap.count) {
            w.buf[headStart + 8] = 1;
            s.finalSeq = s.seq;
            s.snap = null; // let the snapshot go
        }
        s.seq++;
        return w.take();
    }

    // --- persistence -----------------------------------------------------------------------

    _startPersistence() {
        if (!idbAvailable()) {
            // No IndexedDB (Node): say so, keep working in memory.
            setTimeout(() => this._error("PersistenceUnavailable", "persist: true needs IndexedDB, which this environment lacks; the map is kept in memory only"), 0);
            this.connection._register(this);
            return;
        }
        this._loading = true;
        this._writtenWhileLoading = new Set();
        const conn = this.connection;
        const peerKey = conn.url.split(/[?#]/)[0];
        const load = (async () => {
            const store = await IdbStore.open(peerKey + " " + this.uri, peerKey);
            const loaded = await store.load();
            return { store, loaded };
        })();
        conn._hold(load);
        load.then(
            ({ store, loaded }) => this._onStoreLoaded(store, loaded),
            (e) => {
                this._storeFailed = true;
                this._loading = false;
                this._writtenWhileLoading = null;
                this._error("Persistence", `cannot open the IndexedDB store: ${e && e.message ? e.message : e}`);
                this._rejectFlushes(new DistmapError("Persistence", "the IndexedDB store could not be opened", { map: this.uri }));
                if (!this._closed) conn._register(this);
            },
        );
    }

    _onStoreLoaded(store, loaded) {
        if (this._closed) return;
        const conn = this.connection;
        // The stored peer id is the writer id of our earlier writes: claim it.
        let storedPeer = loaded.peer !== null ? peerFromHex(loaded.peer) : null;
        if (storedPeer !== null) conn._adoptPeer(storedPeer);
        else store.savePeer(conn.peerHex).catch(() => {});
        const me = storedPeer ?? conn.peer;
        const entries = [];
        for (const rec of loaded.records) {
            try {
                const u8 = toU8(rec);
                decodeEntries(u8, new DataView(u8.buffer, u8.byteOffset, u8.byteLength), 0, u8.length, entries);
            } catch {
                this._error("Persistence", "skipped a damaged record in the IndexedDB store");
            }
        }
        if (loaded.clock > this._clock.last) this._clock.last = loaded.clock;
        let maxOthers = 0n;
        let max = 0n;
        const lostWhileLoading = [];
        for (const e of entries) {
            if (e.hlc > max) max = e.hlc;
            if (e.writer !== me && e.hlc > maxOthers) maxOthers = e.hlc;
            // Only a key written while loading needs its entry from before.
            const before = this._writtenWhileLoading.has(e.key) ? this._state.get(e.key) : undefined;
            if (this._state.apply(e) === APPLIED && before !== undefined) lostWhileLoading.push(before);
        }
        this._clock.observe(max);
        // H after loading a store: the newest stored write of another peer.
        if (maxOthers > this._heard) this._heard = maxOthers;
        this._store = store;
        this._loading = false;
        this._writtenWhileLoading = null;
        // A write made while the store loaded that lost to a stored newer
        // one is made again, so the user's latest edit wins.
        for (const e of lostWhileLoading) this._write(e.key, utf8Length(e.key), e.value);
        this._collectTombstones();
        if (this._retentionMs > 0) this._gcTimer = setInterval(() => this._collectTombstones(), 3600 * 1000);
        if (this._dirty.size) {
            this._storeSeq++; // writes made while loading: not covered yet
            this._scheduleStore();
        }
        this.emit("loaded", this);
        this._settleFlushes();
        conn._register(this);
    }

    _collectTombstones() {
        if (!this._retentionMs) return;
        const horizon = this._clock.nowMs() - this._retentionMs;
        if (horizon <= 0) return;
        for (const e of this._state.dropTombstonesBefore(BigInt(horizon) << 16n)) {
            this._dirty.delete(e.key);
            this._dropped.set(e.key, e);
            this._storeSeq++;
        }
        if (this._dropped.size) this._scheduleStore();
    }

    _markDirty(key) {
        if (this._store === null) {
            if (this._loading) this._dirty.set(key, true);
            return;
        }
        this._dirty.set(key, true);
        this._dropped.delete(key);
        this._storeSeq++;
        this._scheduleStore();
    }

    _scheduleStore(delay = this._persistBatchMs) {
        if (this._store === null || this._storeWriting) return;
        if (this._storeTimer !== null) {
            if (delay > 0) return;
            clearTimeout(this._storeTimer);
        }
        this._storeTimer = setTimeout(() => this._writeStore(), delay);
    }

    _writeStore() {
        this._storeTimer = null;
        if (this._store === null || this._storeWriting) return;
        const puts = [];
        for (const key of this._dirty.keys()) {
            const e = this._state.get(key);
            if (e !== undefined) puts.push(e);
        }
        const drops = [...this._dropped.values()];
        this._dirty.clear();
        this._dropped.clear();
        const seq = this._storeSeq;
        this._storeWriting = true;
        const epoch = this.connection._epoch;
        this._store.write(puts, drops, this._clock.last).then(
            () => {
                this._storeWriting = false;
                this._durableSeq = seq;
                this._sendDurableAcks(epoch);
                if (this._dirty.size || this._dropped.size || this._pendingAcks.length) this._scheduleStore();
                this.emit("stored", this);
                this._settleFlushes();
            },
            (e) => {
                this._storeWriting = false;
                this._storeFailed = true;
                this._error("Persistence", `an IndexedDB write failed: ${e && e.message ? e.message : e}`);
                // Not durable: answer what waits with durable = 0.
                for (const a of this._pendingAcks.splice(0)) this._sendWriteAck(a.origin, false, a.hlcs);
                for (const e2 of puts) if (!this._dirty.has(e2.key)) this._dirty.set(e2.key, true);
                this._rejectFlushes(new DistmapError("Persistence", `an IndexedDB write failed: ${e && e.message ? e.message : e}`, { map: this.uri }));
            },
        );
    }

    _sendDurableAcks(epoch) {
        if (this._pendingAcks.length === 0) return;
        if (epoch !== this.connection._epoch) {
            this._pendingAcks = []; // acks are not carried over a reconnect
            return;
        }
        const keep = [];
        for (const a of this._pendingAcks) {
            if (a.seq <= this._durableSeq) this._sendWriteAck(a.origin, true, a.hlcs);
            else keep.push(a);
        }
        this._pendingAcks = keep;
    }

    // --- misc ------------------------------------------------------------------------------

    _stopTimers() {
        this._endRoundTimers();
        if (this._antiEntropyTimer) clearTimeout(this._antiEntropyTimer);
        this._antiEntropyTimer = null;
        if (this._gcTimer) clearInterval(this._gcTimer);
        this._gcTimer = null;
    }

    _error(code, message, extra) {
        const err = new DistmapError(code, message, { map: this.uri, ...(extra ?? {}) });
        if (this.listens("error")) this.emit("error", err);
        else this.connection.emit("error", err);
    }
}

// `new DistributedMap(...)` and `DistributedMap(...)` give the same object;
// instanceof works either way.
DistributedMap.prototype = DistributedMapImpl.prototype;

// Returns the key's UTF-8 length; throws a TypeError for a key that is not
// a string or has a lone surrogate (it has no UTF-8 form).
function checkKey(key) {
    if (typeof key !== "string") throw new TypeError("a key is a string");
    let n = 0;
    const len = key.length;
    for (let i = 0; i < len; i++) {
        const c = key.charCodeAt(i);
        if (c < 0x80) n += 1;
        else if (c < 0x800) n += 2;
        else if (c < 0xd800 || c > 0xdfff) n += 3;
        else {
            const d = c <= 0xdbff && i + 1 < len ? key.charCodeAt(i + 1) : 0;
            if (d < 0xdc00 || d > 0xdfff) throw new TypeError("a key must not contain a lone surrogate (it has no UTF-8 form)");
            n += 4;
            i++;
        }
    }
    return n;
}

/** A value's JSON text parsed; undefined when it does not parse (section 5.2). */
export function parseValue(value) {
    try {
        return JSON.parse(typeof value === "string" ? value : lenientDecoder.decode(value));
    } catch {
        return undefined;
    }
}

function info(e, origin) {
    return { writer: peerToHex(e.writer), hlc: e.hlc, origin: peerToHex(origin) };
}
