// The views of the web inspector: plain DOM, one small class per panel. They
// know nothing of the network; inspector.js feeds them the map's events and
// gets the user's edits back through callbacks.

import {
  compactJson,
  editableJson,
  formatTime,
  matchesFilter,
  parseValueInput,
  sortedIndex,
  truncate,
} from "./inspector-format.js";

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// A row button: an icon, a word that narrow windows hide, and a name that
// says which key it acts on.
function iconButton(className, icon, word, label, title) {
  const button = element("button", `icon-button ${className}`);
  button.type = "button";
  button.title = title;
  button.setAttribute("aria-label", label);
  const glyph = element("span", "icon", icon);
  glyph.setAttribute("aria-hidden", "true");
  button.append(glyph, element("span", "icon-label", word));
  return button;
}

// Restarts the row's highlight animation (removing and re-adding the class
// alone would not, without a style flush in between).
function flash(row) {
  row.classList.remove("flash");
  void row.offsetWidth;
  row.classList.add("flash");
}

// Who wrote something, as the views show it: { label, title, self }.
export function writerLabel(label, title = "", self = false) {
  return { label, title, self };
}

// The keys table. Every key is held here (value, writer, time) in display
// order, but only the first `pageSize` keys that match the filter have a
// row in the DOM, and more on request: a browser takes seconds to lay out a
// table of tens of thousands of rows. Rows change one by one as changes
// come; a full render happens only for a new filter or sort order.
export class KeysView {
  constructor({ body, empty, count, more, sortHeader, sortButton, onEdit, onDelete, pageSize = 1000 }) {
    this.body = body;
    this.empty = empty;
    this.count = count;
    this.sortHeader = sortHeader;
    this.onEdit = onEdit;
    this.onDelete = onDelete;
    this.pageSize = pageSize;
    this.limit = pageSize; // how many matching keys get a row
    this.items = new Map(); // key -> { key, value, text, writer, time, matches, row, editor }
    this.order = []; // every key, in display order
    this.matching = 0; // keys that match the filter
    this.descending = false;
    this.filter = "";
    this.readOnly = false;

    this.more = more;
    this.moreText = more.querySelector(".more-text");
    more.querySelector("button").addEventListener("click", () => this.showMore());
    // Scrolling to the end of the rows shows the next page by itself.
    if (typeof IntersectionObserver === "function") {
      new IntersectionObserver((seen) => {
        if (seen.some((entry) => entry.isIntersecting)) this.showMore();
      }, { root: body.closest(".table-scroll"), rootMargin: "200px" }).observe(more);
    }
    sortButton.addEventListener("click", () => this.reverse());
    this.updateCount();
  }

  // Shows exactly `entries` ([key, value] pairs). `metaOf(key)` gives the
  // writer and time of a key that is new or changed. No flash: this is a
  // snapshot, not a change. An empty table is built in one go (one sort).
  replaceAll(entries, metaOf = () => ({})) {
    if (this.items.size === 0) {
      for (const [key, value] of entries) {
        const item = { key, row: null, editor: null };
        this.items.set(key, item);
        this.order.push(key);
        this.setData(item, value, metaOf(key));
        if (item.matches) this.matching += 1;
      }
      this.order.sort();
      if (this.descending) this.order.reverse();
      this.render();
      return;
    }
    const seen = new Set();
    for (const [key, value] of entries) {
      seen.add(key);
      const item = this.items.get(key);
      if (!item || item.text !== compactJson(value)) this.upsert(key, value, metaOf(key));
    }
    for (const key of [...this.items.keys()]) {
      if (!seen.has(key)) this.remove(key);
    }
  }

  clear() {
    this.items.clear();
    this.order = [];
    this.matching = 0;
    this.limit = this.pageSize;
    this.body.replaceChildren();
    this.updateCount();
  }

  // Sets a key's value. `writer` ({label, title, self}) and `time` (Date) are
  // optional; `flash` highlights the row (a change made by another peer).
  upsert(key, value, { writer, time, flash: highlight = false } = {}) {
    let item = this.items.get(key);
    if (!item) {
      item = { key, row: null, editor: null, matches: false };
      this.items.set(key, item);
      this.order.splice(sortedIndex(this.order, key, this.descending), 0, key);
    }
    const matched = item.matches;
    this.setData(item, value, { writer, time });
    this.matching += Number(item.matches) - Number(matched);
    if (item.row) {
      if (item.matches || item.editor) this.fillRow(item);
      else this.detach(item);
    } else if (item.matches && this.fitsShownRange(key)) {
      this.attach(item);
    }
    if (highlight && item.row) flash(item.row.row);
    this.updateCount();
  }

