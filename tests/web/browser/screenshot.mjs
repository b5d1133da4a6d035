// Saves docs/web-inspector.png: the web inspector on a realistic map (15
// keys), with two other peers (a second browser tab, Grace, and a C++
// `distmap watch`, Linus), and the deltas they and a C++ build bot sent.
//
//   node tests/web/browser/screenshot.mjs [OUTPUT.png] [WIDTHxHEIGHT] [dark]
//
// Same environment as the tests (harness.mjs): DISTMAP_BINARY,
// DISTMAP_WEB_PAGES.

import path from "node:path";
import {
  cliSetJson,
  inspectorUrl,
  launchBrowser,
  newPage,
  pagesMode,
  sourceRoot,
  startPeer,
  startRelay,
  startWebServer,
  stopAll,
  waitFor,
} from "./harness.mjs";

const output = path.resolve(process.argv[2] || path.join(sourceRoot, "docs/web-inspector.png"));
const [width, height] = (process.argv[3] || "1280x800").split("x").map(Number);
const dark = process.argv[4] === "dark";
const MAP = "/rooms/42";

// Fills the add form and presses Set (quickly: no key-by-key typing).
async function setInPage(page, key, json) {
  await page.bringToFront();
  await page.evaluate((k, v) => {
    document.getElementById("new-key").value = k;
    document.getElementById("new-value").value = v;
    document.getElementById("add-button").click();
  }, key, json);
  await waitFor(() => page.evaluate((k) => [...document.querySelectorAll("#keys-body tr")].some((r) => r.dataset.key === k), key), {
    what: `${key} in the writing tab`,
  });
}

async function waitForKeyIn(page, key, present = true) {
  await waitFor(
    () => page.evaluate((k, p) => [...document.querySelectorAll("#keys-body tr")].some((r) => r.dataset.key === k) === p, key, present),
    { what: `${key} ${present ? "in" : "gone from"} the inspector` },
  );
}

async function synced(page) {
  await waitFor(() => page.$eval("#status", (node) => node.dataset.state === "synced"), { timeout: 20000, what: "synced" });
}

let browser;
let web;
try {
  const relay = await startRelay();
  if (pagesMode === "local") web = await startWebServer();
  browser = await launchBrowser();
  const context = await browser.createBrowserContext();

  // The page shown: Ada's.
  const ada = await newPage(context, { width, height });
  if (dark) await ada.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
  await ada.goto(inspectorUrl({ relay, web, map: MAP, name: "Ada" }));
  await synced(ada);

  // Linus, a C++ peer that prints what it sees.
  const linus = startPeer(["watch", "--url", relay.url, "--map", MAP, "--name", "Linus"]);
  await waitFor(() => ada.$$eval(".peer-name", (names) => names.some((n) => n.textContent === "Linus")), { what: "Linus" });

  // Grace, in another tab.
  const grace = await newPage(context, { width, height });
  await grace.goto(inspectorUrl({ relay, web, map: MAP, name: "Grace" }));
  await synced(grace);

  const fromGrace = [
    ["room/42/title", '"Design review"'],
    ["room/42/attendees", '["ada", "grace", "linus"]'],
    ["user:grace", '{"name": "Grace Hopper", "online": true, "role": "editor"}'],
    ["user:linus", '{"name": "Linus", "online": false, "role": "viewer"}'],
    ["cart", '[{"sku": "A-100", "qty": 2}, {"sku": "B-7", "qty": 1}]'],
    ["motd", '"Welcome to the shared map"'],
    ["limits/maxUsers", "250"],
    ["feature/flags", '{"betaSync": true, "darkMode": false}'],
    ["tmp/lock", '"grace"'],
    ["counter", "86"],
  ];
  for (const [key, json] of fromGrace) await setInPage(grace, key, json);

  // A C++ build bot comes and goes.
  await cliSetJson(relay, MAP, "build/status", '{"ok": true, "tests": 412, "commit": "3022b69"}', { name: "build-bot" });
  await cliSetJson(relay, MAP, "build/duration_ms", "81234", { name: "build-bot" });
  await cliSetJson(relay, MAP, "deploy/last", '"2025-12-05T12:40:00Z"', { name: "build-bot" });

  for (const [key, json] of [
    ["settings/theme", '"dark"'],
    ["settings/fontSize", "14"],
    ["user:ada", '{"name": "Ada Lovelace", "online": true, "role": "admin"}'],
  ]) {
    await setInPage(ada, key, json);
  }

  // Grace drops her lock and bumps the counter: only the last row flashes.
  await waitFor(() => ada.evaluate(() => document.getAnimations().length === 0), { what: "earlier flashes to end" });
  await grace.bringToFront();
  await grace.click("#keys-body tr[data-key='tmp/lock'] .delete-button");
  await waitForKeyIn(ada, "tmp/lock", false);
  await setInPage(grace, "counter", "87");
  await setInPage(grace, "counter", "88");
  await ada.bringToFront();
  await waitFor(() => ada.$eval("#keys-body tr[data-key='counter'] .col-value", (cell) => cell.textContent === "88"), {
    what: "counter = 88 in the inspector",
  });
  await waitForKeyIn(ada, "deploy/last");
  await waitFor(() => linus.output().includes('"counter"'), { what: "Linus to see the counter" });

  // The last change is a few hundred ms old: its row is still lit.
  await ada.evaluate(() => document.activeElement && document.activeElement.blur());
  await ada.screenshot({ path: output, fullPage: width < 900 });
  console.log(`saved ${output} (${width}x${height}, pages from ${pagesMode === "local" ? "a local server" : "the relay"})`);
  if (ada.errors.length || grace.errors.length) throw new Error(`page errors: ${[...ada.errors, ...grace.errors].join("; ")}`);
} finally {
  if (browser) await browser.close();
  if (web) await web.close();
  await stopAll();
}
