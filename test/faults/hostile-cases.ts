import { BREAST_CANCER_ROW } from '../helpers/fixtures.js';

/** One generated request. */
export interface HostileCase {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

/** Deterministic numbers in [0, 1) from `seed`, so that a failing case can be replayed. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const ROW = JSON.stringify(BREAST_CANCER_ROW);
const DEEP = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
const MILLION = `[${Array.from({ length: 1_000_000 }, (_, i) => i % 10).join(',')}]`;
const OVER_INSTANCES = `[${Array.from({ length: 1001 }, () => ROW).join(',')}]`;

/** POST routes that read a JSON body. */
export const POST_ROUTES = [
  '/v1/models/breast-cancer/predict',
  '/v1/models/breast-cancer:predict',
  '/v1/models/breast-cancer/versions/1.0.0/predict',
  '/v1/jobs',
  '/v1/batches',
  '/v2/models/breast-cancer/infer',
];

/** Bodies with wrong types, bad JSON, hostile keys and huge or deep values. */
export function hostileBodies(): string[] {
  const fields = (inner: string) => [
    `{"features":${inner}}`,
    `{"instances":${inner}}`,
    `{"model":"breast-cancer","features":${inner}}`,
    `{"model":"breast-cancer","items":${inner}}`,
    `{"inputs":${inner}}`,
    `{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":${inner}}]}`,
  ];
  const values = [
    '"x"',
    'null',
    'true',
    '{}',
    '-0',
    '[]',
    '[[]]',
    '["1"]',
    '[true]',
    '[null]',
    '[1e309]',
    '[-1e309]',
    '[1e39]',
    '[{}]',
    '[[1,2],[3]]',
    '"NaN"',
    `[${ROW}]`,
    `[[${ROW}]]`,
    `{"__proto__":[1]}`,
    `[{"features":"x"}]`,
    `[{"__proto__":{"polluted":1},"features":${ROW}}]`,
  ];
  // Huge and deep values cost real CPU to parse: each goes into the two fields that read arrays.
  const huge = [DEEP, MILLION, OVER_INSTANCES].flatMap((v) => [
    `{"features":${v}}`,
    `{"instances":${v}}`,
    `{"model":"breast-cancer","items":${v}}`,
    `{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":${v}}]}`,
  ]);
  huge.push(`{"model":"breast-cancer","instances":${MILLION}}`);
  const raw = [
    '',
    ' ',
    'null',
    'true',
    '1',
    '"x"',
    '[]',
    '{}',
    '{',
    '}{',
    '{"features":',
    '[1,2,',
    '\u0000',
    'NaN',
    '\ufeff{}',
    '{"a":1}{"b":2}',
    "{'features':[1]}",
    '{"features":[1,]}',
    `{"__proto__":{"polluted":true},"features":${ROW}}`,
    `{"constructor":{"prototype":{"polluted":true}},"features":${ROW}}`,
    `{"model":"__proto__","features":${ROW}}`,
    `{"model":"constructor","features":${ROW}}`,
    `{"model":"breast-cancer","version":"__proto__","features":${ROW}}`,
    `{"model":"../../etc/passwd","features":${ROW}}`,
    `{"model":"breast-cancer","priority":0,"features":${ROW}}`,
    `{"model":"breast-cancer","priority":1.5,"features":${ROW}}`,
    `{"model":"breast-cancer","priority":"1","features":${ROW}}`,
    `{"model":"breast-cancer","version":"latest","features":${ROW}}`,
    `{"features":${ROW},"instances":[${ROW}]}`,
    `{"inputs":[{"name":"input","shape":[1e12,1e12],"datatype":"FP32","data":[1]}]}`,
    `{"inputs":[{"name":"input","shape":[-1,30],"datatype":"FP32","data":${ROW}}]}`,
    `{"inputs":[{"name":"input","shape":[1,30],"datatype":"BYTES","data":${ROW}}]}`,
    `{"inputs":[{"name":"__proto__","shape":[1,30],"datatype":"FP32","data":${ROW}}]}`,
    `{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":${DEEP}}]}`,
    `{"id":${DEEP},"inputs":[]}`,
  ];
  return [...raw, ...values.flatMap(fields), ...huge];
}

/** Random byte bodies. */
export function randomBodies(count: number, seed = 7): Uint8Array[] {
  const next = prng(seed);
  return Array.from({ length: count }, () => {
    const bytes = new Uint8Array(1 + Math.floor(next() * 2048));
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
    return bytes;
  });
}

/** Content types that are not JSON, or JSON in a charset we do not read. */
export const CONTENT_TYPES = [
  'text/plain',
  'application/xml',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  'application/x-ndjson',
  'application/octet-stream',
  ';;;',
  'application/json\u0009; q=',
];

/** Model names with path tricks, control characters, unicode and prototype keys (URL-encoded). */
export const MODEL_NAMES = [
  '..%2F..%2Fetc%2Fpasswd',
  '%2e%2e',
  '..',
  '.',
  '%00',
  'a%00b',
  'x'.repeat(5000),
  '%E2%98%83',
  encodeURIComponent('ünïcödé'),
  '%F0%9F%98%80',
  '%',
  '%zz',
  '%E0%A4%A',
  'CON',
  'breast-cancer%2F1.0.0',
  'breast-cancer;drop',
  'breast-cancer%20',
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'toString',
  '%252e%252e',
  '%5C..%5C',
  'Breast-Cancer',
];

/** Paths that take a model name. */
export function modelPathCases(name: string): HostileCase[] {
  const json = { 'content-type': 'application/json' };
  const body = `{"features":${ROW}}`;
  let decoded = name;
  try {
    decoded = decodeURIComponent(name);
  } catch {
    // Kept encoded: the point is that the server gets it as sent.
  }
  return [
    { method: 'GET', path: `/v1/models/${name}` },
    { method: 'GET', path: `/v1/models/${name}/versions/1.0.0` },
    { method: 'POST', path: `/v1/models/${name}/predict`, headers: json, body },
    { method: 'POST', path: `/v1/models/${name}:predict`, headers: json, body },
    { method: 'GET', path: `/v2/models/${name}` },
    { method: 'GET', path: `/v2/models/${name}/ready` },
    { method: 'POST', path: `/v2/models/${name}/infer`, headers: json, body: '{"inputs":[]}' },
    {
      method: 'POST',
      path: '/v1/jobs',
      headers: json,
      body: JSON.stringify({ model: decoded, features: BREAST_CANCER_ROW }),
    },
    { method: 'GET', path: `/v1/jobs/${name}` },
    { method: 'DELETE', path: `/v1/jobs/${name}` },
    { method: 'GET', path: `/v1/jobs/${name}/events` },
    { method: 'GET', path: `/v1/batches/${name}` },
    { method: 'GET', path: `/v1/batches/${name}/results` },
  ];
}

/** Version strings that are not versions (URL-encoded). */
export const VERSIONS = [
  '1.0',
  '01.0.0',
  '1.0.0.0',
  '99999999999999999999.0.0',
  '1.0.0-%00',
  'latest',
  '..',
  '%2e%2e%2f',
  '1.0.0%0d%0aX-Evil:%201',
  'x'.repeat(3000),
  '%5E1.0.0',
  '%3E%3D1',
  '*',
  '9.9.9',
  '1.0.0%20',
];

/** Paths and headers that take a version. */
export function versionCases(v: string): HostileCase[] {
  const json = { 'content-type': 'application/json' };
  const body = `{"features":${ROW}}`;
  const header = /^[\x20-\x7e]*$/.test(v)
    ? [
        {
          method: 'POST',
          path: '/v1/models/breast-cancer/predict',
          headers: { ...json, 'x-model-version': v },
          body,
        },
      ]
    : [];
  return [
    { method: 'GET', path: `/v1/models/breast-cancer/versions/${v}` },
    { method: 'POST', path: `/v1/models/breast-cancer/versions/${v}/predict`, headers: json, body },
    { method: 'POST', path: `/v1/models/breast-cancer/predict?version=${v}`, headers: json, body },
    { method: 'GET', path: `/v2/models/breast-cancer/versions/${v}` },
    { method: 'POST', path: `/v2/models/breast-cancer/versions/${v}/infer`, headers: json, body },
    ...header,
  ];
}

/** Every route of the service, for the every-method sweep. */
export const ROUTES = [
  '/health/live',
  '/health/ready',
  '/metrics',
  '/openapi.json',
  '/docs',
  '/admin/queues',
  '/v1/models',
  '/v1/models/breast-cancer',
  '/v1/models/breast-cancer/versions/1.0.0',
  '/v1/models/breast-cancer/predict',
  '/v1/models/breast-cancer:predict',
  '/v1/jobs',
  '/v1/jobs/abc',
  '/v1/jobs/abc/events',
  '/v1/batches',
  '/v1/batches/abc',
  '/v1/batches/abc/results',
  '/v1/batches/abc/events',
  '/v1/ws',
  '/v2',
  '/v2/health/live',
  '/v2/health/ready',
  '/v2/models/breast-cancer',
  '/v2/models/breast-cancer/ready',
  '/v2/models/breast-cancer/infer',
  '/nope',
  '/v1',
  '/',
  '//v1//models',
  '/v1/models/',
];

/** Methods of the sweep. */
export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'];

/** Odd headers and queries on the routes that read them. */
export function headerCases(): HostileCase[] {
  const json = { 'content-type': 'application/json' };
  const body = `{"features":${ROW}}`;
  const prefers = [
    'wait=abc',
    'wait=-1',
    'wait=1e999',
    'wait=99999999',
    'wait=',
    'respond-async, wait=5',
    'wait=1, wait=2',
    'handling=strict',
    '=,=,=',
    'x'.repeat(4000),
  ];
  const queries = [
    'wait=abc',
    'wait=-1',
    'wait=1e999',
    'wait=99999',
    'version[]=1',
    '__proto__[polluted]=1',
    'constructor[prototype][polluted]=1',
    'model=..%2F..',
    'wait=%00',
  ];
  return [
    ...prefers.map((p) => ({
      method: 'POST',
      path: '/v1/models/breast-cancer/predict',
      headers: { ...json, prefer: p },
      body,
    })),
    ...prefers.map((p) => ({ method: 'GET', path: '/v1/jobs/abc', headers: { prefer: p } })),
    ...queries.map((q) => ({ method: 'GET', path: `/v1/jobs/abc?${q}` })),
    ...queries.map((q) => ({
      method: 'GET',
      path: `/v1/batches/00000000-0000-0000-0000-000000000000?${q}`,
    })),
    ...queries.map((q) => ({
      method: 'POST',
      path: `/v1/models/breast-cancer/predict?${q}`,
      headers: json,
      body,
    })),
    ...['', 'x'.repeat(256), 'x'.repeat(10_000)].map((k) => ({
      method: 'POST',
      path: '/v1/jobs',
      headers: { ...json, 'idempotency-key': k },
      body: JSON.stringify({ model: 'breast-cancer', features: BREAST_CANCER_ROW }),
    })),
    ...['x'.repeat(1000), '', '../../'].map((id) => ({
      method: 'GET',
      path: '/health/live',
      headers: { 'x-request-id': id },
    })),
    ...['Bearer', 'Basic !!!', 'x'.repeat(8000)].map((a) => ({
      method: 'GET',
      path: '/admin/queues',
      headers: { authorization: a },
    })),
  ];
}
