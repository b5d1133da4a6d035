// The peer's protocol behaviour against a scripted relay (fakerelay.mjs):
// handshake, sync as joiner and responder, push back, acknowledgements,
// limits, bad input. No C++ binary needed.
import test from "node:test";
import assert from "node:assert/strict";
import {
    DistributedMap,
    Entry,
    U64_MAX,
    bucketCountFor,
    computeDigest,
    connect,
    peerToHex,
} from "../../resources/web/distmap.js";
import { FakeNet, R, Rhex, X, Xhex, entry, handshake, sleep, turn } from "./fakerelay.mjs";

const fast = { minDelay: 5, maxDelay: 10 };
// An hlc of now (plus a counter): older clocks make a peer stale (rejoin).
const NOW = BigInt(Date.now()) << 16n;

function setup(mapOptions = {}, connOptions = {}) {
    const net = new FakeNet();
    const conn = connect("ws://relay.test:7357", { WebSocket: net.WebSocket, reconnect: fast, heartbeat: 0, ...connOptions });
    const errors = [];
    conn.on("error", (e) => errors.push(e));
    const map = DistributedMap(conn, "/m", mapOptions);
    return { net, conn, map, errors };
}

// Opens, then answers the first SyncRequest with `alone`.
async function readyAlone(ctx, opts = {}) {
    const { socket } = await handshake(ctx.net, { maps: ["/m"], ...opts });
    socket.deliver({ type: "alone", id: 1 });
    await turn();
    assert.ok(ctx.map.isReady);
    return socket;
}

function syncData(syncId, seq, final, entries, digest = [], peer = R) {
    return { type: "SyncData", map: 1, peer, syncId, seq, final, digest, entries };
}

test("handshake: hello first, version 1, a 16-hex-digit peer id; open with presence; full sync; alone makes ready", async () => {
    const ctx = setup({}, { name: "tab" });
    let readyArg;
    ctx.map.on("ready", (m) => (readyArg = m));
    const { socket, hello } = await handshake(ctx.net, { maps: ["/m"] });
    assert.equal(socket.controls[0].type, "hello");
    assert.equal(hello.version, 1);
    assert.match(hello.peer, /^[0-9a-f]{16}$/);
    assert.ok(Number.isInteger(hello.time));
    assert.equal(socket.protocols, undefined, "no subprotocol without a token");
    assert.deepEqual(socket.control("open"), [{ type: "open", map: "/m", presence: { name: "tab" } }]);
    const [req] = socket.sentRouted("SyncRequest");
    assert.equal(req.map, 1);
    assert.equal(req.peer, 0n);
    assert.equal(req.since, 0n, "full: since 0");
    assert.equal(req.bucketCount, 0, "full: no digest");
    assert.equal(ctx.map.isReady, false);
    socket.deliver({ type: "alone", id: 1 });
    assert.equal(ctx.map.isReady, true);
    assert.equal(readyArg, ctx.map);
    assert.deepEqual(socket.control("ready"), [{ type: "ready", id: 1 }]);
    assert.equal(ctx.conn.status, "connected");
    let called = false;
    ctx.map.ready(() => (called = true));
    assert.ok(called, "ready(fn) calls at once when ready");
    ctx.conn.close();
    assert.equal(ctx.conn.status, "closed");
});

test("a token goes in the subprotocol (or the query when it is not a valid protocol name)", async () => {
    const a = setup({}, { token: "abcdefghijklmnop" });
    assert.deepEqual(a.net.last.protocols, ["distmap", "distmap.token.abcdefghijklmnop"]);
    assert.equal(a.net.last.url, "ws://relay.test:7357");
    a.conn.close();
    const b = setup({}, { token: "abc/def ghi=jklmnop" });
    assert.equal(b.net.last.protocols, undefined);
    assert.equal(b.net.last.url, "ws://relay.test:7357?token=abc%2Fdef%20ghi%3Djklmnop");
    b.conn.close();
});

test("welcome: the relay's time offsets the clock; maxMessage defaults to 16 MiB when not a positive integer", async () => {
    const ahead = Date.now() + 3600000;
    const ctx = setup();
    await readyAlone(ctx, { time: ahead, maxMessage: 1.5 });
    assert.equal(ctx.conn.maxMessage, 16777216);
    ctx.map.set("k", 1);
    const ms = Number(ctx.map.getEntry("k").hlc >> 16n);
    assert.ok(Math.abs(ms - ahead) < 5000, `hlc follows the relay's clock (${ms - ahead} ms off)`);
    ctx.conn.close();
    for (const [max, want] of [[undefined, 16777216], [0, 16777216], [-5, 16777216], ["1000", 16777216], [4096, 4096]]) {
        const c = setup();
        await handshake(c.net, { maps: [], maxMessage: max });
        assert.equal(c.conn.maxMessage, want, `maxMessage ${max}`);
        c.conn.close();
    }
    // A time that is not an integer reads as unknown: no offset.
    const c = setup();
    await handshake(c.net, { maps: ["/m"], time: 1.5 });
    assert.equal(c.conn.clockOffset, 0);
    c.conn.close();
});

test("writes of one event-loop turn go out as one Delta, all written by us", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx);
    socket.clear();
    for (let i = 0; i < 100; i++) ctx.map.set(`k${i}`, { i });
    ctx.map.set("k5", "again"); // the same key twice in a turn: its latest write
    ctx.map.delete("k7");
    assert.equal(socket.sentRouted("Delta").length, 0, "nothing before the turn ends");
    await turn();
    const deltas = socket.sentRouted("Delta");
    assert.equal(deltas.length, 1);
    const d = deltas[0];
    assert.equal(d.flags, 0, "no ackRequested without acknowledgements on");
    assert.equal(d.entries.length, 100);
    assert.ok(d.entries.every((e) => e.writer === ctx.conn.peer));
    assert.equal(d.entries.find((e) => e.key === "k5").value, '"again"');
    assert.equal(d.entries.find((e) => e.key === "k7").value, null);
    // hlcs strictly increase in write order.
    for (let i = 1; i < d.entries.length; i++) if (d.entries[i].key !== "k5" && d.entries[i].key !== "k7") assert.ok(d.entries[i].hlc > d.entries[i - 1].hlc || d.entries[i - 1].key === "k5" || d.entries[i - 1].key === "k7");
    ctx.conn.close();
});

