import { parquetNdjson } from './dist/cli/parquet-input.js';
let bytes = 0, max = 0;
const t = Date.now();
const timer = setInterval(() => { max = Math.max(max, process.memoryUsage().rss); }, 20);
for await (const b of parquetNdjson(process.argv[2], { width: 30 })) bytes += b.length;
clearInterval(timer);
const m = process.memoryUsage();
console.log(`bytes ${bytes} ms ${Date.now() - t} rss max ${(max / 1e6).toFixed(0)} heap ${(m.heapUsed / 1e6).toFixed(0)} ab ${(m.arrayBuffers / 1e6).toFixed(0)}`);
