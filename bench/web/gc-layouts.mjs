// gc-layouts.mjs: what one full garbage collection costs in Chromium with
// 1,000,000 key strings kept in different layouts (docs/BROWSER-BENCH.md,
// "Why the state has its own key table"). Each layout is built in a fresh
// headless Chromium, 6,000 keys per task, then gc() is timed.
//
//   node bench/web/gc-layouts.mjs [--keys 1000000] [--runs 3]
//
// Layouts: "none" (keys made and dropped), "array" (kept in an Array),
// "map" (keys of one Map), "maps16" (keys over 16 Maps, as distmap.js had),
// "table" (an Array plus an Int32Array open-addressing table, as KeyIndex).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

const opt = { keys: 1000000, runs: 3 };
for (let i = 2; i < process.argv.length; i += 2) {
    const k = process.argv[i].replace(/^--/, "");
    if (!(k in opt)) {
        console.error(`unknown option ${process.argv[i]} (--keys N, --runs N)`);
        process.exit(2);
    }
    opt[k] = Number(process.argv[i + 1]);
}

async function measure(layout) {
    const profile = mkdtempSync(join(tmpdir(), "distmap-gc-layouts-"));
    const browser = await puppeteer.launch({
        executablePath: process.env.CHROME_PATH || "/usr/bin/chromium",
        headless: true,
        userDataDir: profile,
        args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--js-flags=--expose-gc", "--disable-background-timer-throttling"],
    });
    try {
        const page = await browser.newPage();
        return await page.evaluate(
            async (layout, n) => {
                const maps = Array.from({ length: 16 }, () => new Map());
                const keys = [];
                const table = new Int32Array(1 << Math.ceil(Math.log2(2 * n))).fill(-1);
                const mask = table.length - 1;
                const channel = new MessageChannel();
                let resume = null;
                channel.port1.onmessage = () => resume();
                const nextTask = () => new Promise((r) => ((resume = r), channel.port2.postMessage(0)));
                const t0 = performance.now();
                for (let i = 0; i < n; i += 6000) {
                    for (let j = i; j < Math.min(n, i + 6000); j++) {
                        // A fresh flat string, as the codec makes keys.
                        const key = String.fromCharCode.apply(null, Array.from("key-" + String(j).padStart(7, "0"), (c) => c.charCodeAt(0)));
                        if (layout === "array") keys.push(key);
                        else if (layout === "map") maps[0].set(key, j);
                        else if (layout === "maps16") maps[j & 15].set(key, j);
                        else if (layout === "table") {
                            let h = 0x811c9dc5;
                            for (let c = 0; c < key.length; c++) h = Math.imul(h ^ key.charCodeAt(c), 0x01000193);
                            let at = h & mask;
                            while (table[at] !== -1) at = (at + 1) & mask;
                            table[at] = keys.length;
                            keys.push(key);
                        }
                    }
                    await nextTask();
                }
                const buildMs = performance.now() - t0;
                await new Promise((r) => setTimeout(r, 300));
                const g0 = performance.now();
                gc();
                const gcMs = performance.now() - g0;
                const kept = keys.length + maps.reduce((s, m) => s + m.size, 0);
                return { buildMs, gcMs, kept };
            },
            layout,
            opt.keys,
        );
    } finally {
        await browser.close();
        rmSync(profile, { recursive: true, force: true });
    }
}

console.log(`| layout of ${opt.keys.toLocaleString("en")} keys | full gc() ms, ${opt.runs} runs | build ms (median) |`);
console.log("|---|---|---|");
for (const layout of ["none", "array", "map", "maps16", "table"]) {
    const runs = [];
    for (let r = 0; r < opt.runs; r++) runs.push(await measure(layout));
    const gcs = runs.map((x) => x.gcMs.toFixed(1)).join(", ");
    const build = runs.map((x) => x.buildMs).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
    console.log(`| ${layout} | ${gcs} | ${build.toFixed(0)} |`);
}
