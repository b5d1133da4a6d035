// The web inspector's pure helpers (resources/web/inspector-format.js), in
// Node: no browser needed.
//
//   node --test tests/web/browser/format.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  compactJson,
  editableJson,
  formatTime,
  hashForMap,
  matchesFilter,
  parseValueInput,
  settingsFromLocation,
  shortPeerId,
  sortedIndex,
  truncate,
} from "../../../resources/web/inspector-format.js";

const at = (href) => {
  const url = new URL(href);
  return { protocol: url.protocol, host: url.host, search: url.search, hash: url.hash };
};

test("the page opens the default map on the relay that served it", () => {
  assert.deepEqual(settingsFromLocation(at("http://relay.example:7357/")), {
    map: "/distributed-map",
    token: "",
    relay: "ws://relay.example:7357",
    name: "",
  });
});

test("a page served over https talks wss", () => {
  assert.equal(settingsFromLocation(at("https://relay.example/")).relay, "wss://relay.example");
});

test("the hash names the map, the query the token, relay and name", () => {
  const settings = settingsFromLocation(at("http://h:1/?token=s3cret&relay=ws://other:9&name=Ada#map=/rooms/42"));
  assert.deepEqual(settings, { map: "/rooms/42", token: "s3cret", relay: "ws://other:9", name: "Ada" });
});

test("a map URI survives the round trip through the hash", () => {
  for (const map of ["/rooms/42", "/a b/ü?&=#", "plain"]) {
    assert.equal(settingsFromLocation(at(`http://h:1/${hashForMap(map)}`)).map, map);
  }
  assert.equal(hashForMap("/rooms/42"), "#map=/rooms/42");
});

test("JSON input is parsed, and what is not JSON says how to fix it", () => {
  assert.deepEqual(parseValueInput(' {"a": [1, true, null]} '), { ok: true, value: { a: [1, true, null] } });
  assert.deepEqual(parseValueInput("42"), { ok: true, value: 42 });
  assert.deepEqual(parseValueInput('"text"'), { ok: true, value: "text" });
  assert.match(parseValueInput("").error, /^Type a JSON value/);
  assert.match(parseValueInput("{oops").error, /^Not JSON: /);
  assert.match(parseValueInput("hello world").error, /double quotes, as in "hello world"/);
  assert.deepEqual(parseValueInput("hello world", { asText: true }), { ok: true, value: "hello world" });
});

test("values show as compact JSON, and edit indented", () => {
  assert.equal(compactJson({ a: 1, b: [2, "x"] }), '{"a":1,"b":[2,"x"]}');
  assert.equal(compactJson(undefined), "undefined");
  assert.equal(editableJson({ a: 1 }), '{\n  "a": 1\n}');
  assert.equal(editableJson("x"), '"x"');
  assert.equal(truncate("abcdef", 4), "abc…");
  assert.equal(truncate("abc", 4), "abc");
});

test("times show with milliseconds, peer ids by their first 8 digits", () => {
  assert.equal(formatTime(new Date(2025, 0, 2, 3, 4, 5, 6)), "03:04:05.006");
  assert.equal(shortPeerId("8f3c2a61d0e94b17"), "8f3c2a61");
  assert.equal(shortPeerId(0xabn), "00000000");
});

test("the filter matches keys and values, case-insensitively", () => {
  assert.ok(matchesFilter("", "k", "v"));
  assert.ok(matchesFilter("USER", "user:ada", "1"));
  assert.ok(matchesFilter("dark", "theme", '"Dark"'));
  assert.ok(!matchesFilter("zzz", "theme", '"dark"'));
});

test("sortedIndex places a key in ascending and descending order", () => {
  assert.equal(sortedIndex(["a", "c", "e"], "d"), 2);
  assert.equal(sortedIndex(["a", "c", "e"], "0"), 0);
  assert.equal(sortedIndex(["a", "c", "e"], "z"), 3);
  assert.equal(sortedIndex(["e", "c", "a"], "d", true), 1);
  assert.equal(sortedIndex([], "x"), 0);
});
