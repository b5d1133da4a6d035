// Merge rule (docs/PROTOCOL.md section 7) and digests (section 9).
import test from "node:test";
import assert from "node:assert/strict";
import {
    APPLIED,
    DUPLICATE,
    Entry,
    KeyIndex,
    MapState,
    SUPERSEDED,
    U64_MAX,
    bucketCountFor,
    compareUtf8,
    computeDigest,
    encodeEntry,
    entryHash,
    fnv1a64,
    foldDigest,
    keyHash,
} from "../../resources/web/distmap.js";
import { rng } from "./seeded.mjs";

const enc = new TextEncoder();
const set = (key, hlc, writer, json) => new Entry(key, BigInt(hlc), BigInt(writer), enc.encode(json));
const del = (key, hlc, writer) => new Entry(key, BigInt(hlc), BigInt(writer), null);

const seedBase = Number(process.env.DISTMAP_SEED ?? Date.now() % 100000);

// FNV-1a-64 the slow, obvious way with BigInt: the reference for the
// module's 32-bit-halves arithmetic.
function fnvRef(bytes, h = 14695981039346656037n) {
    for (const b of bytes) h = ((h ^ BigInt(b)) * 1099511628211n) & 0xffffffffffffffffn;
    return h;
}
function le64(v) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return b;
}
function entryHashRef(e) {
    const kh = fnvRef(enc.encode(e.key));
    return fnvRef([...le64(e.hlc), ...le64(e.writer), e.value === null ? 2 : 1], kh);
}
function digestRef(entries, n) {
    const d = new Array(n).fill(0n);
    for (const e of entries) d[Number(fnvRef(enc.encode(e.key)) & BigInt(n - 1))] ^= entryHashRef(e);
    return d;
}

test("merge rule: applied, duplicate, superseded", () => {
    const s = new MapState();
    assert.equal(s.apply(set("k", 10, 1, "1")), APPLIED, "no current write");
    assert.equal(s.apply(set("k", 10, 1, "1")), DUPLICATE);
    // Same (hlc, writer) with other bytes is still a duplicate: nothing changes.
    assert.equal(s.apply(set("k", 10, 1, "2")), DUPLICATE);
    // Stored as its bytes, read back as the codec reads a value: valid UTF-8 is a string.
    assert.equal(s.get("k").value, "1");
    assert.equal(s.apply(set("k", 9, 99, "3")), SUPERSEDED, "older hlc loses whatever the writer");
    assert.equal(s.apply(set("k", 10, 0, "3")), SUPERSEDED, "same hlc, smaller writer");
    assert.equal(s.apply(set("k", 10, 2, "4")), APPLIED, "same hlc, greater writer");
    assert.equal(s.apply(del("k", 11, 1)), APPLIED, "a tombstone wins like a value");
    assert.equal(s.size, undefined);
    assert.equal(s.live, 0);
    assert.equal(s.count, 1, "the tombstone is kept");
    assert.equal(s.apply(set("k", 10, 3, "5")), SUPERSEDED, "an older set cannot bring the key back");
    assert.equal(s.apply(set("k", 12, 1, "6")), APPLIED, "a newer set can");
    assert.equal(s.live, 1);
});

test("hlc and writer compare as unsigned 64-bit numbers", () => {
    const s = new MapState();
    s.apply(set("k", 0x7fffffffffffffffn, 1, "1"));
    assert.equal(s.apply(set("k", 0x8000000000000000n, 1, "2")), APPLIED);
    assert.equal(s.apply(set("k", 0x8000000000000000n, U64_MAX, "3")), APPLIED);
    assert.equal(s.apply(set("k", U64_MAX, 1, "4")), APPLIED);
    assert.equal(s.apply(del("k", U64_MAX, 2)), APPLIED);
});

