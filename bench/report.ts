import type { RawInference } from './limits.js';
import type { Measured } from './lib/measure.js';
import type { RedisCost } from './lib/redis-info.js';
import type { Breakdown } from './lib/stats.js';
import { round } from './lib/stats.js';
import type { ReplicasResult, RoundTripsResult, WaitersResult } from './lib/topology.js';
import type { BatchResult } from './scenarios.js';
import type { CliBatchScenario } from './batch-scenario.js';

/** A scenario's result, or why it could not be measured. */
export type Outcome<T> = T | { error: string };

/** One target of issue 11: a figure measured in this run against its bound. */
export interface Verdict {
  name: string;
  value: number;
  op: '<=' | '>=';
  bound: number;
  pass: boolean;
  /** The figures the value was computed from. */
  detail: string;
}

/** Everything one benchmark run measured. */
export interface Report {
  date: string;
  quick: boolean;
  machine: string;
  /** Commit and whether src/ had uncommitted changes when the run started. */
  source: string;
  /** 1-minute load average at the start and at the end (other work on the machine). */
  loadAverage: [number, number];
  seconds: number;
  raw: RawInference[];
  pipelineRowsPerSec: number;
  /** Redis CPU of the deployment with no load (included in every per-prediction figure), ms/s. */
  redisIdleCpuMsPerS: number;
  bare: Measured;
  hit: Measured[];
  miss: Measured[];
  breakdown: { hit: Breakdown; miss: Breakdown };
  batch: Outcome<BatchResult>;
  replicas: Outcome<ReplicasResult>;
  roundTrips: Outcome<RoundTripsResult>;
  waiters: Outcome<WaitersResult>;
  /** Issue 14: `inferq batch` of a big file, beside the in-process pipeline. */
  cliBatch: Outcome<CliBatchScenario>;
  targets: Verdict[];
}

const ok = <T extends object>(o: Outcome<T>): T | undefined => ('error' in o ? undefined : o);
const at = (list: Measured[], c: number) => list.find((m) => m.connections === c);
const r2 = (v: number | undefined) => round(v ?? NaN, 2);

function verdict(
  name: string,
  value: number | undefined,
  op: '<=' | '>=',
  bound: number,
  detail: string,
): Verdict {
  const v = value ?? NaN;
  const pass = op === '<=' ? v <= bound : v >= bound;
  return { name, value: round(v, 3), op, bound, pass, detail };
}

const failed = (o: Outcome<object>) => ('error' in o ? `failed: ${o.error}` : '');

const cmds = (c: RedisCost | undefined) =>
  c ? `${r2(c.commands)} commands (${r2(c.scripts)} scripts) per prediction` : '';

// The idle deployment's own Redis CPU is part of each per-prediction figure; shown apart, since a
// busy machine (fewer predictions a second) inflates its share.
const idleShare = (r: Report, perSec: number | undefined) =>
  `idle share ${r2((r.redisIdleCpuMsPerS * 1000) / (perSec ?? NaN))} µs`;

function latencyTargets(r: Report): Verdict[] {
  const [hit1, hit64, miss1, miss64] = [at(r.hit, 1), at(r.hit, 64), at(r.miss, 1), at(r.miss, 64)];
  const rps = (m: Measured | undefined) => round(m?.reqPerSec ?? NaN, 0);
  const cpuUs = (us: number | undefined) => round(us ?? NaN, 0);
  return [
    verdict(
      'cache-miss p50 @1 - cache-hit p50 @1 (ms)',
      (miss1?.p50 ?? NaN) - (hit1?.p50 ?? NaN),
      '<=',
      1.0,
      `miss ${r2(miss1?.p50)} ms, hit ${r2(hit1?.p50)} ms`,
    ),
    verdict(
      'cache-miss req/s @64 / cache-hit req/s @64',
      (miss64?.reqPerSec ?? NaN) / (hit64?.reqPerSec ?? NaN),
      '>=',
      0.6,
      `${rps(miss64)} / ${rps(hit64)} req/s`,
    ),
    verdict('cache-miss p99 @64 (ms)', miss64?.p99, '<=', 25, `p50 ${r2(miss64?.p50)} ms`),
    verdict(
      'cache-hit req/s @64 / bare Hono (validate, hash, GET) req/s @64',
      (hit64?.reqPerSec ?? NaN) / r.bare.reqPerSec,
      '>=',
      0.7,
      `${rps(hit64)} / ${rps(r.bare)} req/s; CPU a request ${cpuUs(hit64?.cpu.apiUs)} / ${cpuUs(r.bare.cpu.apiUs)} µs`,
    ),
  ];
}

