// A randomized mixed run, in the spirit of tests/tst_simulation.cpp but with
// real processes: one C++ relay, 3 JavaScript peers (in this process, over
// `ws`) and 3 C++ peers (faultpeer processes), each peer behind its own
// faultproxy. All six write at random (sets and deletes over a few hundred
// keys, Unicode keys and a few larger values included) while the test cuts
// links (proxy blackholes, delays, drops, resets, refusals; JS sockets
// terminated) and kills and restarts the relay on its port. Then it heals
// every link and waits until all six hold the same state:
//
//   - the same one-bucket digest (docs/PROTOCOL.md section 9: every key's
//     hlc, writer and kind, tombstones included), entry count and live size
//     on every peer (faultpeer's `digest` command; the same computed here
//     for the JS peers);
//   - the same keys, clocks, writers and value bytes on the JS peers;
//   - on each C++ peer, the same live map as the JS peers' (faultpeer's
//     `dump`); and a `distmap dump` (a C++ peer joining at the end, served
//     by one of the six) equal to it too.
//
// Both sides draw from the same mix: deletes and sets of shared keys and
// of keys with spaces, quotes or nothing in them, with numbers, text,
// objects and larger values (faultpeer's `set [KEY, VALUE]` and
// `del [KEY]`); the C++ peers also `write PREFIX N` now and then (a run
// of keys in one pass).
//
// Seeds: each run draws a base seed and prints every seed it runs.
//   DISTMAP_MIXED_SEED=123 node --test tests/web/mixed.test.mjs     # replays one seed
//   DISTMAP_MIXED_SEEDS=100 node --test tests/web/mixed.test.mjs    # how many (default 20)
// A replay repeats the same operations and faults in the same order; the
// timing of real processes still differs from run to run.
//
// Needs build/distmap ($DISTMAP_BINARY) and build/tests/faults/faultpeer and
// faultproxy ($DISTMAP_FAULTS_DIR); skips without them. Loopback only; every
// process is ended by its PID.
import test from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { DistributedMap, compareWrites, connect } from "../../resources/web/distmap.js";
import { binary, binaryAvailable, repoRoot, runCli, sleep, startRelay, stopAll, stopProcess } from "./harness.mjs";
import { rng } from "./seeded.mjs";

const faultsDir = process.env.DISTMAP_FAULTS_DIR ?? join(repoRoot, "build/tests/faults");
const faultpeer = join(faultsDir, "faultpeer");
const faultproxy = join(faultsDir, "faultproxy");
const skip = !binaryAvailable()
    ? `no distmap binary at ${binary} (set DISTMAP_BINARY)`
    : !existsSync(faultpeer) || !existsSync(faultproxy)
      ? `no faultpeer/faultproxy in ${faultsDir} (set DISTMAP_FAULTS_DIR)`
      : false;

const MAP = "/mixed";
const CHAOS_MS = Number(process.env.DISTMAP_MIXED_CHAOS_MS ?? 3500);
const CONVERGE_MS = Number(process.env.DISTMAP_MIXED_CONVERGE_MS ?? 45000);

// Prefixes of the keys `write PREFIX N` sets too (no spaces: faultpeer
// splits that command on them), and prefixes only `set` and `del` reach.
const SHARED = [
    ...Array.from({ length: 24 }, (_, i) => `k${i}`),
    "ключ",
    "鍵",
    "🔑key",
    "é",
    "ü-umlaut",
    "日本語",
    "emoji😀😀",
    "a\u0301",
    "Ω≈ç√",
    "\u{10FFFD}x",
    "mixé/π",
    "tab\u00a0nbsp",
];
const ODD_PREFIXES = ["with space", "", "quote\"s", "\u{1F600} emoji and space"];
const PER_PREFIX = 8;
const sharedKeys = SHARED.flatMap((p) => Array.from({ length: PER_PREFIX }, (_, i) => `${p}-${i}`));
const allKeys = [...sharedKeys, ...ODD_PREFIXES.flatMap((p) => Array.from({ length: PER_PREFIX }, (_, i) => `${p}-${i}`))];

