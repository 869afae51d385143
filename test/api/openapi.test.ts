import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, type ApiHandle } from '../../src/api/server.js';
import { PUBLIC_ID_RE, WAIT_RE } from '../../src/shared/contracts/common.js';
import { ERROR_CATALOGUE } from '../../src/shared/errors.js';
import { MODEL_NAME_RE } from '../../src/shared/model-repository.js';
import { removeKeys, testConfig, testLogger } from '../helpers/env.js';

// Response bodies are untyped JSON.
const json = async (res: Response): Promise<any> => res.json();

let api: ApiHandle;
let doc: any;

beforeAll(async () => {
  // With ADMIN_TOKEN so that the admin routes are mounted and must be documented too.
  api = await buildApi(testConfig({ ADMIN_TOKEN: 'doc-admin' }), testLogger());
  doc = await json(await api.app.request('/openapi.json'));
});

afterAll(async () => {
  await api?.close();
  await removeKeys(api.deps.config.QUEUE_PREFIX);
});

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

// The TF Serving alias is served by a catch-all route that accepts only `<model>:predict`.
const ALIASES: Record<string, string> = {
  'POST /v1/models/{spec}': 'POST /v1/models/{model}:predict',
};

/** `METHOD /path/{param}` of every route the app serves, middleware and Bull Board's own left out. */
function servedRoutes(): Set<string> {
  const served = new Set<string>();
  for (const route of api.app.routes) {
    if (route.method === 'ALL' || route.path === '/*' || route.path === '*') continue;
    // Bull Board's assets, UI routes and JSON API live below its documented entry page.
    if (route.path.startsWith('/admin/queues/')) continue;
    const path = route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const key = `${route.method} ${path}`;
    served.add(ALIASES[key] ?? key);
  }
  return served;
}

function documentedRoutes(): Set<string> {
  const documented = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths as Record<string, any>)) {
    for (const method of METHODS)
      if (item[method]) documented.add(`${method.toUpperCase()} ${path}`);
  }
  return documented;
}

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1 document', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBe('inferq');
  });

  it('documents every route the app serves', () => {
    const documented = documentedRoutes();
    const missing = [...servedRoutes()].filter((r) => !documented.has(r));
    expect(missing).toEqual([]);
  });

  it('documents no route the app does not serve', () => {
    const served = servedRoutes();
    const extra = [...documentedRoutes()].filter((r) => !served.has(r));
    expect(extra).toEqual([]);
  });

  it('describes request bodies with the schemas the routes validate with', () => {
    const schemas = doc.components.schemas;
    const predict = doc.paths['/v1/models/{model}/predict'].post;
    expect(predict.requestBody.content['application/json'].schema.$ref).toBe(
      '#/components/schemas/PredictRequest',
    );
    expect(Object.keys(schemas.PredictRequest.properties).sort()).toEqual([
      'features',
      'instances',
    ]);
    expect(Object.keys(schemas.JobRequest.properties)).toEqual(
      expect.arrayContaining(['model', 'version', 'priority', 'features', 'instances']),
    );
    expect(schemas.JobRequest.properties.priority).toMatchObject({ minimum: 1, maximum: 10 });
    const batch = doc.paths['/v1/batches'].post.requestBody.content;
    expect(Object.keys(batch).sort()).toEqual(['application/json', 'application/x-ndjson']);
  });

  it('documents the parameters and headers the code reads and enforces', () => {
    const params = (path: string, method: string) =>
      Object.fromEntries(
        (doc.paths[path][method].parameters as any[]).map((p) => [`${p.in} ${p.name}`, p.schema]),
      );
    const uuid = PUBLIC_ID_RE.source;
    for (const path of ['/v1/jobs/{id}', '/v1/jobs/{id}/events'])
      expect(params(path, 'get')['path id'].pattern).toBe(uuid);
    for (const path of ['/v1/batches/{id}', '/v1/batches/{id}/results', '/v1/batches/{id}/events'])
      expect(params(path, 'get')['path id'].pattern).toBe(uuid);
    for (const path of ['/v1/jobs/{id}', '/v1/batches/{id}']) {
      expect(params(path, 'get')['query wait']).toMatchObject({ pattern: WAIT_RE.source });
      expect(params(path, 'get')['header prefer']).toBeDefined();
    }
    expect(params('/v2/models/{model}/infer', 'post')['header prefer']).toBeDefined();
    expect(params('/v1/batches', 'post')['header x-model-version']).toBeDefined();
    expect(params('/v1/models/{model}', 'get')['path model'].pattern).toBe(MODEL_NAME_RE.source);
  });

  it('describes NDJSON lines and SSE events with component schemas', () => {
    const content = (path: string) => doc.paths[path].get.responses['200'].content;
    expect(content('/v1/batches/{id}/results')['application/x-ndjson'].schema.$ref).toBe(
      '#/components/schemas/BatchResultLine',
    );
    expect(content('/v1/jobs/{id}/events')['text/event-stream'].schema.$ref).toBe(
      '#/components/schemas/JobEvent',
    );
    expect(content('/v1/batches/{id}/events')['text/event-stream'].schema.$ref).toBe(
      '#/components/schemas/BatchEvent',
    );
  });

  it('names every error code of the catalogue in the error envelope', () => {
    const error = doc.components.schemas.Error;
    expect([...error.properties.error.properties.code.enum].sort()).toEqual(
      Object.keys(ERROR_CATALOGUE).sort(),
    );
    const predict = doc.paths['/v1/models/{model}/predict'].post.responses;
    expect(Object.keys(predict)).toEqual(
      expect.arrayContaining([
        '200',
        '202',
        '400',
        '401',
        '404',
        '413',
        '415',
        '422',
        '429',
        '500',
        '503',
      ]),
    );
    expect(predict['429'].description).toMatch(/queue_full/);
    expect(predict['429'].description).toMatch(/rate_limited/);
  });

  it('describes /v2 errors in the protocol form', () => {
    const infer = doc.paths['/v2/models/{model}/infer'].post.responses;
    expect(infer['400'].content['application/json'].schema.$ref).toBe(
      '#/components/schemas/V2Error',
    );
    expect(doc.components.schemas.V2Error.properties.error.type).toBe('string');
  });

  it('declares the API-key and admin security schemes', () => {
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(
      ['adminBasic', 'adminBearer', 'bearerKey', 'headerKey', 'metricsBearer', 'queryKey'].sort(),
    );
  });

  it('is gzip-compressed for a client that accepts it', async () => {
    const res = await api.app.request('/openapi.json', { headers: { 'accept-encoding': 'gzip' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect(res.headers.get('vary')).toMatch(/Accept-Encoding/i);
    const body = Buffer.from(await res.arrayBuffer());
    const plain = gunzipSync(body).toString('utf8');
    expect(JSON.parse(plain).openapi).toBe('3.1.0');
    expect(body.length).toBeLessThan(plain.length / 3);
  });
});

describe('GET /docs', () => {
  it('serves the interactive UI pointed at /openapi.json', async () => {
    const res = await api.app.request('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toMatch(/swagger/i);
    expect(html).toContain('/openapi.json');
  });
});
