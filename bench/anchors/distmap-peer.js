// distmap-peer.js - a minimal distmap protocol v1 peer (docs/PROTOCOL.md) for the benchmark
// clients (clients.js). Not part of shared/anchors: added for bench/anchors (issue 14).
//
// Why not resources/web/distmap.js: it works in Node and one delta per frame is possible
// (set() then flush()), but it is a full replica (BigInt hlcs and peer ids, change events, dirty
// tracking for persistence, unconfirmed writes, periodic anti-entropy rounds), so the client
// process, which already limits the anchors' ws-relay rows, would measure that peer rather than
// the relay. This one does per delta only what the protocol asks of a receiver: decode the
// header, validate every entry (kind, lengths, UTF-8 key, writer = origin) before applying any,
// merge by (hlc, writer), follow the clock, and answer a WriteAck when asked. `--client distmapjs`
// in clients.js runs distmap.js instead, to see what the full peer costs.
//
// What it implements: hello/welcome (clock offset, maxMessage), open/opened, a full sync as
// joiner (SyncRequest since 0; SyncData applied, acknowledged, seq order checked; `alone`;
// `ready`; a new round after 5 s without a first chunk, 2 s of silence, or the responder
// leaving), answering SyncRequests as responder (snapshot, digest of section 9, 256 KiB chunks,
// at most 4 unacknowledged, sessions dropped on `left`), Delta and Repair, WriteAck answers with
// durable = 0, the hybrid logical clock of section 7, one Delta per set() (one entry per frame).
// What it leaves out, harmless for a benchmark on one relay: catch-up/verify/rejoin modes (its
// peers start empty, or, for the sync holder, hold a preloaded state and are `alone`), periodic
// anti-entropy rounds, `verify` (sent by federated relays only), presence, reconnects, tokens,
// tombstones from local deletes, the message limit on local writes (benchmark writes are ~120 B).
const T_DELTA = 0x10; const T_SYNCREQ = 0x11; const T_SYNCDATA = 0x13; const T_SYNCACK = 0x14; const T_WRITEACK = 0x15; const T_REPAIR = 0x16
const CHUNK_BYTES = 256 * 1024
const SYNC_WINDOW = 4
const MAX_VALUE = 64 * 1024 * 1024
const utf8 = new TextDecoder('utf-8', { fatal: true })
const hex8 = n => n.toString(16).padStart(8, '0')

// hlc and peer ids as two uint32 halves (hi, lo): compares and encodes without BigInt.
const cmp = (ah, al, bh, bl) => ah !== bh ? (ah > bh ? 1 : -1) : al !== bl ? (al > bl ? 1 : -1) : 0

// FNV-1a-64 (section 9), only for digests in sync requests (never on the delta path).
const FNV_OFFSET = 14695981039346656037n; const FNV_PRIME = 1099511628211n; const M64 = (1n << 64n) - 1n
const fnv = (h, bytes) => { for (const b of bytes) h = ((h ^ BigInt(b)) * FNV_PRIME) & M64; return h }
function entryHash (keyBytes, e) {
  const b = Buffer.allocUnsafe(17)
  b.writeUInt32LE(e.hl, 0); b.writeUInt32LE(e.hh, 4); b.writeUInt32LE(e.wl, 8); b.writeUInt32LE(e.wh, 12); b[16] = e.kind
  const kh = fnv(FNV_OFFSET, keyBytes)
  return { kh, eh: fnv(kh, b) }
}