test("the relay's limit: a write that cannot fit is refused; batches split below the limit", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx, { maxMessage: 300 });
    const errors = [];
    ctx.map.on("error", (e) => errors.push(e));
    // 16 + 21 + 1 + 4 + value: a 259-byte value is 301 bytes.
    assert.equal(ctx.map.set("k", "x".repeat(257)), false, "a 259-byte JSON string does not fit");
    assert.equal(errors[0].code, "TooLarge");
    assert.equal(ctx.map.has("k"), false, "nothing applied");
    assert.equal(ctx.map.set("k", "x".repeat(256)), true, "258 bytes: 300 exactly");
    await turn();
    assert.equal(socket.sentRouted("Delta")[0].size, 300);
    socket.clear();
    for (let i = 0; i < 40; i++) ctx.map.set(`key${i}`, "v".repeat(20));
    await turn();
    const deltas = socket.sentRouted("Delta");
    assert.ok(deltas.length > 1, "split");
    assert.ok(deltas.every((d) => d.size <= 300), "every message within the limit");
    assert.equal(deltas.reduce((n, d) => n + d.entries.length, 0), 40);
    ctx.conn.close();
});

test("deltas: applied with events; a forged writer or a malformed entry drops the whole message", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx);
    const events = [];
    ctx.map.on("set", (v, k, m, info) => events.push(["set", k, v, info.writer, info.origin]));
    ctx.map.on("delete", (v, k) => events.push(["delete", k, v]));
    const errors = [];
    ctx.map.on("error", (e) => errors.push(e));
    socket.deliverRouted({ type: "Delta", map: 1, peer: X, entries: [entry("a", 10, X, "1"), entry("b", 11, X, '{"x":[1]}')] });
    assert.deepEqual(ctx.map.toObject(), { a: 1, b: { x: [1] } });
    socket.deliverRouted({ type: "Delta", map: 1, peer: X, entries: [entry("a", 12, X, null)] });
    assert.deepEqual(events, [
        ["set", "a", 1, Xhex, Xhex],
        ["set", "b", { x: [1] }, Xhex, Xhex],
        ["delete", "a", 1],
    ]);
    // A write that loses emits nothing.
    socket.deliverRouted({ type: "Delta", map: 1, peer: X, entries: [entry("a", 11, X, "5")] });
    assert.equal(events.length, 3);
    assert.equal(ctx.map.has("a"), false);
    // Forged: an entry of another writer in X's delta.
    socket.deliverRouted({ type: "Delta", flags: 1, map: 1, peer: X, entries: [entry("c", 20, X, "1"), entry("d", 20, R, "1")] });
    assert.equal(ctx.map.has("c"), false, "the whole delta is dropped");
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /forged/);
    // Malformed: the second entry is truncated; the first must not apply.
    const good = new Uint8Array([...Buffer.from("10010000010000000000000000000000cc00000000000000".slice(0, 32), "hex")]);
    good.set([0xcc], 8);
    const e1 = Buffer.from("01" + "1400000000000000" + "cc00000000000000" + "01000000" + "65" + "01000000" + "31", "hex");
    socket.deliver(new Uint8Array([...good, ...e1, 0x01, 0x02]));
    assert.equal(ctx.map.has("e"), false);
    assert.equal(errors.length, 2);
    assert.equal(errors[1].code, "BadMessage");
    await turn();
    assert.equal(socket.sentRouted("WriteAck").length, 0, "no ack for dropped deltas");
    // Garbage of every kind never throws out of the socket handler.
    for (const bad of [new Uint8Array(3), new Uint8Array(16), new Uint8Array([0x10, 0, 1, 0, 1, 0, 0, 0, 0xcc, 0, 0, 0, 0, 0, 0, 0, 1])]) socket.deliver(bad);
    assert.deepEqual(ctx.map.toObject(), { b: { x: [1] } });
    ctx.conn.close();
});

test("acknowledgements as receiver: one WriteAck per ackRequested delta, every hlc in order, durable 0; never for Repair or SyncData", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx);
    socket.deliverRouted({ type: "Delta", map: 1, peer: X, entries: [entry("a", 100, X, "1")] });
    socket.clear();
    // applied, duplicate, superseded
    socket.deliverRouted({ type: "Delta", flags: 1, map: 1, peer: X, entries: [entry("b", 101, X, "1"), entry("a", 100, X, "1"), entry("a", 50, X, "2")] });
    const acks = socket.sentRouted("WriteAck");
    assert.equal(acks.length, 1);
    assert.equal(acks[0].peer, X, "addressed to the delta's origin");
    assert.equal(acks[0].durable, false);
    assert.deepEqual(acks[0].hlcs, [101n, 100n, 50n]);
    assert.equal(acks[0].map, 1);
    socket.clear();
    socket.deliverRouted({ type: "Repair", flags: 1, map: 1, peer: X, entries: [entry("c", 102, R, "1")] });
    assert.equal(socket.sentRouted("WriteAck").length, 0);
    ctx.conn.close();
});

test("acknowledgements as writer: unconfirmed until durable, resent after joined, superseded by another peer's newer write", async () => {
    const ctx = setup({ writeAcknowledgements: true });
    const socket = await readyAlone(ctx);
    const acked = [];
    const superseded = [];
    ctx.map.on("writeAcknowledged", (k, peers, durable) => acked.push([k, peers, durable]));
    ctx.map.on("writeSuperseded", (k) => superseded.push(k));
    ctx.map.set("k", 1);
    ctx.map.set("j", 2);
    await turn();
    const [delta] = socket.sentRouted("Delta");
    assert.equal(delta.flags, 1, "ackRequested");
    const hk = delta.entries[0].hlc;
    const hj = delta.entries[1].hlc;
    assert.equal(ctx.map.unconfirmedWrites, 2);
    socket.deliverRouted({ type: "WriteAck", map: 1, peer: X, durable: false, hlcs: [hk, 12345n] });
    assert.deepEqual(acked, [["k", 1, false]]);
    assert.equal(ctx.map.unconfirmedWrites, 2);
    // A peer joins: the unconfirmed writes go again, same entries.
    socket.clear();
    socket.deliver({ type: "joined", id: 1, peer: Rhex, presence: { name: "keeper" } });
    const [again] = socket.sentRouted("Delta");
    assert.equal(again.flags, 1);
    assert.deepEqual(again.entries.map((e) => [e.key, e.hlc]), [["k", hk], ["j", hj]]);
    socket.deliverRouted({ type: "WriteAck", map: 1, peer: R, durable: true, hlcs: [hk] });
    assert.deepEqual(acked[1], ["k", 2, true]);
    assert.equal(ctx.map.unconfirmedWrites, 1);
    // Another peer's newer write of j replaces ours.
    socket.deliverRouted({ type: "Delta", map: 1, peer: X, entries: [entry("j", hj + 1n, X, "3")] });
    assert.deepEqual(superseded, ["j"]);
    assert.equal(ctx.map.unconfirmedWrites, 0);
    assert.deepEqual(ctx.map.peers, [{ peer: Rhex, name: "keeper", presence: { name: "keeper" } }]);
    ctx.conn.close();
});

