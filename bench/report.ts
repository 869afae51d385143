import type { RawInference } from './limits.js';
import type { Measured, WaitersResult } from './scenarios.js';
import { round } from './lib/stats.js';

/** One target: a ratio measured in this run against its bound. */
export interface Target {
  name: string;
  value: number;
  bound: string;
  pass: boolean;
}

/** Everything one benchmark run measured. */
export interface Report {
  date: string;
  quick: boolean;
  machine: string;
  raw: RawInference[];
  pipelineRowsPerSec: number;
  bareReqPerSec: number;
  hit: Measured[];
  miss: Measured[];
  redisPerMiss: number;
  batch:
    | { rowsPerSec: number; seconds: number; redisPerRow: number; resultLines: number }
    | { error: string };
  workers: Array<Measured & { workers: number }>;
  waiters: WaitersResult;
  targets: Target[];
}

const at = (list: Measured[], c: number) => list.find((m) => m.connections === c);

/** Computes every target of issue 6 from one run's figures. */
export function judge(r: Report): void {
  const hit64 = at(r.hit, 64)?.reqPerSec ?? 0;
  const miss64 = at(r.miss, 64);
  const miss1 = at(r.miss, 1);
  const raw1 = r.raw.find((x) => x.model === 'breast-cancer' && x.batch === 1)?.p50Ms ?? 0;
  const batch = 'rowsPerSec' in r.batch ? r.batch : undefined;
  const t = (name: string, value: number, bound: string, pass: boolean): Target => ({
    name,
    value: round(value, 3),
    bound,
    pass,
  });
  r.targets = [
    t(
      'cache-hit req/s @64 / bare Hono+GET req/s',
      hit64 / r.bareReqPerSec,
      '>= 0.70',
      hit64 / r.bareReqPerSec >= 0.7,
    ),
    t(
      'cache-miss req/s @64 / cache-hit req/s @64',
      (miss64?.reqPerSec ?? 0) / hit64,
      '>= 0.40',
      (miss64?.reqPerSec ?? 0) / hit64 >= 0.4,
    ),
    t('cache-miss p99 @64 (ms)', miss64?.p99 ?? NaN, '<= 25', (miss64?.p99 ?? Infinity) <= 25),
    t(
      'cache-miss p50 @1 - raw batch-1 p50 (ms)',
      (miss1?.p50 ?? NaN) - raw1,
      '<= 1.5',
      (miss1?.p50 ?? Infinity) - raw1 <= 1.5,
    ),
    t(
      'batch rows/s / in-process pipeline rows/s',
      (batch?.rowsPerSec ?? 0) / r.pipelineRowsPerSec,
      '>= 0.50',
      (batch?.rowsPerSec ?? 0) / r.pipelineRowsPerSec >= 0.5,
    ),
    t(
      'waiters answered / opened',
      r.waiters.answered / r.waiters.waiters,
      '= 1',
      r.waiters.answered === r.waiters.waiters && r.waiters.completed === r.waiters.waiters,
    ),
    t(
      'API resident memory with waiters (MB)',
      r.waiters.apiRssMb,
      '<= 300',
      r.waiters.apiRssMb <= 300,
    ),
    t(
      'waiter answer after job end p99 (ms)',
      r.waiters.p99DelayMs,
      '<= 50',
      r.waiters.p99DelayMs <= 50,
    ),
    t(
      'Redis commands per batch row',
      batch?.redisPerRow ?? NaN,
      '<= 0.05',
      (batch?.redisPerRow ?? Infinity) <= 0.05,
    ),
    t('Redis commands per cache-miss request', r.redisPerMiss, '<= 10', r.redisPerMiss <= 10),
  ];
}

function table(header: string[], rows: Array<Array<string | number>>): string {
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const row of rows) lines.push(`| ${row.map(String).join(' | ')} |`);
  return lines.join('\n');
}

const fmt = (m: Measured) => [
  round(m.reqPerSec, 0),
  round(m.p50, 2),
  round(m.p90, 2),
  round(m.p99, 2),
  m.breakdown
    ? `${round(m.breakdown.queueMs, 2)} / ${round(m.breakdown.inferMs, 2)} / ${round(m.breakdown.totalMs, 2)}`
    : '',
  m.non2xx + m.errors,
];

/** The Markdown tables the README's Performance section shows. */
export function formatTable(r: Report): string {
  const head = [
    'scenario',
    'req/s',
    'p50 ms',
    'p90 ms',
    'p99 ms',
    'server queue / infer / total ms',
    'errors',
  ];
  const online = [
    ...r.hit.map((m) => [`cache hit, ${m.connections} conn`, ...fmt(m)]),
    ...r.miss.map((m) => [`cache miss, ${m.connections} conn`, ...fmt(m)]),
    ...r.workers.map((m) => [`digits miss, 64 conn, ${m.workers} worker(s)`, ...fmt(m)]),
    ['bare Hono + 1 Redis GET, 64 conn', round(r.bareReqPerSec, 0), '', '', '', '', ''],
  ];
  const raw = r.raw.map((x) => [
    x.model,
    x.batch,
    round(x.rowsPerSec, 0),
    round(x.p50Ms, 3),
    round(x.p99Ms, 3),
  ]);
  const batch = 'rowsPerSec' in r.batch ? r.batch : undefined;
  const other = [
    [
      'in-process NDJSON pipeline (parse, infer, serialise)',
      `${round(r.pipelineRowsPerSec, 0)} rows/s`,
    ],
    [
      'batch end to end (upload, run, read all results)',
      batch
        ? `${round(batch.rowsPerSec, 0)} rows/s (${round(batch.seconds, 1)} s, ${batch.resultLines} lines)`
        : `failed: ${'error' in r.batch ? r.batch.error : ''}`,
    ],
    [
      'waiters',
      `${r.waiters.answered}/${r.waiters.waiters} answered, ${r.waiters.completed} completed, answer after job end p50 ${round(r.waiters.p50DelayMs, 1)} ms / p99 ${round(r.waiters.p99DelayMs, 1)} ms, API RSS ${round(r.waiters.apiRssMb, 0)} MB`,
    ],
    ['Redis commands per cache-miss request', round(r.redisPerMiss, 2)],
    ['Redis commands per batch row', batch ? round(batch.redisPerRow, 4) : 'n/a'],
  ];
  const targets = r.targets.map((x) => [x.name, x.value, x.bound, x.pass ? 'PASS' : 'MISS']);
  return [
    `\ninferq benchmark ${r.date}${r.quick ? ' (quick)' : ''} — ${r.machine}\n`,
    table(head, online),
    '',
    table(['model', 'batch', 'rows/s', 'p50 ms', 'p99 ms'], raw),
    '',
    table(['figure', 'value'], other),
    '',
    table(['target', 'measured', 'bound', ''], targets),
    '',
  ].join('\n');
}
