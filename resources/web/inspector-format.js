// Pure helpers of the web inspector: settings from the address, JSON input
// and display formats. No DOM, no network, so Node tests import them as is.

export const DEFAULT_MAP = "/distributed-map";
export const DEFAULT_NAME = "Web inspector";

// What the page opens, read from its address:
//   #map=/rooms/42   the map (kept in the hash so a link or a reload reopens it)
//   ?token=…         an access token (never written back into the address)
//   ?relay=ws://…    another relay than the one that served the page
//   ?name=…          the display name other peers see
// `location` is anything with `protocol`, `host`, `search` and `hash`.
export function settingsFromLocation(location) {
  const query = new URLSearchParams(location.search || "");
  const hash = new URLSearchParams((location.hash || "").replace(/^#/, ""));
  return {
    map: hash.get("map") || query.get("map") || DEFAULT_MAP,
    token: query.get("token") || "",
    relay: query.get("relay") || defaultRelayUrl(location),
    name: query.get("name") || "",
  };
}

// The relay serves the page on the port of its WebSocket, so by default the
// page talks to the host it came from.
export function defaultRelayUrl(location) {
  const secure = location.protocol === "https:";
  const host = location.host || "127.0.0.1:7357";
  return `${secure ? "wss" : "ws"}://${host}`;
}

// "#map=/rooms/42": slashes stay readable, everything else is escaped.
export function hashForMap(map) {
  return "#map=" + encodeURIComponent(map).replace(/%2F/gi, "/");
}

// Reads what the user typed as a value. Returns { ok: true, value } or
// { ok: false, error } with a sentence that says how to fix it.
export function parseValueInput(text, { asText = false } = {}) {
  if (asText) return { ok: true, value: text };
  const trimmed = text.trim();
  if (trimmed === "") {
    return { ok: false, error: 'Type a JSON value: 42, true, null, "text", [1, 2] or {"a": 1}.' };
  }
  try {
    return { ok: true, value: JSON.parse(trimmed) };
  } catch (error) {
    if (/^[\p{L}_][\p{L}\p{N}_ .,:;!?'-]*$/u.test(trimmed)) {
      return {
        ok: false,
        error: `Not JSON: text needs double quotes, as in ${JSON.stringify(trimmed)}, or tick "as text".`,
      };
    }
    return { ok: false, error: `Not JSON: ${jsonErrorDetail(error)}.` };
  }
}

// Engines word JSON.parse errors differently; keep their detail but drop
// the redundant "JSON.parse:" / "Unexpected token" noise where we can.
function jsonErrorDetail(error) {
  const message = String(error && error.message ? error.message : error);
  return message.replace(/^JSON\.parse:\s*/, "").replace(/\.$/, "");
}

// A value on one line, as compact JSON. `undefined` (a value another peer
// stored that does not parse) shows as such rather than as an empty cell.
export function compactJson(value) {
  if (value === undefined) return "undefined";
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

// The text put in the editor: objects and arrays indented, the rest compact.
export function editableJson(value) {
  if (value !== null && typeof value === "object") return JSON.stringify(value, null, 2);
  return compactJson(value);
}

// Cuts long display text; the full text goes in a tooltip.
export function truncate(text, max = 240) {
  return text.length <= max ? text : text.slice(0, max - 1) + "…";
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

// Local wall time with milliseconds: "14:03:27.412".
export function formatTime(date) {
  const d = date instanceof Date ? date : new Date(date);
  if (Number.isNaN(d.getTime())) return "";
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

// Peer ids are 16 hex digits; the first 8 tell peers apart at a glance, as
// in the desktop inspector.
export function shortPeerId(id) {
  if (id === undefined || id === null) return "";
  const text = typeof id === "bigint" ? id.toString(16).padStart(16, "0") : String(id);
  return text.length > 8 ? text.slice(0, 8) : text;
}

// Case-insensitive match of the filter against a key and its shown value.
export function matchesFilter(filter, key, valueText) {
  if (!filter) return true;
  const needle = filter.toLowerCase();
  return key.toLowerCase().includes(needle) || valueText.toLowerCase().includes(needle);
}

// Position at which `key` goes in the sorted array `keys` (binary search).
export function sortedIndex(keys, key, descending = false) {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const before = descending ? keys[mid] > key : keys[mid] < key;
    if (before) low = mid + 1;
    else high = mid;
  }
  return low;
}