test("reconnect: the same peer id, offline writes pushed back, catch-up then verify, chunks acknowledged", async () => {
    const ctx = setup();
    const statuses = [];
    ctx.conn.on("status", (s) => statuses.push(s));
    const s1 = await readyAlone(ctx);
    const id = ctx.conn.peerHex;
    s1.deliverRouted({ type: "Delta", map: 1, peer: X, entries: [entry("heard", NOW - 1000n, X, "1")] });
    ctx.map.set("mine", 1);
    await turn();
    s1.drop();
    assert.equal(ctx.conn.status, "reconnecting");
    ctx.map.set("offline", 2); // applies at once, offline
    assert.equal(ctx.map.get("offline"), 2);
    await sleep(30);
    assert.equal(ctx.net.sockets.length, 2, "reconnected");
    const { socket, hello } = await handshake(ctx.net, { maps: ["/m"], id: 5 });
    assert.equal(hello.peer, id, "the same peer id on every reconnect");
    assert.equal(socket.sentRouted("Delta").length, 0, "writes made before opened are not deltas");
    const [req] = socket.sentRouted("SyncRequest");
    assert.equal(req.map, 5, "the new map id");
    assert.equal(req.since, NOW - 1000n, "catch-up from the greatest hlc heard");
    assert.equal(req.bucketCount, 0);
    const mine = ctx.map.getEntry("mine");
    // R holds our write already (strikes it) and has one of its own.
    socket.deliverRouted({ ...syncData(req.syncId, 0, true, [mine, entry("theirs", 2000, R, '"t"')]), map: 5 });
    const [ack] = socket.sentRouted("SyncAck");
    assert.deepEqual([ack.peer, ack.syncId, ack.seq, ack.map], [R, req.syncId, 0, 5]);
    const [repair] = socket.sentRouted("Repair");
    assert.deepEqual(repair.entries.map((e) => e.key), ["offline"], "pushes what R lacked, not what it has");
    const reqs = socket.sentRouted("SyncRequest");
    assert.equal(reqs.length, 2, "a verify round follows the catch-up");
    const verify = reqs[1];
    assert.notEqual(verify.syncId, req.syncId, "a new syncId");
    assert.equal(verify.since, U64_MAX);
    const n = bucketCountFor(4);
    assert.equal(verify.bucketCount, n);
    const state = ["heard", "mine", "offline", "theirs"].map((k) => ctx.map.getEntry(k));
    assert.deepEqual(verify.digest, computeDigest(state, n));
    assert.equal(socket.control("ready").length, 0, "ready only after the last round");
    socket.deliverRouted({ ...syncData(verify.syncId, 0, true, [], computeDigest(state, n)), map: 5 });
    assert.deepEqual(socket.control("ready"), [{ type: "ready", id: 5 }]);
    assert.equal(socket.sentRouted("Repair").length, 1, "equal digests: nothing more to push");
    assert.deepEqual(statuses, ["connected", "reconnecting", "connected"]);
    ctx.conn.close();
});

test("verify round: entries in differing buckets are pushed unless the responder sends them", async () => {
    const ctx = setup({ antiEntropyInterval: 300 });
    const socket = await readyAlone(ctx);
    for (let i = 0; i < 40; i++) ctx.map.set(`k${i}`, i);
    await turn();
    socket.clear();
    // The anti-entropy round starts 300 ms after the first sync ended.
    for (let waited = 0; socket.sentRouted("SyncRequest").length === 0 && waited < 3000; waited += 10) await sleep(10);
    const [req] = socket.sentRouted("SyncRequest");
    assert.equal(req.since, U64_MAX);
    const n = req.bucketCount;
    assert.equal(n, 4);
    // R lacks k3 and has an older k4 and a key we lack.
    const all = ctx.map.keys().map((k) => ctx.map.getEntry(k));
    const rState = all.filter((e) => e.key !== "k3" && e.key !== "k4").concat([entry("k4", 5, R, "0"), entry("zz", 6, R, "1")]);
    const dR = computeDigest(rState, n);
    const differing = new Set(dR.map((w, b) => (w === req.digest[b] ? -1 : b)).filter((b) => b >= 0));
    const bucket = (key) => Number(computeDigest([entry(key, 0, 1, null)], n).findIndex((w) => w !== 0n));
    const sent = rState.filter((e) => differing.has(bucket(e.key)));
    socket.deliverRouted(syncData(req.syncId, 0, false, [], dR));
    socket.deliverRouted(syncData(req.syncId, 1, true, sent));
    assert.equal(ctx.map.get("zz"), 1, "got R's entry");
    const [repair] = socket.sentRouted("Repair");
    const pushed = repair.entries.map((e) => e.key).sort();
    assert.ok(pushed.includes("k3") && pushed.includes("k4"), `pushed ${pushed}`);
    assert.ok(!pushed.includes("zz"));
    // Everything else pushed is in a differing bucket and R sent an older
    // or no write for it; R's equal writes strike their keys.
    for (const k of pushed) assert.ok(differing.has(bucket(k)));
    assert.equal(socket.control("ready").length, 1, "a verify round ends with ready");
    ctx.conn.close();
});