function redisTargets(r: Report): Verdict[] {
  const [miss1, miss64] = [at(r.miss, 1), at(r.miss, 64)];
  const batch = ok(r.batch);
  const rtt = ok(r.roundTrips);
  const reps = ok(r.replicas);
  return [
    verdict(
      'Redis CPU per lone miss (µs)',
      miss1?.redis.cpuUs,
      '<=',
      300,
      `${cmds(miss1?.redis)}; ${idleShare(r, miss1?.reqPerSec)}`,
    ),
    verdict(
      'Redis CPU per miss @64 (µs)',
      miss64?.redis.cpuUs,
      '<=',
      30,
      `${cmds(miss64?.redis)}; ${idleShare(r, miss64?.reqPerSec)}`,
    ),
    verdict(
      'Redis CPU per batch row (µs)',
      batch?.redis.cpuUs,
      '<=',
      3,
      batch
        ? `${round(batch.redis.commands, 4)} commands per row; ${idleShare(r, batch.rowsPerSec)}`
        : failed(r.batch),
    ),
    verdict(
      'sequential Redis round trips of a lone miss',
      rtt?.roundTrips,
      '<=',
      2.5,
      rtt
        ? `p50 ${r2(rtt.p50D0)} ms at D=0, ${r2(rtt.p50D2)} ms at D=2 (chunks waited ${r2(rtt.effectiveDelayMs)} ms; / 2x2 ms: ${r2(rtt.roundTripsNominal)})`
        : failed(r.roundTrips),
    ),
    verdict(
      'Redis output bytes per completion, 3 API replicas / 1',
      reps?.ratio,
      '<=',
      1.2,
      reps
        ? `${round(reps.three.redis.outputBytes, 0)} / ${round(reps.one.redis.outputBytes, 0)} bytes per lone miss`
        : failed(r.replicas),
    ),
  ];
}

function waiterTargets(r: Report): Verdict[] {
  const w = ok(r.waiters);
  const error = w?.firstError ? `, first error: ${w.firstError}` : '';
  return [
    verdict(
      `${w?.waiters ?? ''} long-polls answered, completed / opened`,
      w ? Math.min(w.answered, w.completed) / w.waiters : undefined,
      '>=',
      1,
      w ? `${w.answered} answered, ${w.completed} completed${error}` : failed(r.waiters),
    ),
    verdict(
      'API RSS with the long-polls open, peak (MB)',
      w?.apiRssPeakMb,
      '<=',
      300,
      w ? `${round(w.apiRssOpenMb, 0)} MB once all were open` : '',
    ),
    verdict(
      'long-poll answer after its job ended, p99 (ms)',
      w?.p99DelayMs,
      '<=',
      50,
      w ? `p50 ${r2(w.p50DelayMs)} ms, max ${r2(w.maxDelayMs)} ms` : '',
    ),
  ];
}