  remove(key) {
    const item = this.items.get(key);
    if (!item) return;
    if (item.row) this.detach(item);
    this.order.splice(sortedIndex(this.order, key, this.descending), 1);
    if (item.matches) this.matching -= 1;
    this.items.delete(key);
    this.updateCount();
  }

  has(key) {
    return this.items.has(key);
  }

  setFilter(text) {
    this.filter = text.trim();
    this.matching = 0;
    for (const item of this.items.values()) {
      item.matches = matchesFilter(this.filter, item.key, item.text);
      if (item.matches) this.matching += 1;
    }
    this.limit = this.pageSize;
    this.render();
  }

  setReadOnly(readOnly) {
    this.readOnly = readOnly;
    this.body.closest("table").classList.toggle("read-only", readOnly);
    for (const item of this.items.values()) {
      if (!item.row) continue;
      if (readOnly && item.editor) item.editor.cancel();
      for (const button of item.row.row.querySelectorAll(".row-actions button")) button.disabled = readOnly;
    }
  }

  reverse() {
    this.descending = !this.descending;
    this.order.reverse();
    this.sortHeader.setAttribute("aria-sort", this.descending ? "descending" : "ascending");
    this.sortHeader.querySelector(".sort-arrow").textContent = this.descending ? "▼" : "▲";
    this.render();
  }

  // Gives the next `pageSize` matching keys a row.
  showMore() {
    if (this.body.rows.length >= this.matching) return;
    this.limit = this.body.rows.length + this.pageSize;
    const last = this.body.lastElementChild;
    const from = last ? sortedIndex(this.order, last.dataset.key, this.descending) + 1 : 0;
    const fragment = document.createDocumentFragment();
    let shown = this.body.rows.length;
    for (let i = from; i < this.order.length && shown < this.limit; i++) {
      const item = this.items.get(this.order[i]);
      if (!item.matches || item.row) continue;
      fragment.append(this.createRow(item));
      shown += 1;
    }
    this.body.append(fragment);
    this.updateCount();
  }

  // Opens the value editor of `key` (the Edit button, a double click, or F2).
  edit(key) {
    const item = this.items.get(key);
    if (!item || !item.row || this.readOnly || item.editor) return;
    const cells = item.row;
    item.editor = new ValueEditor(key, item.value, {
      onSave: (value) => {
        if (this.onEdit(key, value) === false) return;
        this.closeEditor(item);
      },
      onCancel: () => this.closeEditor(item),
    });
    cells.row.classList.add("editing");
    cells.valueCell.replaceChildren(item.editor.root);
    item.editor.focus();
  }

  closeEditor(item) {
    const hadFocus = item.editor && item.editor.root.contains(document.activeElement);
    item.editor = null;
    if (!item.row) return;
    item.row.row.classList.remove("editing");
    if (!item.matches) {
      this.detach(item);
      this.updateCount();
      return;
    }
    this.showValue(item);
    if (hadFocus) item.row.row.querySelector(".edit-button").focus();
  }

  // ---- rows ----

  setData(item, value, { writer, time }) {
    item.value = value;
    item.text = compactJson(value);
    if (writer) item.writer = writer;
    if (time) item.time = time;
    item.matches = matchesFilter(this.filter, item.key, item.text);
  }

  // Rebuilds the rows: the first `limit` matching keys, reusing the rows
  // (and open editors) of keys that keep one.
  render() {
    const fragment = document.createDocumentFragment();
    let shown = 0;
    for (const key of this.order) {
      const item = this.items.get(key);
      const wanted = (item.matches && shown < this.limit) || item.editor;
      if (wanted) {
        fragment.append(item.row ? item.row.row : this.createRow(item));
        shown += 1;
      } else {
        item.row = null;
      }
    }
    this.body.replaceChildren(fragment);
    this.updateCount();
  }

  // Whether a new matching key sorts within the rows shown (or there is
  // room for more rows), so that it gets a row now.
  fitsShownRange(key) {
    if (this.body.rows.length < this.limit) return true;
    const last = this.body.lastElementChild.dataset.key;
    return this.descending ? key > last : key < last;
  }

