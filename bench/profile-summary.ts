// `node --import tsx bench/profile-summary.ts <file.cpuprofile>...`: the functions and files that
// took the most self time in each CPU profile written by `npm run bench -- --only-batch --profile`.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const TOP = Number(process.env.TOP ?? 18);

function shortUrl(url: string): string {
  const i = url.lastIndexOf('/node_modules/');
  if (i >= 0) return url.slice(i + 14);
  const src = url.search(/\/(src|bench|test)\//);
  return src >= 0 ? url.slice(src + 1) : url.replace(/^file:\/\//, '') || '(native)';
}

function summarise(path: string): string {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byNode = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const f = byNode.get(id)?.callFrame;
    if (!f) continue;
    const name = f.functionName || '(anonymous)';
    if (name !== '(idle)' && name !== '(program)') busy += us;
    const key = `${name} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const file = name.startsWith('(') ? name : shortUrl(f.url);
    byFile.set(file, (byFile.get(file) ?? 0) + us);
  }
  const total = p.endTime - p.startTime;
  const ms = (us: number) => `${(us / 1000).toFixed(0)} ms`;
  const top = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP)
      .map(
        ([k, us]) =>
          `  ${ms(us).padStart(9)} ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`,
      )
      .join('\n');
  return [
    `${basename(path)}: ${ms(total)} profiled, ${ms(busy)} busy`,
    'self time by function:',
    top(byFunction),
    'self time by file:',
    top(byFile),
    '',
  ].join('\n');
}

for (const path of process.argv.slice(2)) process.stdout.write(summarise(path) + '\n');