test("joiner: chunks of another syncId or responder are ignored; a gap, a lost chunk 0 or silence asks again with a new syncId", async () => {
    const ctx = setup({ syncTimeout: 40, firstChunkGrace: 10 });
    const { socket } = await handshake(ctx.net, { maps: ["/m"] });
    const [req] = socket.sentRouted("SyncRequest");
    socket.deliverRouted(syncData(req.syncId + 1, 0, true, [entry("wrong-sync", 1, R, "1")]));
    assert.equal(ctx.map.has("wrong-sync"), false);
    socket.deliverRouted(syncData(req.syncId, 0, false, [entry("a", NOW, R, "1")]));
    socket.deliverRouted(syncData(req.syncId, 1, true, [entry("other-responder", 1, X, "1")], [], X));
    assert.equal(ctx.map.has("other-responder"), false);
    assert.equal(ctx.map.isReady, false);
    // Silence after chunk 0: asked again.
    await sleep(80);
    const reqs = socket.sentRouted("SyncRequest");
    assert.ok(reqs.length >= 2);
    const again = reqs[reqs.length - 1];
    assert.notEqual(again.syncId, req.syncId);
    assert.equal(again.since, NOW, "catch-up now that it holds entries");
    // A gap (seq 1 missing) makes it ask again too.
    socket.clear();
    socket.deliverRouted(syncData(again.syncId, 0, false, []));
    socket.deliverRouted(syncData(again.syncId, 2, true, []));
    const [third] = socket.sentRouted("SyncRequest");
    assert.ok(third && third.syncId !== again.syncId);
    // The responder leaving after its first chunk: asked again.
    socket.clear();
    socket.deliver({ type: "joined", id: 1, peer: Rhex, presence: {} });
    socket.deliverRouted(syncData(third.syncId, 0, false, []));
    socket.deliver({ type: "left", id: 1, peer: Rhex });
    const [fourth] = socket.sentRouted("SyncRequest");
    assert.ok(fourth && fourth.syncId !== third.syncId);
    // A first chunk whose seq is not 0 (chunk 0 was lost): asked again at
    // once, its entries not taken.
    socket.clear();
    socket.deliverRouted(syncData(fourth.syncId, 1, false, [entry("after-a-loss", 2, R, "1")]));
    assert.equal(ctx.map.has("after-a-loss"), false);
    const [fifth] = socket.sentRouted("SyncRequest");
    assert.ok(fifth && fifth.syncId !== fourth.syncId, "a new request without waiting for the timer");
    // A chunk from whichever member the relay routed the request to is taken.
    socket.deliverRouted(syncData(fifth.syncId, 0, true, [entry("b", 2, X, "2")], [], X));
    assert.equal(ctx.map.get("b"), 2);
    ctx.conn.close();
});

test("responder: chunks within the limit, at most 4 unacknowledged, entries newer than since, the last one final", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx, { maxMessage: 2048 });
    for (let i = 0; i < 500; i++) ctx.map.set(`key-${i}`, "v".repeat(i % 50));
    ctx.map.delete("key-7");
    await turn();
    socket.clear();
    socket.deliverRouted({ type: "SyncRequest", map: 1, peer: X, syncId: 42, since: 0n, digest: [] });
    let chunks = socket.sentRouted("SyncData");
    assert.equal(chunks.length, 4, "a window of 4");
    assert.ok(chunks.every((c) => c.peer === X && c.syncId === 42 && c.size <= 2048));
    assert.deepEqual(chunks.map((c) => c.seq), [0, 1, 2, 3]);
    let seen = chunks.length;
    const got = [];
    for (let guard = 0; guard < 1000; guard++) {
        const all = socket.sentRouted("SyncData");
        const fresh = all.slice(got.length);
        got.push(...fresh);
        if (got.length && got[got.length - 1].final) break;
        // Acknowledge the oldest unacknowledged chunk: one more comes.
        socket.deliverRouted({ type: "SyncAck", map: 1, peer: X, syncId: 42, seq: got.length - 4 });
        seen = socket.sentRouted("SyncData").length;
        assert.ok(seen - (got.length - 3) <= 4, "never more than 4 unacknowledged");
    }
    assert.ok(got[got.length - 1].final);
    assert.ok(got.slice(0, -1).every((c) => !c.final));
    assert.ok(got.every((c) => c.bucketCount === 0));
    assert.deepEqual(got.map((c) => c.seq), got.map((_, i) => i));
    const keys = got.flatMap((c) => c.entries.map((e) => e.key));
    assert.equal(keys.length, 500, "every entry once, the tombstone included");
    assert.equal(new Set(keys).size, 500);
    // since: only newer entries.
    socket.clear();
    const cut = ctx.map.getEntry("key-400").hlc;
    socket.deliverRouted({ type: "SyncRequest", map: 1, peer: X, syncId: 43, since: cut, digest: [] });
    const newer = socket.sentRouted("SyncData").flatMap((c) => c.entries.map((e) => e.key));
    // key-7 was deleted after key-499 was written: its tombstone is newer.
    assert.deepEqual(newer.sort(), Array.from({ length: 99 }, (_, i) => `key-${401 + i}`).concat(["key-7"]).sort());
    ctx.conn.close();
});

test("responder: a digest request gets the responder's digest in chunk 0 and the entries of differing buckets", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx);
    for (let i = 0; i < 100; i++) ctx.map.set(`k${i}`, i);
    await turn();
    socket.clear();
    const mine = ctx.map.keys().map((k) => ctx.map.getEntry(k));
    const theirs = mine.filter((e) => e.key !== "k10");
    const n = 8;
    socket.deliverRouted({ type: "SyncRequest", map: 1, peer: X, syncId: 7, since: U64_MAX, digest: computeDigest(theirs, n) });
    const chunks = socket.sentRouted("SyncData");
    assert.equal(chunks[0].bucketCount, n);
    assert.deepEqual(chunks[0].digest, computeDigest(mine, n));
    assert.ok(chunks[chunks.length - 1].final);
    const keys = chunks.flatMap((c) => c.entries.map((e) => e.key));
    assert.ok(keys.includes("k10"));
    assert.ok(keys.length < 100 / 2, `only the differing bucket (${keys.length} keys)`);
    // A new request from the same requester replaces the session.
    socket.clear();
    socket.deliverRouted({ type: "SyncRequest", map: 1, peer: X, syncId: 8, since: 0n, digest: [] });
    assert.deepEqual(socket.sentRouted("SyncData").map((c) => [c.syncId, c.seq]), [[8, 0]]);
    ctx.conn.close();
});

