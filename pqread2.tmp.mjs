import { parquetNdjson } from './dist/cli/pqA.tmp.js';
let bytes = 0, peak = null;
const timer = setInterval(() => { const m = process.memoryUsage(); if (!peak || m.rss > peak.rss) peak = m; }, 10);
for await (const b of parquetNdjson(process.argv[2], { width: 30, rangeRows: Number(process.argv[3] ?? 131072) })) bytes += b.length;
clearInterval(timer);
const f = (x) => (x / 1e6).toFixed(0);
console.log(`peak rss ${f(peak.rss)} heapTotal ${f(peak.heapTotal)} heapUsed ${f(peak.heapUsed)} external ${f(peak.external)} ab ${f(peak.arrayBuffers)}`);
