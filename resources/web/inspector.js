// The web inspector: opens one map with distmap.js and shows it live. This
// file wires the map's events to the views (inspector-views.js) and the
// user's edits back to the map; it holds no copy of the map itself.

import { connect, DistributedMap } from "./distmap.js";
import { DEFAULT_MAP, DEFAULT_NAME, hashForMap, parseValueInput, settingsFromLocation, shortPeerId } from "./inspector-format.js";
import { KeysView, LogView, PeersView, writerLabel } from "./inspector-views.js";

const $ = (id) => document.getElementById(id);
const PREFS_KEY = "distmap.inspector";

const ui = {
  openForm: $("open-form"),
  map: $("map-uri"),
  name: $("peer-name"),
  token: $("token"),
  relay: $("relay-url"),
  persist: $("persist"),
  status: $("status"),
  statusText: $("status-text"),
  errorBanner: $("error-banner"),
  errorText: $("error-text"),
  errorDismiss: $("error-dismiss"),
  readOnlyNote: $("readonly-note"),
  filter: $("keys-filter"),
  newKey: $("new-key"),
  newValue: $("new-value"),
  newAsText: $("new-as-text"),
  addForm: $("add-form"),
  addButton: $("add-button"),
  addError: $("add-error"),
  factRelay: $("fact-relay"),
  factAccess: $("fact-access"),
  factStorage: $("fact-storage"),
  factChanges: $("fact-changes"),
};

const keysView = new KeysView({
  body: $("keys-body"),
  empty: $("keys-empty"),
  count: $("key-count"),
  more: $("keys-more"),
  sortHeader: document.querySelector("#keys-table th[aria-sort]"),
  sortButton: $("sort-key"),
  onEdit: (key, value) => writeValue(key, value),
  onDelete: (key) => deleteKey(key),
});
const peersView = new PeersView({ list: $("peers-list"), count: $("peer-count") });
const logView = new LogView({
  body: $("log-body"),
  empty: $("log-empty"),
  count: $("log-count"),
  clearButton: $("log-clear"),
});

// The open map and what the page knows about it; replaced by every open.
let session = null;

// Errors that the status line already tells (the relay cannot be reached)
// or that distmap.js settles by itself (another tab had our peer id).
const QUIET_ERRORS = new Set(["Socket", "DuplicatePeer"]);
// Errors that keep a map from syncing until the user changes something.
const BLOCKING_ERRORS = new Set(["Unauthorized", "UnsupportedVersion"]);

// ---- opening and closing a map ------------------------------------------------

function openMap({ map: uri, name, token, relay, persist }) {
  closeMap();
  setError("");
  keysView.clear();
  keysView.setReadOnly(false);
  logView.clear();
  setReadOnlyControls(false);

  let connection;
  let map;
  try {
    connection = connect(relay, { name, token: token || undefined });
    map = DistributedMap(connection, uri, { persist });
  } catch (error) {
    if (connection) connection.close();
    setStatus("error", messageOf(error));
    setError(messageOf(error));
    return;
  }
  const current = {
    connection, map, uri, name, relay, persist,
    names: new Map(), // peer id -> last known name, also after it left
    sent: 0, received: 0, synced: 0, problem: "", everConnected: false,
  };
  session = current;
  // Events of a map the user has since closed change nothing on screen.
  const on = (emitter, event, handler) => emitter.on(event, (...args) => {
    if (session === current) handler(...args);
  });

  on(connection, "status", () => {
    if (connection.status === "connected") {
      current.problem = "";
      current.everConnected = true;
    }
    checkAccess();
    showStatus();
  });
  on(connection, "error", (error) => reportError(error));
  on(map, "error", (error) => reportError(error));

  on(map, "loaded", () => {
    showSnapshot();
    logView.add({ time: new Date(), op: "load", key: "", value: `${map.size} keys from this browser`, from: writerLabel("this browser") });
  });
  on(map, "ready", () => {
    showSnapshot();
    if (current.synced > 0) {
      const changes = current.synced === 1 ? "1 change" : `${current.synced} changes`;
      logView.add({ time: new Date(), op: "sync", key: "", value: `${changes} in the first sync`, from: writerLabel("peers") });
    }
    checkAccess();
    showPeers();
    showStatus();
  });
  on(map, "change", (change) => showChange(change));
  for (const event of ["peerJoined", "peerLeft", "presence"]) on(map, event, () => showPeers());

  showSnapshot();
  showPeers();
  showStatus();
  showFacts();
  document.title = `${uri} · distmap inspector`;
}

function closeMap() {
  if (!session) return;
  const { connection, map } = session;
  session = null;
  try {
    map.close(); // writes what the browser store has not stored yet
    connection.close();
  } catch (error) {
    console.warn("closing the map failed", error);
  }
}

// ---- the map's events ---------------------------------------------------------

