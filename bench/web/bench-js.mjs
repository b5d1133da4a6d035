// bench-js.mjs: benchmarks the JavaScript peer (resources/web/distmap.js)
// against the C++ relay and a C++ holder, on the workloads of
// docs/BENCHMARKS.md and ../shared/anchors (key `key-000123`, 32-byte string
// value). See docs/BROWSER-BENCH.md for what each figure means.
//
//   node bench/web/bench-js.mjs [--keys 100000,1000000] [--runs 3]
//        [--deltas 200000] [--chunk 10000] [--browser 1] [--json FILE]
//        [--only join,browser,apply,send,memory] [--prof DIR] [--warmup 0|1]
//        [--after 1000]
//
// --warmup 1 adds an unmeasured join of the same map first, in the same
// process/page (default 0: every measured join is the first in a fresh
// Node process or a fresh tab). --after: how long after ready the browser
// page keeps watching for stalls (ms): the collector often pauses just after
// the last chunk, and a user sees that freeze as part of the join.
//
// One `distmap relay --port 0 --max-rate 0` is started for the whole sitting.
// Every measuring peer runs in a fresh Node process (this script with
// --role ...), so no measurement shares a heap or a JIT with another one.
// Processes are ended by their PID. Loopback only.

import { fork, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const binary = process.env.DISTMAP_BINARY ? resolve(process.env.DISTMAP_BINARY) : join(root, "build/distmap");
const clientPath = join(root, "resources/web/distmap.js");

// ---------------------------------------------------------------------------
// arguments
// ---------------------------------------------------------------------------
const args = {
    keys: "100000,1000000",
    runs: 3,
    deltas: 200000,
    chunk: 10000,
    browser: 1,
    only: "join,browser,apply,send,memory",
    json: "",
    warmup: 0,
    after: 1000,
    prof: "",
    role: "",
    cfg: "",
};
for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    if (!a.startsWith("--")) continue;
    const k = a.slice(2);
    const v = process.argv[i + 1];
    if (!(k in args)) {
        console.error(`unknown option --${k}`);
        process.exit(2);
    }
    args[k] = typeof args[k] === "number" ? Number(v) : v;
    i++;
}

const keyName = (i) => "key-" + String(i).padStart(6, "0");
const value32 = (i) => ("v" + i).padEnd(32, "."); // the anchors' sync value
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowAbs = () => performance.timeOrigin + performance.now(); // ms, comparable across processes
const median = (xs) => {
    const a = xs.filter(Number.isFinite).sort((x, y) => x - y);
    return a.length ? a[(a.length - 1) >> 1] : NaN;
};

// ---------------------------------------------------------------------------
// child roles (run in their own process)
// ---------------------------------------------------------------------------
async function loadClient() {
    const [{ connect, DistributedMap }, { default: WebSocket }] = await Promise.all([
        import(pathToFileURL(clientPath).href),
        import("ws"),
    ]);
    const open = (url, uri, name, options) => {
        const connection = connect(url, { WebSocket, name, heartbeat: 0 });
        const map = DistributedMap(connection, uri, options);
        return { connection, map };
    };
    return { open };
}

const send = (m) => new Promise((r) => process.send(m, r));
let inbox = [];
let waiter = null;
function nextMessage() {
    if (inbox.length) return Promise.resolve(inbox.shift());
    return new Promise((r) => (waiter = r));
}
function listen() {
    process.on("message", (m) => {
        if (waiter) {
            const w = waiter;
            waiter = null;
            w(m);
        } else inbox.push(m);
    });
}