test("responder: a large map's digest is taken a slice per turn, so other tasks run before the answer", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx);
    const count = 45000; // three slices of 20,000
    for (let i = 0; i < count; i++) ctx.map.set(`key-${i}`, i);
    await turn();
    socket.clear();
    const mine = ctx.map.keys().map((k) => ctx.map.getEntry(k));
    const n = 64;
    const theirs = mine.filter((e) => e.key !== "key-123");
    const order = [];
    socket.deliverRouted({ type: "SyncRequest", map: 1, peer: X, syncId: 9, since: U64_MAX, digest: computeDigest(theirs, n) });
    assert.equal(socket.sentRouted("SyncData").length, 0, "nothing sent in the request's own task");
    setImmediate(() => order.push(`other task, ${socket.sentRouted("SyncData").length} chunks sent`));
    for (let guard = 0; guard < 100 && socket.sentRouted("SyncData").length === 0; guard++) await turn();
    order.push("answer");
    assert.deepEqual(order, ["other task, 0 chunks sent", "answer"]);
    const chunks = socket.sentRouted("SyncData");
    assert.equal(chunks[0].bucketCount, n);
    assert.deepEqual(chunks[0].digest, computeDigest(mine, n), "the digest of every entry, taken over several turns");
    assert.ok(chunks.flatMap((c) => c.entries.map((e) => e.key)).includes("key-123"));
    ctx.conn.close();
});

test("verify round: a large map's digest is taken a slice per turn, so other tasks run before the request", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx);
    const count = 45000;
    for (let i = 0; i < count; i++) ctx.map.set(`key-${i}`, i);
    await turn();
    socket.clear();
    const order = [];
    assert.equal(ctx.map.verify(), true);
    assert.equal(socket.sentRouted("SyncRequest").length, 0, "nothing sent in verify()'s own task");
    setImmediate(() => order.push(`other task, ${socket.sentRouted("SyncRequest").length} requests sent`));
    for (let guard = 0; guard < 100 && socket.sentRouted("SyncRequest").length === 0; guard++) await turn();
    order.push("request");
    assert.deepEqual(order, ["other task, 0 requests sent", "request"]);
    const [req] = socket.sentRouted("SyncRequest");
    const n = bucketCountFor(count);
    assert.equal(req.bucketCount, n);
    const all = ctx.map.keys().map((k) => ctx.map.getEntry(k));
    assert.deepEqual(req.digest, computeDigest(all, n), "the digest of every entry, taken over several turns");
    ctx.conn.close();
});

test("verify round: a map closed while its round's digest is taken sends no request", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx);
    for (let i = 0; i < 45000; i++) ctx.map.set(`key-${i}`, i);
    await turn();
    socket.clear();
    assert.equal(ctx.map.verify(), true);
    ctx.map.close(); // the connection stays
    for (let i = 0; i < 10; i++) await turn();
    assert.equal(socket.sentRouted("SyncRequest").length, 0);
    assert.equal(socket.control("close").length, 1);
    ctx.conn.close();
});

test("read-only access: writes refused, no sync answers, no entries sent", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx, { access: "ro" });
    const errors = [];
    ctx.map.on("error", (e) => errors.push(e.code));
    assert.equal(ctx.map.access, "ro");
    assert.equal(ctx.map.set("k", 1), false);
    assert.deepEqual(errors, ["ReadOnly"]);
    socket.deliverRouted({ type: "SyncRequest", map: 1, peer: X, syncId: 1, since: 0n, digest: [] });
    await turn();
    assert.equal(socket.sentRouted("SyncData").length, 0);
    // It still acknowledges.
    socket.deliverRouted({ type: "Delta", flags: 1, map: 1, peer: X, entries: [entry("a", 1, X, "1")] });
    assert.equal(socket.sentRouted("WriteAck").length, 1);
    ctx.conn.close();
});

test("rejoin: a stale peer drops what the network forgot and pushes only newer writes", async () => {
    const ctx = setup({ tombstoneRetention: 1000 });
    const s1 = await readyAlone(ctx);
    const old = (BigInt(Date.now() - 60000) << 16n) | 0n; // heard a minute ago: older than the retention
    s1.deliverRouted({ type: "Delta", map: 1, peer: X, entries: [entry("forgotten", old, X, "1"), entry("kept", old + 1n, X, "2"), entry("known", old + 2n, X, "3")] });
    s1.drop();
    await sleep(10);
    ctx.map.set("offline", 4); // after H: pushed
    const deleted = [];
    ctx.map.on("delete", (v, k) => deleted.push([k, v]));
    await sleep(30);
    const { socket } = await handshake(ctx.net, { maps: ["/m"] });
    const [req] = socket.sentRouted("SyncRequest");
    assert.equal(req.since, 0n, "rejoin asks for everything");
    assert.equal(req.bucketCount, 0);
    // The network has "kept" as is, an older write of "known", and no "forgotten".
    socket.deliverRouted(syncData(req.syncId, 0, true, [entry("kept", old + 1n, X, "2"), entry("known", old - 5n, X, "0"), entry("new", old + 100n, R, "5")]));
    assert.equal(ctx.map.has("forgotten"), false, "dropped");
    assert.deepEqual(deleted, [["forgotten", 1]], "reported as a delete");
    assert.equal(ctx.map.getEntry("forgotten"), undefined, "without a tombstone");
    const [repair] = socket.sentRouted("Repair");
    assert.deepEqual(repair.entries.map((e) => e.key).sort(), ["known", "offline"]);
    assert.equal(socket.sentRouted("SyncRequest").length, 1, "no verify round after a rejoin");
    assert.equal(socket.control("ready").length, 1);
    ctx.conn.close();
});

test("alone with read-only holders is reported", async () => {
    const ctx = setup();
    const { socket } = await handshake(ctx.net, { maps: ["/m"] });
    const errors = [];
    ctx.map.on("error", (e) => errors.push(e));
    socket.deliver({ type: "alone", id: 1, readOnlyPeers: 2 });
    assert.equal(ctx.map.isReady, true);
    assert.equal(errors[0].code, "ReadOnlyHoldersOnly");
    assert.equal(errors[0].readOnlyPeers, 2);
    ctx.conn.close();
});

test("an entry too large for any message stays local and is reported, never sent", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx, { maxMessage: 200 });
    const errors = [];
    ctx.map.on("error", (e) => errors.push(e));
    // Came from a relay with a larger limit (or a store).
    socket.deliverRouted({ type: "Delta", map: 1, peer: X, entries: [entry("big", 5, X, JSON.stringify("x".repeat(300))), entry("small", 6, X, "1")] });
    assert.equal(ctx.map.get("big").length, 300);
    socket.deliverRouted({ type: "SyncRequest", map: 1, peer: R, syncId: 1, since: 0n, digest: [] });
    const chunks = socket.sentRouted("SyncData");
    assert.deepEqual(chunks.flatMap((c) => c.entries.map((e) => e.key)), ["small"]);
    assert.ok(chunks.every((c) => c.size <= 200));
    assert.equal(errors[0].code, "EntryTooLarge");
    ctx.conn.close();
});