// One change, local or remote (distmap.js "change" event).
function showChange(change) {
  const current = session;
  if (change.local) current.sent += 1;
  else current.received += 1;
  showFacts();
  // The first sync may bring a whole large map: the table shows it in one
  // go once ready (showSnapshot), and the log gets one line for it.
  if (!change.local && !current.map.isReady) {
    current.synced += 1;
    return;
  }
  const from = change.forgotten ? writerLabel("rejoin", "dropped: deleted on the network while we were away") : writerFor(change.writer);
  if (change.deleted) keysView.remove(change.key);
  else keysView.upsert(change.key, change.value, { writer: from, time: timeOfHlc(change.hlc), flash: !change.local });

  logView.add({
    time: new Date(),
    op: change.deleted ? "delete" : "set",
    key: change.key,
    value: change.deleted ? change.oldValue : change.value,
    from,
  });
}

// The whole map at once (after loading from the browser's store, and after
// the first sync): rows are updated in place, without flashing.
function showSnapshot() {
  const { map } = session;
  keysView.replaceAll(map.entries(), (key) => {
    const entry = map.getEntry(key);
    return entry ? { writer: writerFor(entry.writer), time: timeOfHlc(entry.hlc) } : {};
  });
}

function showPeers() {
  const { map, connection, names } = session;
  const others = map.peers.map((peer) => {
    const name = peer.name ?? "";
    if (name) names.set(peer.peer, name);
    return { id: peer.peer, name, self: false };
  });
  peersView.render([{ id: connection.peerHex, name: session.name, self: true }, ...others]);
}

function checkAccess() {
  const readOnly = session.map.access === "ro";
  if (readOnly !== keysView.readOnly) {
    keysView.setReadOnly(readOnly);
    setReadOnlyControls(readOnly);
    showFacts();
  }
}

function reportError(error) {
  const code = error && error.code;
  if (code === "ReadOnly") checkAccess();
  if (QUIET_ERRORS.has(code)) return;
  if (code === "Unauthorized") {
    session.problem = `Refused: ${messageOf(error)}`;
    showStatus();
    setError(`The relay refused the token (${messageOf(error)}). Check the Token field, or the ?token= of the address, and open the map again.`);
    return;
  }
  if (BLOCKING_ERRORS.has(code)) {
    session.problem = messageOf(error);
    showStatus();
  }
  setError(messageOf(error));
}

// ---- who and when --------------------------------------------------------------

// A writer id (16 hex digits or a BigInt) as the views show it: "you", a
// peer's name, or the short id of a peer that never told its name.
function writerFor(writer) {
  if (writer === undefined || writer === null) return writerLabel("—");
  const id = typeof writer === "bigint" ? writer.toString(16).padStart(16, "0") : String(writer);
  if (id === session.connection.peerHex) return writerLabel("you", id, true);
  const name = session.names.get(id) ?? session.map.peers.find((peer) => peer.peer === id)?.name;
  return writerLabel(name || shortPeerId(id), id);
}

// The wall-clock part of a hybrid logical clock: its upper 48 bits are
// milliseconds since the epoch (docs/PROTOCOL.md section 7).
function timeOfHlc(hlc) {
  return typeof hlc === "bigint" && hlc > 0n ? new Date(Number(hlc >> 16n)) : new Date();
}

function messageOf(error) {
  if (!error) return "";
  if (typeof error === "string") return error;
  return error.message || error.code || String(error);
}

// ---- the user's writes -----------------------------------------------------------

// Sets key to value. Returns false when the map refused it (it says why
// through its "error" event).
function writeValue(key, value) {
  if (!session || keysView.readOnly) return false;
  try {
    return session.map.set(key, value) !== false;
  } catch (error) {
    setError(messageOf(error));
    return false;
  }
}

function deleteKey(key) {
  if (!session || keysView.readOnly) return;
  try {
    session.map.delete(key);
  } catch (error) {
    setError(messageOf(error));
  }
}

// ---- status line, facts, banners ------------------------------------------------

function showStatus() {
  if (!session) return setStatus("idle", "Not connected");
  const { connection, map, uri, relay, persist, problem, everConnected } = session;
  const kept = persist ? "edits are kept in this browser" : "edits wait in this page";
  switch (connection.status) {
    case "connected":
      if (map.isReady) setStatus("synced", `Synced · ${uri}${map.access === "ro" ? " · read-only" : ""}`);
      else setStatus("connecting", `Syncing ${uri}…`);
      break;
    case "connecting":
      setStatus("connecting", `Connecting to ${relay}…`);
      break;
    case "reconnecting":
      if (problem) setStatus("error", problem);
      else if (everConnected) setStatus("offline", `Offline · retrying; ${kept}`);
      else setStatus("offline", `Cannot reach ${relay} · retrying`);
      break;
    default:
      setStatus(problem ? "error" : "offline", problem || "Closed");
  }
}

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.statusText.textContent = text;
  ui.status.title = text;
}

