import { BREAST_CANCER_ROW } from '../helpers/fixtures.js';
import type { RawRequest } from '../helpers/http-client.js';
import {
  CONTENT_TYPES,
  METHODS,
  MODEL_NAMES,
  POST_ROUTES,
  ROUTES,
  VERSIONS,
  headerCases,
  modelPathCases,
  prng,
  versionCases,
} from './hostile-cases.js';
import { oddIds } from './odd-ids.js';

/** Limits of the API process the fuzz runs against (its environment, as numbers). */
export interface FuzzLimits {
  maxBodyBytes: number;
  maxBatchBytes: number;
  maxBatchRows: number;
  maxLineBytes: number;
}

type Random = () => number;
type Generator = (r: Random, limits: FuzzLimits) => RawRequest;

const KEYS = { a: { 'x-api-key': 'keyA' }, b: { 'x-api-key': 'keyB' } };
const JSON_TYPE = { 'content-type': 'application/json' };
const NDJSON_TYPE = { 'content-type': 'application/x-ndjson' };
const ROW = JSON.stringify(BREAST_CANCER_ROW);
const ROW_LINE = `${JSON.stringify({ features: BREAST_CANCER_ROW })}\n`;
const encoder = new TextEncoder();

const pick = <T>(r: Random, items: readonly T[]): T => items[Math.floor(r() * items.length)] as T;
const between = (r: Random, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

// Large fillers are built once and shared: the fuzz is about the server, not the client's CPU.
const fillers = new Map<string, Uint8Array>();
function filler(text: string, bytes: number): Uint8Array {
  const key = `${text}:${bytes}`;
  let buf = fillers.get(key);
  if (!buf) {
    buf = encoder.encode(text.repeat(Math.ceil(bytes / text.length)).slice(0, bytes));
    fillers.set(key, buf);
  }
  return buf;
}

/** `total` bytes of `text` as chunks of about 64 KiB. */
function chunked(text: string, total: number): Uint8Array[] {
  const piece = filler(text, 65_536);
  return Array.from({ length: Math.ceil(total / piece.length) }, () => piece);
}

function withKey(r: Random, headers: Record<string, string> = {}): Record<string, string> {
  return { ...(r() < 0.8 ? KEYS.a : KEYS.b), ...headers };
}

const malformedJson: Generator = (r, limits) => {
  const path = pick(r, POST_ROUTES);
  const size = r() < 0.1 ? between(r, 100_000, limits.maxBodyBytes) : between(r, 1, 2048);
  const bodies = [
    () => filler(`${ROW.slice(1, -1)},`, size),
    () => `{"features":[${'1,'.repeat(Math.floor(size / 2))}`,
    () => `{"instances":[[${'0.5,'.repeat(Math.floor(size / 4))}]]`,
    () => Uint8Array.from({ length: size }, () => Math.floor(r() * 256)),
    () => `{"features":"${'x'.repeat(size)}"}`,
    () => `{"__proto__":{"polluted":1},"model":"breast-cancer","features":${ROW}}`,
    () => `{"features":${ROW},"instances":[${ROW}]}`,
    () => `{"inputs":[{"name":"input","shape":[1e12,30],"datatype":"FP32","data":${ROW}}]}`,
    () => `{"model":"breast-cancer","items":[${`{"features":${ROW}},`.repeat(20)}{}]}`,
    () => '\u0000{}',
  ];
  return { method: 'POST', path, headers: withKey(r, JSON_TYPE), body: pick(r, bodies)() };
};

const oversizedDeclared: Generator = (r, limits) => ({
  method: 'POST',
  path: pick(r, POST_ROUTES),
  headers: withKey(r, JSON_TYPE),
  body: filler('[1,2,3],', limits.maxBodyBytes + between(r, 1, 200_000)),
});

const oversizedChunked: Generator = (r, limits) => ({
  method: 'POST',
  path: pick(r, POST_ROUTES),
  headers: withKey(r, JSON_TYPE),
  chunks: chunked('{"features":[1,', limits.maxBodyBytes + between(r, 1, 300_000)),
});

const deepJson: Generator = (r) => {
  const depth = between(r, 1000, 100_000);
  const open = pick(r, ['[', '{"a":']);
  const close = open === '[' ? ']' : '}';
  const inner = `${open.repeat(depth)}1${r() < 0.5 ? close.repeat(depth) : ''}`;
  const body = pick(r, [inner, `{"features":${inner}}`, `{"instances":${inner}}`]);
  return { method: 'POST', path: pick(r, POST_ROUTES), headers: withKey(r, JSON_TYPE), body };
};

const hugeHeaders: Generator = (r) => {
  const headers: Record<string, string> = withKey(r);
  const style = between(r, 0, 2);
  if (style === 0) for (let i = 0; i < between(r, 100, 800); i++) headers[`x-h${i}`] = 'v';
  else if (style === 1) headers['x-big'] = 'a'.repeat(between(r, 4000, 14_000));
  else headers.prefer = `wait=${'9'.repeat(between(r, 100, 12_000))}`;
  return { method: pick(r, ['GET', 'POST']), path: pick(r, ['/v1/models', '/v1/jobs']), headers };
};

const ndjsonAbuse: Generator = (r, limits) => {
  const path = `/v1/batches?model=${r() < 0.9 ? 'breast-cancer' : pick(r, ['', 'nope', '..'])}`;
  const headers = withKey(r, NDJSON_TYPE);
  const kind = between(r, 0, 7);
  if (kind === 0)
    return { method: 'POST', path, headers, chunks: chunked('\n', limits.maxBatchRows * 2) };
  if (kind === 1) {
    const line = `${' '.repeat(1023)}\n`;
    return { method: 'POST', path, headers, chunks: chunked(line, limits.maxBatchBytes + 65_536) };
  }
  if (kind === 2)
    return { method: 'POST', path, headers, chunks: chunked('1', limits.maxLineBytes * 2) };
  if (kind === 3)
    return { method: 'POST', path, headers, body: filler('\n', limits.maxBatchBytes + 1) };
  if (kind === 4) {
    const bad = pick(r, ['{"features":"x"}', '{', 'null', `{"features":[${ROW}]}`, '\u0000']);
    return { method: 'POST', path, headers, body: `${ROW_LINE.repeat(between(r, 0, 50))}${bad}\n` };
  }
  if (kind === 5)
    return { method: 'POST', path, headers, body: `\ufeff${ROW_LINE}\r\n\n${ROW_LINE}` };
  if (kind === 6) return { method: 'POST', path, headers, body: '\n\n   \n' };
  return {
    method: 'POST',
    path,
    headers,
    chunks: [encoder.encode(ROW_LINE.repeat(between(r, 1, 100)))],
  };
};

const oddId: Generator = (r) => {
  const id = pick(r, oddIds());
  const [method, path] = pick(r, [
    ['GET', `/v1/jobs/${id}`],
    ['DELETE', `/v1/jobs/${id}`],
    ['GET', `/v1/jobs/${id}/events`],
    ['GET', `/v1/batches/${id}`],
    ['DELETE', `/v1/batches/${id}`],
    ['GET', `/v1/batches/${id}/events`],
    ['GET', `/v1/batches/${id}/results`],
  ] as const);
  return { method, path, headers: withKey(r) };
};

// Cases of the in-process sweep that go through a socket as well (a request line must be valid).
const SWEEP: RawRequest[] = [
  ...MODEL_NAMES.filter((n) => !n.includes('%00')).flatMap(modelPathCases),
  ...VERSIONS.filter((v) => !/%0d|%00/i.test(v)).flatMap(versionCases),
  ...ROUTES.flatMap((path) => METHODS.map((method) => ({ method, path }))),
  ...headerCases(),
  ...POST_ROUTES.flatMap((path) =>
    CONTENT_TYPES.map((type) => ({
      method: 'POST',
      path,
      headers: { 'content-type': type },
      body: '{}',
    })),
  ),
].filter((c) => !c.path.startsWith('/v1/ws') && !c.path.includes('/events'));

const oddRequest: Generator = (r) => {
  const c = pick(r, SWEEP);
  return { ...c, headers: withKey(r, c.headers) };
};

const badAuth: Generator = (r) => ({
  method: 'POST',
  path: pick(r, POST_ROUTES),
  headers: {
    ...JSON_TYPE,
    ...pick<Record<string, string>>(r, [{}, { 'x-api-key': 'keyC' }, { authorization: 'Bearer' }]),
  },
  chunks: chunked(`{"features":${ROW}}`, between(r, 1, 80_000)),
});

const ordinary: Generator = (r) =>
  pick(r, [
    { method: 'GET', path: '/v1/models', headers: withKey(r) },
    { method: 'GET', path: '/health/live' },
    {
      method: 'POST',
      path: '/v1/models/breast-cancer/predict',
      headers: withKey(r, JSON_TYPE),
      body: `{"features":${ROW}}`,
    },
    {
      method: 'POST',
      path: '/v1/jobs',
      headers: withKey(r, JSON_TYPE),
      body: `{"model":"breast-cancer","features":${ROW}}`,
    },
  ]);

/** Kinds of hostile request and how often each is drawn. */
const MIX: [Generator, number][] = [
  [malformedJson, 18],
  [oversizedDeclared, 6],
  [oversizedChunked, 8],
  [deepJson, 5],
  [hugeHeaders, 6],
  [ndjsonAbuse, 15],
  [oddId, 14],
  [oddRequest, 12],
  [badAuth, 5],
  [ordinary, 11],
];

/** `count` hostile requests drawn from MIX with `seed`: the same seed gives the same requests. */
export function fuzzCases(seed: number, count: number, limits: FuzzLimits): RawRequest[] {
  const r = prng(seed);
  const total = MIX.reduce((sum, [, weight]) => sum + weight, 0);
  return Array.from({ length: count }, () => {
    let roll = r() * total;
    for (const [generate, weight] of MIX) {
      roll -= weight;
      if (roll < 0) return generate(r, limits);
    }
    return ordinary(r, limits);
  });
}
