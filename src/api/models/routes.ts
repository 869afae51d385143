import { createHash } from 'node:crypto';
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import {
  ModelListSchema,
  ModelMetadataSchema,
  type ModelList,
  type ModelMetadata,
} from '../../shared/contracts/models.js';
import type { ModelEntry, ModelVersion } from '../../shared/model-repository.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import {
  API_KEY_SECURITY,
  COMMON_V1,
  errors,
  json,
  ModelPath,
  ModelVersionPath,
} from '../openapi/common.js';
import { mount, routeApp, type RouteApp } from '../openapi/route.js';

const CACHED = z.object({
  ETag: z.string(),
  'Cache-Control': z.string().meta({ example: 'public, max-age=60' }),
});
const IfNoneMatch = z.object({
  'if-none-match': z.string().optional().meta({ description: 'An ETag seen before: 304 if so.' }),
});

const ListRoute = createRoute({
  method: 'get',
  path: '/v1/models',
  tags: ['models'],
  summary: 'List models and their versions.',
  security: API_KEY_SECURITY,
  responses: {
    200: { description: 'Every model.', content: json(ModelListSchema) },
    ...errors(...COMMON_V1),
  },
});

const ModelRoute = createRoute({
  method: 'get',
  path: '/v1/models/{model}',
  tags: ['models'],
  summary: 'Metadata of the default version (with ETag and Cache-Control).',
  security: API_KEY_SECURITY,
  request: { params: ModelPath, headers: IfNoneMatch },
  responses: {
    200: { description: 'Model metadata.', headers: CACHED, content: json(ModelMetadataSchema) },
    304: { description: 'Not modified (If-None-Match matched the ETag).' },
    ...errors('model_not_found', ...COMMON_V1),
  },
});

const VersionRoute = createRoute({
  method: 'get',
  path: '/v1/models/{model}/versions/{version}',
  tags: ['models'],
  summary: 'Metadata of one version (with ETag and Cache-Control).',
  security: API_KEY_SECURITY,
  request: { params: ModelVersionPath, headers: IfNoneMatch },
  responses: {
    200: { description: 'Version metadata.', headers: CACHED, content: json(ModelMetadataSchema) },
    304: { description: 'Not modified.' },
    ...errors('model_not_found', 'version_not_found', ...COMMON_V1),
  },
});

/** Body of GET /v1/models/{model}[/versions/{version}]. */
export function versionMetadata(entry: ModelEntry, v: ModelVersion): ModelMetadata {
  return {
    name: v.name,
    version: v.version,
    versions: entry.versions.map((x) => x.version),
    default: entry.default,
    task: v.task,
    ...(v.labels ? { labels: v.labels } : {}),
    ...(v.features ? { features: v.features } : {}),
    ...(v.description ? { description: v.description } : {}),
    ...(v.card ? { card: v.card } : {}),
    inputs: v.inputs,
    outputs: v.outputs,
  };
}

function etagOf(v: ModelVersion): string {
  return `"${createHash('sha1').update(`${v.name}@${v.version}:${v.mtimeMs}`).digest('hex').slice(0, 16)}"`;
}

function sendCached(c: Context, etag: string, body: ModelMetadata) {
  c.header('ETag', etag);
  c.header('Cache-Control', 'public, max-age=60');
  const match = c.req.header('if-none-match');
  // Weak comparison (RFC 9110): compression turns the ETag into W/"...", which clients send back.
  const weak = (t: string) => t.trim().replace(/^W\//, '');
  if (match && match.split(',').some((t) => weak(t) === etag || t.trim() === '*'))
    return c.body(null, 304);
  return c.json(body);
}

/** GET /v1/models and the metadata of one model or version. */
export function modelRoutes(deps: ApiDeps): RouteApp {
  const app = routeApp();
  const { repository } = deps;

  mount(app, ListRoute, (c) => {
    const body: ModelList = {
      models: repository.list().map((m) => ({
        name: m.name,
        versions: m.versions.map((v) => v.version),
        default: m.default,
        task: m.versions[0]?.task ?? 'raw',
      })),
    };
    return c.json(body);
  });

  // A bad model name or version is the 404 it names, as an unknown one is.
  const exists = (c: Context<AppEnv>) =>
    repository.resolve(c.req.param('model') ?? '', c.req.param('version'));
  const metadata = (c: Context<AppEnv>) => {
    const entry = repository.model(c.req.param('model') ?? '');
    const v = repository.resolve(entry.name, c.req.param('version'));
    return sendCached(c, etagOf(v), versionMetadata(entry, v));
  };
  mount(app, ModelRoute, metadata, { exists });
  mount(app, VersionRoute, metadata, { exists });

  return app;
}