export function distmapPeer (url, mapUri, WebSocket, { preload = 0, preloadValue } = {}) {
  const idBytes = Buffer.alloc(8)
  while (idBytes.readBigUInt64LE(0) === 0n) crypto.getRandomValues(idBytes)
  const wl = idBytes.readUInt32LE(0); const wh = idBytes.readUInt32LE(4)
  const peerHex = hex8(wh) + hex8(wl)
  // A value is kept as a latin1 string of its bytes (one char per byte: the exact bytes, whatever
  // they hold, and far cheaper than a small Buffer); `ascii` says it is also its own UTF-8 decoding.
  const state = new Map() // key -> { key, kind, hh, hl, wh, wl, value: string | null, ascii }
  let offset = 0; let lastMs = 0; let lastCtr = 0 // clock: last = lastMs << 16 | lastCtr
  let mapId = -1; let isReady = false; let closed = false
  let sync = null // joiner round: { syncId, from: null | [hi, lo], seq, timer }
  let nextSyncId = 1
  const sessions = new Map() // responder: origin hex -> { hi, lo, syncId, chunks, next, acked }
  let resolveReady, rejectReady
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 << 20 })

  const peer = {
    ws,
    id: peerHex,
    state,
    syncBytes: 0, // bytes of SyncData received (headers included)
    onDelta: () => {},
    onMessage: () => {},
    ready: new Promise((resolve, reject) => { resolveReady = resolve; rejectReady = reject }),
    set (k, v, meta) { sendSet(k, JSON.stringify({ v, ...meta })) },
    close () { closed = true; if (sync) clearTimeout(sync.timer); ws.close() }
  }

  // ---- clock (section 7) ----
  const physMs = () => Date.now() + offset
  function tick (cur) { // the hlc of a local write of a key whose current write is cur
    const ms = physMs()
    if (ms > lastMs) { lastMs = ms; lastCtr = 0 } else if (++lastCtr > 0xffff) { lastMs++; lastCtr = 0 }
    if (cur) {
      const cms = cur.hh * 65536 + (cur.hl >>> 16); const cctr = cur.hl & 0xffff
      if (cms > lastMs || (cms === lastMs && cctr >= lastCtr)) { lastMs = cms; lastCtr = cctr; if (++lastCtr > 0xffff) { lastMs++; lastCtr = 0 } }
    }
    return [Math.floor(lastMs / 65536), (((lastMs % 65536) << 16) | lastCtr) >>> 0]
  }
  function follow (mh, ml) { // last = max(last, min(m, (now + 60 s) << 16))
    let ms = mh * 65536 + (ml >>> 16); let ctr = ml & 0xffff
    const cap = physMs() + 60000
    if (ms > cap) { ms = cap; ctr = 0 }
    if (ms > lastMs || (ms === lastMs && ctr > lastCtr)) { lastMs = ms; lastCtr = ctr }
  }

  // ---- encoding ----
  function header (buf, type, flags, th, tl) {
    buf[0] = type; buf[1] = flags; buf[2] = 0; buf[3] = 0
    buf.writeUInt32LE(mapId, 4); buf.writeUInt32LE(tl, 8); buf.writeUInt32LE(th, 12)
  }
  const entrySize = (keyLen, e) => 21 + keyLen + (e.kind === 1 ? 4 + e.value.length : 0)
  function writeEntry (buf, p, key, keyLen, e) {
    buf[p] = e.kind
    buf.writeUInt32LE(e.hl, p + 1); buf.writeUInt32LE(e.hh, p + 5); buf.writeUInt32LE(e.wl, p + 9); buf.writeUInt32LE(e.wh, p + 13)
    buf.writeUInt32LE(keyLen, p + 17); buf.write(key, p + 21, keyLen, 'utf8'); p += 21 + keyLen
    if (e.kind === 1) { buf.writeUInt32LE(e.value.length, p); buf.latin1Write(e.value, p + 4, e.value.length); p += 4 + e.value.length }
    return p
  }
  function sendSet (key, text) { // one Delta, one entry, one frame; text: the value as JSON
    const [hh, hl] = tick(state.get(key))
    const keyLen = Buffer.byteLength(key); const valueLen = Buffer.byteLength(text)
    const buf = Buffer.allocUnsafe(16 + 21 + keyLen + 4 + valueLen)
    header(buf, T_DELTA, 0, 0, 0)
    buf[16] = 1
    buf.writeUInt32LE(hl, 17); buf.writeUInt32LE(hh, 21); buf.writeUInt32LE(wl, 25); buf.writeUInt32LE(wh, 29)
    buf.writeUInt32LE(keyLen, 33); buf.write(key, 37, keyLen, 'utf8')
    const vs = 37 + keyLen + 4
    buf.writeUInt32LE(valueLen, vs - 4); buf.write(text, vs, valueLen, 'utf8')
    state.set(key, { key, kind: 1, hh, hl, wh, wl, value: buf.latin1Slice(vs, vs + valueLen), ascii: valueLen === text.length })
    ws.send(buf)
  }
  const sendControl = obj => ws.send(JSON.stringify(obj))
  function sendRouted (type, th, tl, payload) {
    const buf = Buffer.allocUnsafe(16 + payload.length)
    header(buf, type, 0, th, tl); payload.copy(buf, 16)
    ws.send(buf)
  }

  // ---- decoding: validates the whole run before applying any entry (section 5.2) ----
  // Keys: ASCII is checked by a byte loop and sliced as latin1; anything else goes through a
  // fatal TextDecoder (invalid UTF-8 drops the message). Values become latin1 strings (a copy of
  // the bytes: the state does not pin the socket's buffer).
  function decodeEntries (buf, p, oh, ol) { // oh/ol: origin that every writer must equal, or -1
    const out = []
    const n = buf.length
    while (p < n) {
      if (n - p < 21) return null
      const kind = buf[p]
      if (kind !== 1 && kind !== 2) return null
      const hl = buf.readUInt32LE(p + 1); const hh = buf.readUInt32LE(p + 5)
      const ewl = buf.readUInt32LE(p + 9); const ewh = buf.readUInt32LE(p + 13)
      if (oh >= 0 && (ewh !== oh || ewl !== ol)) return null // forged writer (section 5.3)
      const keyLen = buf.readUInt32LE(p + 17)
      p += 21
      if (keyLen > 65535 || n - p < keyLen) return null
      let ascii = true
      for (let j = p, e = p + keyLen; j < e; j++) if (buf[j] > 0x7f) { ascii = false; break }
      let key
      if (ascii) key = buf.latin1Slice(p, p + keyLen)
      else try { key = utf8.decode(buf.subarray(p, p + keyLen)) } catch { return null }
      p += keyLen
      let value = null; let vascii = true
      if (kind === 1) {
        if (n - p < 4) return null
        const vl = buf.readUInt32LE(p); p += 4
        if (vl < 1 || vl > MAX_VALUE || n - p < vl) return null
        for (let j = p, e = p + vl; j < e; j++) if (buf[j] > 0x7f) { vascii = false; break }
        value = buf.latin1Slice(p, p + vl); p += vl
      }
      out.push({ key, kind, hh, hl, wh: ewh, wl: ewl, value, ascii: vascii })
    }
    return out
  }
  // A value that does not parse reads as undefined (section 5.2).
  function parseValue (e) {
    try { return JSON.parse(e.ascii ? e.value : Buffer.from(e.value, 'latin1').toString('utf8')) } catch { return undefined }
  }
  function apply (entries, notify) { // merge rule of section 7; returns the number applied
    let mh = 0; let ml = 0; let n = 0
    for (let j = 0; j < entries.length; j++) {
      const e = entries[j]
      if (e.hh > mh || (e.hh === mh && e.hl > ml)) { mh = e.hh; ml = e.hl }
      const c = state.get(e.key)
      if (c !== undefined && (cmp(e.hh, e.hl, c.hh, c.hl) || cmp(e.wh, e.wl, c.wh, c.wl)) <= 0) continue
      state.set(e.key, e); n++
      if (notify && e.kind === 1) peer.onDelta(e.key, parseValue(e))
    }
    if (entries.length) follow(mh, ml)
    return n
  }

  // ---- joiner (section 8, full mode) ----
  function startSync () {
    if (sync) clearTimeout(sync.timer)
    sync = { syncId: nextSyncId++, from: null, seq: 0, timer: null }
    const p = Buffer.alloc(16) // syncId, since 0 (everything), bucketCount 0
    p.writeUInt32LE(sync.syncId, 0)
    sendRouted(T_SYNCREQ, 0, 0, p)
    armSync(5000)
  }
  function armSync (ms) {
    clearTimeout(sync.timer)
    sync.timer = setTimeout(() => !closed && startSync(), ms)
    sync.timer.unref()
  }
  function endSync () {
    clearTimeout(sync.timer); sync = null
    sendControl({ type: 'ready', id: mapId })
    if (!isReady) { isReady = true; resolveReady() }
  }
  function onSyncData (buf, oh, ol) {
    peer.syncBytes += buf.length
    if (!sync || buf.length < 16 + 13) return
    const syncId = buf.readUInt32LE(16); const seq = buf.readUInt32LE(20); const final = buf[24]; const bc = buf.readUInt32LE(25)
    if (syncId !== sync.syncId) return
    if (sync.from && (sync.from[0] !== oh || sync.from[1] !== ol)) return // another responder
    if (seq !== sync.seq) { startSync(); return } // a lost chunk: start the round again
    if (buf.length < 29 + 8 * bc) return
    const entries = decodeEntries(buf, 29 + 8 * bc, -1, -1)
    if (!entries) return // malformed: dropped whole; the round times out and restarts
    sync.from = [oh, ol]; sync.seq++
    apply(entries, false)
    const ack = Buffer.allocUnsafe(8); ack.writeUInt32LE(syncId, 0); ack.writeUInt32LE(seq, 4)
    sendRouted(T_SYNCACK, oh, ol, ack)
    if (final === 1) endSync() // nothing to push back: the joiner started empty
    else armSync(2000)
  }

  // ---- responder (section 8 steps 4 and 7) ----
  function onSyncRequest (buf, oh, ol) {
    if (buf.length < 32) return
    const syncId = buf.readUInt32LE(16)
    const sl = buf.readUInt32LE(20); const sh = buf.readUInt32LE(24); const bc = buf.readUInt32LE(28)
    if (bc !== 0 && (bc > 65536 || (bc & (bc - 1)) !== 0)) return
    if (buf.length !== 32 + 8 * bc) return
    let theirs = null; let mine = null; const buckets = new Map()
    if (bc > 0) {
      theirs = buf.subarray(32); mine = new Array(bc).fill(0n)
      for (const [key, e] of state) {
        const { kh, eh } = entryHash(Buffer.from(key), e)
        const b = Number(kh & BigInt(bc - 1))
        mine[b] ^= eh; buckets.set(key, b)
      }
    }
    const pick = []
    for (const [key, e] of state) {
      if (cmp(e.hh, e.hl, sh, sl) > 0) pick.push([key, e])
      else if (bc > 0) { const b = buckets.get(key); if (theirs.readBigUInt64LE(8 * b) !== mine[b]) pick.push([key, e]) }
    }
    const chunks = [] // built now (the snapshot), sent 4 at a time
    let i = 0
    do {
      const head = 13 + (chunks.length === 0 ? 8 * bc : 0)
      const start = i; let bytes = 0
      while (i < pick.length && bytes < CHUNK_BYTES) { bytes += entrySize(Buffer.byteLength(pick[i][0]), pick[i][1]); i++ }
      const buf2 = Buffer.allocUnsafe(16 + head + bytes)
      buf2.writeUInt32LE(syncId, 16); buf2.writeUInt32LE(chunks.length, 20); buf2[24] = i >= pick.length ? 1 : 0
      buf2.writeUInt32LE(chunks.length === 0 ? bc : 0, 25)
      if (chunks.length === 0) for (let b = 0; b < bc; b++) buf2.writeBigUInt64LE(mine[b], 29 + 8 * b)
      let p = 16 + head
      for (let j = start; j < i; j++) p = writeEntry(buf2, p, pick[j][0], Buffer.byteLength(pick[j][0]), pick[j][1])
      chunks.push(buf2)
    } while (i < pick.length)
    const s = { hi: oh, lo: ol, syncId, chunks, next: 0, acked: -1 }
    sessions.set(hex8(oh) + hex8(ol), s) // replaces this requester's previous session
    pumpSession(s)
  }
  function pumpSession (s) {
    while (s.next < s.chunks.length && s.next - s.acked <= SYNC_WINDOW) {
      const c = s.chunks[s.next++]
      header(c, T_SYNCDATA, 0, s.hi, s.lo)
      ws.send(c)
    }
  }
  function onSyncAck (buf, oh, ol) {
    const s = sessions.get(hex8(oh) + hex8(ol))
    if (!s || buf.length !== 24 || buf.readUInt32LE(16) !== s.syncId) return
    s.acked = Math.max(s.acked, buf.readUInt32LE(20))
    if (s.acked >= s.chunks.length - 1) sessions.delete(hex8(oh) + hex8(ol))
    else pumpSession(s)
  }

  // ---- messages ----
  function onBinary (buf) {
    if (buf.length < 16) return
    const type = buf[0]; const flags = buf[1]
    const ol = buf.readUInt32LE(8); const oh = buf.readUInt32LE(12)
    if (buf.readUInt32LE(4) !== mapId) return
    if (type === T_DELTA || type === T_REPAIR) {
      const entries = decodeEntries(buf, 16, type === T_DELTA ? oh : -1, ol)
      if (!entries) return // malformed or forged: dropped whole, no ack
      apply(entries, true)
      if (type === T_DELTA && (flags & 1)) { // WriteAck, durable = 0: this peer stores nothing
        const a = Buffer.allocUnsafe(5 + 8 * entries.length)
        a[0] = 0; a.writeUInt32LE(entries.length, 1)
        entries.forEach((e, j) => { a.writeUInt32LE(e.hl, 5 + 8 * j); a.writeUInt32LE(e.hh, 9 + 8 * j) })
        sendRouted(T_WRITEACK, oh, ol, a)
      }
    } else if (type === T_SYNCDATA) onSyncData(buf, oh, ol)
    else if (type === T_SYNCREQ) onSyncRequest(buf, oh, ol)
    else if (type === T_SYNCACK) onSyncAck(buf, oh, ol)
    // T_WRITEACK: this client never asks for acks
  }
  function onControl (m) {
    switch (m.type) {
      case 'welcome':
        if (Number.isSafeInteger(m.time)) offset = m.time - Date.now()
        if (preload) { // the sync holder's state, written locally before the map is opened
          for (let i = 0; i < preload; i++) {
            const key = 'key-' + String(i).padStart(6, '0')
            const [hh, hl] = tick(undefined)
            const text = JSON.stringify(preloadValue(i)); const bytes = Buffer.from(text)
            state.set(key, { key, kind: 1, hh, hl, wh, wl, value: bytes.latin1Slice(), ascii: bytes.length === text.length })
          }
        }
        sendControl({ type: 'open', map: mapUri })
        break
      case 'opened':
        mapId = m.id
        startSync() // since 0 also for a preloaded holder: nothing came over the network yet (H = 0)
        break
      case 'alone':
        if (sync) endSync()
        break
      case 'left':
        sessions.delete(m.peer)
        if (sync && sync.from && hex8(sync.from[0]) + hex8(sync.from[1]) === m.peer) startSync()
        break
      case 'error':
        if (!isReady) rejectReady(new Error(`distmap error ${m.name}: ${m.message}`))
        else console.error(`distmap error ${m.name}: ${m.message} (peer ${peerHex})`)
        break
      default:
        peer.onMessage(m)
    }
  }
  ws.on('open', () => sendControl({ type: 'hello', version: 1, peer: peerHex, time: Date.now() }))
  ws.on('message', (data, isBinary) => isBinary ? onBinary(data) : onControl(JSON.parse(data)))
  ws.once('error', err => rejectReady(err))
  ws.on('close', (code, reason) => { if (!closed && !isReady) rejectReady(new Error(`closed ${code} ${reason}`)) })
  return peer
}