function showFacts() {
  if (!session) return;
  const { map, relay, persist, sent, received } = session;
  ui.factRelay.textContent = relay;
  ui.factRelay.title = relay;
  ui.factAccess.textContent = map.access === "ro" ? "read-only" : map.access === "rw" ? "read and write" : "—";
  ui.factStorage.textContent = persist ? "in this browser (IndexedDB)" : "in this page only";
  ui.factChanges.textContent = `${sent} sent · ${received} received`;
}

function setError(text) {
  ui.errorText.textContent = text;
  ui.errorBanner.hidden = !text;
}

ui.errorDismiss.addEventListener("click", () => setError(""));

function setReadOnlyControls(readOnly) {
  ui.readOnlyNote.hidden = !readOnly;
  for (const control of [ui.newKey, ui.newValue, ui.newAsText, ui.addButton]) control.disabled = readOnly;
}

// ---- preferences: the name and persistence (never the token) -------------------

function loadPrefs() {
  try {
    return JSON.parse(localStorage.getItem(PREFS_KEY)) || {};
  } catch {
    return {};
  }
}

function savePrefs(prefs) {
  try {
    localStorage.setItem(PREFS_KEY, JSON.stringify({ ...loadPrefs(), ...prefs }));
  } catch {
    // Storage may be off (private windows); the page works without it.
  }
}

// ---- forms and keyboard -----------------------------------------------------------

function settingsFromForm() {
  return {
    map: ui.map.value.trim() || DEFAULT_MAP,
    name: ui.name.value.trim() || DEFAULT_NAME,
    token: ui.token.value.trim(),
    relay: ui.relay.value.trim(),
    persist: ui.persist.checked,
  };
}

function openFromForm() {
  const settings = settingsFromForm();
  savePrefs({ name: settings.name, persist: settings.persist });
  const hash = hashForMap(settings.map);
  if (location.hash !== hash) history.replaceState(null, "", hash);
  openMap(settings);
}

ui.openForm.addEventListener("submit", (event) => {
  event.preventDefault();
  openFromForm();
});

// Persistence belongs to the open map: switching it reopens the map.
ui.persist.addEventListener("change", () => {
  if (session) ui.map.value = session.uri;
  openFromForm();
});

ui.addForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = ui.newKey.value;
  if (key === "") return showAddError("Type a key.", ui.newKey);
  const parsed = parseValueInput(ui.newValue.value, { asText: ui.newAsText.checked });
  if (!parsed.ok) return showAddError(parsed.error, ui.newValue);
  if (writeValue(key, parsed.value)) {
    showAddError("");
    ui.newKey.value = "";
    ui.newValue.value = "";
    ui.newKey.focus();
  }
});

function showAddError(message, field) {
  ui.addError.textContent = message;
  for (const input of [ui.newKey, ui.newValue]) {
    if (input === field && message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
  if (field && message) field.focus();
}

for (const input of [ui.newKey, ui.newValue]) {
  input.addEventListener("input", () => {
    if (input.hasAttribute("aria-invalid")) showAddError("");
  });
}

ui.filter.addEventListener("input", () => keysView.setFilter(ui.filter.value));
ui.filter.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && ui.filter.value) {
    ui.filter.value = "";
    keysView.setFilter("");
  }
});

// "/" jumps to the filter, Alt+N to the new key, F2 edits the focused row.
document.addEventListener("keydown", (event) => {
  const typing = event.target.closest?.("input, textarea, select");
  if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
    event.preventDefault();
    ui.filter.focus();
  } else if (event.altKey && event.code === "KeyN" && !event.ctrlKey && !event.metaKey) {
    event.preventDefault();
    ui.newKey.focus();
  } else if (event.key === "F2") {
    const row = event.target.closest?.("#keys-body tr");
    if (row) {
      event.preventDefault();
      keysView.edit(row.dataset.key);
    }
  }
});

// Another map typed into the address bar (#map=…) opens it.
window.addEventListener("hashchange", () => {
  const { map } = settingsFromLocation(location);
  if (!session || map !== session.uri) {
    ui.map.value = map;
    openFromForm();
  }
});

// Leaving the page: hand what the browser store still waits for to it, and
// open the map again if the browser brings the page back from its cache.
window.addEventListener("pagehide", () => closeMap());
window.addEventListener("pageshow", (event) => {
  if (event.persisted) openMap(settingsFromForm());
});

// ---- start --------------------------------------------------------------------------

const settings = settingsFromLocation(location);
const prefs = loadPrefs();
ui.map.value = settings.map;
ui.name.value = settings.name || prefs.name || DEFAULT_NAME;
ui.token.value = settings.token;
ui.relay.value = settings.relay;
ui.persist.checked = Boolean(prefs.persist);
openMap(settingsFromForm());