  // Gives `item` a row at its place among the rows shown (binary search
  // over the rows, which are in display order), then keeps to the limit.
  attach(item) {
    const rows = this.body.rows;
    let low = 0;
    let high = rows.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const key = rows[mid].dataset.key;
      if (this.descending ? key > item.key : key < item.key) low = mid + 1;
      else high = mid;
    }
    this.body.insertBefore(this.createRow(item), rows[low] || null);
    const last = this.items.get(this.body.lastElementChild.dataset.key);
    if (rows.length > this.limit && !last.editor) this.detach(last);
  }

  detach(item) {
    item.row.row.remove();
    item.row = null;
    item.editor = null;
  }

  createRow(item) {
    const { key } = item;
    const row = element("tr");
    row.dataset.key = key;
    const keyCell = element("th", "col-key", key);
    keyCell.scope = "row";
    keyCell.title = key;
    const valueCell = element("td", "col-value");
    const writerCell = element("td", "col-writer", "—");
    const timeCell = element("time", "", "");
    const timeWrap = element("td", "col-time");
    timeWrap.append(timeCell);
    const actions = element("td", "col-actions");
    const group = element("div", "row-actions");
    const editButton = iconButton("edit-button", "✎", "Edit", `Edit ${key}`, "Edit the value (F2)");
    const deleteButton = iconButton("delete-button", "✕", "Delete", `Delete ${key}`, "Delete the key for every peer");
    editButton.disabled = deleteButton.disabled = this.readOnly;
    group.append(editButton, deleteButton);
    actions.append(group);
    row.append(keyCell, valueCell, writerCell, timeWrap, actions);

    editButton.addEventListener("click", () => this.edit(key));
    deleteButton.addEventListener("click", () => {
      if (!this.readOnly) this.onDelete(key);
    });
    valueCell.addEventListener("dblclick", () => this.edit(key));
    item.row = { row, valueCell, writerCell, timeCell };
    this.fillRow(item);
    return row;
  }

  fillRow(item) {
    const { writerCell, timeCell } = item.row;
    if (item.editor) item.editor.showConflict(item.writer);
    else this.showValue(item);
    if (item.writer) {
      writerCell.textContent = item.writer.label;
      writerCell.title = item.writer.title || "";
      writerCell.classList.toggle("is-self", Boolean(item.writer.self));
    }
    if (item.time) {
      timeCell.textContent = formatTime(item.time);
      timeCell.dateTime = item.time.toISOString();
    }
  }

  showValue(item) {
    const code = element("code", "json", truncate(item.text));
    if (item.text.length > 240) code.title = item.text;
    code.dataset.type = item.value === null ? "null" : Array.isArray(item.value) ? "array" : typeof item.value;
    item.row.valueCell.replaceChildren(code);
  }

  updateCount() {
    const total = this.items.size;
    const noun = total === 1 ? "key" : "keys";
    this.count.textContent = this.filter ? `${this.matching} of ${total} ${noun}` : `${total} ${noun}`;
    const shown = this.body.rows.length;
    this.empty.hidden = shown > 0;
    this.empty.textContent = total === 0 ? "No keys yet." : "No key or value matches the filter.";
    this.more.hidden = shown >= this.matching;
    this.moreText.textContent = `Showing ${shown.toLocaleString("en")} of ${this.matching.toLocaleString("en")} keys.`;
  }
}

// The in-place editor of one value: a text area, Save / Cancel, and an
// inline error when the text is not JSON (then nothing is sent).
class ValueEditor {
  constructor(key, value, { onSave, onCancel }) {
    this.onSave = onSave;
    this.onCancel = onCancel;
    const id = `edit-${Math.random().toString(36).slice(2, 10)}`;
    this.root = element("div", "editor");
    const label = element("label", "visually-hidden", `New value of ${key} (JSON)`);
    label.htmlFor = id;
    this.input = element("textarea", "editor-input");
    this.input.id = id;
    this.input.spellcheck = false;
    this.input.value = editableJson(value);
    this.input.rows = Math.min(8, Math.max(1, this.input.value.split("\n").length));
    this.error = element("p", "field-error");
    this.error.id = `${id}-error`;
    this.error.setAttribute("role", "alert");
    this.input.setAttribute("aria-describedby", this.error.id);
    this.note = element("p", "editor-note");
    this.note.hidden = true;
    const bar = element("div", "editor-bar");
    const save = element("button", "button primary small", "Save");
    save.type = "button";
    const cancel = element("button", "button small", "Cancel");
    cancel.type = "button";
    const hint = element("span", "editor-hint", "Enter saves · Shift+Enter new line · Esc cancels");
    bar.append(save, cancel, hint);
    this.root.append(label, this.input, this.error, this.note, bar);

    save.addEventListener("click", () => this.save());
    cancel.addEventListener("click", () => this.cancel());
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.save();
      } else if (event.key === "Escape") {
        event.preventDefault();
        this.cancel();
      }
    });
    this.input.addEventListener("input", () => {
      this.input.rows = Math.min(8, Math.max(1, this.input.value.split("\n").length));
      if (this.input.getAttribute("aria-invalid")) this.setError("");
    });
  }

  focus() {
    this.input.focus();
    this.input.select();
  }

  save() {
    const parsed = parseValueInput(this.input.value);
    if (!parsed.ok) {
      this.setError(parsed.error);
      this.input.focus();
      return;
    }
    this.onSave(parsed.value);
  }

  cancel() {
    this.onCancel();
  }

  setError(message) {
    this.error.textContent = message;
    if (message) this.input.setAttribute("aria-invalid", "true");
    else this.input.removeAttribute("aria-invalid");
  }

  // Another peer changed the value under the editor: say so, keep the text.
  showConflict(writer) {
    this.note.hidden = false;
    this.note.textContent = `${writer ? writer.label : "Another peer"} changed this value meanwhile; saving replaces their value.`;
  }
}