test("presence, peers, joined and left", async () => {
    const ctx = setup({ presence: { name: "Ada", color: "red" } });
    const joined = [];
    const left = [];
    ctx.map.on("peerJoined", (p) => joined.push(p.peer));
    ctx.map.on("peerLeft", (p) => left.push(p.peer));
    const { socket } = await handshake(ctx.net, { maps: ["/m"], peers: [{ peer: Rhex, presence: { name: "Bob" } }] });
    assert.deepEqual(socket.control("open")[0].presence, { name: "Ada", color: "red" });
    assert.deepEqual(ctx.map.peers, [{ peer: Rhex, name: "Bob", presence: { name: "Bob" } }]);
    socket.deliver({ type: "joined", id: 1, peer: Xhex, presence: { name: "Cy" } });
    socket.deliver({ type: "presence", id: 1, peer: Xhex, presence: { name: "Cyd" } });
    assert.equal(ctx.map.peers.find((p) => p.peer === Xhex).name, "Cyd");
    socket.deliver({ type: "left", id: 1, peer: Rhex });
    assert.deepEqual(joined, [Rhex, Xhex]);
    assert.deepEqual(left, [Rhex]);
    ctx.map.setPresence({ name: "Ada L." });
    assert.deepEqual(socket.control("presence"), [{ type: "presence", id: 1, presence: { name: "Ada L." } }]);
    // ping / pong
    const rtt = ctx.conn.ping();
    const [ping] = socket.control("ping");
    socket.deliver({ type: "pong", seq: ping.seq });
    assert.ok((await rtt) >= 0);
    ctx.conn.close();
});

test("bad control messages are reported, never thrown; unknown types are ignored", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx);
    for (const bad of ["not json", "[1,2]", "null", '{"type":5}', '{"no":"type"}', "{"]) socket.deliver(bad);
    assert.equal(ctx.errors.filter((e) => e.code === "BadMessage").length, 6);
    socket.deliver({ type: "something-new", id: 1 });
    socket.deliver({ type: "joined", id: 99, peer: Xhex }); // a map id we do not have
    socket.deliver({ type: "joined", id: 1, peer: 12 }); // not a peer id
    socket.deliver({ type: "opened", map: "/unknown", id: 3, access: "rw", peers: [] });
    socket.deliver({ type: "error", code: 5, name: "unknown-map", message: "map id 9 is not open", id: 9 });
    assert.ok(ctx.errors.some((e) => e.relayName === "unknown-map"));
    assert.equal(ctx.map.peers.length, 0);
    ctx.map.set("still", "works");
    assert.equal(ctx.map.get("still"), "works");
    ctx.conn.close();
});

test("unsupported-version stops reconnecting; duplicate-peer draws a new id", async () => {
    const a = setup();
    a.net.last.open();
    a.net.last.deliver({ type: "error", code: 3, name: "unsupported-version", message: "speaks 1" });
    a.net.last.drop(1008);
    await sleep(30);
    assert.equal(a.conn.status, "closed");
    assert.equal(a.net.sockets.length, 1);
    assert.ok(a.errors.some((e) => e.code === "UnsupportedVersion"));

    const b = setup();
    const first = b.conn.peerHex;
    b.net.last.open();
    b.net.last.deliver({ type: "error", code: 7, name: "duplicate-peer", message: "taken" });
    b.net.last.drop(1008);
    await sleep(30);
    assert.equal(b.net.sockets.length, 2);
    b.net.last.open();
    await turn();
    assert.notEqual(b.net.last.control("hello")[0].peer, first);
    b.conn.close();
});

test("API: with or without new, one map per URI, Map-like reads, JSON values, bad arguments", async () => {
    const ctx = setup();
    const again = DistributedMap(ctx.conn, "/m");
    assert.equal(again, ctx.map);
    const other = new DistributedMap(ctx.conn, "/other");
    assert.ok(other instanceof DistributedMap);
    assert.ok(ctx.map instanceof DistributedMap);
    const m = ctx.map;
    m.set("s", "text");
    m.set("n", 1.5);
    m.set("o", { a: [1, null, true] });
    m.set("__proto__", "safe");
    m.set("", "empty key");
    assert.equal(m.size, 5);
    assert.deepEqual(m.keys().sort(), ["", "__proto__", "n", "o", "s"]);
    const obj = m.toObject();
    assert.equal(Object.getPrototypeOf(obj), Object.prototype);
    assert.equal(obj.__proto__, "safe");
    assert.deepEqual(new Map(m.entries()).get("o"), { a: [1, null, true] });
    assert.deepEqual([...m].length, 5);
    assert.equal(m.delete("missing"), false);
    assert.equal(m.delete("s"), true);
    assert.equal(m.delete("s"), false, "already a tombstone");
    assert.equal(m.has("s"), false);
    assert.equal(m.get("s"), undefined);
    assert.equal(m.getEntry("s").value, null, "the tombstone is kept");
    assert.equal(m.size, 4);
    assert.throws(() => m.set("k", undefined), TypeError);
    assert.throws(() => m.set("k", () => 1), TypeError);
    assert.throws(() => m.set(5, 1), TypeError);
    assert.throws(() => m.set("bad\ud800", 1), TypeError);
    assert.throws(() => m.set("k", 10n), TypeError);
    m.set("lone", "\ud800"); // a lone surrogate in a value is escaped by JSON
    assert.equal(m.getText("lone"), '"\\ud800"');
    assert.equal(m.get("lone"), "\ud800");
    assert.equal(m.setText("raw", " [1, 2] "), true);
    assert.deepEqual(m.get("raw"), [1, 2]);
    assert.equal(m.getText("raw"), " [1, 2] ");
    assert.throws(() => DistributedMap(ctx.conn, ""), TypeError);
    assert.throws(() => DistributedMap({}, "/x"), TypeError);
    ctx.conn.close();
});

