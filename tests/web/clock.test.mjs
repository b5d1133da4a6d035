// Hybrid logical clock (docs/PROTOCOL.md section 7).
import test from "node:test";
import assert from "node:assert/strict";
import { HybridClock, U64_MAX } from "../../resources/web/distmap.js";

const MS = 1764196800000; // 2025-11-26T22:40:00Z

function clockAt(ms) {
    const c = new HybridClock(() => c.wall);
    c.wall = ms;
    return c;
}

test("a local write stamps max(last + 1, now_ms << 16)", () => {
    const c = clockAt(MS);
    assert.equal(c.tick(), BigInt(MS) << 16n);
    // Same millisecond: the logical counter counts.
    assert.equal(c.tick(), (BigInt(MS) << 16n) + 1n);
    assert.equal(c.last, (BigInt(MS) << 16n) + 1n);
    // Time moves on: the physical part takes over, counter 0.
    c.wall = MS + 5;
    assert.equal(c.tick(), BigInt(MS + 5) << 16n);
});

test("the wall clock going backwards never makes the clock go backwards", () => {
    const c = clockAt(MS);
    const a = c.tick();
    c.wall = MS - 1000;
    const b = c.tick();
    assert.equal(b, a + 1n);
});

test("a counter overflow carries into the millisecond part", () => {
    const c = clockAt(MS);
    c.last = (BigInt(MS) << 16n) | 0xffffn;
    assert.equal(c.tick(), BigInt(MS + 1) << 16n);
});

test("a local write beats the key's current write even far in the future", () => {
    const c = clockAt(MS);
    const future = BigInt(MS + 86400000) << 16n; // a day ahead
    const hlc = c.tick(future);
    assert.equal(hlc, future + 1n);
    assert.equal(c.last, future + 1n);
    // An older current write does not matter.
    const c2 = clockAt(MS);
    assert.equal(c2.tick(5n), BigInt(MS) << 16n);
});

test("a write whose current write carries 2^64-1 cannot be stamped", () => {
    const c = clockAt(MS);
    assert.equal(c.tick(U64_MAX), null);
    assert.equal(c.last, 0n, "nothing issued");
    assert.equal(c.tick(U64_MAX - 1n), U64_MAX);
});

test("receiving follows a remote clock at most 60 s ahead", () => {
    const c = clockAt(MS);
    c.observe(BigInt(MS + 10000) << 16n);
    assert.equal(c.last, BigInt(MS + 10000) << 16n, "10 s ahead: followed");
    c.observe(BigInt(MS + 86400000) << 16n);
    assert.equal(c.last, BigInt(MS + 60000) << 16n, "a day ahead: capped at now + 60 s");
    // An older remote clock changes nothing.
    c.observe(5n);
    assert.equal(c.last, BigInt(MS + 60000) << 16n);
    // The next local write is after what we followed.
    assert.equal(c.tick(), (BigInt(MS + 60000) << 16n) + 1n);
});

test("the relay's time sets the offset; the physical clock follows it", () => {
    const c = clockAt(MS);
    c.follow(MS + 3600000); // the relay is an hour ahead of our wall clock
    assert.equal(c.nowMs(), MS + 3600000);
    assert.equal(c.tick(), BigInt(MS + 3600000) << 16n);
    c.wall = MS + 10;
    assert.equal(c.nowMs(), MS + 3600010);
    // The 60 s cap is measured on the corrected clock.
    c.observe(BigInt(MS + 3600000 + 120000) << 16n);
    assert.equal(c.last, BigInt(MS + 3600010 + 60000) << 16n);
});

test("a clock before the epoch reads as 0 ms", () => {
    const c = clockAt(-5000);
    assert.equal(c.nowMs(), 0);
    assert.equal(c.tick(), 1n);
});