test("replicas converge under any delivery order, with duplicates", () => {
    for (let round = 0; round < 50; round++) {
        const seed = seedBase + round;
        const r = rng(seed);
        const keys = ["a", "b", "c", "d", "é", "😀", ""];
        const writes = [];
        const made = new Set(); // one write per (key, hlc, writer), as between correct peers
        for (let i = 0; i < 60; i++) {
            const key = keys[Math.floor(r() * keys.length)];
            const hlc = Math.floor(r() * 20);
            const writer = 1 + Math.floor(r() * 3);
            if (made.has(`${key}|${hlc}|${writer}`)) continue;
            made.add(`${key}|${hlc}|${writer}`);
            writes.push(r() < 0.3 ? del(key, hlc, writer) : set(key, hlc, writer, String(Math.floor(r() * 5))));
        }
        const states = [];
        for (let p = 0; p < 4; p++) {
            const order = writes.concat(writes.filter(() => r() < 0.2)); // some twice
            for (let i = order.length - 1; i > 0; i--) {
                const j = Math.floor(r() * (i + 1));
                [order[i], order[j]] = [order[j], order[i]];
            }
            const s = new MapState();
            for (const w of order) s.apply(w);
            states.push(s);
        }
        const view = (s) => s.sorted().map((e) => [e.key, e.hlc, e.writer, e.value && Buffer.from(e.value).toString()]);
        for (const s of states.slice(1)) assert.deepEqual(view(s), view(states[0]), `seed ${seed}`);
        // Every key holds the greatest (hlc, writer) written to it.
        for (const key of keys) {
            const mine = writes.filter((w) => w.key === key);
            if (!mine.length) continue;
            const best = mine.reduce((a, b) => (b.hlc > a.hlc || (b.hlc === a.hlc && b.writer > a.writer) ? b : a));
            const e = states[0].get(key);
            assert.equal(e.hlc, best.hlc, `seed ${seed} key ${key}`);
            assert.equal(e.writer, best.writer, `seed ${seed} key ${key}`);
        }
        assert.deepEqual(states[0].digest(16), states[1].digest(16), `seed ${seed}`);
    }
});

test("FNV-1a-64 matches the published test vectors", () => {
    assert.equal(fnv1a64(new Uint8Array()), 0xcbf29ce484222325n, "offset basis 14695981039346656037");
    assert.equal(fnv1a64(enc.encode("a")), 0xaf63dc4c8601ec8cn);
    assert.equal(fnv1a64(enc.encode("foobar")), 0x85944171f73967e8n);
});

test("keyHash and entryHash agree with a BigInt reference, for any key", () => {
    const r = rng(seedBase);
    const alphabet = ["a", "Z", "\u0000", "é", "ß", "€", "\uffff", "\ufeff", "😀", "\u{10ffff}", "日"];
    for (let i = 0; i < 500; i++) {
        let key = "";
        const n = Math.floor(r() * 12);
        for (let j = 0; j < n; j++) key += alphabet[Math.floor(r() * alphabet.length)];
        const e = new Entry(key, BigInt(Math.floor(r() * 2 ** 32)) * BigInt(Math.floor(r() * 2 ** 32)), BigInt(Math.floor(r() * 2 ** 32)) << 32n, r() < 0.5 ? null : enc.encode("1"));
        assert.equal(keyHash(key), fnvRef(enc.encode(key)), `seed ${seedBase} key ${JSON.stringify(key)}`);
        assert.equal(entryHash(e), entryHashRef(e), `seed ${seedBase} key ${JSON.stringify(key)}`);
    }
    // Long keys take another encoding path when written, not when hashed.
    const long = "x😀".repeat(100);
    assert.equal(keyHash(long), fnvRef(enc.encode(long)));
});

test("digest: bucket by keyHash & (n-1), XOR of entry hashes, tombstones included", () => {
    const entries = [set("a", 258, 10, "1"), del("b", 300, 11), set("😀", U64_MAX, U64_MAX, '"x"'), set("", 1, 1, "null")];
    for (const n of [1, 2, 16, 1024]) assert.deepEqual(computeDigest(entries, n), digestRef(entries, n), `n=${n}`);
    assert.deepEqual(computeDigest([], 4), [0n, 0n, 0n, 0n], "empty buckets are 0");
    // One entry, one bucket: the digest is its entry hash.
    assert.deepEqual(computeDigest([entries[0]], 1), [entryHashRef(entries[0])]);
    // A tombstone hashes differently from a value with the same clock.
    assert.notDeepEqual(computeDigest([set("b", 300, 11, "1")], 1), computeDigest([del("b", 300, 11)], 1));
});