test("values are stored as received: invalid UTF-8 bytes read as undefined and are served back unchanged", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx);
    socket.deliverRouted({ type: "Delta", map: 1, peer: X, entries: [new Entry("bin", 5n, X, new Uint8Array([0xff, 0x31]))] });
    socket.deliverRouted({ type: "Delta", map: 1, peer: X, entries: [new Entry("bom", 6n, X, new Uint8Array([0xef, 0xbb, 0xbf, 0x31]))] });
    assert.equal(ctx.map.has("bin"), true);
    assert.equal(ctx.map.get("bin"), undefined, "does not parse");
    assert.equal(ctx.map.getText("bom"), "\ufeff1", "the BOM is kept");
    socket.clear();
    socket.deliverRouted({ type: "SyncRequest", map: 1, peer: R, syncId: 1, since: 0n, digest: [] });
    const [chunk] = socket.sentRouted("SyncData");
    const bin = chunk.entries.find((e) => e.key === "bin");
    assert.deepEqual([...bin.value], [0xff, 0x31]);
    assert.equal(chunk.entries.find((e) => e.key === "bom").value, "\ufeff1");
    ctx.conn.close();
});

test("persist: true without IndexedDB (Node) gives a clear error and works in memory", async () => {
    const ctx = setup({ persist: true });
    const errors = [];
    ctx.map.on("error", (e) => errors.push(e));
    await sleep(5);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, "PersistenceUnavailable");
    assert.match(errors[0].message, /IndexedDB/);
    await readyAlone(ctx);
    ctx.map.set("k", 1);
    assert.equal(ctx.map.get("k"), 1);
    ctx.conn.close();
});

test("a local write beats a future-dated write; a remote clock a day ahead does not drag ours", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx);
    const day = BigInt(Date.now() + 86400000) << 16n;
    socket.deliverRouted({ type: "Delta", map: 1, peer: X, entries: [entry("k", day, X, "1")] });
    ctx.map.set("other", 1);
    const ms = Number(ctx.map.getEntry("other").hlc >> 16n);
    assert.ok(ms <= Date.now() + 61000, "followed at most 60 s ahead");
    ctx.map.set("k", 2);
    assert.equal(ctx.map.getEntry("k").hlc, day + 1n);
    assert.equal(ctx.map.get("k"), 2);
    ctx.conn.close();
});

test("connection.close() ends everything: no timers keep the process alive", async () => {
    const ctx = setup({ antiEntropyInterval: 100000, writeAcknowledgements: true }, { heartbeat: 50 });
    const socket = await readyAlone(ctx);
    ctx.map.set("k", 1);
    ctx.conn.close();
    assert.equal(socket.closedWith, 1000);
    assert.equal(ctx.conn.status, "closed");
    assert.equal(ctx.map.get("k"), 1, "still readable");
    // node --test would wait for a live timer; finishing shows none is left.
});

test("unknown control types are ignored, not errors, before and after welcome and with or without a map id", async () => {
    const ctx = setup();
    ctx.net.last.open();
    await turn();
    ctx.net.last.deliver({ type: "brand-new-before-welcome", x: 1 });
    const socket = await readyAlone(ctx);
    const before = socket.raw.length;
    for (const m of [{ type: "brand-new" }, { type: "brand-new", id: 1 }, { type: "brand-new", id: 99, extra: [1, 2] }, { type: "VERIFY", id: 1 }])
        socket.deliver(m);
    await turn();
    assert.deepEqual(ctx.errors, [], "no error event for a type added within version 1");
    assert.equal(socket.raw.length, before, "and nothing sent in answer");
    assert.ok(ctx.map.isReady);
    ctx.conn.close();
});

test("relay verify: a ready peer runs a verify round at once; a peer not ready ignores it; one during a round runs after it", async () => {
    const ctx = setup({ antiEntropyInterval: 0 });
    const synced = [];
    ctx.map.on("synced", (m, info) => synced.push(info.reason));
    // Not ready yet: the first sync is about to compare anyway.
    const { socket } = await handshake(ctx.net, { maps: ["/m"] });
    socket.deliver({ type: "verify", id: 1 });
    await turn();
    assert.equal(socket.sentRouted("SyncRequest").length, 1, "ignored before ready");
    socket.deliver({ type: "alone", id: 1 });
    assert.deepEqual(synced, ["first"]);
    await turn();
    assert.equal(socket.sentRouted("SyncRequest").length, 1, "no verify round queued from before ready");
    for (let i = 0; i < 20; i++) ctx.map.set(`k${i}`, i);
    await turn();
    socket.clear();
    // Ready and idle (anti-entropy off): a verify round now.
    socket.deliver({ type: "verify", id: 1 });
    let reqs = socket.sentRouted("SyncRequest");
    assert.equal(reqs.length, 1, "a round at once");
    assert.equal(reqs[0].since, U64_MAX, "verify mode");
    const n = bucketCountFor(20);
    assert.equal(reqs[0].bucketCount, n);
    const mine = ctx.map.keys().map((k) => ctx.map.getEntry(k));
    assert.deepEqual(reqs[0].digest, computeDigest(mine, n));
    assert.ok(ctx.map.syncing);
    assert.ok(ctx.map.isReady, "stays ready meanwhile");
    // Another verify while this round runs: one more round after it.
    socket.deliver({ type: "verify", id: 1 });
    socket.deliver({ type: "verify", id: 1 });
    assert.equal(socket.sentRouted("SyncRequest").length, 1, "not a second round in parallel");
    // The responder lacks k3: it is pushed back.
    const rState = mine.filter((e) => e.key !== "k3");
    socket.deliverRouted(syncData(reqs[0].syncId, 0, true, [], computeDigest(rState, n)));
    assert.ok(socket.sentRouted("Repair")[0].entries.some((e) => e.key === "k3"), "the difference is repaired");
    assert.equal(socket.control("ready").length, 1);
    assert.deepEqual(synced, ["first", "verify"]);
    reqs = socket.sentRouted("SyncRequest");
    assert.equal(reqs.length, 2, "the verify that came during the round runs after it, once");
    assert.equal(reqs[1].since, U64_MAX);
    socket.deliverRouted(syncData(reqs[1].syncId, 0, true, [], computeDigest(mine, n)));
    assert.equal(socket.sentRouted("SyncRequest").length, 2, "and no more");
    assert.equal(ctx.map.syncing, false);
    // A verify for another map id, or none, changes nothing.
    socket.deliver({ type: "verify", id: 7 });
    socket.deliver({ type: "verify" });
    assert.equal(socket.sentRouted("SyncRequest").length, 2);
    assert.deepEqual(ctx.errors, []);
    ctx.conn.close();
});

