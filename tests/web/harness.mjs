// Test harness: starts the C++ relay and CLI peers (the `distmap` binary)
// for interop tests of the JavaScript peer. Every process it starts is
// tracked and ended by its PID (stopAll(), also on exit). Loopback only.
//
//   import { startRelay, runCli, spawnCli, stopAll } from "./harness.mjs";
//   const relay = await startRelay();             // relay.url = ws://127.0.0.1:PORT
//   await runCli(["set", "--url", relay.url, "--map", "/m", "--ack", "none", "k", "1"]);
//   const keeper = spawnCli(["keep", "--url", relay.url, "--map", "/m", "--store", dir]);
//   ...
//   await stopAll();

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const binary = process.env.DISTMAP_BINARY ? resolve(process.env.DISTMAP_BINARY) : join(repoRoot, "build/distmap");

/** Whether the distmap binary exists (tests skip with a message when not). */
export function binaryAvailable() {
    return existsSync(binary);
}

const children = new Set();
const tempDirs = new Set();

function track(proc) {
    children.add(proc);
    proc.once("exit", () => children.delete(proc));
    return proc;
}

// Headless: the binary is a Qt application.
const childEnv = { ...process.env, QT_QPA_PLATFORM: "offscreen" };

/** Ends one process we started, by its PID; resolves when it has exited. */
export function stopProcess(proc, signal = "SIGTERM", graceMs = 3000) {
    return new Promise((resolvePromise) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolvePromise();
        const timer = setTimeout(() => {
            try {
                process.kill(proc.pid, "SIGKILL");
            } catch {
                /* gone */
            }
        }, graceMs);
        proc.once("exit", () => {
            clearTimeout(timer);
            resolvePromise();
        });
        try {
            process.kill(proc.pid, signal);
        } catch {
            clearTimeout(timer);
            resolvePromise();
        }
    });
}

/** Ends every process this harness started and removes its temp dirs. */
export async function stopAll() {
    await Promise.all([...children].map((p) => stopProcess(p)));
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
    tempDirs.clear();
}

process.once("exit", () => {
    for (const p of children) {
        try {
            process.kill(p.pid, "SIGKILL");
        } catch {
            /* gone */
        }
    }
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary directory, removed by stopAll(). */
export function tempDir(prefix = "distmap-web-") {
    const d = mkdtempSync(join(tmpdir(), prefix));
    tempDirs.add(d);
    return d;
}

/**
 * Starts `distmap relay --port 0` (or the given port; plus args) and waits for its
 * "listening on ws://HOST:PORT" line. Resolves { url, port, proc, pid, stop, output }.
 */
export function startRelay(args = [], { timeoutMs = 10000, port = 0 } = {}) {
    return new Promise((resolvePromise, reject) => {
        const proc = track(spawn(binary, ["relay", "--host", "127.0.0.1", "--port", String(port), ...args], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] }));
        let output = "";
        let done = false;
        const timer = setTimeout(() => fail(new Error(`relay did not say it listens within ${timeoutMs} ms:\n${output}`)), timeoutMs);
        const fail = (e) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            stopProcess(proc).then(() => reject(e));
        };
        const onData = (chunk) => {
            output += chunk;
            const m = /listening on (wss?:\/\/[0-9.]+:(\d+))/.exec(output);
            if (m && !done) {
                done = true;
                clearTimeout(timer);
                const relay = { url: m[1], port: Number(m[2]), proc, pid: proc.pid, stop: () => stopProcess(proc), output: () => output };
                resolvePromise(relay);
            }
        };
        proc.stdout.setEncoding("utf8").on("data", onData);
        proc.stderr.setEncoding("utf8").on("data", onData);
        proc.once("error", fail);
        proc.once("exit", (code) => fail(new Error(`relay exited (${code}) before listening:\n${output}`)));
    });
}

/** Runs a CLI command to its end: resolves { code, stdout, stderr }. */
export function runCli(args, { timeoutMs = 30000, input } = {}) {
    return new Promise((resolvePromise, reject) => {
        const proc = track(spawn(binary, args, { env: childEnv, stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] }));
        let stdout = "";
        let stderr = "";
        proc.stdout.setEncoding("utf8").on("data", (c) => (stdout += c));
        proc.stderr.setEncoding("utf8").on("data", (c) => (stderr += c));
        if (input !== undefined) proc.stdin.end(input);
        const timer = setTimeout(() => {
            stopProcess(proc, "SIGKILL");
            reject(new Error(`distmap ${args.join(" ")} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
        }, timeoutMs);
        proc.once("error", (e) => {
            clearTimeout(timer);
            reject(e);
        });
        proc.once("exit", (code, signal) => {
            clearTimeout(timer);
            resolvePromise({ code: code ?? signal, stdout, stderr });
        });
    });
}

/**
 * Starts a long-running CLI command (watch, keep). Returns { proc, pid,
 * lines (array of stdout lines so far), stderr(), waitFor(predicate, ms),
 * stop(signal) }.
 */
export function spawnCli(args) {
    const proc = track(spawn(binary, args, { env: childEnv, stdio: ["ignore", "pipe", "pipe"] }));
    const lines = [];
    let partial = "";
    let stderr = "";
    const waiters = new Set();
    proc.stdout.setEncoding("utf8").on("data", (chunk) => {
        partial += chunk;
        let i;
        while ((i = partial.indexOf("\n")) >= 0) {
            lines.push(partial.slice(0, i));
            partial = partial.slice(i + 1);
        }
        for (const w of [...waiters]) w();
    });
    proc.stderr.setEncoding("utf8").on("data", (c) => {
        stderr += c;
        for (const w of [...waiters]) w();
    });
    return {
        proc,
        pid: proc.pid,
        lines,
        stderr: () => stderr,
        stop: (signal) => stopProcess(proc, signal),
        /** Resolves with the first stdout line (or stderr text) matching predicate. */
        waitFor(predicate, timeoutMs = 10000) {
            return new Promise((resolvePromise, reject) => {
                const check = () => {
                    const hit = lines.find(predicate) ?? (predicate(stderr) ? stderr : undefined);
                    if (hit !== undefined) {
                        waiters.delete(check);
                        clearTimeout(timer);
                        resolvePromise(hit);
                    }
                };
                const timer = setTimeout(() => {
                    waiters.delete(check);
                    reject(new Error(`no matching output within ${timeoutMs} ms\nstdout: ${lines.join("\n")}\nstderr: ${stderr}`));
                }, timeoutMs);
                waiters.add(check);
                check();
            });
        },
    };
}

/** Resolves after ms. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls predicate until true (or throws after timeoutMs). */
export async function until(predicate, timeoutMs = 10000, what = "condition") {
    const start = Date.now();
    while (!(await predicate())) {
        if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await sleep(10);
    }
}
