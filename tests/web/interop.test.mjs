// The JavaScript peer against the C++ relay and C++ peers (the `distmap`
// binary: $DISTMAP_BINARY, default build/distmap). Skips when the binary
// is missing. Loopback only; every process is ended by its PID.
//
//   node --test tests/web/interop.test.mjs
//   DISTMAP_INTEROP_KEYS=100000 node --test tests/web/interop.test.mjs   # the big join sizes
import test from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { join } from "node:path";
import WebSocket from "ws";
import { DistributedMap, Entry, connect, encodeMessage, peerFromHex } from "../../resources/web/distmap.js";
import { binary, binaryAvailable, runCli, sleep, spawnCli, startRelay, stopAll, tempDir, until } from "./harness.mjs";

const skip = binaryAvailable() ? false : `no distmap binary at ${binary} (set DISTMAP_BINARY)`;
const KEYS = Number(process.env.DISTMAP_INTEROP_KEYS ?? 100000);

test.after(() => stopAll());

const peers = [];
function jsPeer(url, mapOptions = {}, connOptions = {}) {
    const connection = connect(url, { WebSocket, name: "js", heartbeat: 0, ...connOptions });
    const errors = [];
    connection.on("error", (e) => errors.push(e));
    const map = DistributedMap(connection, "/m", mapOptions);
    map.on("error", (e) => errors.push(e));
    peers.push(connection);
    return { connection, map, errors };
}
test.afterEach(() => {
    for (const c of peers.splice(0)) c.close();
});

const cli = (url, ...args) => runCli([args[0], "--url", url, "--map", "/m", ...args.slice(1)]);

// A forced garbage collection, without starting node with --expose-gc.
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc");

test("a map whose connection is closed is freed once the page drops it", { skip }, async () => {
    const relay = await startRelay();
    const { map: holder } = jsPeer(relay.url);
    await holder.whenReady();
    for (let i = 0; i < 5000; i++) holder.set(`key-${i}`, "v".repeat(32));
    await holder.connection.ping();
    // In a function of its own: a block in a suspended async function
    // (the module's top level included) keeps its variables alive, which
    // once looked like a leak (docs/BROWSER-BENCH.md).
    const joinAndClose = async () => {
        const connection = connect(relay.url, { WebSocket, heartbeat: 0 });
        const map = DistributedMap(connection, "/m");
        await map.whenReady();
        assert.equal(map.size, 5000);
        connection.close();
        return new WeakRef(map);
    };
    const joined = await joinAndClose();
    await until(() => {
        collectGarbage();
        return joined.deref() === undefined;
    }, 10000, "the closed map to be collected");
});

test("JS and C++ peers see each other's sets and deletes", { skip }, async () => {
    const relay = await startRelay();
    const { map, errors } = jsPeer(relay.url);
    const events = [];
    map.on("set", (v, k) => events.push(["set", k, v]));
    map.on("delete", (v, k) => events.push(["delete", k, v]));
    await map.whenReady();
    map.set("from-js", { text: "é 😀", n: [1, 2.5, null] });
    map.set("", "the empty key");
    await sleep(20);
    let r = await cli(relay.url, "get", "from-js");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { text: "é 😀", n: [1, 2.5, null] });
    r = await cli(relay.url, "set", "--ack", "peer", "from-cpp", '{"a":[true]}');
    assert.equal(r.code, 0, `set --ack peer: the JS peer confirms (${r.stderr})`);
    assert.deepEqual(map.get("from-cpp"), { a: [true] });
    r = await cli(relay.url, "set", "--ack", "none", "--string", "plain", "text ünïcode");
    assert.equal(r.code, 0, r.stderr);
    await until(() => map.has("plain"), 5000, "the plain string");
    assert.equal(map.get("plain"), "text ünïcode");
    r = await cli(relay.url, "del", "--ack", "peer", "from-cpp");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(events, [["set", "from-cpp", { a: [true] }], ["set", "plain", "text ünïcode"], ["delete", "from-cpp", { a: [true] }]]);
    r = await cli(relay.url, "dump");
    assert.deepEqual(JSON.parse(r.stdout), { "": "the empty key", "from-js": { text: "é 😀", n: [1, 2.5, null] }, plain: "text ünïcode" });
    // A JS peer stores nothing: a durable confirmation cannot come.
    r = await runCli(["set", "--url", relay.url, "--map", "/m", "--timeout", "1500", "k", "1"]);
    assert.equal(r.code, 7, `--ack durable with only a memory peer exits 7 (${r.stderr})`);
    assert.deepEqual(errors, []);
});