test("digest: equal states have equal digests whatever the order; a coarser digest is the fold of a finer one", () => {
    const r = rng(seedBase + 7);
    const entries = [];
    for (let i = 0; i < 2000; i++) entries.push(r() < 0.2 ? del(`key-${i}`, i + 1, 3) : set(`key-${i}`, i + 1, 3, String(i)));
    const a = new MapState();
    const b = new MapState();
    for (const e of entries) a.apply(e);
    for (const e of [...entries].reverse()) b.apply(e);
    const fine = computeDigest(a.values(), 256);
    assert.deepEqual(computeDigest(b.values(), 256), fine);
    for (const n of [1, 2, 16, 128]) assert.deepEqual(computeDigest(a.values(), n), foldDigest(fine, n), `n=${n}`);
    // One changed entry changes exactly its bucket.
    b.apply(set("key-5", 100000, 3, "changed"));
    const changed = computeDigest(b.values(), 256);
    const bucket = Number(keyHash("key-5") & 255n);
    changed.forEach((w, i) => (i === bucket ? assert.notEqual(w, fine[i]) : assert.equal(w, fine[i])));
});

test("bucket count: smallest power of two ≥ entries / 16, 1 to 65536, a quarter of the limit at most", () => {
    assert.equal(bucketCountFor(0), 1);
    assert.equal(bucketCountFor(16), 1);
    assert.equal(bucketCountFor(17), 2);
    assert.equal(bucketCountFor(100000), 8192);
    assert.equal(bucketCountFor(10 ** 9), 65536);
    assert.equal(bucketCountFor(100000, 65536), 2048, "8n ≤ limit/4");
    assert.equal(bucketCountFor(100000, 16), 1);
});

test("keys sort by their UTF-8 bytes", () => {
    const keys = ["b", "a", "", "\uffff", "😀", "\ue000", "é", "aa", "\u{10ffff}", "\ud7ff"];
    const byBytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    assert.deepEqual([...keys].sort(compareUtf8), byBytes);
});

// MapState finds keys through a KeyIndex (open addressing over typed
// arrays, deletion by backward shift): it must behave as a Map of key to
// slot, with slots given back and reused.
test("KeyIndex: the slots of a Map's keys, against a Map, through growth and deletions", () => {
    const seed = seedBase + 7;
    console.log(`KeyIndex seed ${seed} (DISTMAP_SEED=${seedBase})`);
    const next = rng(seed);
    const pool = [
        "",
        "a",
        "ключ",
        "😀",
        "a\u0301",
        "item-1.json",
        "item-2.json",
        ...Array.from({ length: 3000 }, (_, i) => `key-${String(i).padStart(6, "0")}`),
        ...Array.from({ length: 200 }, (_, i) => `user/${i}/name`),
    ];
    const index = new KeyIndex();
    const reference = new Map(); // key -> slot
    for (let op = 0; op < 40000; op++) {
        const key = pool[Math.floor(next() * pool.length)];
        if (next() < 0.4) {
            assert.equal(index.remove(key), reference.has(key) ? reference.get(key) : -1, `seed ${seed} op ${op}: remove ${JSON.stringify(key)}`);
            reference.delete(key);
        } else if (!reference.has(key)) {
            const slot = index.add(key);
            assert.ok(![...reference.values()].includes(slot), `seed ${seed} op ${op}: slot ${slot} given twice`);
            reference.set(key, slot);
        }
        assert.equal(index.size, reference.size);
        // Every so often, every key: a deletion that broke a probe run shows here.
        if (op % 2000 === 0) for (const k of pool) assert.equal(index.slotOf(k), reference.has(k) ? reference.get(k) : -1, `seed ${seed} op ${op}: ${JSON.stringify(k)}`);
    }
    for (const key of pool) assert.equal(index.slotOf(key), reference.has(key) ? reference.get(key) : -1, `seed ${seed}: ${JSON.stringify(key)}`);
    for (const [key, slot] of reference) assert.equal(index.keyAt(slot), key);
    assert.ok(index.end <= pool.length, "freed slots are used again");
    index.clear();
    assert.equal(index.size, 0);
    assert.equal(index.slotOf("a"), -1);
});

