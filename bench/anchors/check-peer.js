// check-peer.js - checks that distmap-peer.js speaks the protocol: against a real `distmap relay`,
// the C++ peer (the distmap CLI) and the JavaScript peer (resources/web/distmap.js), which both
// validate what they receive. Not part of shared/anchors (issue 14).
//   node check-peer.js [--binary path/to/distmap]   (default $DISTMAP_BINARY, else ../../build/distmap)
// 1. the C++ peer syncs (dump) 1000 keys from a distmap-peer.js holder (our responder, chunks);
// 2. the C++ peer watches while distmap-peer.js writes 200 deltas (one per frame): every one arrives;
// 3. the C++ peer sets a key with --ack peer: distmap-peer.js applies it and its WriteAck confirms it;
// 4. a distmap.js joiner syncs from the holder, then runs verify rounds (digests, section 9) every
//    200 ms against it: no Repair may reach the holder (equal digests), its state must equal ours;
// 5. a distmap-peer.js joiner syncs from distmap.js alone (after the holder left): our joiner.
import { spawn, execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import net from 'node:net'
import WebSocket from 'ws'
import { distmapPeer } from './distmap-peer.js'

const here = p => fileURLToPath(new URL(p, import.meta.url))
const argBinary = process.argv.indexOf('--binary')
const binary = argBinary > 0 ? process.argv[argBinary + 1] : process.env.DISTMAP_BINARY || here('../../build/distmap')
const run = promisify(execFile)
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const keyName = i => 'key-' + String(i).padStart(6, '0')
const value = i => ('v' + i + ' ünïcødé').padEnd(32, '.')
let failures = 0
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures++ }

const port = await new Promise(resolve => { const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)) }) })
const relay = spawn(binary, ['relay', '--host', '127.0.0.1', '--port', String(port), '--max-rate', '0', '--no-http'], { stdio: ['ignore', 'pipe', 'inherit'] })
const children = [relay]
process.on('exit', () => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL') })
await new Promise((resolve, reject) => { relay.stdout.once('data', resolve); relay.once('exit', reject) })
const url = `ws://127.0.0.1:${port}`
const cli = args => run(binary, [...args, '--url', url, '--map', '/check', '--timeout', '5000'])

try {
  // 1. C++ joiner from our responder
  const holder = distmapPeer(url + '/', '/check', WebSocket, { preload: 1000, preloadValue: value })
  let repairs = 0; let delivered = 0
  holder.onDelta = () => delivered++
  await holder.ready
  const dump = JSON.parse((await cli(['dump'])).stdout)
  check(Object.keys(dump).length === 1000 && dump[keyName(999)] === value(999), 'C++ dump synced 1000 keys from distmap-peer.js')

  // 2. C++ watcher gets every delta
  const watch = spawn(binary, ['watch', '--url', url, '--map', '/check'], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(watch)
  const lines = []
  let buf = ''
  watch.stdout.on('data', d => { buf += d; let i; while ((i = buf.indexOf('\n')) >= 0) { lines.push(JSON.parse(buf.slice(0, i))); buf = buf.slice(i + 1) } })
  while (!lines.some(l => l.event === 'ready')) await sleep(20)
  for (let i = 0; i < 200; i++) holder.set(keyName(i), 'w', { ts: i, w: 0, i })
  const t0 = Date.now()
  const live = () => lines.slice(lines.findIndex(l => l.event === 'ready')).filter(l => l.event === 'set')
  while (live().length < 200 && Date.now() - t0 < 5000) await sleep(20)
  const sets = live()
  check(sets.length === 200 && sets.every(l => l.value && l.value.i === Number(l.key.slice(4))), `C++ watch got ${sets.length}/200 deltas, values intact`)
  watch.kill('SIGTERM')

  // 3. C++ write with --ack peer: our peer applies it and acknowledges it
  const { stdout } = await cli(['set', 'from-cpp', '{"x":1}', '--ack', 'peer']).catch(e => ({ stdout: 'exit ' + e.code }))
  const got = holder.state.get('from-cpp')
  check(got && got.value === '{"x":1}' && delivered === 1, `distmap-peer.js applied a C++ delta (${delivered} delivered) and its WriteAck confirmed it (${stdout.trim() || 'exit 0'})`)

  // 4. distmap.js joiner, then verify rounds against our holder
  const { connect, DistributedMap } = await import(new URL('../../resources/web/distmap.js', import.meta.url).href)
  const conn = connect(url + '/', { WebSocket, heartbeat: 0 })
  const jsMap = DistributedMap(conn, '/check', { antiEntropyInterval: 200 })
  const errors = []
  jsMap.on('error', e => errors.push(e.message))
  await jsMap.whenReady()
  const origOnBinary = holder.ws.listeners('message')[0]
  holder.ws.removeAllListeners('message')
  holder.ws.on('message', (d, isBinary) => { if (isBinary && d[0] === 0x16) repairs++; origOnBinary(d, isBinary) })
  let verifies = 0
  jsMap.on('synced', (m, info) => { if (info && info.reason === 'verify') verifies++ })
  await sleep(1500)
  const same = [...holder.state].every(([k, e]) => JSON.stringify(jsMap.get(k)) === Buffer.from(e.value, 'latin1').toString('utf8'))
  check(jsMap.size === holder.state.size && same, `distmap.js synced from distmap-peer.js: ${jsMap.size} keys, equal values`)
  check(verifies >= 3 && repairs === 0 && errors.length === 0, `${verifies} distmap.js verify rounds against distmap-peer.js: ${repairs} repairs (equal digests), errors: ${errors.join('; ') || 'none'}`)

  // 5. our joiner from distmap.js alone
  holder.close()
  await sleep(200)
  jsMap.set('from-js', 'ü')
  const joiner = distmapPeer(url + '/', '/check', WebSocket)
  await joiner.ready
  check(joiner.state.size === jsMap.size && joiner.state.get('from-js').value === Buffer.from('"ü"').toString('latin1'), `distmap-peer.js synced ${joiner.state.size}/${jsMap.size} keys from distmap.js`)
  joiner.close()
  jsMap.close(); conn.close()
} catch (e) {
  check(false, String(e && e.stack))
}
relay.kill('SIGTERM')
console.log(failures ? `${failures} check(s) failed` : 'all checks passed')
process.exitCode = failures ? 1 : 0