/** The targets of issue 14: CLI batch throughput against the pipeline, API memory. */
export function batchTargets(r: Report): Verdict[] {
  const c = ok(r.cliBatch);
  return [
    verdict(
      `inferq batch of ${c?.rows ?? ''} rows end to end / in-process pipeline (rows/s)`,
      c?.ratio,
      '>=',
      0.7,
      c
        ? `${round(c.rowsPerSec, 0)} / ${round(c.pipelineRowsPerSec, 0)} rows/s`
        : failed(r.cliBatch),
    ),
    verdict(
      `the same ${c?.rows ?? ''} rows over plain HTTP / in-process pipeline (rows/s)`,
      c?.httpRatio,
      '>=',
      0.7,
      c ? `${round(c.http.rowsPerSec, 0)} / ${round(c.pipelineRowsPerSec, 0)} rows/s` : '',
    ),
    verdict(
      'API peak RSS during the CLI batch (MB)',
      c ? Math.max(c.peakRssMb.api, c.http.peakRssMb.api) : undefined,
      '<=',
      300,
      c ? `worker ${round(c.peakRssMb.worker, 0)} MB, CLI ${round(c.peakRssMb.cli, 0)} MB` : '',
    ),
  ];
}

/** Computes every target of issues 11 (requirement 3) and 14 from one run's figures. */
export function judge(r: Report): void {
  r.targets = [...latencyTargets(r), ...redisTargets(r), ...waiterTargets(r), ...batchTargets(r)];
}

function table(header: string[], rows: Array<Array<string | number>>): string {
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const row of rows) lines.push(`| ${row.map(String).join(' | ')} |`);
  return lines.join('\n');
}

const loadRow = (label: string, m: Measured) => [
  label,
  round(m.reqPerSec, 0),
  r2(m.p50),
  r2(m.p90),
  r2(m.p99),
  round(m.redis.cpuUs, 1),
  r2(m.redis.commands),
  r2(m.redis.scripts),
  round(m.redis.outputBytes, 0),
  m.errors,
];

const topOf = (c: RedisCost) =>
  Object.entries(c.top)
    .map(([k, v]) => `${k} ${round(v, 2)}`)
    .join(', ');

