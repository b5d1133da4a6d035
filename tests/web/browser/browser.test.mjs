// The web inspector in a real browser (headless Chromium through
// puppeteer-core) against a real relay and C++ peers (the distmap binary).
//
//   node --test tests/web/browser/browser.test.mjs
//
// DISTMAP_BINARY picks the binary (default build/distmap). By default the
// page is the one the relay serves; DISTMAP_WEB_PAGES=local serves
// resources/web from here instead (harness.mjs).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { connect, DistributedMap } from "../../../resources/web/distmap.js";
import {
  cliGet,
  cliSetJson,
  cliSetString,
  inspectorUrl,
  launchBrowser,
  newPage,
  pagesMode,
  startPeer,
  startRelay,
  startWebServer,
  stopAll,
  waitFor,
} from "./harness.mjs";

const TEST_TIMEOUT = 120000;

let browser;
let web; // the local page server, in DISTMAP_WEB_PAGES=local mode only

before(async () => {
  browser = await launchBrowser();
  if (pagesMode === "local") web = await startWebServer();
});

after(async () => {
  if (browser) await browser.close();
  if (web) await web.close();
  await stopAll();
});

// Each test gets its own relay, browser context (own storage) and map.
async function setUp(t, { map = "/tests/browser", relayArgs = [] } = {}) {
  const relay = await startRelay({ args: relayArgs });
  const context = await browser.createBrowserContext();
  const pages = [];
  t.after(async () => {
    for (const page of pages) assert.deepEqual(page.errors, [], "uncaught errors in the page");
    await context.close();
    await relay.stop();
  });
  return {
    relay,
    map,
    context,
    async open({ name, token, width, height } = {}) {
      const page = await newPage(context, { width, height });
      pages.push(page);
      await page.goto(inspectorUrl({ relay: this.relay, web, map, name, token }), { waitUntil: "load" });
      await waitForSynced(page);
      return page;
    },
  };
}

// ---- reading and driving the page ---------------------------------------------------

function statusOf(page) {
  return page.$eval("#status", (node) => ({ state: node.dataset.state, text: node.textContent.trim() }));
}

async function waitForSynced(page) {
  await waitFor(async () => (await statusOf(page)).state === "synced", {
    timeout: 20000,
    what: "the page to say it is synced",
  });
}

// { key: shown value text } of every row of the keys table.
function tableOf(page) {
  return page.$$eval("#keys-body tr", (rows) =>
    Object.fromEntries(rows.map((row) => [row.dataset.key, row.querySelector(".col-value").textContent])));
}

function rowValue(page, key) {
  return page.evaluate((k) => {
    const row = [...document.querySelectorAll("#keys-body tr")].find((r) => r.dataset.key === k);
    return row ? row.querySelector(".col-value").textContent : null;
  }, key);
}

async function waitForRow(page, key, text) {
  return waitFor(async () => (await rowValue(page, key)) === text, {
    timeout: 20000,
    what: `row ${key} = ${text} in the page`,
  });
}

function logOf(page) {
  return page.$$eval("#log-body tr", (rows) =>
    rows.map((row) => [...row.cells].map((cell) => cell.textContent.trim())));
}

// Types into the add form and presses Set, as a user would. The tab comes
// to the front first: a background tab gets no animation frames, which
// clicks wait for.
async function addInPage(page, key, json) {
  await page.bringToFront();
  await page.click("#new-key", { clickCount: 3 });
  await page.keyboard.type(key);
  await page.click("#new-value", { clickCount: 3 });
  await page.keyboard.press("Backspace");
  await page.keyboard.type(json);
  await page.click("#add-button");
}

// Opens the row's editor with its Edit button, replaces the text, presses Enter.
async function editInPage(page, key, json) {
  await page.bringToFront();
  await page.evaluate((k) => {
    const row = [...document.querySelectorAll("#keys-body tr")].find((r) => r.dataset.key === k);
    row.querySelector(".edit-button").click();
  }, key);
  const editor = await page.waitForSelector("#keys-body tr.editing textarea");
  await editor.evaluate((node) => {
    node.value = "";
  });
  await editor.type(json);
  await editor.press("Enter");
}

async function waitForCli(relay, map, key, expected) {
  return waitFor(async () => {
    const value = await cliGet(relay, map, key);
    try {
      assert.deepEqual(value, expected);
      return true;
    } catch {
      return false;
    }
  }, { timeout: 30000, interval: 250, what: `distmap get ${key} to read ${JSON.stringify(expected)}` });
}

// ---- the tests ------------------------------------------------------------------

