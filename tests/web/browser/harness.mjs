// What the browser tests and the screenshot script share: a real relay and
// C++ CLI peers (the distmap binary), headless Chromium through
// puppeteer-core, and waiting on conditions.
//
// Environment:
//   DISTMAP_BINARY     the distmap binary (default: build/distmap of this tree)
//   DISTMAP_WEB_PAGES  "relay" (default): the page is the one the relay serves
//                      over HTTP on its WebSocket port; "local": a small
//                      server here serves resources/web and the page is
//                      told the relay's address with ?relay=
//   CHROMIUM           the browser (default /usr/bin/chromium)

import { spawn, execFile } from "node:child_process";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";
import puppeteer from "puppeteer-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const sourceRoot = path.resolve(here, "../../..");
export const webRoot = path.join(sourceRoot, "resources/web");
export const binary = process.env.DISTMAP_BINARY || path.join(sourceRoot, "build/distmap");
export const pagesMode = process.env.DISTMAP_WEB_PAGES === "local" ? "local" : "relay";
const chromium = process.env.CHROMIUM || "/usr/bin/chromium";

// Every process started here, so that nothing outlives the tests.
const children = new Set();

function track(child) {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

// Ends what is still running (by PID), e.g. from an `after` hook.
export async function stopAll() {
  await Promise.all([...children].map((child) => stopProcess(child)));
}

process.once("exit", () => {
  for (const child of children) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

// SIGTERM, then SIGKILL if it has not exited within `grace` ms.
export async function stopProcess(child, grace = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    process.kill(child.pid, "SIGTERM");
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // exited meanwhile
    }
  }, grace);
  await exited;
  clearTimeout(timer);
}

// Polls `condition` (sync or async) until it returns something truthy, and
// returns that. Throws with `what` and the last value seen after `timeout`.
export async function waitFor(condition, { timeout = 15000, interval = 100, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await condition();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${detail})`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

// Starts `distmap relay` on 127.0.0.1 (port 0: a free one) and resolves once
// it says where it listens. A port just freed by a previous relay may take
// a moment to be free again, so a failed start is retried until `timeout`.
// `args` are more relay options (e.g. --tokens FILE).
export async function startRelay({ port = 0, args = [], timeout = 15000 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await startRelayOnce(port, args, Math.max(1000, deadline - Date.now()));
    } catch (error) {
      if (Date.now() > deadline || port === 0) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

function startRelayOnce(port, args, timeout) {
  return new Promise((resolve, reject) => {
    const child = track(spawn(binary, ["relay", "--host", "127.0.0.1", "--port", String(port), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    }));
    let output = "";
    const timer = setTimeout(() => {
      stopProcess(child);
      reject(new Error(`relay did not start within ${timeout} ms: ${output}`));
    }, timeout);
    const onData = (chunk) => {
      output += chunk;
      const match = /listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        child.stdout.off("data", onData);
        child.stdout.resume();
        const relayPort = Number(match[1]);
        resolve({
          process: child,
          port: relayPort,
          url: `ws://127.0.0.1:${relayPort}`,
          stop: () => stopProcess(child),
        });
      }
    };
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", onData);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      output += chunk;
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`relay exited (${code ?? signal}) before listening: ${output}`));
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

// Runs one CLI command (`set`, `get`, `del`, `dump`) to completion.
// Resolves { code, stdout, stderr }; never rejects on a non-zero exit.
export function runCli(args, { timeout = 20000, env } = {}) {
  return new Promise((resolve, reject) => {
    const options = { timeout, killSignal: "SIGKILL", encoding: "utf8", env: env ? { ...process.env, ...env } : process.env };
    const child = execFile(binary, args, options, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") {
        reject(new Error(`distmap ${args.join(" ")}: ${error.message} ${stderr}`));
        return;
      }
      resolve({ code: error ? error.code : 0, stdout, stderr });
    });
    track(child);
  });
}