test(`a JS peer that is the only holder serves ${KEYS} keys to a C++ joiner`, { skip }, async () => {
    const relay = await startRelay();
    const { map, connection, errors } = jsPeer(relay.url);
    await map.whenReady();
    let t = performance.now();
    for (let i = 0; i < KEYS; i++) map.set(`key-${String(i).padStart(6, "0")}`, `value-${String(i).padStart(26, "0")}`);
    for (let i = 0; i < KEYS; i += 97) map.delete(`key-${String(i).padStart(6, "0")}`);
    const writeMs = performance.now() - t;
    await connection.ping();
    t = performance.now();
    const r = await runCli(["dump", "--url", relay.url, "--map", "/m", "--timeout", "30000"], { timeoutMs: 60000 });
    const dumpMs = performance.now() - t;
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout);
    assert.equal(Object.keys(got).length, map.size);
    assert.equal(got["key-000001"], "value-00000000000000000000000001");
    assert.equal(got["key-000097"], undefined, "tombstones travel too");
    console.log(`# ${KEYS} writes in ${writeMs.toFixed(0)} ms; C++ dump joined the JS holder in ${dumpMs.toFixed(0)} ms (process start included)`);
    assert.deepEqual(errors, []);
});

test("a JS peer joins a map a C++ keeper holds; its writes reach the keeper's store", { skip }, async () => {
    const relay = await startRelay();
    const dir = tempDir();
    // Fill the keeper through a JS writer, then let the writer go.
    {
        const { map, connection } = jsPeer(relay.url);
        await map.whenReady();
        for (let i = 0; i < KEYS; i++) map.set(`key-${String(i).padStart(6, "0")}`, `value-${String(i).padStart(26, "0")}`);
        await connection.ping();
        const keep = spawnCli(["keep", "--url", relay.url, "--map", "/m", "--store", dir]);
        await keep.waitFor((l) => /synced/.test(l), 30000);
        connection.close();
    }
    await sleep(300);
    const times = [];
    for (let run = 0; run < 3; run++) {
        const t0 = performance.now();
        const { map, connection } = jsPeer(relay.url);
        await map.whenReady();
        times.push(performance.now() - t0);
        assert.equal(map.size, KEYS);
        assert.equal(map.get("key-000123"), "value-00000000000000000000000123");
        connection.close();
        await sleep(200);
    }
    console.log(`# JS join of ${KEYS} keys from a C++ keeper, connect->ready: ${times.map((t) => t.toFixed(0)).join(", ")} ms`);
    // Acknowledged writes: the keeper confirms durably.
    const { map, errors } = jsPeer(relay.url, { writeAcknowledgements: true });
    await map.whenReady();
    const acks = [];
    map.on("writeAcknowledged", (key, n, durable) => acks.push([key, durable]));
    map.set("acked", 1);
    await until(() => acks.some(([k, d]) => k === "acked" && d), 5000, "a durable ack");
    assert.equal(map.unconfirmedWrites, 0);
    assert.deepEqual(errors, []);
});

test("offline writes and a relay restart: both sides resync, two ways", { skip }, async () => {
    const relay = await startRelay();
    const dir = tempDir();
    const keep = spawnCli(["keep", "--url", relay.url, "--map", "/m", "--store", dir]);
    await keep.waitFor((l) => /connected/.test(l), 10000);
    const { map, connection } = jsPeer(relay.url, {}, { reconnect: { minDelay: 1500, maxDelay: 2000 } });
    await map.whenReady();
    map.set("before", 1);
    await connection.ping();
    const statuses = [];
    connection.on("status", (s) => statuses.push(s));
    await relay.stop();
    await until(() => connection.status === "reconnecting", 5000, "the JS peer to notice");
    map.set("js-offline", "made offline");
    map.delete("before");
    assert.equal(map.get("js-offline"), "made offline", "applies at once, offline");
    const relay2 = await startRelay([], { port: relay.port });
    // The keeper is back first (its backoff is shorter); a C++ write lands there.
    await sleep(800);
    const r = await runCli(["set", "--url", relay2.url, "--map", "/m", "--ack", "durable", "cpp-while-js-away", "2"]);
    assert.equal(r.code, 0, r.stderr);
    await until(() => map.has("cpp-while-js-away"), 10000, "the C++ write to reach the JS peer");
    await until(async () => (await cli(relay2.url, "get", "js-offline")).stdout.trim() === '"made offline"', 10000, "the offline write to reach C++");
    const got = await cli(relay2.url, "get", "before");
    assert.equal(got.code, 1, "the offline delete reached C++ too");
    assert.ok(statuses.includes("connected"));
});

test("anti-entropy repairs writes lost in transit, in both directions (digests agree with C++)", { skip }, async () => {
    const relay = await startRelay();
    const keep = spawnCli(["keep", "--url", relay.url, "--map", "/m", "--store", tempDir()]);
    await keep.waitFor((l) => /connected/.test(l), 10000);
    const { map, connection, errors } = jsPeer(relay.url, { antiEntropyInterval: 300 });
    await map.whenReady();
    for (let i = 0; i < 200; i++) map.set(`k${i}`, i);
    await connection.ping();
    await sleep(300);
    // A write the network never got (a delta lost), older than anything heard.
    const hlc = map.getEntry("k0").hlc - 1000n;
    map._state.apply(new Entry("lost-js-write", hlc, connection.peer, '"repaired"'));
    // And one the JS peer lost: forget k5 locally.
    map._state.drop("k5");
    await until(async () => (await cli(relay.url, "get", "lost-js-write")).stdout.trim() === '"repaired"', 10000, "the verify round to push it");
    await until(() => map.get("k5") === 5, 10000, "the verify round to bring k5 back");
    // Equal states: the C++ responder's digest equals ours bucket for
    // bucket, so a verify round ships no entries.
    await sleep(400);
    const chunks = [];
    const original = map._onSyncData.bind(map);
    map._onSyncData = (origin, chunk) => {
        chunks.push(chunk);
        original(origin, chunk);
    };
    await until(() => chunks.some((c) => c.final), 5000, "another verify round");
    const last = chunks.filter((c) => c.final).at(-1);
    assert.ok(chunks[0].bucketCount > 0, "chunk 0 carries the responder's digest");
    assert.equal(chunks.filter((c) => c.syncId === last.syncId).reduce((n, c) => n + c.entries.length, 0), 0, "no bucket differs");
    assert.deepEqual(errors, []);
});

