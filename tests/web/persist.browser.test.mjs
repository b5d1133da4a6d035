// IndexedDB persistence of the JavaScript peer, in headless Chromium
// (puppeteer-core; the browser is $CHROME_PATH or /usr/bin/chromium) against
// the C++ relay and CLI. Skips when either is missing.
//
//   node --test tests/web/persist.browser.test.mjs
import test from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { binary, binaryAvailable, repoRoot, runCli, startRelay, stopAll, tempDir } from "./harness.mjs";

const chrome = process.env.CHROME_PATH ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find((p) => existsSync(p));
const skip = !binaryAvailable() ? `no distmap binary at ${binary}` : !chrome ? "no Chromium (set CHROME_PATH)" : false;

// Serves the module and an empty page from one origin.
function serve() {
    const moduleText = readFileSync(join(repoRoot, "resources/web/distmap.js"));
    const server = createServer((req, res) => {
        if (req.url === "/distmap.js") {
            res.writeHead(200, { "content-type": "text/javascript" });
            res.end(moduleText);
        } else {
            res.writeHead(200, { "content-type": "text/html" });
            res.end("<!doctype html><title>distmap persistence</title>");
        }
    });
    return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// Runs in the page: opens /p with persistence, returns a handle on window.
async function openMap(relayUrl) {
    const { connect, DistributedMap } = await import("/distmap.js");
    const connection = connect(relayUrl, { name: "tab", reconnect: { minDelay: 100, maxDelay: 300 } });
    const map = DistributedMap(connection, "/p", { persist: true, persistBatchMs: 10 });
    window.errors = [];
    window.storedEvents = 0;
    map.on("stored", (m) => m === map && window.storedEvents++);
    map.on("error", (e) => window.errors.push(`${e.code}: ${e.message}`));
    window.loaded = new Promise((r) => map.once("loaded", r));
    Object.assign(window, { connection, map });
    // A write and a flush() while the store loads: flush waits for the load, then the write.
    map.set("while-loading", 1);
    const early = map.flush().then(() => map._durableSeq === map._storeSeq && map._store !== null);
    await window.loaded;
    if (!(await early)) throw new Error("flush() during the load resolved before the store had the write");
    map.delete("while-loading");
    await map.flush();
    return { peer: connection.peerHex, keys: map.keys().sort() };
}

// Runs in the page: map.flush() resolves once every change is in
// IndexedDB (the store's bookkeeping agrees), and "stored" events came.
async function stored() {
    await window.map.flush();
    return { stored: window.storedEvents > 0, covered: window.map._durableSeq === window.map._storeSeq && !window.map._storeWriting };
}

test("a tab's map, offline edits included, survives a reload and reaches the network; durable acks", { skip, timeout: 60000 }, async (t) => {
    // Each step's time, printed with the test's output: a timeout then says where it stood.
    const t0 = Date.now();
    const step = (what) => t.diagnostic(`${Date.now() - t0} ms: ${what}`);
    const { default: puppeteer } = await import("puppeteer-core");
    const relay = await startRelay();
    const server = await serve();
    const origin = `http://127.0.0.1:${server.address().port}/`;
    step("relay and page server up");
    const browser = await puppeteer.launch({
        executablePath: chrome,
        headless: true,
        userDataDir: tempDir("distmap-chrome-"),
        args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
    });
    try {
        const page = await browser.newPage();
        page.on("pageerror", (e) => console.log("# page error:", e.message));
        await page.goto(origin);
        step("page loaded");
        const first = await page.evaluate(openMap, relay.url);
        assert.deepEqual(first.keys, []);
        await page.evaluate(async () => {
            await window.map.whenReady();
            window.map.set("a", { x: 1 });
            window.map.set("😀", "astral");
            window.map.delete("a");
            window.map.set("a", { x: 2 });
        });
        assert.deepEqual(await page.evaluate(stored), { stored: true, covered: true }, "flush() waits for the store; stored events");

        step("first edits stored");
        // A C++ write that asks for a durable confirmation: the tab stores it.
        const r = await runCli(["set", "--url", relay.url, "--map", "/p", "--ack", "durable", "from-cpp", "[1,2]"]);
        assert.equal(r.code, 0, `the tab confirms durably (${r.stderr})`);

        step("durable C++ write confirmed");
        // Reload: the same peer id, the same state, before any sync.
        await page.reload();
        const second = await page.evaluate(openMap, relay.url);
        assert.equal(second.peer, first.peer, "the peer id is kept across reloads");
        assert.deepEqual(second.keys, ["a", "from-cpp", "😀"].sort());
        assert.deepEqual(await page.evaluate(() => [window.map.get("a"), window.map.get("from-cpp")]), [{ x: 2 }, [1, 2]]);
        await page.evaluate(() => window.map.whenReady());

        step("reloaded and ready");
        // Offline: the relay goes away, the tab edits, reloads while offline.
        await relay.stop();
        await page.evaluate(async () => {
            while (window.connection.status !== "reconnecting") await new Promise((r) => setTimeout(r, 10));
            window.map.set("offline", "made offline");
            window.map.delete("😀");
        });
        step("relay stopped; offline edits made");
        assert.deepEqual(await page.evaluate(stored), { stored: true, covered: true });
        await page.reload();
        const third = await page.evaluate(openMap, relay.url);
        assert.deepEqual(third.keys, ["a", "from-cpp", "offline"], "offline edits survive the reload");
        step("reloaded offline");
        // The relay comes back: the edits reach the network.
        const relay2 = await startRelay([], { port: relay.port });
        step("relay back");
        await page.evaluate(() => window.map.whenReady());
        step("ready again");
        const dump = await runCli(["dump", "--url", relay2.url, "--map", "/p"]);
        assert.equal(dump.code, 0, dump.stderr);
        assert.deepEqual(JSON.parse(dump.stdout), { a: { x: 2 }, "from-cpp": [1, 2], offline: "made offline" });
        assert.deepEqual(await page.evaluate(() => window.errors), []);
    } finally {
        await browser.close();
        server.close();
        await stopAll();
    }
});