test("opened event and access; synced says why (first, reconnect, verify); map.verify()", async () => {
    const ctx = setup({ antiEntropyInterval: 0 });
    const opened = [];
    const synced = [];
    ctx.map.on("opened", (o) => opened.push([o.access, o.id, o.peers.map((p) => p.peer), o.map === ctx.map, ctx.map.syncing]));
    ctx.map.on("synced", (m, info) => synced.push([m === ctx.map, info.reason]));
    assert.equal(ctx.map.access, null, "null before the relay said");
    assert.equal(ctx.map.verify(), false, "verify() before ready does nothing");
    const { socket } = await handshake(ctx.net, { maps: ["/m"], access: "ro", peers: [{ peer: Rhex, presence: { name: "r" } }] });
    assert.deepEqual(opened, [["ro", 1, [Rhex], true, false]], "emitted before the sync starts");
    assert.equal(ctx.map.access, "ro");
    const [req] = socket.sentRouted("SyncRequest");
    socket.deliverRouted(syncData(req.syncId, 0, true, [entry("a", NOW, R, "1")]));
    assert.deepEqual(synced, [[true, "first"]]);
    // Reconnect: opened again (now rw), and the catch-up + verify rounds end as one "reconnect".
    socket.drop();
    await sleep(30);
    const { socket: s2 } = await handshake(ctx.net, { maps: ["/m"], id: 4, access: "rw" });
    assert.deepEqual(opened.at(-1), ["rw", 4, [], true, false]);
    assert.equal(ctx.map.access, "rw");
    const [catchUp] = s2.sentRouted("SyncRequest");
    s2.deliver({ type: "alone", id: 4 });
    assert.deepEqual(synced, [[true, "first"], [true, "reconnect"]]);
    assert.equal(s2.sentRouted("SyncRequest").length, 1, `alone ends the round (${catchUp.since})`);
    // verify() starts a digest round now; the next synced says "verify".
    assert.equal(ctx.map.verify(), true);
    const [, v] = s2.sentRouted("SyncRequest");
    assert.equal(v.since, U64_MAX);
    s2.deliverRouted({ ...syncData(v.syncId, 0, true, [], computeDigest([ctx.map.getEntry("a")], v.bucketCount)), map: 4 });
    assert.deepEqual(synced.at(-1), [true, "verify"]);
    // A reconnect whose sync runs a catch-up then a verify round: one synced, "reconnect".
    s2.drop();
    await sleep(30);
    const { socket: s3 } = await handshake(ctx.net, { maps: ["/m"], id: 6 });
    const [c3] = s3.sentRouted("SyncRequest");
    assert.notEqual(c3.since, U64_MAX, "catch-up");
    s3.deliverRouted({ ...syncData(c3.syncId, 0, true, []), map: 6 });
    const [, v3] = s3.sentRouted("SyncRequest");
    assert.equal(v3.since, U64_MAX, "then verify");
    assert.equal(synced.length, 3, "no synced between the two rounds");
    s3.deliverRouted({ ...syncData(v3.syncId, 0, true, [], computeDigest([ctx.map.getEntry("a")], v3.bucketCount)), map: 6 });
    assert.deepEqual(synced.at(-1), [true, "reconnect"]);
    assert.equal(synced.length, 4);
    ctx.conn.close();
});

test("flush(): sends the queued writes at once; without a store it resolves at once", async () => {
    const ctx = setup();
    const socket = await readyAlone(ctx);
    socket.clear();
    ctx.map.set("a", 1);
    ctx.map.set("b", 2);
    assert.equal(socket.sentRouted("Delta").length, 0);
    const p = ctx.map.flush();
    const [d] = socket.sentRouted("Delta");
    assert.deepEqual(d.entries.map((e) => e.key), ["a", "b"], "one Delta, now");
    let stored = 0;
    ctx.map.on("stored", () => stored++);
    assert.equal(await p, undefined);
    await turn();
    assert.equal(socket.sentRouted("Delta").length, 1, "nothing left for the end of the turn");
    assert.equal(stored, 0, "no store, no stored event");
    ctx.conn.close();
    // persist: true in Node (no IndexedDB): memory only, flush resolves.
    const c = setup({ persist: true });
    await c.map.flush();
    c.conn.close();
});

test("an attempt nobody answers is dropped after handshakeTimeout and made again (a real, silent TCP server)", async () => {
    const { createServer } = await import("node:net");
    const { default: WebSocket } = await import("ws");
    const held = [];
    const server = createServer((s) => held.push(s)); // accepts, never answers
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    const url = `ws://127.0.0.1:${server.address().port}`;
    const conn = connect(url, { WebSocket, reconnect: fast, heartbeat: 0, handshakeTimeout: 300 });
    const errors = [];
    conn.on("error", (e) => errors.push(e));
    try {
        const t0 = Date.now();
        while (held.length < 2 && Date.now() - t0 < 20000) await sleep(20);
        assert.ok(held.length >= 2, `a second attempt (${held.length} connections seen)`);
        assert.ok(errors.length >= 1);
        assert.match(errors[0].message, /no welcome within 300 ms; trying again/);
        assert.equal(errors[0].code, "Socket");
        assert.notEqual(conn.status, "connected");
    } finally {
        conn.close();
        for (const s of held) s.destroy();
        await new Promise((r) => server.close(r));
    }
});

test("handshakeTimeout counts from hello while the peer holds its hello (a persisted map reading its store)", async () => {
    const net = new FakeNet();
    const conn = connect("ws://relay.test:7357", { WebSocket: net.WebSocket, reconnect: fast, heartbeat: 0, handshakeTimeout: 100 });
    const errors = [];
    conn.on("error", (e) => errors.push(e));
    try {
        let release;
        conn._hold(new Promise((r) => (release = r)));
        const socket = net.last;
        socket.open();
        await sleep(250); // over twice the timeout, held: not the relay's delay
        assert.equal(socket.closedWith, null);
        assert.deepEqual(socket.control("hello"), []);
        assert.deepEqual(errors, []);
        release();
        await sleep(20);
        assert.equal(socket.control("hello").length, 1);
        const t0 = Date.now();
        while ((errors.length === 0 || net.last === socket) && Date.now() - t0 < 5000) await sleep(10);
        assert.match(errors[0].message, /no welcome within 100 ms/);
        assert.notEqual(net.last, socket, "a new attempt after the timeout");
    } finally {
        conn.close();
    }
});