const roles = {
    // Writes K keys, stays until told to leave.
    async fill(cfg) {
        const { open } = await loadClient();
        const { connection, map } = open(cfg.url, cfg.uri, "js-fill");
        await map.whenReady();
        for (let i = 0; i < cfg.k; ) {
            const end = Math.min(cfg.k, i + 50000);
            for (; i < end; i++) map.set(keyName(i), value32(i));
            await new Promise((r) => setImmediate(r));
        }
        await connection.ping();
        await send({ filled: map.size });
        await nextMessage(); // "leave"
        connection.close();
        await sleep(100);
    },

    // Joins a map held by a C++ keeper: one warm-up join, then the measured one.
    // With --expose-gc: heap per key (after GC, minus an empty ready map).
    async join(cfg) {
        // The JS heap and the ArrayBuffers (typed arrays live outside the
        // heap: the state's slot arrays and value bytes are there).
        const heldBytes = () => {
            const m = process.memoryUsage();
            return m.heapUsed + m.arrayBuffers;
        };
        const { open } = await loadClient();
        const gc = globalThis.gc;
        let base = null;
        if (gc) {
            const empty = open(cfg.url, "/empty-" + process.pid, "js-empty");
            await empty.map.whenReady();
            for (let i = 0; i < 3; i++) gc();
            base = heldBytes();
            globalThis.keepEmpty = empty;
        }
        const once = async () => {
            const cpu0 = process.cpuUsage();
            const t0 = performance.now();
            const p = open(cfg.url, cfg.uri, "js-join");
            await p.map.whenReady();
            const ms = performance.now() - t0;
            const cpu = process.cpuUsage(cpu0);
            if (p.map.size !== cfg.k) throw new Error(`joined ${p.map.size} keys, expected ${cfg.k}`);
            if (p.map.get(keyName(123)) !== value32(123)) throw new Error("wrong value for key-000123");
            return { p, ms, cpuPct: (100 * (cpu.user + cpu.system)) / 1e3 / ms };
        };
        let cold = null;
        if (!cfg.noWarmup) {
            const w = await once();
            cold = w.ms;
            w.p.connection.close();
            await sleep(300);
        }
        if (gc) for (let i = 0; i < 3; i++) gc();
        const m = await once();
        const res = { ms: m.ms, coldMs: cold, cpuPct: m.cpuPct };
        if (gc) {
            for (let i = 0; i < 3; i++) gc();
            const used = heldBytes();
            res.heapBytes = used - base;
            res.bytesPerKey = (used - base) / cfg.k;
            res.rssMB = process.memoryUsage().rss / 1048576;
        }
        m.p.connection.close();
        await send({ result: res });
    },

    // Counts remote `set` events until it has `n`.
    async reader(cfg) {
        const { open } = await loadClient();
        const { connection, map } = open(cfg.url, cfg.uri, "js-reader");
        await map.whenReady();
        let count = 0;
        let first = 0;
        let cpu0 = null;
        const done = new Promise((resolveDone) => {
            map.on("set", () => {
                if (count === 0) {
                    first = nowAbs();
                    cpu0 = process.cpuUsage();
                }
                if (++count === cfg.n) resolveDone();
            });
        });
        await send({ ready: true });
        const timeout = sleep(cfg.timeoutMs ?? 60000).then(() => "timeout");
        const r = await Promise.race([done, timeout]);
        const last = nowAbs();
        const cpu = process.cpuUsage(cpu0 ?? process.cpuUsage());
        await send({
            result: { count, timedOut: r === "timeout", first, last, cpuMs: (cpu.user + cpu.system) / 1e3, cpuPct: (100 * (cpu.user + cpu.system)) / 1e3 / (last - first) },
        });
        connection.close();
    },

    // On "go", writes n distinct keys, `chunk` sets per event-loop turn.
    async writer(cfg) {
        const { open } = await loadClient();
        const { connection, map } = open(cfg.url, cfg.uri, "js-writer");
        await map.whenReady();
        await send({ ready: true });
        await nextMessage(); // go
        const cpu0 = process.cpuUsage();
        const t0 = nowAbs();
        for (let i = 0; i < cfg.n; ) {
            const end = Math.min(cfg.n, i + cfg.chunk);
            for (; i < end; i++) map.set(keyName(i), value32(i));
            await new Promise((r) => setImmediate(r)); // the peer flushes this turn's writes
        }
        const tLoop = nowAbs();
        // Wait until ws has handed everything to the kernel.
        const ws = connection._ws;
        while (ws && ws.bufferedAmount > 0) await new Promise((r) => setImmediate(r));
        const tSent = nowAbs();
        const cpu = process.cpuUsage(cpu0);
        await send({ result: { t0, tLoop, tSent, cpuMs: (cpu.user + cpu.system) / 1e3, cpuPct: (100 * (cpu.user + cpu.system)) / 1e3 / (tSent - t0) } });
        await nextMessage(); // leave
        connection.close();
    },
};