// A value for a write drawn with r in [0.3, 1): numbers, text with NUL and
// quotes, objects, now and then a larger value.
function randomValue(random, seed, key, r) {
    if (r < 0.55) return Number(key.slice(key.lastIndexOf("-") + 1)); // what `write` sets
    if (r < 0.7) return random.int(1000);
    if (r < 0.85) return `text ${random.int(1e6)} é 😀 \u0000 "q"`;
    if (r < 0.97) return { seed, n: random.int(100), list: [true, null, 1.5, "ü"] };
    return "L".repeat(10000 + random.int(60000)) + "🔑";
}

// The seeded generator, with the picks this run makes.
function randomFor(seed) {
    const next = rng(seed);
    next.int = (n) => Math.floor(next() * n);
    next.pick = (list) => list[next.int(list.length)];
    next.chance = (p) => next() < p;
    return next;
}

// --- child processes driven line by line over stdin/stdout ---------------------

const children = new Set();
process.once("exit", () => {
    for (const p of children) {
        try {
            process.kill(p.pid, "SIGKILL");
        } catch {
            /* gone */
        }
    }
});

class LineProcess {
    constructor(name, file, args) {
        this.name = name;
        this.proc = spawn(file, args, { env: { ...process.env, QT_QPA_PLATFORM: "offscreen" }, stdio: ["pipe", "pipe", "pipe"] });
        children.add(this.proc);
        this.proc.once("exit", () => children.delete(this.proc));
        this.lines = [];
        this.stderr = "";
        this.waiters = new Set();
        this.exited = false;
        let partial = "";
        this.proc.stdout.setEncoding("utf8").on("data", (chunk) => {
            partial += chunk;
            let i;
            while ((i = partial.indexOf("\n")) >= 0) {
                const line = partial.slice(0, i);
                partial = partial.slice(i + 1);
                this.lines.push(line);
                for (const w of [...this.waiters]) w(line);
            }
        });
        this.proc.stderr.setEncoding("utf8").on("data", (c) => {
            this.stderr = (this.stderr + c).slice(-4000);
        });
        this.proc.stdin.on("error", () => {});
        const gone = (why) => {
            if (this.exited) return;
            this.exited = true;
            for (const w of [...this.waiters]) w(null, `${this.name} ${why}\n${this.stderr}`);
        };
        // A spawn that fails (EACCES, ENOENT) fails the seed, not the process.
        this.proc.once("error", (e) => gone(`could not run: ${e.message}`));
        this.proc.once("exit", (code, signal) => gone(`exited (${code ?? signal})`));
    }
    send(line) {
        if (!this.exited) this.proc.stdin.write(line + "\n");
    }
    /** Resolves with the first line from now on that matches. */
    next(predicate, timeoutMs = 10000) {
        return new Promise((resolve, reject) => {
            const w = (line, exitMessage) => {
                if (line === null) {
                    this.waiters.delete(w);
                    clearTimeout(timer);
                    reject(new Error(exitMessage));
                } else if (predicate(line)) {
                    this.waiters.delete(w);
                    clearTimeout(timer);
                    resolve(line);
                }
            };
            const timer = setTimeout(() => {
                this.waiters.delete(w);
                reject(new Error(`${this.name}: no matching line within ${timeoutMs} ms; last lines: ${this.lines.slice(-5).join(" | ")}\n${this.stderr}`));
            }, timeoutMs);
            this.waiters.add(w);
            if (this.exited) w(null, `${this.name} has exited\n${this.stderr}`);
        });
    }
    /** Sends a command and resolves with the first answer line that matches. */
    ask(line, predicate, timeoutMs) {
        const p = this.next(predicate, timeoutMs);
        this.send(line);
        return p;
    }
    stop() {
        return stopProcess(this.proc, "SIGKILL");
    }
}

async function startProxy(name, targetPort) {
    const p = new LineProcess(name, faultproxy, ["0", String(targetPort)]);
    const line = await p.next((l) => l.startsWith("listening "));
    p.port = Number(line.split(" ")[1]);
    return p;
}

