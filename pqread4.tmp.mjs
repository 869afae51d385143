import { parquetNdjson } from './dist/cli/pqA.tmp.js';
const t0 = Date.now(); const f = (x) => (x / 1e6).toFixed(0);
const timer = setInterval(() => { const m = process.memoryUsage(); console.log(`${Date.now()-t0} rss ${f(m.rss)} heapT ${f(m.heapTotal)} used ${f(m.heapUsed)} ab ${f(m.arrayBuffers)}`); }, 400);
let bytes = 0;
for await (const b of parquetNdjson(process.argv[2], { width: 30, rangeRows: Number(process.argv[3] ?? 131072) })) bytes += b.length;
clearInterval(timer);