// ---------------------------------------------------------------------------
// parent: processes
// ---------------------------------------------------------------------------
const children = new Set();
function track(c) {
    children.add(c);
    c.once("exit", () => children.delete(c));
    return c;
}
async function stop(c, signal = "SIGTERM") {
    // Node children exit by themselves once done (and then write their
    // --cpu-prof profile): give them a moment first.
    if (c.exitCode === null && c.signalCode === null && c.send) await Promise.race([new Promise((r) => c.once("exit", r)), sleep(2000)]);
    return new Promise((r) => {
        if (c.exitCode !== null || c.signalCode !== null) return r();
        const t = setTimeout(() => {
            try {
                process.kill(c.pid, "SIGKILL");
            } catch {}
        }, 5000);
        c.once("exit", () => {
            clearTimeout(t);
            r();
        });
        try {
            process.kill(c.pid, signal);
        } catch {
            r();
        }
    });
}
process.once("exit", () => {
    for (const c of children)
        try {
            process.kill(c.pid, "SIGKILL");
        } catch {}
});
process.once("SIGINT", () => process.exit(130));

const qtEnv = { ...process.env, QT_QPA_PLATFORM: "offscreen" };

// A Qt process whose stdout lines we can wait on.
function spawnQt(argv) {
    const p = track(spawn(binary, argv, { env: qtEnv, stdio: ["ignore", "pipe", "pipe"] }));
    p.lines = [];
    p.lineWaiters = [];
    p.onLine = null;
    let buf = "";
    const onData = (d) => {
        buf += d;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (p.onLine) p.onLine(line);
            else p.lines.push(line);
            for (const w of [...p.lineWaiters]) if (w.test(line)) w.resolve(line);
        }
    };
    p.stdout.setEncoding("utf8").on("data", onData);
    p.stderr.setEncoding("utf8").on("data", (d) => process.env.BENCH_VERBOSE && process.stderr.write(d));
    p.waitFor = (re, ms = 60000) =>
        new Promise((resolveLine, reject) => {
            const hit = p.lines.find((l) => re.test(l));
            if (hit) return resolveLine(hit);
            const w = { test: (l) => re.test(l), resolve: (l) => (clearTimeout(t), p.lineWaiters.splice(p.lineWaiters.indexOf(w), 1), resolveLine(l)) };
            const t = setTimeout(() => reject(new Error(`timed out waiting for ${re} from ${argv[0]}`)), ms);
            p.lineWaiters.push(w);
        });
    return p;
}

function forkRole(role, cfg, execArgv = []) {
    const prof = args.prof ? ["--cpu-prof", "--cpu-prof-dir", args.prof, "--cpu-prof-name", `${role}-${cfg.uri.replace(/\W/g, "_")}-${process.hrtime.bigint()}.cpuprofile`] : [];
    const c = track(fork(fileURLToPath(import.meta.url), ["--role", role, "--cfg", JSON.stringify(cfg)], { execArgv: [...execArgv, ...prof], stdio: "inherit" }));
    c.msgs = [];
    c.waiters = [];
    c.on("message", (m) => {
        const w = c.waiters.find((x) => x.test(m));
        if (w) {
            c.waiters.splice(c.waiters.indexOf(w), 1);
            w.resolve(m);
        } else c.msgs.push(m);
    });
    c.waitMsg = (test, ms = 120000) =>
        new Promise((resolveMsg, reject) => {
            const i = c.msgs.findIndex(test);
            if (i >= 0) return resolveMsg(c.msgs.splice(i, 1)[0]);
            const t = setTimeout(() => reject(new Error(`${role}: timed out`)), ms);
            c.waiters.push({ test, resolve: (m) => (clearTimeout(t), resolveMsg(m)) });
            c.once("exit", (code) => code && reject(new Error(`${role} exited with ${code}`)));
        });
    return c;
}

// ---------------------------------------------------------------------------
// parent: workloads
// ---------------------------------------------------------------------------
const out = { machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavgStart: loadavg() }, rows: {} };
const log = (...a) => console.error("#", ...a);

