import { asyncBufferFromFile, parquetMetadataAsync, parquetRead } from 'hyparquet';
const path = process.argv[2], most = Number(process.argv[3] ?? 131072);
const file = await asyncBufferFromFile(path);
const metadata = await parquetMetadataAsync(file);
let peak = null; let reads = 0, readBytes = 0;
const slice = file.slice.bind(file);
file.slice = (s, e) => { reads++; readBytes += (e ?? file.byteLength) - s; return slice(s, e); };
const timer = setInterval(() => { const m = process.memoryUsage(); if (!peak || m.rss > peak.rss) peak = m; }, 10);
let start = 0; let sum = 0;
for (const g of metadata.row_groups) {
  const end = start + Number(g.num_rows);
  for (let from = start; from < end; from += most) {
    const to = Math.min(end, from + most);
    for (let c = 0; c < 30; c++) {
      await parquetRead({ file, metadata, columns: [`f${c}`], rowStart: from, rowEnd: to, onChunk: (ch) => { sum += ch.columnData.length; } });
    }
  }
  start = end;
}
clearInterval(timer);
const f = (x) => (x / 1e6).toFixed(0);
console.log(`values ${sum} reads ${reads} MB read ${f(readBytes)} peak rss ${f(peak.rss)} heapTotal ${f(peak.heapTotal)} heapUsed ${f(peak.heapUsed)} ab ${f(peak.arrayBuffers)}`);