// A proxy command, answered "ok COMMAND" once in effect.
function steer(proxy, command) {
    return proxy.ask(command, (l) => l === `ok ${command.split(" ")[0]}` || l.startsWith("error"));
}

// --- the JS peers' view of their state -------------------------------------------

function jsDigest(map) {
    const [lo, hi] = map._state.digest(1);
    return `digest ${map.size} ${map._state.count} ${hi.toString(16).padStart(8, "0")}${lo.toString(16).padStart(8, "0")}`;
}

function entryText(e) {
    const v = e.value === null ? "-" : typeof e.value === "string" ? e.value : Buffer.from(e.value).toString("hex");
    return `${e.hlc}/${e.writer}/${v.length > 80 ? `${v.slice(0, 40)}…(${v.length} chars)…${v.slice(-20)}` : v}`;
}

function sameValue(a, b) {
    if (a === null || b === null || typeof a === "string" || typeof b === "string") return a === b;
    return Buffer.from(a).equals(Buffer.from(b));
}

// The first difference between two JS peers' full states, or null.
function stateDifference(a, b) {
    const ea = a._state;
    const eb = b._state;
    for (const e of ea.values()) {
        const k = e.key;
        const f = eb.get(k);
        if (f === undefined) return `${JSON.stringify(k)} only on one side (${entryText(e)})`;
        if (compareWrites(e, f) !== 0 || !sameValue(e.value, f.value)) return `${JSON.stringify(k)}: ${entryText(e)} vs ${entryText(f)}`;
    }
    for (const f of eb.values()) if (ea.get(f.key) === undefined) return `${JSON.stringify(f.key)} only on the other side`;
    return null;
}

// --- one seed ------------------------------------------------------------------------