function onlineTable(r: Report): string {
  const reps = ok(r.replicas);
  const rows = [
    loadRow('bare Hono: validate, hash, GET; 64 conn', r.bare),
    ...r.hit.map((m) => loadRow(`cache hit, ${m.connections} conn`, m)),
    ...r.miss.map((m) => loadRow(`cache miss, ${m.connections} conn`, m)),
    ...(reps
      ? [
          loadRow('cache miss, 1 conn, 1 API replica', reps.one),
          loadRow('cache miss, 1 conn, 3 API replicas (load on one)', reps.three),
        ]
      : []),
  ];
  const head = ['scenario', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms'];
  const perPrediction = ['Redis CPU µs', 'commands', 'scripts', 'Redis out bytes'];
  return table([...head, ...perPrediction.map((h) => `${h} /pred`), 'errors'], rows);
}

/** A scenario's CPU per answer, `api / worker / load µs, idle n%` (`-` where not measured). */
export function cpuOf(m: Measured): string {
  const c = m.cpu;
  const us = (v: number) => (Number.isFinite(v) ? String(round(v, 0)) : '-');
  return `${us(c.apiUs)} / ${us(c.workerUs)} / ${us(c.loadUs)} µs, idle ${round(c.idleShare * 100, 0)}%`;
}

function figuresTable(r: Report): string {
  const batch = ok(r.batch);
  const rtt = ok(r.roundTrips);
  const w = ok(r.waiters);
  const miss1 = at(r.miss, 1);
  const miss64 = at(r.miss, 64);
  const hit64 = at(r.hit, 64);
  const rows: Array<[string, string]> = [
    [
      'Server-Timing, sequential (median ms)',
      `hit total ${r2(r.breakdown.hit.totalMs)}; miss queue ${r2(r.breakdown.miss.queueMs)} / infer ${r2(r.breakdown.miss.inferMs)} / total ${r2(r.breakdown.miss.totalMs)}`,
    ],
    [
      'Redis CPU of the idle deployment (counted in every figure above)',
      `${r2(r.redisIdleCpuMsPerS)} ms/s = ${r2((r.redisIdleCpuMsPerS * 1000) / (miss1?.reqPerSec ?? NaN))} µs per lone miss at its rate`,
    ],
    [
      'CPU µs per answer @64: server (API, or bare Hono) / worker / load generator; machine idle',
      [
        `bare Hono ${cpuOf(r.bare)}`,
        hit64 && `hit ${cpuOf(hit64)}`,
        miss64 && `miss ${cpuOf(miss64)}`,
      ]
        .filter(Boolean)
        .join('; '),
    ],
    ['lone miss: commands per prediction', miss1 ? topOf(miss1.redis) : ''],
    ['miss @64: commands per prediction', miss64 ? topOf(miss64.redis) : ''],
    [
      'in-process NDJSON pipeline (parse, infer, serialise)',
      `${round(r.pipelineRowsPerSec, 0)} rows/s`,
    ],
    [
      'batch end to end (upload, run, read all results)',
      batch
        ? `${batch.rows} rows, ${round(batch.rowsPerSec, 0)} rows/s (${round(batch.seconds, 1)} s); per row: Redis CPU ${r2(batch.redis.cpuUs)} µs, ${round(batch.redis.commands, 4)} commands, ${round(batch.redis.outputBytes, 0)} output bytes`
        : failed(r.batch),
    ],
    [
      'lone miss through the delaying proxy',
      rtt
        ? rtt.runs
            .map(
              (x) =>
                `D=${x.delayMs}: p50 ${r2(x.p50)} ms (waited ${r2(x.effectiveDelayMs)} ms, ${x.ok} req)`,
            )
            .join('; ')
        : failed(r.roundTrips),
    ],
    [
      'long-polls',
      w
        ? `${w.answered}/${w.waiters} answered, ${w.completed} completed; after job end p50 ${r2(w.p50DelayMs)} / p99 ${r2(w.p99DelayMs)} / max ${r2(w.maxDelayMs)} ms; API RSS ${round(w.apiRssOpenMb, 0)} MB open, ${round(w.apiRssPeakMb, 0)} MB peak; CPU per answer API ${round(w.apiCpuUsPerAnswer, 0)} µs, polling client ${round(w.clientCpuUsPerAnswer, 0)} µs (its event-loop delay p99 ${r2(w.clientLagP99Ms)} ms)`
        : failed(r.waiters),
    ],
    ['machine load average (1 min), start / end', `${r.loadAverage[0]} / ${r.loadAverage[1]}`],
  ];
  return table(['figure', 'value'], rows);
}

/** CPU seconds of the batch's processes, and their sum scaled to 1,000,000 rows. */
function cpuLine(cpu: { cli: number; api: number; worker: number; redis: number }, rows: number) {
  const parts = [cpu.cli, cpu.api, cpu.worker, cpu.redis].filter((v) => !Number.isNaN(v));
  const total = parts.reduce((a, b) => a + b, 0);
  return `${parts.map((v) => round(v, 2)).join(' / ')} (${round(total, 2)}, ${round((total * 1e6) / rows, 1)} per 1M rows)`;
}

function cliBatchTable(r: Report): string {
  const c = ok(r.cliBatch);
  if (!c) return `CLI batch: ${failed(r.cliBatch)}`;
  const s = (v: number) => `${round(v, 2)} s`;
  const mb = (v: number) => `${round(v, 0)} MB`;
  const rows: Array<[string, string]> = [
    [
      `inferq batch ${c.rows} rows (${round(c.fileMb, 0)} MB) -o file`,
      `${round(c.rowsPerSec, 0)} rows/s (${s(c.seconds)})`,
    ],
    [
      'in-process pipeline, same file (before / after)',
      `${round(c.pipelineRowsPerSec, 0)} rows/s (${c.pipelineRuns.map((x) => round(x, 0)).join(' / ')})`,
    ],
    ['ratio (target >= 0.7)', `${round(c.ratio, 3)} ${c.ratio >= 0.7 ? 'PASS' : 'MISS'}`],
    [
      'time split: upload end (202) / first result / run end / download end',
      [c.split.uploadEndS, c.split.firstResultS, c.split.runEndS, c.split.downloadEndS]
        .map(s)
        .join(' / '),
    ],
    [
      'peak RSS: CLI / API / worker',
      `${mb(c.peakRssMb.cli)} / ${mb(c.peakRssMb.api)} / ${mb(c.peakRssMb.worker)}`,
    ],
    ['CPU seconds: CLI / API / worker / Redis (all, per 1M rows)', cpuLine(c.cpuS, c.rows)],
    [
      'Redis memory for the batch: sampled peak over before (used_memory_peak over before)',
      `${mb(c.redisPeakMb)} (${mb(c.redisPeakCounterMb)})`,
    ],
    [
      'same file over plain HTTP (bytes up, bytes down: the server without the CLI)',
      `${round(c.http.rowsPerSec, 0)} rows/s (${s(c.http.seconds)}), ratio ${round(c.httpRatio, 3)}`,
    ],
    [
      'plain HTTP time split: upload end / first result / run end / download end',
      [
        c.http.split.uploadEndS,
        c.http.split.firstResultS,
        c.http.split.runEndS,
        c.http.split.downloadEndS,
      ]
        .map(s)
        .join(' / '),
    ],
    [
      'plain HTTP: CPU seconds API / worker / Redis (all, per 1M rows)',
      cpuLine(c.http.cpuS, c.rows),
    ],
    [
      'plain HTTP: peak RSS API / worker; Redis peak over before',
      `${mb(c.http.peakRssMb.api)} / ${mb(c.http.peakRssMb.worker)}; ${mb(c.http.redisPeakMb)}`,
    ],
  ];
  return table(['CLI batch (issue 14)', 'value'], rows);
}

/** The `--only-batch` report: the CLI batch table and its targets. */
export function formatBatchOnly(r: Report): string {
  const targets = r.targets.map((x) => [
    x.name,
    Number.isNaN(x.value) ? 'n/a' : x.value,
    `${x.op} ${x.bound}`,
    x.pass ? 'PASS' : 'MISS',
    x.detail,
  ]);
  return [
    `\ninferq batch benchmark ${r.date}`,
    `${r.machine}; ${r.source}; ${round(r.seconds, 0)} s; load average ${r.loadAverage.join(' / ')}\n`,
    cliBatchTable(r),
    '',
    table(['target', 'measured', 'bound', '', 'from'], targets),
    '',
  ].join('\n');
}

/** The Markdown tables of one run: online loads, raw inference, other figures, targets. */
export function formatTable(r: Report): string {
  const raw = r.raw.map((x) => [
    x.model,
    x.batch,
    round(x.rowsPerSec, 0),
    round(x.p50Ms, 3),
    round(x.p99Ms, 3),
  ]);
  const targets = r.targets.map((x) => [
    x.name,
    Number.isNaN(x.value) ? 'n/a' : x.value,
    `${x.op} ${x.bound}`,
    x.pass ? 'PASS' : 'MISS',
    x.detail,
  ]);
  return [
    `\ninferq benchmark ${r.date}${r.quick ? ' (quick: a smoke test, not figures to quote)' : ''}`,
    `${r.machine}; ${r.source}; ${round(r.seconds, 0)} s\n`,
    onlineTable(r),
    '',
    table(['model', 'batch', 'rows/s', 'p50 ms', 'p99 ms'], raw),
    '',
    figuresTable(r),
    '',
    cliBatchTable(r),
    '',
    'Targets (issue 11, requirement 3; issue 14)',
    '',
    table(['target', 'measured', 'bound', '', 'from'], targets),
    '',
  ].join('\n');
}