describe(`web inspector (pages from ${pagesMode === "local" ? "a local server" : "the relay"})`, () => {
  test("the page opens and shows keys that a C++ peer sets, live", { timeout: TEST_TIMEOUT }, async (t) => {
    const s = await setUp(t);
    if (pagesMode === "relay") {
      const response = await fetch(`http://127.0.0.1:${s.relay.port}/`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type"), /text\/html/);
    }
    const page = await s.open();
    assert.equal(await page.$eval("#map-uri", (input) => input.value), s.map);

    await cliSetString(s.relay, s.map, "greeting", "hello from C++");
    await waitForRow(page, "greeting", '"hello from C++"');
    await cliSetJson(s.relay, s.map, "settings", '{"theme": "dark", "fontSize": 14}');
    // The C++ peer stores the object with its members sorted (QJsonObject).
    await waitForRow(page, "settings", '{"fontSize":14,"theme":"dark"}');

    // Rows changed by another peer flash, and the log says who did what.
    assert.ok(await page.$eval("#keys-body tr[data-key='settings']", (row) => row.classList.contains("flash")));
    const log = await logOf(page);
    assert.deepEqual(log.map((cells) => [cells[1], cells[2]]), [["set", "settings"], ["set", "greeting"]]);
    assert.match(log[0][4], /^[0-9a-f]{8}$|distmap-cli/, "the writer: the CLI peer's name or id");
    assert.deepEqual(Object.keys(await tableOf(page)), ["greeting", "settings"], "rows sorted by key");
    await page.click("#sort-key");
    assert.deepEqual(Object.keys(await tableOf(page)), ["settings", "greeting"], "the Key header reverses the order");
    assert.equal(await page.$eval("#keys-table th[aria-sort]", (th) => th.getAttribute("aria-sort")), "descending");
    await cliSetString(s.relay, s.map, "h", "between");
    await waitForRow(page, "h", '"between"');
    assert.deepEqual(Object.keys(await tableOf(page)), ["settings", "h", "greeting"], "a new key takes its place");
  });

  test("an edit made in the page is read by a C++ distmap get", { timeout: TEST_TIMEOUT }, async (t) => {
    const s = await setUp(t);
    const page = await s.open();

    await addInPage(page, "color", '{"r": 255, "g": 128, "b": 0}');
    await waitForRow(page, "color", '{"r":255,"g":128,"b":0}');
    await waitForCli(s.relay, s.map, "color", { r: 255, g: 128, b: 0 });

    await editInPage(page, "color", '"orange"');
    await waitForRow(page, "color", '"orange"');
    await waitForCli(s.relay, s.map, "color", "orange");

    await page.click("#keys-body tr[data-key='color'] .delete-button");
    await waitFor(async () => (await rowValue(page, "color")) === null, { what: "the row to go" });
    await waitForCli(s.relay, s.map, "color", undefined);
  });

  test("two tabs converge, with edits in both", { timeout: TEST_TIMEOUT }, async (t) => {
    const s = await setUp(t);
    const ada = await s.open({ name: "Ada" });
    const bob = await s.open({ name: "Bob" });

    // Each tab lists the other by name.
    for (const [page, other] of [[ada, "Bob"], [bob, "Ada"]]) {
      await waitFor(() => page.$$eval(".peer-name", (names, o) => names.some((n) => n.textContent.startsWith(o)), other), {
        what: `${other} in the peers list`,
      });
    }

    await addInPage(ada, "from-ada", "1");
    await addInPage(bob, "from-bob", '"two"');
    await addInPage(ada, "shared", '"ada was here"');
    await waitForRow(bob, "shared", '"ada was here"');
    await editInPage(bob, "shared", '"bob wins"');
    await addInPage(ada, "list", "[1, 2, 3]");

    const expected = { "from-ada": "1", "from-bob": '"two"', list: "[1,2,3]", shared: '"bob wins"' };
    for (const page of [ada, bob]) {
      await waitFor(async () => {
        try {
          assert.deepEqual(await tableOf(page), expected);
          return true;
        } catch {
          return false;
        }
      }, { timeout: 20000, what: "both tabs to show the same map" });
    }
    // Bob's own write shows as his; Ada sees it came from Bob.
    const writer = await ada.$eval("#keys-body tr[data-key='shared'] .col-writer", (cell) => cell.textContent);
    assert.notEqual(writer, "you");
    await waitForCli(s.relay, s.map, "shared", "bob wins");
  });

  test("with persistence on, an edit made offline survives a reload and reaches a C++ peer",
    { timeout: TEST_TIMEOUT }, async (t) => {
      const s = await setUp(t);
      const page = await s.open();
      const port = s.relay.port;

      // Persistence is remembered by the browser; switching it reopens the map.
      await page.click("#persist");
      await waitFor(async () => (await page.$eval("#fact-storage", (node) => node.textContent)).includes("browser"), {
        what: "the page to say it stores the map",
      });
      await waitForSynced(page);
      await addInPage(page, "before", '"online"');
      await waitForCli(s.relay, s.map, "before", "online");

      await s.relay.stop();
      await waitFor(async () => (await statusOf(page)).state === "offline", { what: "the page to say offline" });
      await addInPage(page, "offline-edit", '{"made": "while the relay was down"}');
      await waitForRow(page, "offline-edit", '{"made":"while the relay was down"}');
      // distmap.js writes to IndexedDB in batches (100 ms); a reload before
      // the batch lands would lose the edit, whatever the page does.
      await waitFor(() => storedInBrowser(page, "offline-edit"), { what: "the edit to reach IndexedDB" });

      // The relay serves the page, and it is down: for the reload the
      // browser gets the same files from resources/web.
      const restore = await serveFilesWhileRelayIsDown(page, `http://127.0.0.1:${port}`);
      await page.reload({ waitUntil: "load" });
      await waitForRow(page, "offline-edit", '{"made":"while the relay was down"}');
      await waitForRow(page, "before", '"online"');
      assert.equal(await page.$eval("#persist", (box) => box.checked), true);
      assert.notEqual((await statusOf(page)).state, "synced");
      await restore();

      s.relay = await startRelay({ port });
      assert.equal(s.relay.port, port);
      t.after(() => s.relay.stop());
      await waitForSynced(page);
      await waitForCli(s.relay, s.map, "offline-edit", { made: "while the relay was down" });
      await waitForCli(s.relay, s.map, "before", "online");
    });

  test("a read-only token shows the map live and disables editing", { timeout: TEST_TIMEOUT }, async (t) => {
    const writer = "writer-token-0123456789";
    const reader = "reader-token-0123456789";
    const dir = await mkdtemp(path.join(tmpdir(), "distmap-browser-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const tokens = path.join(dir, "tokens.txt");
    await writeFile(tokens, `${writer} rw *\n${reader} ro /tests/*\n`);
    const s = await setUp(t, { relayArgs: ["--tokens", tokens] });

    // A writer that stays, so the map outlives each CLI write.
    const keeper = startPeer(["watch", "--url", s.relay.url, "--map", s.map, "--name", "Owner"], { env: { DISTMAP_TOKEN: writer } });
    t.after(() => keeper.stop());
    await waitFor(() => keeper.output().includes("ready"), { what: "the writer to be ready" });
    await cliSetJson(s.relay, s.map, "title", '"Read me"', { token: writer });

    const page = await s.open({ token: reader });
    await waitForRow(page, "title", '"Read me"');
    assert.match((await statusOf(page)).text, /read-only/);
    assert.equal(await page.$eval("#readonly-note", (note) => note.hidden), false);
    assert.equal(await page.$eval("#new-key", (input) => input.disabled), true);
    assert.equal(await page.$eval("#add-button", (button) => button.disabled), true);
    assert.equal(await page.$eval("#keys-body tr[data-key='title'] .edit-button", (button) => button.disabled), true);
    assert.equal(await page.$eval("#fact-access", (node) => node.textContent), "read-only");

    await cliSetJson(s.relay, s.map, "title", '"Still read me"', { token: writer });
    await waitForRow(page, "title", '"Still read me"');
  });

  test("a large map gets rows a page at a time, and the filter searches every key", { timeout: TEST_TIMEOUT }, async (t) => {
    const s = await setUp(t);
    // A JavaScript peer in Node holds 2,500 keys for the page to sync.
    const connection = connect(s.relay.url, { WebSocket, name: "bulk" });
    t.after(() => connection.close());
    const bulk = DistributedMap(connection, s.map);
    await bulk.whenReady();
    for (let i = 0; i < 2500; i++) bulk.set(`item/${String(i).padStart(4, "0")}`, { i });

    const page = await s.open();
    await waitFor(async () => (await page.$eval("#key-count", (node) => node.textContent)) === "2500 keys", {
      what: "2500 keys in the page",
    });
    const rows = () => page.$eval("#keys-body", (body) => body.rows.length);
    assert.equal(await rows(), 1000);
    assert.equal(await page.$eval("#keys-more .more-text", (node) => node.textContent), "Showing 1,000 of 2,500 keys.");
    assert.equal(await rowValue(page, "item/0999"), '{"i":999}');
    assert.equal(await rowValue(page, "item/1000"), null);

    // "Show more" adds a page; the footer coming into view adds the next
    // ones by itself (clicking the button scrolls it into view, so both
    // may happen here).
    await page.click("#keys-more button");
    assert.ok((await rows()) >= 2000);
    await page.$eval("#keys-more", (more) => more.scrollIntoView());
    await waitFor(async () => (await rows()) === 2500, { what: "every key to get a row" });
    assert.equal(await page.$eval("#keys-more", (node) => node.hidden), true);

    // The filter looks at every key, shown or not.
    await page.type("#keys-filter", "item/24");
    await waitFor(async () => (await rows()) === 100, { what: "100 rows for item/24" });
    assert.equal(await page.$eval("#key-count", (node) => node.textContent), "100 of 2500 keys");

    // Live changes reach keys whether or not they have a row.
    bulk.set("item/2450", "changed");
    await waitForRow(page, "item/2450", '"changed"');
  });

  test("bad JSON shows an error and sends nothing", { timeout: TEST_TIMEOUT }, async (t) => {
    const s = await setUp(t);
    const page = await s.open();
    await cliSetJson(s.relay, s.map, "kept", "1");
    await waitForRow(page, "kept", "1");

    await addInPage(page, "bad", '{"unclosed": ');
    const error = await page.$eval("#add-error", (node) => node.textContent);
    assert.match(error, /^Not JSON/);
    assert.equal(await page.$eval("#new-value", (input) => input.getAttribute("aria-invalid")), "true");
    assert.equal(await rowValue(page, "bad"), null);

    await addInPage(page, "word", "hello");
    assert.match(await page.$eval("#add-error", (node) => node.textContent), /double quotes.*"hello"/);

    // In place: the editor keeps the text, says why, and the value stays.
    await editInPage(page, "kept", "[1, 2");
    const inline = await page.$eval("#keys-body tr.editing .field-error", (node) => node.textContent);
    assert.match(inline, /^Not JSON/);
    await page.keyboard.press("Escape");
    await waitFor(async () => (await page.$("#keys-body tr.editing")) === null, { what: "the editor to close" });
    assert.equal(await rowValue(page, "kept"), "1");

    // A good write after the bad ones: once a C++ peer reads it, it would
    // have read the bad ones too, had they been sent.
    await addInPage(page, "good", "true");
    await waitForCli(s.relay, s.map, "good", true);
    assert.equal(await cliGet(s.relay, s.map, "bad"), undefined);
    assert.equal(await cliGet(s.relay, s.map, "word"), undefined);
    assert.equal(await cliGet(s.relay, s.map, "kept"), 1);
    const loggedKeys = (await logOf(page)).map((cells) => cells[2]);
    assert.deepEqual(loggedKeys.sort(), ["good", "kept"]);
  });
});

// Whether some IndexedDB record of the page's origin holds the UTF-8 bytes
// of `key` (distmap.js stores each entry in its wire form, section 5.2).
function storedInBrowser(page, key) {
  return page.evaluate(async (k) => {
    const needle = new TextEncoder().encode(k);
    const holds = (bytes) => {
      outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
        for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
        return true;
      }
      return false;
    };
    const done = (request) => new Promise((resolve, reject) => {
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    for (const { name } of await indexedDB.databases()) {
      const db = await done(indexedDB.open(name));
      try {
        for (const store of db.objectStoreNames) {
          for (const record of await done(db.transaction(store).objectStore(store).getAll())) {
            const bytes = record instanceof Uint8Array ? record : record instanceof ArrayBuffer ? new Uint8Array(record) : null;
            if (bytes && holds(bytes)) return true;
          }
        }
      } finally {
        db.close();
      }
    }
    return false;
  }, key);
}

// While the relay that serves the page is down, the page's requests to it
// go to a file server of resources/web on 127.0.0.1 instead: the URL the
// page sees stays the relay's (so does its IndexedDB origin), and the
// responses come from a loopback address, as Chromium's local network
// access checks want before the page may open ws://127.0.0.1 again (a
// response made up by request.respond() would count as public). Returns a
// function that ends it.
async function serveFilesWhileRelayIsDown(page, origin) {
  const stand = await startWebServer();
  await page.setRequestInterception(true);
  const handler = (request) => {
    const url = new URL(request.url());
    if (url.origin === origin) request.continue({ url: stand.origin + url.pathname });
    else request.continue();
  };
  page.on("request", handler);
  return async () => {
    page.off("request", handler);
    await page.setRequestInterception(false);
    await stand.close();
  };
}