test("MapState: a walk lasts through writes, each entry present throughout seen once", () => {
    // A sync answer or a verify round walks the state over several turns
    // while writes go on (new keys then travel as deltas, not in the walk).
    const m = new MapState();
    for (let i = 0; i < 1000; i++) m.apply(set(`k${i}`, 1, 1, String(i)));
    const it = m.values();
    const seen = new Map();
    const take = (n) => {
        for (let i = 0; i < n; i++) {
            const r = it.next();
            if (r.done) return;
            seen.set(r.value.key, (seen.get(r.value.key) ?? 0) + 1);
        }
    };
    take(300);
    for (let i = 0; i < 1000; i += 3) m.apply(set(`k${i}`, 2, 1, String(-i))); // replaced, not moved
    const deleted = [];
    for (let i = 1; i < 1000; i += 7) if (!seen.has(`k${i}`)) deleted.push(`k${i}`);
    for (const k of deleted) m.drop(k);
    for (let i = 1000; i < 1200; i++) m.apply(set(`k${i}`, 1, 1, String(i))); // some take the dropped keys' slots
    take(Infinity);
    for (let i = 0; i < 1000; i++) {
        const k = `k${i}`;
        assert.equal(seen.get(k), deleted.includes(k) ? undefined : 1, k);
    }
    for (const [k, n] of seen) assert.equal(n, 1, `${k} seen ${n} times`);
});

// MapState keeps values as bytes in one buffer that it compacts once half
// of it is replaced values; slots of dropped keys are reused. Whatever the
// writes, it must read back as a plain Map of the winning entries would.
test("MapState: values, drops and compaction read back as a Map of the winning writes", () => {
    const seed = seedBase + 11;
    console.log(`MapState seed ${seed} (DISTMAP_SEED=${seedBase})`);
    const next = rng(seed);
    const s = new MapState();
    const reference = new Map(); // key -> Entry
    const keys = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? `ключ-${i}` : `k${i}`));
    const invalid = new Uint8Array([0x22, 0xff, 0x22]); // not UTF-8: kept and read back as bytes
    const valueFor = (op) => {
        const r = next();
        if (r < 0.003) return JSON.stringify("L".repeat(1100000)); // over a page: a page of its own
        if (r < 0.05) return invalid;
        if (r < 0.1) return enc.encode(`"${"b".repeat(Math.floor(next() * 3000))}"`); // bytes that are UTF-8
        return JSON.stringify("v".repeat(Math.floor(next() * 4000)) + op + "😀");
    };
    let hlc = 1n;
    let compactions = 0;
    let pages = 0;
    for (let op = 0; op < 6000; op++) {
        const key = keys[Math.floor(next() * keys.length)];
        const r = next();
        if (r < 0.05) {
            const dropped = s.drop(key);
            assert.equal(dropped?.hlc, reference.get(key)?.hlc, `seed ${seed}: drop ${key}`);
            reference.delete(key);
            continue;
        }
        const before = s._values;
        hlc += BigInt(1 + Math.floor(next() * 3));
        const cur = reference.get(key);
        // Now and then an older write, which loses.
        const at = cur !== undefined && next() < 0.1 ? cur.hlc - 1n : hlc;
        const e = r < 0.2 ? del(key, at, 2) : new Entry(key, at, 2n, valueFor(op));
        const wins = cur === undefined || at > cur.hlc;
        const previousText = cur === undefined ? undefined : cur.value;
        assert.equal(s.apply(e), wins ? APPLIED : SUPERSEDED, `seed ${seed} op ${op}`);
        if (!wins) continue;
        if (s._values !== before) compactions++;
        pages = Math.max(pages, s._values.pages.length);
        const prev = s.previousValue;
        if (previousText === undefined || previousText === null) assert.equal(prev, previousText, `seed ${seed} op ${op}: previousValue`);
        else assert.equal(Buffer.compare(Buffer.from(prev), Buffer.from(previousText)), 0, `seed ${seed} op ${op}: previousValue`);
        reference.set(key, e);
    }
    assert.ok(compactions > 0, `seed ${seed}: the values were compacted`);
    assert.ok(pages > 2, `seed ${seed}: the values took more than two pages (${pages})`);
    assert.equal(s.count, reference.size);
    assert.equal(s.live, [...reference.values()].filter((e) => e.value !== null).length);
    for (const [key, e] of reference) {
        const got = s.get(key);
        assert.equal(got.hlc, e.hlc, key);
        assert.equal(got.writer, e.writer, key);
        if (e.value === null) assert.equal(got.value, null, key);
        else {
            assert.equal(typeof got.value, e.value === invalid ? "object" : "string", `${key}: bytes only when not UTF-8`);
            assert.equal(Buffer.compare(Buffer.from(got.value), Buffer.from(e.value)), 0, key);
        }
        assert.equal(s.hasValue(key), e.value !== null);
    }
    for (const key of keys) if (!reference.has(key)) assert.equal(s.get(key), undefined, key);
    assert.deepEqual(computeDigest(s.values(), 64), computeDigest(reference.values(), 64));
});