async function startRelay() {
    const relay = spawnQt(["relay", "--port", "0", "--max-rate", "0"]);
    const line = await relay.waitFor(/listening on ws:\/\//, 10000);
    relay.url = line.match(/ws:\/\/[0-9.]+:\d+/)[0];
    relay.http = relay.url.replace(/^ws/, "http");
    relay.cpuMs = () => {
        const f = readStat(relay.pid);
        return f;
    };
    return relay;
}
import { readFileSync } from "node:fs";
function readStat(pid) {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
}
function rssMB(pid) {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(s.match(/VmRSS:\s+(\d+)/)[1]) / 1024;
}

// A map of K keys held by a C++ keeper only.
async function cppHolder(relay, k) {
    const uri = `/join-${k}`;
    const t0 = performance.now();
    const fill = forkRole("fill", { url: relay.url, uri, k });
    await fill.waitMsg((m) => m.filled !== undefined, 300000);
    const tFilled = performance.now();
    const dir = mkdtempSync(join(tmpdir(), "distmap-bench-keep-"));
    const keep = spawnQt(["keep", "--url", relay.url, "--map", uri, "--store", dir]);
    await keep.waitFor(/synced with peer/, 300000);
    // The JS peer as responder: the keeper's start and join, served by it alone.
    const servedMs = performance.now() - tFilled;
    fill.send("leave");
    await stop(fill);
    // Let the keeper finish writing its store before anything is timed.
    await sleep(k >= 1000000 ? 3000 : 1000);
    keep.dir = dir;
    keep.uri = uri;
    keep.servedMs = servedMs;
    log(`C++ keeper holds ${uri} (${k} keys) after ${((performance.now() - t0) / 1000).toFixed(1)} s (JS writer filled in ${((tFilled - t0) / 1000).toFixed(1)} s, served the keeper in ${(servedMs / 1000).toFixed(2)} s); keeper RSS ${rssMB(keep.pid).toFixed(0)} MB`);
    return keep;
}

async function joinNode(relay, holders) {
    const rows = [];
    for (const [k, keep] of holders) {
        const runs = [];
        for (let r = 0; r < args.runs; r++) {
            const c0 = readStat(relay.pid);
            const kc0 = readStat(keep.pid);
            const c = forkRole("join", { url: relay.url, uri: keep.uri, k, noWarmup: !args.warmup }, ["--expose-gc"]);
            const m = await c.waitMsg((x) => x.result, 300000);
            await stop(c);
            const res = { ...m.result, relayCpuMs: readStat(relay.pid) - c0, keeperCpuMs: readStat(keep.pid) - kc0 };
            runs.push(res);
            log(`node join K=${k} run ${r + 1}: ${JSON.stringify(res, (x, v) => (typeof v === "number" ? +v.toFixed(2) : v))}`);
            await sleep(300);
        }
        rows.push({ k, runs, ms: median(runs.map((x) => x.ms)), coldMs: median(runs.map((x) => x.coldMs)), cpuPct: median(runs.map((x) => x.cpuPct)), bytesPerKey: median(runs.map((x) => x.bytesPerKey)) });
    }
    return rows;
}

// Chromium: import the relay-served client into a page of the relay's
// origin, join, and watch the main thread.
async function joinBrowser(relay, holders) {
    const { default: puppeteer } = await import(pathToFileURL(join(root, "node_modules/puppeteer-core/lib/esm/puppeteer/puppeteer-core.js")).href).catch(() => import("puppeteer-core"));
    const profileDir = mkdtempSync(join(tmpdir(), "distmap-bench-chrome-"));
    const browser = await puppeteer.launch({
        executablePath: process.env.CHROME_PATH || "/usr/bin/chromium",
        headless: true,
        userDataDir: profileDir,
        args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
               // CHROME_JS_FLAGS=--trace-gc: V8's log of each collection, on this process's stdout (the zygote would swallow it).
               ...(process.env.CHROME_JS_FLAGS ? [`--js-flags=${process.env.CHROME_JS_FLAGS}`, "--no-zygote"] : [])],
        dumpio: Boolean(process.env.CHROME_JS_FLAGS),
    });
    const version = await browser.version();
    const rows = [];
    try {
        for (const [k, keep] of holders) {
            const runs = [];
            for (let r = 0; r < args.runs; r++) {
                const page = await browser.newPage();
                page.on("pageerror", (e) => log("page error:", e.message));
                // A page of the relay's origin (the client file itself), so
                // import() is same-origin; the inspector at / is not loaded.
                await page.goto(`${relay.http}/distmap.js`);
                const once = (warm) =>
                    page.evaluate(
                        async (src, url, uri, k, warm, after) => {
                            const { connect, DistributedMap } = await import(src);
                            const gaps = [];
                            let longest = 0;
                            let longtasks = [];
                            const obs = typeof PerformanceObserver === "function" && PerformanceObserver.supportedEntryTypes.includes("longtask")
                                ? new PerformanceObserver((l) => longtasks.push(...l.getEntries().map((e) => e.duration)))
                                : null;
                            if (obs) obs.observe({ type: "longtask", buffered: false });
                            let running = true;
                            let last = performance.now();
                            const tick = () => {
                                const t = performance.now();
                                const gap = t - last;
                                if (gap > longest) longest = gap;
                                if (gap > 50) gaps.push(Math.round(gap));
                                last = t;
                                if (running) setTimeout(tick, 0);
                            };
                            setTimeout(tick, 0);
                            await new Promise((r) => setTimeout(r, 50));
                            longest = 0;
                            gaps.length = 0;
                            const t0 = performance.now();
                            const connection = connect(url, { name: "chromium" });
                            const map = DistributedMap(connection, uri);
                            await map.whenReady();
                            const ms = performance.now() - t0;
                            await new Promise((r) => setTimeout(r, after)); // a stall right after ready counts too
                            running = false;
                            if (obs) {
                                longtasks.push(...obs.takeRecords().map((e) => e.duration));
                                obs.disconnect();
                            }
                            const size = map.size;
                            const ok = map.get("key-000123") === "v123".padEnd(32, ".");
                            connection.close();
                            if (!warm) window.keep = map; // measured join: keep for heap figure
                            const heap = performance.memory ? performance.memory.usedJSHeapSize : null;
                            return { ms, size, ok, longestGap: longest, gaps, longtaskMax: longtasks.length ? Math.max(...longtasks) : 0, longtaskCount: longtasks.length, longtaskTotal: longtasks.reduce((a, b) => a + b, 0), heap };
                        },
                        `${relay.http}/distmap.js`,
                        relay.url,
                        keep.uri,
                        k,
                        warm,
                        args.after,
                    );
                // --warmup 1: a first join in the same page, else cold (see
                // problem 1 in docs/BROWSER-BENCH.md).
                const warm = args.warmup ? await once(true) : { ms: NaN, longestGap: NaN };
                if (args.warmup) await sleep(300);
                let cdp = null;
                if (args.prof) {
                    // --prof DIR: a V8 CPU profile of the measured join (Chrome DevTools format).
                    cdp = await page.target().createCDPSession();
                    await cdp.send("Profiler.enable");
                    await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
                    await cdp.send("Profiler.start");
                }
                const m = await once(false);
                if (cdp) {
                    const { profile } = await cdp.send("Profiler.stop");
                    writeFileSync(join(args.prof, `chromium-join-${k}-run${r + 1}.cpuprofile`), JSON.stringify(profile));
                    await cdp.detach();
                }
                if (m.size !== k || !m.ok) throw new Error(`browser joined ${m.size} keys (ok=${m.ok})`);
                m.coldMs = warm.ms;
                m.coldLongestGap = warm.longestGap;
                delete m.heap;
                runs.push(m);
                log(`chromium join K=${k} run ${r + 1}: ${JSON.stringify(m, (x, v) => (typeof v === "number" ? +v.toFixed(1) : v))}`);
                await page.close();
                await sleep(300);
            }
            rows.push({
                k,
                runs,
                ms: median(runs.map((x) => x.ms)),
                coldMs: median(runs.map((x) => x.coldMs)),
                longestGap: median(runs.map((x) => x.longestGap)),
                worstGap: Math.max(...runs.map((x) => x.longestGap)),
                longtaskMax: median(runs.map((x) => x.longtaskMax)),
            });
        }
    } finally {
        await browser.close();
        rmSync(profileDir, { recursive: true, force: true });
    }
    return { version, rows };
}

