// client-cost.js - CPU microseconds per delta that a benchmark client spends encoding one set and
// decoding one delivery, distmap-peer.js against the anchors' ws-relay JSON messages, with no
// socket (a stand-in WebSocket records what is sent). Shows how much of the client process's CPU
// is the distmap protocol itself. Not part of shared/anchors. Usage: node client-cost.js
import { EventEmitter } from 'node:events'
import { distmapPeer } from './distmap-peer.js'
class FakeWS extends EventEmitter { constructor () { super(); this.sent = [] } send (b) { this.sent.push(b) } close () {} }
const now = () => Number(process.hrtime.bigint()) / 1e6
const cpu = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1e3 }
const w = distmapPeer('x', '/m', FakeWS); const r = distmapPeer('x', '/m', FakeWS)
for (const p of [w, r]) { p.ws.emit('open'); p.ws.emit('message', Buffer.from(JSON.stringify({ type: 'welcome', version: 1, peer: 'x', time: Date.now() })), false); p.ws.emit('message', Buffer.from(JSON.stringify({ type: 'opened', id: 1, map: '/m', access: 'rw', peers: [] })), false); p.ws.emit('message', Buffer.from('{"type":"alone","id":1}'), false) }
const VALUE = 'value-of-about-32-bytes'.padEnd(32, '.')
const N = 50000; let i = 0
let got = 0; r.onDelta = (k, m) => { got += m.i >= 0 ? 1 : 0 }
const res = { dmRecv: [], wsRecv: [], dmSend: [], wsSend: [] }
for (let rep = 0; rep < 20; rep++) {
  let c0 = cpu(); w.ws.sent.length = 0
  for (let j = 0; j < N; j++, i++) w.set('key-' + String(i % 10000).padStart(6, '0'), VALUE, { ts: now(), w: 0, i })
  res.dmSend.push(1e3 * (cpu() - c0) / N)
  const frames = w.ws.sent.map(b => { const f = Buffer.from(b); f.writeUInt32LE(f.readUInt32LE(25), 8); f.writeUInt32LE(f.readUInt32LE(29), 12); return f })
  c0 = cpu(); for (const f of frames) r.ws.emit('message', f, true); res.dmRecv.push(1e3 * (cpu() - c0) / N)
  c0 = cpu(); const js = []; for (let j = 0; j < N; j++, i++) js.push(Buffer.from(JSON.stringify({ t: 'set', k: 'key-' + String(i % 10000).padStart(6, '0'), v: VALUE, ts: now(), w: 0, i })))
  res.wsSend.push(1e3 * (cpu() - c0) / N)
  let g = 0; c0 = cpu(); for (const d of js) { const m = JSON.parse(d); if (m.t === 'set') g++ } res.wsRecv.push(1e3 * (cpu() - c0) / N)
}
const med = a => a.sort((x, y) => x - y)[a.length >> 1].toFixed(2)
console.log('CPU us per delta (median of 20 x 50k):', Object.fromEntries(Object.entries(res).map(([k, v]) => [k, med(v)])), 'got', got, 'frame', w.ws.sent[0].length)