// The peers of the map network, this page first.
export class PeersView {
  constructor({ list, count }) {
    this.list = list;
    this.count = count;
  }

  // peers: [{ id, name, self }]
  render(peers) {
    const sorted = [...peers].sort((a, b) => {
      if (a.self !== b.self) return a.self ? -1 : 1;
      return (a.name || a.id || "").localeCompare(b.name || b.id || "");
    });
    const items = sorted.map((peer) => {
      const item = element("li", peer.self ? "peer is-self" : "peer");
      const name = peer.name || "unnamed peer";
      const avatar = element("span", "peer-avatar", (peer.name || "?").trim().charAt(0).toUpperCase() || "?");
      avatar.setAttribute("aria-hidden", "true");
      avatar.style.setProperty("--hue", String(hueOf(peer.id || name)));
      const text = element("span", "peer-text");
      const nameLine = element("span", "peer-name", name);
      if (peer.self) nameLine.append(element("span", "peer-tag", "you"));
      const idLine = element("span", "peer-id", peer.id ? peer.id : "no id yet");
      idLine.title = "Peer id";
      text.append(nameLine, idLine);
      item.append(avatar, text);
      return item;
    });
    this.list.replaceChildren(...items);
    const others = sorted.filter((peer) => !peer.self).length;
    this.count.textContent = others === 0 ? "only you" : `you + ${others}`;
  }
}

function hueOf(text) {
  let hash = 0;
  for (const char of String(text)) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return hash % 360;
}

// The live log of changes, newest first, at most `capacity` rows.
export class LogView {
  constructor({ body, empty, count, clearButton, capacity = 1000 }) {
    this.body = body;
    this.empty = empty;
    this.count = count;
    this.capacity = capacity;
    clearButton.addEventListener("click", () => this.clear());
    this.update();
  }

  // entry: { time: Date, op, key, value, from: {label, title, self} }. op is
  // "set" or "delete" (value: the value set, or the one deleted), or a
  // summary such as "sync" or "load", whose value is a sentence.
  add({ time, op, key, value, from }) {
    const row = element("tr", `op-${op}`);
    const timeCell = element("td", "col-time", formatTime(time));
    const opCell = element("td", "col-op");
    opCell.append(element("span", `op-badge op-${op}`, op));
    const keyCell = element("td", "col-key", key);
    keyCell.title = key;
    const summary = op !== "set" && op !== "delete";
    const text = summary ? String(value) : compactJson(value);
    const valueCell = element("td", "col-value");
    valueCell.append(element(summary ? "span" : "code", summary ? "log-note" : "json", truncate(text, 160)));
    if (text.length > 160) valueCell.title = text;
    if (op === "delete") valueCell.classList.add("was");
    const fromCell = element("td", from && from.self ? "col-from is-self" : "col-from", from ? from.label : "");
    if (from && from.title) fromCell.title = from.title;
    row.append(timeCell, opCell, keyCell, valueCell, fromCell);
    this.body.prepend(row);
    while (this.body.rows.length > this.capacity) this.body.lastElementChild.remove();
    this.update();
  }

  clear() {
    this.body.replaceChildren();
    this.update();
  }

  update() {
    const rows = this.body.rows.length;
    this.count.textContent = rows === this.capacity ? `last ${rows}` : String(rows);
    this.empty.hidden = rows > 0;
  }
}