// JS writer (own process) -> relay -> JS reader (own process): reader's set events per second.
async function applyRate(relay) {
    const runs = [];
    for (let r = 0; r < args.runs; r++) {
        const uri = `/apply-${r}-${Date.now()}`;
        const reader = forkRole("reader", { url: relay.url, uri, n: args.deltas });
        await reader.waitMsg((m) => m.ready);
        const writer = forkRole("writer", { url: relay.url, uri, n: args.deltas, chunk: args.chunk });
        await writer.waitMsg((m) => m.ready);
        await sleep(200);
        const c0 = readStat(relay.pid);
        writer.send("go");
        const w = (await writer.waitMsg((m) => m.result)).result;
        const rd = (await reader.waitMsg((m) => m.result, 120000)).result;
        const relayCpuMs = readStat(relay.pid) - c0;
        writer.send("leave");
        await Promise.all([stop(reader), stop(writer)]);
        const res = {
            count: rd.count,
            timedOut: rd.timedOut,
            readerRate: rd.count / ((rd.last - rd.first) / 1e3),
            endToEndRate: rd.count / ((rd.last - w.t0) / 1e3),
            writerLoopMs: w.tLoop - w.t0,
            readerCpuPct: rd.cpuPct,
            readerCpuUsPerDelta: (1e3 * rd.cpuMs) / rd.count,
            writerCpuPct: w.cpuPct,
            writerCpuUsPerDelta: (1e3 * w.cpuMs) / args.deltas,
            relayCpuMs,
        };
        runs.push(res);
        log(`apply run ${r + 1}: ${JSON.stringify(res, (x, v) => (typeof v === "number" ? +v.toFixed(1) : v))}`);
        await sleep(300);
    }
    return { n: args.deltas, chunk: args.chunk, runs, readerRate: median(runs.map((x) => x.readerRate)), endToEndRate: median(runs.map((x) => x.endToEndRate)), cpuUs: median(runs.map((x) => x.readerCpuUsPerDelta)), cpuPct: median(runs.map((x) => x.readerCpuPct)) };
}