// `distmap set` of a plain string with no acknowledgement, as a C++ peer.
export async function cliSetString(relay, map, key, value) {
  const result = await runCli(["set", "--url", relay.url, "--map", map, "--ack", "none", "--string", key, value]);
  if (result.code !== 0) throw new Error(`distmap set ${key} exited ${result.code}: ${result.stderr}`);
  return result;
}

// `distmap set` of a JSON value.
export async function cliSetJson(relay, map, key, json, { ack = "none", name, token } = {}) {
  const args = ["set", "--url", relay.url, "--map", map, "--ack", ack];
  if (name) args.push("--name", name);
  // The token goes through the environment, never on a command line.
  const result = await runCli([...args, key, json], { env: token ? { DISTMAP_TOKEN: token } : undefined });
  if (result.code !== 0) throw new Error(`distmap set ${key} exited ${result.code}: ${result.stderr}`);
  return result;
}

// `distmap get`: the parsed value, or undefined when the key is missing.
export async function cliGet(relay, map, key) {
  const result = await runCli(["get", "--url", relay.url, "--map", map, "--timeout", "5000", key]);
  if (result.code === 1) return undefined;
  if (result.code !== 0) throw new Error(`distmap get ${key} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

// A long-running C++ peer (`distmap watch`, `distmap keep`): started,
// tracked, stopped by PID. Its stdout is collected in `output()`.
export function startPeer(args, { env } = {}) {
  const child = track(spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], env: env ? { ...process.env, ...env } : process.env }));
  let out = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => {
    out += chunk;
  });
  child.stderr.resume();
  return { process: child, output: () => out, stop: () => stopProcess(child) };
}

const contentTypes = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

export function contentTypeOf(file) {
  return contentTypes[path.extname(file)] || "application/octet-stream";
}

// Reads resources/web/<name> for a request path ("/" is index.html), or
// null when there is no such file (no subfolders, as the relay serves it).
export async function readWebFile(requestPath) {
  const name = requestPath === "/" ? "index.html" : requestPath.replace(/^\//, "");
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith(".")) return null;
  try {
    return { name, body: await readFile(path.join(webRoot, name)) };
  } catch {
    return null;
  }
}

// DISTMAP_WEB_PAGES=local: serves resources/web on 127.0.0.1, a free port.
export async function startWebServer() {
  const server = createServer(async (request, response) => {
    const file = await readWebFile(new URL(request.url, "http://127.0.0.1").pathname);
    if (!file || request.method !== "GET") {
      response.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
      return;
    }
    response.writeHead(200, { "Content-Type": contentTypeOf(file.name), "Cache-Control": "no-store" });
    response.end(file.body);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// The address of the inspector page for `relay` and `map`.
export function inspectorUrl({ relay, web, map, token, name }) {
  const query = new URLSearchParams();
  let origin;
  if (pagesMode === "local") {
    origin = web.origin;
    query.set("relay", relay.url);
  } else {
    origin = `http://127.0.0.1:${relay.port}`;
  }
  if (token) query.set("token", token);
  if (name) query.set("name", name);
  const search = query.toString();
  return `${origin}/${search ? `?${search}` : ""}#map=${encodeURIComponent(map).replace(/%2F/gi, "/")}`;
}

// Headless Chromium, Debian's. The sandbox needs an unprivileged user;
// as root (containers, CI) Chromium refuses to start without --no-sandbox.
export async function launchBrowser() {
  const args = ["--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage"];
  if (typeof process.getuid === "function" && process.getuid() === 0) args.push("--no-sandbox");
  return puppeteer.launch({ executablePath: chromium, headless: true, args, timeout: 30000 });
}

// A page whose uncaught errors are collected in `page.errors`.
export async function newPage(context, { width = 1280, height = 800 } = {}) {
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (error) => page.errors.push(error.message));
  page.setDefaultTimeout(15000);
  await page.setViewport({ width, height });
  return page;
}