// A sync answer and a verify digest walk a StateSnapshot: it must encode and
// hash each entry exactly as the Entry path does, and keep showing the state
// of its moment while the state goes on changing (overwrites, drops, a
// compaction of the value buffer).
test("StateSnapshot: the same bytes and digest as the entries, unchanged by later writes", () => {
    const seed = seedBase + 13;
    console.log(`StateSnapshot seed ${seed} (DISTMAP_SEED=${seedBase})`);
    const next = rng(seed);
    const s = new MapState();
    const keys = ["", "a", "ключ", "😀", "a\u0301", ...Array.from({ length: 400 }, (_, i) => `k${i}`)];
    const writers = [1n, 0xffffffffffffffffn, 0x123456789abcdefn];
    let hlc = 0x10000n;
    const write = (key) => {
        hlc += 1n + BigInt(Math.floor(next() * 0x1_0000_0000)); // carries into the high half
        const w = writers[Math.floor(next() * writers.length)];
        const r = next();
        const value = r < 0.2 ? null : r < 0.3 ? new Uint8Array([0x31, 0xc3]) : JSON.stringify("x".repeat(Math.floor(next() * 3000)));
        s.apply(new Entry(key, hlc, w, value));
    };
    for (let i = 0; i < 2000; i++) write(keys[Math.floor(next() * keys.length)]);
    for (let i = 0; i < 20; i++) s.drop(keys[Math.floor(next() * keys.length)]);
    const before = new Map([...s.values()].map((e) => [e.key, e]));
    const snap = s.snapshot();
    // The state changes under the snapshot: overwrites enough to compact, drops, new keys.
    const valuesBefore = s._values;
    for (let i = 0; i < 3000; i++) write(keys[Math.floor(next() * keys.length)]);
    for (let i = 0; i < 50; i++) s.drop(keys[Math.floor(next() * keys.length)]);
    assert.notEqual(s._values, valuesBefore, `seed ${seed}: the values were compacted`);
    const seen = [];
    const n = 64;
    const digest = new Uint32Array(2 * n);
    for (let i = 0; i < snap.count; i++) {
        if (!snap.has(i)) continue;
        const e = snap.entryAt(i);
        const was = before.get(e.key);
        assert.ok(was, `seed ${seed}: ${JSON.stringify(e.key)} was in the state`);
        assert.equal(e.hlc, was.hlc);
        assert.equal(e.writer, was.writer);
        assert.deepEqual(e.value, was.value);
        assert.deepEqual(snap.encode(i), encodeEntry(was), `seed ${seed}: ${JSON.stringify(e.key)} encodes alike`);
        snap.hashInto(digest, n - 1, i);
        seen.push(e.key);
    }
    assert.deepEqual(seen.sort(), [...before.keys()].sort());
    const words = [];
    for (let b = 0; b < n; b++) words.push((BigInt(digest[2 * b + 1]) << 32n) | BigInt(digest[2 * b]));
    assert.deepEqual(words, computeDigest(before.values(), n), `seed ${seed}: the digest of the snapshot`);
});

test("MapState: dropTombstonesBefore drops only tombstones older than the limit, across the hlc halves", () => {
    const s = new MapState();
    const limit = 0x1_0000_0005n; // high half 1, low half 5
    s.apply(del("old-high", 0xffffffffn, 1)); // high half 0: older
    s.apply(del("old-low", 0x1_0000_0004n, 1));
    s.apply(del("at-limit", limit, 1)); // not older: kept
    s.apply(del("newer", 0x1_0000_0006n, 1));
    s.apply(del("newer-high", 0x2_0000_0000n, 1));
    s.apply(set("value", 1, 1, "1")); // a value, however old: kept
    const dropped = s.dropTombstonesBefore(limit);
    assert.deepEqual(dropped.map((e) => e.key).sort(), ["old-high", "old-low"]);
    assert.ok(dropped.every((e) => e.value === null));
    assert.deepEqual([...s.values()].map((e) => e.key).sort(), ["at-limit", "newer", "newer-high", "value"]);
    assert.deepEqual(s.entriesNewerThan(limit).map((e) => e.key).sort(), ["newer", "newer-high"]);
    assert.equal(s.live, 1);
});
