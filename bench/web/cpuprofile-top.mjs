// cpuprofile-top.mjs: self time per function of a .cpuprofile (node --cpu-prof or CDP).
//   node bench/web/cpuprofile-top.mjs FILE.cpuprofile [ROWS]
import { readFileSync } from "node:fs";
const p = JSON.parse(readFileSync(process.argv[2], "utf8"));
const dt = new Map(); // id -> self us
for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) || 0) + (p.timeDeltas[i] || 0));
const byName = new Map(); let total = 0;
for (const n of p.nodes) { const t = dt.get(n.id) || 0; total += t; const cf = n.callFrame; const k = `${cf.functionName || "(anon)"} ${cf.url.split("/").pop()}:${cf.lineNumber + 1}`; byName.set(k, (byName.get(k) || 0) + t); }
const rows = [...byName].sort((a, b) => b[1] - a[1]).slice(0, +process.argv[3] || 25);
console.log(`total ${(total / 1e3).toFixed(0)} ms`);
for (const [k, t] of rows) console.log(`${(t / 1e3).toFixed(1).padStart(8)} ms ${(100 * t / total).toFixed(1).padStart(5)}%  ${k}`);