async function runSeed(seed) {
    const random = randomFor(seed);
    const t0 = Date.now();
    const log = [];
    const note = (what) => log.push(`${Date.now() - t0} ms ${what}`);
    let relay = await startRelay();
    const relays = [relay]; // this seed's, ended by PID (not stopAll(): only what this seed started)
    const port = relay.port;
    const proxies = await Promise.all(Array.from({ length: 6 }, (_, i) => startProxy(`proxy${i}`, port)));
    const cpp = proxies.slice(0, 3).map((proxy, i) => {
        const p = new LineProcess(`cpp${i}`, faultpeer, [`ws://127.0.0.1:${proxy.port}`, MAP, "30", "250"]);
        p.proxy = proxy;
        return p;
    });
    const js = proxies.slice(3).map((proxy, i) => {
        const connection = connect(`ws://127.0.0.1:${proxy.port}`, {
            WebSocket,
            name: `js${i}`,
            heartbeat: 0,
            reconnect: { minDelay: 30, maxDelay: 250 },
        });
        const errors = [];
        connection.on("error", (e) => errors.push(e));
        const map = DistributedMap(connection, MAP, { antiEntropyInterval: 1000, syncTimeout: 1000 });
        return { name: `js${i}`, connection, map, proxy, errors };
    });
    const timers = new Set();
    const later = (ms, f) => {
        const t = setTimeout(() => {
            timers.delete(t);
            f();
        }, ms);
        timers.add(t);
    };
    let ops = 0;
    let keyWrites = 0;
    let deletes = 0;
    let faults = 0;
    let restarts = 0;
    try {
        await Promise.all([...cpp.map((p) => p.next((l) => l.startsWith("synced"), 15000)), ...js.map((p) => p.map.whenReady())]);
        note("all six ready");

        // --- chaos: random writes from all six, random faults, relay restarts ---
        restarts = 1 + random.int(2);
        const restartAt = Array.from({ length: restarts }, () => 300 + random.int(CHAOS_MS - 800)).sort((a, b) => a - b);
        let restarting = null;
        const start = Date.now();
        let nextFault = 100 + random.int(300);
        while (Date.now() - start < CHAOS_MS) {
            const elapsed = Date.now() - start;
            if (restartAt.length && elapsed >= restartAt[0] && !restarting) {
                restartAt.shift();
                const outage = random.int(400);
                note(`relay restart (outage ${outage} ms)`);
                const old = relay;
                restarting = (async () => {
                    await stopProcess(old.proc, "SIGKILL");
                    await sleep(outage); // writes go on meanwhile, offline
                    for (let attempt = 0; ; attempt++) {
                        try {
                            relay = await startRelay([], { port });
                            relays.push(relay);
                            break;
                        } catch (e) {
                            if (attempt >= 20) throw e;
                            await sleep(50); // the port is not free yet
                        }
                    }
                    note("relay back");
                })();
                restarting.finally(() => (restarting = null));
            }
            if (elapsed >= nextFault) {
                nextFault = elapsed + 50 + random.int(220);
                faults++;
                const peer = random.int(6);
                const proxy = proxies[peer];
                const kind = random.int(7);
                const span = 50 + random.int(500);
                if (kind === 0) {
                    note(`blackhole ${proxy.name} ${span} ms`);
                    steer(proxy, "blackhole");
                    later(span, () => steer(proxy, "pass"));
                } else if (kind === 1) {
                    note(`delay ${proxy.name} ${span} ms`);
                    steer(proxy, `delay ${10 + random.int(120)}`);
                    later(span, () => steer(proxy, "pass"));
                } else if (kind === 2) {
                    note(`drop ${proxy.name}`);
                    steer(proxy, "drop");
                } else if (kind === 3) {
                    note(`reset ${proxy.name}`);
                    steer(proxy, "reset");
                } else if (kind === 4) {
                    note(`refuse ${proxy.name} ${span} ms`);
                    steer(proxy, "refuse on");
                    steer(proxy, "reset");
                    later(span, () => steer(proxy, "refuse off"));
                } else {
                    // A JS peer's socket dies under it (no close frame).
                    const p = js[random.int(3)];
                    note(`terminate ${p.name}'s socket`);
                    p.connection._ws?.terminate?.();
                }
            }
            // A burst of writes, then a short pause.
            const burst = 1 + random.int(6);
            for (let b = 0; b < burst; b++) {
                ops++;
                const who = random.int(6);
                const key = random.chance(0.9) ? random.pick(sharedKeys) : random.pick(allKeys);
                const r = random();
                if (who < 3 && r < 0.2) {
                    const n = 1 + random.int(PER_PREFIX);
                    cpp[who].send(`write ${random.pick(SHARED)} ${n}`);
                    keyWrites += n;
                    continue;
                }
                keyWrites++;
                // The same mix of deletes and values from either side.
                const value = r < 0.3 ? undefined : randomValue(random, seed, key, r);
                if (who < 3) {
                    if (value === undefined) {
                        cpp[who].send(`del ${JSON.stringify([key])}`);
                        deletes++; // asked (a missing key answers "del none")
                    } else {
                        cpp[who].send(`set ${JSON.stringify([key, value])}`);
                    }
                } else {
                    const { map } = js[who - 3];
                    if (value === undefined) {
                        if (map.delete(key)) deletes++;
                    } else {
                        map.set(key, value);
                    }
                }
            }
            await sleep(random.int(12));
        }
        note(`chaos over: ${ops} operations, ${keyWrites} key writes, ${deletes} deletes, ${faults} faults`);

        // --- heal ---
        for (const t of timers) clearTimeout(t);
        timers.clear();
        if (restarting) await restarting;
        await Promise.all(proxies.flatMap((p) => [steer(p, "pass"), steer(p, "refuse off")]));
        note("healed");

        // --- converge: wait on the condition, nudging verify rounds (anti-entropy, faster) ---
        const deadline = Date.now() + CONVERGE_MS;
        let lastNudge = Date.now();
        let views;
        let agreeing = 0;
        for (;;) {
            const cppDigests = await Promise.all(cpp.map((p) => p.ask("digest", (l) => l.startsWith("digest "))));
            const jsDigests = js.map((p) => jsDigest(p.map));
            views = [...cppDigests, ...jsDigests];
            const settled = js.every((p) => p.connection.connected && p.map.isReady && !p.map.syncing);
            const same = views.every((v) => v === views[0]) && js.every((p) => stateDifference(js[0].map, p.map) === null);
            agreeing = same && settled ? agreeing + 1 : 0;
            if (agreeing >= 2) break;
            if (Date.now() > deadline) {
                const diff = js.map((p) => stateDifference(js[0].map, p.map));
                assert.fail(
                    `seed ${seed}: no convergence within ${CONVERGE_MS} ms\n` +
                        views.map((v, i) => `  ${i < 3 ? cpp[i].name : js[i - 3].name}: ${v}`).join("\n") +
                        `\n  JS differences: ${JSON.stringify(diff)}\n  JS status: ${js.map((p) => `${p.connection.status}/${p.map.isReady}/${p.map.syncing}`).join(" ")}` +
                        `\n  log:\n    ${log.join("\n    ")}`,
                );
            }
            if (Date.now() - lastNudge > 700) {
                lastNudge = Date.now();
                for (const p of cpp) p.send("verify");
                for (const p of js) p.map.verify();
            }
            await sleep(60);
        }
        const convergeMs = Date.now() - deadline + CONVERGE_MS;
        note(`converged in ${convergeMs} ms: ${views[0]}`);

        // --- values on the C++ side: each C++ peer's live map, as the JS state says ---
        const reference = js[0].map;
        for (const peer of cpp) {
            const line = await peer.ask("dump", (l) => l.startsWith("dump "));
            assert.deepEqual(JSON.parse(line.slice(5)), reference.toObject(), `seed ${seed}: ${peer.name}'s map differs from the JS peers'`);
        }
        // A C++ joiner's dump (served by one of the six) equals the JS live map.
        const dump = await runCli(["dump", "--url", relay.url, "--map", MAP, "--timeout", "10000"]);
        assert.equal(dump.code, 0, dump.stderr);
        assert.deepEqual(JSON.parse(dump.stdout), reference.toObject(), `seed ${seed}: a C++ dump differs from the JS peers`);
        for (const p of js) assert.deepEqual(p.errors.filter((e) => !["Socket", "Relay"].includes(e.code)), [], `${p.name}: unexpected errors`);
        return { ops, keyWrites, deletes, faults, restarts, convergeMs, ms: Date.now() - t0, entries: reference._state.count, live: reference.size };
    } finally {
        for (const t of timers) clearTimeout(t);
        for (const p of js) p.connection.close();
        for (const p of cpp) p.send("quit");
        await Promise.all([...cpp.map((p) => p.stop()), ...proxies.map((p) => p.stop()), ...relays.map((r) => r.stop())]);
    }
}