test("tokens: the subprotocol form, read-only grants, unknown tokens", { skip }, async () => {
    const dir = tempDir();
    const tokens = join(dir, "tokens.txt");
    writeFileSync(tokens, "rw-token-0123456789 rw /m\nro-token-0123456789 ro /m\n");
    const relay = await startRelay(["--tokens", tokens]);
    const rw = jsPeer(relay.url, {}, { token: "rw-token-0123456789" });
    await rw.map.whenReady();
    assert.equal(rw.map.access, "rw");
    rw.map.set("k", 1);
    const ro = jsPeer(relay.url, {}, { token: "ro-token-0123456789" });
    await ro.map.whenReady();
    assert.equal(ro.map.access, "ro");
    assert.equal(ro.map.get("k"), 1);
    assert.equal(ro.map.set("k", 2), false);
    assert.equal(ro.errors.at(-1).code, "ReadOnly");
    const bad = jsPeer(relay.url, {}, { token: "wrong-token-0123456789" });
    await until(() => bad.errors.some((e) => e.code === "Unauthorized"), 5000, "unauthorized");
    assert.equal(bad.map.isReady, false);
});

test("wss:// with the relay's TLS", { skip }, async () => {
    const dir = tempDir();
    const cert = join(dir, "cert.pem");
    const key = join(dir, "key.pem");
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
    const relay = await startRelay(["--tls-cert", cert, "--tls-key", key]);
    const url = relay.url.replace(/^ws:/, "wss:");
    // Node: a WebSocket class that trusts our test CA (a browser uses its own store).
    const { readFileSync } = await import("node:fs");
    const ca = readFileSync(cert);
    class TrustingWebSocket extends WebSocket {
        constructor(u, protocols) {
            super(u, protocols, { ca });
        }
    }
    const { map, errors } = jsPeer(url, {}, { WebSocket: TrustingWebSocket });
    await map.whenReady();
    map.set("secure", true);
    await sleep(50);
    const r = await runCli(["get", "--url", url, "--map", "/m", "--ca", cert, "secure"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "true");
    assert.deepEqual(errors, []);
});

test("malformed and forged frames from another peer are dropped; the JS peer carries on", { skip }, async () => {
    const relay = await startRelay();
    const { map, connection, errors } = jsPeer(relay.url);
    await map.whenReady();
    map.set("k", "safe");
    // A hand-made peer speaking raw frames.
    const raw = new WebSocket(relay.url);
    await new Promise((r) => raw.once("open", r));
    const inbox = [];
    raw.on("message", (data, isBinary) => inbox.push(isBinary ? data : JSON.parse(data.toString())));
    raw.send(JSON.stringify({ type: "hello", version: 1 }));
    raw.send(JSON.stringify({ type: "open", map: "/m" }));
    await until(() => inbox.some((m) => m.type === "opened"), 5000, "opened");
    const { id } = inbox.find((m) => m.type === "opened");
    const me = peerFromHex(inbox.find((m) => m.type === "welcome").peer);
    const header = (type) => {
        const h = Buffer.alloc(16);
        h[0] = type;
        h.writeUInt32LE(id, 4);
        return h;
    };
    raw.send(Buffer.concat([header(0x10), Buffer.from("0500", "hex")])); // bad kind
    raw.send(Buffer.concat([header(0x10), Buffer.from("01", "hex")])); // truncated
    raw.send(encodeMessage({ type: "Delta", map: id, peer: 0n, entries: [new Entry("k", 1n << 62n, 0x1234n, '"forged"')] }));
    const ack = header(0x15);
    ack.writeBigUInt64LE(connection.peer, 8); // addressed to the JS peer
    raw.send(Buffer.concat([ack, Buffer.from("ff00000000", "hex")])); // bad WriteAck flags
    raw.send(encodeMessage({ type: "Delta", map: id, peer: 0n, entries: [new Entry("ok", 1n << 62n, me, '"fine"')] }));
    await until(() => map.has("ok"), 5000, "the good delta after the bad ones");
    assert.equal(map.get("k"), "safe");
    assert.equal(errors.filter((e) => e.code === "BadMessage").length, 4);
    raw.close();
});