// JS writer (own process) -> relay -> C++ `distmap watch` reader: deltas/s sent.
async function sendRate(relay) {
    const runs = [];
    for (let r = 0; r < args.runs; r++) {
        const uri = `/send-${r}-${Date.now()}`;
        const watch = spawnQt(["watch", "--url", relay.url, "--map", uri, "--name", "cpp-watch"]);
        await watch.waitFor(/"ready"/, 20000);
        let count = 0;
        let lastAt = 0;
        let resolveAll;
        const all = new Promise((r2) => (resolveAll = r2));
        watch.onLine = (line) => {
            if (line.includes('"event":"set"')) {
                if (++count === args.deltas) {
                    lastAt = nowAbs();
                    resolveAll();
                }
            }
        };
        const writer = forkRole("writer", { url: relay.url, uri, n: args.deltas, chunk: args.chunk });
        await writer.waitMsg((m) => m.ready);
        await sleep(200);
        const c0 = readStat(relay.pid);
        const wc0 = readStat(watch.pid);
        writer.send("go");
        const w = (await writer.waitMsg((m) => m.result)).result;
        let guard;
        const timedOut = await Promise.race([all.then(() => false), new Promise((r2) => (guard = setTimeout(() => r2(true), 120000)))]);
        clearTimeout(guard);
        const res = {
            count,
            timedOut,
            sendRate: args.deltas / ((w.tSent - w.t0) / 1e3), // until the writer's socket buffer drained
            deliveredRate: count / (((lastAt || nowAbs()) - w.t0) / 1e3), // until the C++ reader printed the last one
            writerLoopMs: w.tLoop - w.t0,
            writerCpuPct: w.cpuPct,
            writerCpuUsPerDelta: (1e3 * w.cpuMs) / args.deltas,
            relayCpuMs: readStat(relay.pid) - c0,
            watchCpuMs: readStat(watch.pid) - wc0,
        };
        writer.send("leave");
        await Promise.all([stop(writer), stop(watch)]);
        runs.push(res);
        log(`send run ${r + 1}: ${JSON.stringify(res, (x, v) => (typeof v === "number" ? +v.toFixed(1) : v))}`);
        await sleep(300);
    }
    return { n: args.deltas, chunk: args.chunk, runs, sendRate: median(runs.map((x) => x.sendRate)), deliveredRate: median(runs.map((x) => x.deliveredRate)), cpuUs: median(runs.map((x) => x.writerCpuUsPerDelta)), cpuPct: median(runs.map((x) => x.writerCpuPct)) };
}

const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }) : "-");