// --- the seeds -----------------------------------------------------------------------

const replay = process.env.DISTMAP_MIXED_SEED;
const count = Number(process.env.DISTMAP_MIXED_SEEDS ?? 20);
const base = replay !== undefined ? Number(replay) >>> 0 : (Math.random() * 4294967296) >>> 0;
const seeds = replay !== undefined ? [base] : Array.from({ length: count }, (_, i) => (base + i) >>> 0);
if (!skip) console.log(`mixed run: seeds ${seeds.length === 1 ? seeds[0] : `${seeds[0]}..${seeds.at(-1)}`} (replay one with DISTMAP_MIXED_SEED=N)`);

test.after(() => stopAll());

const totals = { ops: 0, keyWrites: 0, deletes: 0, faults: 0 };
for (const seed of seeds) {
    test(`mixed run, seed ${seed}`, { skip, timeout: CONVERGE_MS + 60000 }, async () => {
        const r = await runSeed(seed);
        for (const k of Object.keys(totals)) totals[k] += r[k];
        console.log(`seed ${seed}: ${r.ops} ops (${r.keyWrites} key writes, ${r.deletes} deletes), ${r.faults} faults, ${r.restarts} relay restart(s), converged ${r.convergeMs} ms after healing; ${r.entries} entries (${r.live} live) in ${r.ms} ms`);
    });
}
test.after(() => {
    if (!skip) console.log(`mixed run total: ${totals.ops} ops, ${totals.keyWrites} key writes, ${totals.deletes} deletes, ${totals.faults} faults`);
});
