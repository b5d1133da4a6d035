// sitting-report.js - the markdown tables of one sitting of scripts/bench-all.sh: medians over the
// rounds of every (workload, system) of a results.jsonl that bench.js wrote with --runs 1 per
// round. Not part of shared/anchors (issue 14).
// Usage: node sitting-report.js RAW.jsonl
import { readFileSync } from 'node:fs'

const SYSTEMS = ['ws-relay', 'yjs', 'distmap']
const recs = readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l))
const median = xs => { const a = xs.filter(x => Number.isFinite(x)).sort((x, y) => x - y); return a.length ? a[(a.length - 1) >> 1] : NaN }
const f = (x, d = 1) => Number.isFinite(x) ? x.toFixed(d) : '-'
const int = x => Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-'
const sys = r => r.system + (r.client && r.client !== 'minimal' ? '/' + r.client : '')

// configurations in first-seen order; runs of one configuration = its rounds
const groups = new Map()
for (const r of recs.filter(r => r.workload !== 'sync')) {
  const cfg = [r.workload, r.n, r.m, r.window].join('|')
  if (!groups.has(cfg)) groups.set(cfg, { workload: r.workload, n: r.n, m: r.m, window: r.window, by: new Map() })
  const g = groups.get(cfg).by
  if (!g.has(sys(r))) g.set(sys(r), [])
  g.get(sys(r)).push(r)
}
const systems = [...new Set([...SYSTEMS, ...[...groups.values()].flatMap(g => [...g.by.keys()])])]
  .filter(s => [...groups.values()].some(g => g.by.has(s)))
const med = (runs, k) => median(runs.flatMap(r => r.all.map(x => x[k])))
const label = g => g.workload === 'unloaded' ? `unloaded (W = 1), ${g.n} readers` : g.workload === 'allwrite' ? `all-write ${g.n}` : `fan-out 1→${g.n}`

console.log('Cells: deliveries/s · relay CPU µs/delivery · p99 ms (unloaded: p50 / p99 ms · relay CPU µs/delivery). Medians over the rounds; rounds that timed out are marked †.\n')
console.log(`| workload | msgs | W | ${systems.join(' | ')} |`)
console.log(`|---|---|---|${systems.map(() => '---').join('|')}|`)
for (const g of groups.values()) {
  const cells = systems.map(s => {
    const runs = g.by.get(s)
    if (!runs) return '-'
    const t = runs.some(r => r.timedOut) ? ' †' : ''
    return g.workload === 'unloaded'
      ? `${f(med(runs, 'p50'), 3)} / ${f(med(runs, 'p99'), 3)} ms · ${f(med(runs, 'serverUsPerDelivery'), 2)} µs${t}`
      : `${int(med(runs, 'rate'))} · ${f(med(runs, 'serverUsPerDelivery'), 2)} µs · ${f(med(runs, 'p99'), 2)} ms${t}`
  })
  console.log(`| ${label(g)} | ${g.m} | ${g.window} | ${cells.join(' | ')} |`)
}

console.log('\nEvery median (which side limits a row: relay CPU % vs client CPU %, 100 % = one core):\n')
console.log('| workload | system | rounds | deliveries/s | p50 ms | p99 ms | relay CPU µs/delivery | relay CPU % | client CPU % | relay RSS MB peak (idle) |')
console.log('|---|---|---|---|---|---|---|---|---|---|')
for (const g of groups.values()) {
  for (const s of systems) {
    const runs = g.by.get(s)
    if (!runs) continue
    const t = runs.some(r => r.timedOut) ? ' †' : ''
    console.log(`| ${label(g)} | ${s}${t} | ${runs.reduce((a, r) => a + r.all.length, 0)} | ${int(med(runs, 'rate'))} | ${f(med(runs, 'p50'), 3)} | ${f(med(runs, 'p99'), 3)} | ${f(med(runs, 'serverUsPerDelivery'), 2)} | ${f(med(runs, 'serverCpuPct'), 0)} | ${f(med(runs, 'clientCpuPct'), 0)} | ${f(med(runs, 'hwm'))} (${f(med(runs, 'idleRss'))}) |`)
  }
}