async function main() {
    const only = new Set(args.only.split(","));
    const ks = String(args.keys).split(",").map(Number);
    const relay = await startRelay();
    log(`relay ${relay.url} (pid ${relay.pid}), ${cpus().length} cores, load ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
    const holders = [];
    try {
        if (only.has("join") || only.has("browser") || only.has("memory")) for (const k of ks) holders.push([k, await cppHolder(relay, k)]);
        if (only.has("join") || only.has("memory")) out.rows.join = await joinNode(relay, holders);
        if (only.has("browser") && args.browser) out.rows.browser = await joinBrowser(relay, holders);
        if (only.has("apply")) out.rows.apply = await applyRate(relay);
        if (only.has("send")) out.rows.send = await sendRate(relay);
    } finally {
        for (const [, keep] of holders) {
            await stop(keep);
            rmSync(keep.dir, { recursive: true, force: true });
        }
        out.relay = { rssMB: rssMB(relay.pid), cpuMs: readStat(relay.pid) };
        await stop(relay);
    }
    out.machine.loadavgEnd = loadavg();
    report();
    if (args.json) writeFileSync(args.json, JSON.stringify(out, null, 2));
}

function report() {
    const R = out.rows;
    const lines = [];
    lines.push(`JS peer benchmarks, ${new Date().toISOString()}, node ${process.version}, ${out.machine.cpus} cores (load ${out.machine.loadavgStart.map((x) => x.toFixed(1)).join("/")} at start), medians of ${args.runs}`);
    lines.push("");
    if (R.join) {
        lines.push("| join (Node), C++ keeper holds K keys | connect→ready ms | warm-up join ms (--warmup 1) | client CPU % | heap + ArrayBuffer B/key |");
        lines.push("|---|---|---|---|---|");
        for (const r of R.join) lines.push(`| ${fmt(r.k)} | ${fmt(r.ms, 1)} | ${fmt(r.coldMs, 1)} | ${fmt(r.cpuPct)} | ${fmt(r.bytesPerKey)} |`);
        lines.push("");
    }
    if (R.browser) {
        lines.push(`| join (${R.browser.version}), C++ keeper holds K keys | connect→ready ms | warm-up join ms (--warmup 1) | longest main-thread gap ms (median / worst) | longest long task ms |`);
        lines.push("|---|---|---|---|---|");
        for (const r of R.browser.rows) lines.push(`| ${fmt(r.k)} | ${fmt(r.ms, 1)} | ${fmt(r.coldMs, 1)} | ${fmt(r.longestGap, 1)} / ${fmt(r.worstGap, 1)} | ${fmt(r.longtaskMax, 1)} |`);
        lines.push("");
    }
    if (R.apply || R.send) {
        lines.push("| rate | deltas | sets per turn | deltas/s | end to end deltas/s | measured peer CPU µs/delta (CPU %) | deltas per CPU-second |");
        lines.push("|---|---|---|---|---|---|---|");
        if (R.apply) lines.push(`| apply: JS writer → relay → JS reader counts \`set\` events (reader first→last event) | ${fmt(R.apply.n)} | ${fmt(R.apply.chunk)} | ${fmt(R.apply.readerRate)} | ${fmt(R.apply.endToEndRate)} | ${fmt(R.apply.cpuUs, 2)} (${fmt(R.apply.cpuPct)}) | ${fmt(1e6 / R.apply.cpuUs)} |`);
        if (R.send) lines.push(`| send: JS writer → relay → C++ \`distmap watch\` (writer: first set → socket drained) | ${fmt(R.send.n)} | ${fmt(R.send.chunk)} | ${fmt(R.send.sendRate)} | ${fmt(R.send.deliveredRate)} | ${fmt(R.send.cpuUs, 2)} (${fmt(R.send.cpuPct)}) | ${fmt(1e6 / R.send.cpuUs)} |`);
        lines.push("");
    }
    console.log(lines.join("\n"));
}

if (args.role) {
    listen();
    roles[args.role](JSON.parse(args.cfg)).then(
        () => process.exit(0),
        (e) => {
            console.error(e && e.stack ? e.stack : e);
            process.exit(1);
        },
    );
} else {
    main().catch((e) => {
        console.error(e && e.stack ? e.stack : e);
        process.exitCode = 1;
    });
}
